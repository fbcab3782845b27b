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

    metrics = train(mnist_small, tmp_path / "run", model="softmax", epochs=4, batch_size=64, verbose=0)
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


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    """A dataset without ../shared: 3 classes of 28x28 images, each a bright bar (a row, a column or a
    diagonal) in noise, all inside the middle 20x20; the 4-pixel border never has ink."""
    rng = np.random.default_rng(0)
    labels = (np.arange(600) % 3).astype(np.uint8)
    images = np.zeros((600, 28, 28), np.uint8)
    middle = rng.integers(0, 90, (600, 20, 20))
    for image, label, noise in zip(images, labels, middle):
        image[4:24, 4:24] = noise
        bar = (slice(12, 15), slice(6, 22)) if label == 0 else (slice(6, 22), slice(12, 15)) if label == 1 else np.diag_indices(28)
        image[bar] = 255
        image[:4], image[24:], image[:, :4], image[:, 24:] = 0, 0, 0, 0
    return mnist_records(tmp_path_factory.mktemp("bars"), images, labels, 450, 150), images[:450], labels[:450]


def test_softmax_weights_stay_zero_where_no_ink_falls_and_draw_the_classes(bars, tmp_path):
    from trainers.evaluate import class_templates, weight_map_correlation
    from trainers.runs import load_run
    from trainers.visualize import weight_maps

    data, images, labels = bars
    from trainers.train import train

    # The bars are "digits" to leafprep, but their slant is their class: deskewing would make the
    # diagonal a column, so this softmax sees the pixels as they are.
    metrics = train(data, tmp_path / "run", model="softmax", epochs=1, deskew=False, verbose=0)
    assert metrics["options"]["optimizer"] == "sgd" and metrics["options"]["learning_rate"] == 0.3  # the softmax's recipe
    maps = weight_maps(load_run(tmp_path / "run").model)
    border = np.ones((28, 28), bool)
    border[4:24, 4:24] = False
    assert np.all(maps[:, border] == 0.0), "pixels that never see ink keep their zero weight"
    correlation = weight_map_correlation(maps, class_templates(images, labels, 3))
    assert correlation.min() > 0.9, correlation
    assert metrics["test_accuracy"] > 0.9


def _slanted_strokes(count: int, seed: int) -> np.ndarray:
    """(count, 28, 28) float32: a stroke and a bar across it, each image at its own slant."""
    import cv2

    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.float32)
    for image, lean, bar in zip(images, rng.uniform(-0.6, 0.6, count), rng.integers(8, 20, count)):
        cv2.line(image, (int(round(14 - 8 * lean)), 5), (int(round(14 + 8 * lean)), 22), 1.0, 2, cv2.LINE_AA)
        cv2.line(image, (9, int(bar)), (18, int(bar)), 1.0, 2, cv2.LINE_AA)
    return images


def test_deskew_layer_shears_each_image_upright_as_geometry_deskew_does():
    import cv2

    from leafprep.geometry import deskew
    from trainers.layers import Deskew

    images = _slanted_strokes(16, seed=0)
    upright = np.asarray(Deskew()(images[..., None]))[..., 0]
    for image, out in zip(images, upright):
        moments = cv2.moments(image)
        pad = int(np.ceil(abs(moments["mu11"] / moments["mu02"]) * 28)) + 1
        np.testing.assert_allclose(out, deskew(image)[:, pad : pad + 28], atol=1e-4)  # the same shear, kept 28 wide
        assert abs(cv2.moments(out)["mu11"]) < 0.02 * abs(moments["mu11"]) + 1e-3, "the main axis now stands upright"
    assert np.array_equal(np.asarray(Deskew()(np.zeros((1, 28, 28, 1), np.float32))), np.zeros((1, 28, 28, 1)))  # no ink: as it is
    rgb = np.repeat(images[:2, ..., None], 3, axis=-1)
    np.testing.assert_allclose(np.asarray(Deskew()(rgb)), np.repeat(upright[:2, ..., None], 3, axis=-1), atol=1e-6)


def test_softmax_deskews_digits_by_default_and_the_run_reloads_with_it(bars, tmp_path):
    import keras

    from trainers.layers import Deskew
    from trainers.models import build_model
    from trainers.runs import load_run
    from trainers.train import train

    assert train(bars[0], tmp_path / "digits", model="softmax", epochs=1, max_steps=2, verbose=0)["options"]["deskew"] is True
    model = load_run(tmp_path / "digits").model
    assert isinstance(model.layers[0], Deskew)
    images = _slanted_strokes(4, seed=1)[..., None]
    direct = keras.Sequential(model.layers[1:])(np.asarray(model.layers[0](images)))  # the loaded model deskews, then weighs
    np.testing.assert_allclose(model.predict_on_batch(images), np.asarray(direct), atol=1e-6)
    assert train(bars[0], tmp_path / "plain", model="softmax", epochs=1, max_steps=2, deskew=False, verbose=0)["options"]["deskew"] is False
    assert not any(isinstance(layer, Deskew) for layer in load_run(tmp_path / "plain").model.layers)
    with pytest.raises(ParameterError, match="softmax only"):
        build_model("convnet", (28, 28, 1), 10, deskew=True)
    with pytest.raises(ParameterError, match="softmax only"):
        train(bars[0], tmp_path / "convnet", model="convnet", deskew=True, verbose=0)
    assert not (tmp_path / "convnet").exists(), "refused before anything is written"


def test_the_model_recipe_fills_in_what_the_caller_leaves_out(bars, tmp_path):
    from trainers.models import RECIPES, Recipe
    from trainers.train import train

    assert all(RECIPES[name] == Recipe("adam", 1e-3, 128) for name in ("convnet", "fast", "convnet-bn", "leaf"))
    options = train(bars[0], tmp_path / "a", model="softmax", epochs=1, max_steps=1, learning_rate=0.5, verbose=0)["options"]
    assert (options["optimizer"], options["learning_rate"], options["batch_size"]) == ("sgd", 0.5, 128)
    options = train(bars[0], tmp_path / "b", model="softmax", epochs=1, max_steps=1, optimizer="adam", batch_size=32, verbose=0)["options"]
    assert (options["optimizer"], options["learning_rate"], options["batch_size"]) == ("adam", 0.3, 32)
    with pytest.raises(ParameterError, match="optimizer must be one of"):
        train(bars[0], tmp_path / "c", model="softmax", optimizer="rmsprop", verbose=0)


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
    wrong = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), str(mnist_small), "--split", "tset"])
    assert wrong.exit_code == 2 and "tset" in wrong.output  # a wrong command line, as the README's exit codes say


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


def test_deskewed_softmax_reads_more_digits_and_its_weights_still_draw_the_class_means(tmp_path, mnist_test):
    from trainers.evaluate import class_templates, weight_map_correlation
    from trainers.runs import load_run
    from trainers.train import train
    from trainers.visualize import weight_maps

    images, labels = mnist_test
    data = mnist_records(tmp_path, images, labels, 6000, 2000)
    templates = class_templates(images[:6000], labels[:6000], 10)
    scores = {}
    for deskew in (True, False):
        metrics = train(data, tmp_path / str(deskew), model="softmax", epochs=2, deskew=deskew, verbose=0)
        maps = weight_maps(load_run(tmp_path / str(deskew)).model)
        scores[deskew] = metrics["test_accuracy"], float(weight_map_correlation(maps, templates).mean())
    assert scores[True][0] > scores[False][0] + 0.03, scores  # 92.0% against 86.2% here
    assert scores[True][1] > 0.8, scores  # 0.89 (the plain one 0.95: it draws slanted digits as they come)
