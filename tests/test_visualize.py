from __future__ import annotations

import numpy as np
import pytest
from test_build import mnist_records
from typer.testing import CliRunner

from leafprep.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_test):
    """A softmax and a small conv-net, briefly trained on 2,000 MNIST test digits."""
    from trainers.train import train

    images, labels = mnist_test
    root = tmp_path_factory.mktemp("visualize")
    mnist_records(root, images, labels, 2000)
    train(root / "ds", root / "softmax", model="softmax", epochs=5, batch_size=64, learning_rate=0.005, optimizer="adam", verbose=0)
    train(root / "ds", root / "convnet", model="convnet", epochs=1, max_steps=10, verbose=0)
    return root, images[:2000].astype(np.float32) / 255.0, labels[:2000]


def test_softmax_weight_maps_correlate_with_each_class_mean_image(runs):
    from trainers.runs import load_run
    from trainers.visualize import weight_maps

    root, images, labels = runs
    maps = weight_maps(load_run(root / "softmax").model)
    assert maps.shape == (10, 28, 28)
    for digit in range(10):
        mean = images[labels == digit].mean(axis=0)
        assert np.corrcoef(maps[digit].ravel(), mean.ravel())[0, 1] > 0, digit


def test_dreams_are_read_as_their_own_class_and_repeat_for_a_seed(runs):
    from trainers.runs import load_run
    from trainers.visualize import dream, dream_figure

    root, _, _ = runs
    run = load_run(root / "softmax")
    _, dreams, probabilities = dream_figure(run.model, run.labels, seed=3, steps=80)
    assert dreams.shape == (10, 28, 28, 1) and dreams.min() >= 0.0 and dreams.max() <= 1.0
    assert probabilities.min() >= 0.9
    assert np.array_equal(dream(run.model, 4, seed=1, steps=20), dream(run.model, 4, seed=1, steps=20))


def test_saliency_gradcam_and_activations_have_the_inputs_shape(runs):
    from trainers.runs import load_run
    from trainers.visualize import activations, gradcam, saliency

    root, images, _ = runs
    model = load_run(root / "convnet").model
    image = images[0][:, :, None]
    for heat in (saliency(model, image), gradcam(model, image)):
        assert heat.shape == (28, 28) and heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    maps = activations(model, image)
    assert [name for name, _ in maps] == ["conv1", "conv2"] and maps[0][1].shape == (26, 26, 32)


@pytest.mark.parametrize("what", ["weights", "dream", "saliency", "gradcam", "activations"])
def test_cli_visualize_draws_every_kind_of_picture(runs, what, tmp_path):
    from PIL import Image

    from leafprep.synthetic import ink_on_paper

    root, images, _ = runs
    photo = tmp_path / "seven.png"
    Image.fromarray(ink_on_paper((images[0] * 255).astype(np.uint8), scale=3)).save(photo)
    out = tmp_path / f"{what}.svg" if what == "weights" else tmp_path / f"{what}.png"
    arguments = ["visualize", str(root / "convnet" if what in ("gradcam", "activations") else root / "softmax"), "--what", what, "--out", str(out)]
    if what in ("saliency", "gradcam", "activations"):
        arguments += ["--input", str(photo)]
    if what == "dream":
        arguments += ["--steps", "30"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_visualize_needs_an_input_for_saliency_and_a_known_format(runs, tmp_path):
    root, _, _ = runs
    assert CliRunner().invoke(app, ["visualize", str(root / "softmax"), "--what", "saliency", "--out", str(tmp_path / "s.png")]).exit_code == 2
    assert CliRunner().invoke(app, ["visualize", str(root / "softmax"), "--out", str(tmp_path / "w.jpg")]).exit_code == 2
