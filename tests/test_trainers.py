from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_build import digit_folder, mnist_records  # noqa: F401 - a fixture
from typer.testing import CliRunner

from leafprep import LeafprepError
from leafprep.build import BuildOptions, build
from leafprep.cli import app
from leafprep.errors import ParameterError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def mnist_small(tmp_path_factory, mnist_test):
    """A dataset of 512 MNIST train and 128 test digits (no validation split)."""
    images, labels = mnist_test
    return mnist_records(tmp_path_factory.mktemp("mnist-small"), images, labels, 512, 128)


@pytest.mark.parametrize(("name", "shape"), [("softmax", (28, 28, 1)), ("convnet", (28, 28, 1)), ("convnet-bn", (28, 28, 1)), ("leaf", (64, 64, 3))])
def test_every_model_of_the_registry_builds_for_its_inputs(name, shape):
    from trainers.models import build_model

    model = build_model(name, shape, 7)
    assert model.output_shape == (None, 7)
    assert model.input_shape == (None, *shape)


def test_registry_refuses_unknown_models_and_too_small_leaves():
    from trainers.models import build_model

    with pytest.raises(ParameterError, match="model must be one of"):
        build_model("resnet", (28, 28, 1), 10)
    with pytest.raises(ParameterError, match="at least 32x32"):
        build_model("leaf", (28, 28, 1), 10)


def test_training_lowers_the_loss_and_writes_a_run_that_reloads(mnist_small, tmp_path):
    from trainers.runs import load_run
    from trainers.train import train

    metrics = train(mnist_small, tmp_path / "run", model="softmax", epochs=4, batch_size=64, learning_rate=0.01, verbose=0)
    run = tmp_path / "run"
    for name in ("model.keras", "preprocessing.json", "metrics.json", "history.csv"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("*")), "TensorBoard logs"
    with open(run / "history.csv", newline="") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert metrics["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    settings = json.loads((run / "preprocessing.json").read_text())
    assert settings["kind"] == "digit"  # MNIST's IDX files: photos are normalised as digits
    assert settings["size"] == 28 and settings["labels"] == [str(d) for d in range(10)]
    loaded = load_run(run)
    assert loaded.labels == settings["labels"]
    again = loaded.model.predict_on_batch(np.zeros((1, 28, 28, 1), np.float32))
    assert again.shape == (1, 10) and abs(float(again.sum()) - 1.0) < 1e-4


def test_same_seed_same_first_epoch(mnist_small, tmp_path):
    from trainers.train import train

    first = train(mnist_small, tmp_path / "a", model="softmax", epochs=1, max_steps=3, verbose=0)
    second = train(mnist_small, tmp_path / "b", model="softmax", epochs=1, max_steps=3, verbose=0)
    assert first["test_accuracy"] == second["test_accuracy"]


def test_evaluate_reports_per_class_scores_confusion_and_mistakes(mnist_small, tmp_path):
    from trainers.evaluate import evaluate
    from trainers.train import train

    train(mnist_small, tmp_path / "run", model="softmax", epochs=2, verbose=0)
    report = evaluate(tmp_path / "run", mnist_small, "test")
    matrix = np.array(report["confusion"])
    assert matrix.sum() == report["examples"] == 128
    assert report["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert set(report["per_class"]) == {str(d) for d in range(10)}
    for name in ("evaluation-test.json", "confusion-test.png", "mistakes-test.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), str(mnist_small)])
    assert result.exit_code == 0 and "precision" in result.output


def test_predict_normalises_photos_with_the_runs_settings(digit_folder, tmp_path):  # noqa: F811
    from trainers.predict import predict, prepare
    from trainers.runs import load_run
    from trainers.train import train

    build(digit_folder, tmp_path / "ds", BuildOptions(kind="digit", split=(1.0, 0.0, 0.0)), workers=0)
    train(tmp_path / "ds", tmp_path / "run", model="convnet", epochs=2, batch_size=8, verbose=0)
    photos = sorted(digit_folder.rglob("*.png"))[:3]
    found = predict(tmp_path / "run", photos, top_k=2)
    assert [len(p.top) for p in found] == [2, 2, 2]
    assert all(p.label in {"1", "2", "10"} and 0.0 <= p.top[0][1] <= 1.0 for p in found)
    from leafprep import normalize

    assert np.array_equal(prepare(load_run(tmp_path / "run"), photos[0])[:, :, 0], normalize(photos[0], "digit", 28))
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), str(photos[0]), "--steps", str(tmp_path / "steps.png")])
    assert result.exit_code == 0, result.output
    assert str(photos[0]) in result.output and (tmp_path / "steps.png").stat().st_size > 0


def test_a_folder_that_is_not_a_run_gives_a_clear_error(tmp_path):
    from trainers.runs import load_run

    (tmp_path / "empty").mkdir()
    with pytest.raises(LeafprepError, match="is not a leafprep run"):
        load_run(tmp_path / "empty")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "empty"), "photo.jpg"])
    assert result.exit_code == 1 and "is not a leafprep run" in result.output
