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
    # The thin 1 is the hardest on pixels: the jitter moves it off its narrow column (0.85 to 0.89 on
    # this deskewed softmax, 0.89 to 0.95 on a plain one); the others reach 0.97 and more.
    assert probabilities.min() >= 0.8 and np.median(probabilities) >= 0.99
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
        arguments += ["--steps", "30", "--prior", "none"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_visualize_needs_an_input_for_saliency_and_a_known_format(runs, tmp_path):
    root, _, _ = runs
    assert CliRunner().invoke(app, ["visualize", str(root / "softmax"), "--what", "saliency", "--out", str(tmp_path / "s.png")]).exit_code == 2
    assert CliRunner().invoke(app, ["visualize", str(root / "softmax"), "--out", str(tmp_path / "w.jpg")]).exit_code == 2


@pytest.fixture(scope="module")
def prior(runs):
    """A small prior of the default kind (an autoencoder), trained briefly on the runs' 2,000 digits, cached in both run folders."""
    import shutil

    from trainers.prior import PRIOR_FILE, train_prior

    root, images, _ = runs
    decoder, info = train_prior(images[:, :, :, None], steps=300, seed=0)
    decoder.save(root / "softmax" / PRIOR_FILE)
    shutil.copy(root / "softmax" / PRIOR_FILE, root / "convnet" / PRIOR_FILE)
    return decoder, info


def _pc_residual(pictures: np.ndarray, images: np.ndarray) -> np.ndarray:
    from bench.dream_quality import pc_residual, principal_components

    return pc_residual(pictures, *principal_components(images))


@pytest.mark.slow  # 70 to 100 s of dreaming on 2 cores: pytest -m slow tests/test_visualize.py
def test_dreams_on_the_prior_lie_closer_to_real_digits_than_dreams_on_pixels(runs, prior):
    from trainers.runs import load_run
    from trainers.visualize import dreams

    root, images, _ = runs
    decoder, info = prior
    assert info["kind"] == "ae" and info["steps"] == 300 and info["loss"] < 250  # it learnt something (about 545 at the start)
    model = load_run(root / "softmax").model
    on_prior = np.concatenate([dreams(model, digit, 2, prior=decoder, seed=digit) for digit in range(10)])
    on_pixels = np.concatenate([dreams(model, digit, 1, steps=80, seed=digit) for digit in range(10)])
    prior_residual, pixel_residual = np.median(_pc_residual(on_prior, images)), np.median(_pc_residual(on_pixels, images))
    print(f"PC residual: real {np.median(_pc_residual(images[:200], images)):.3f}, on the prior {prior_residual:.3f}, on pixels {pixel_residual:.3f}")
    assert prior_residual < pixel_residual - 0.1
    read = np.asarray(model.predict(on_prior, verbose=0)).argmax(axis=1)
    print("read as their own class:", (read == np.repeat(np.arange(10), 2)).mean())
    assert (read == np.repeat(np.arange(10), 2)).mean() >= 0.8  # a net this weak (2,000 digits) is rarely sure


def test_dreams_on_the_prior_repeat_for_a_seed_and_differ_between_seeds(runs, prior):
    from trainers.runs import load_run
    from trainers.visualize import dream, dreams

    root, _, _ = runs
    decoder, _ = prior
    model = load_run(root / "convnet").model
    first = dreams(model, 3, 2, prior=decoder, seed=5, steps=20)
    assert first.shape == (2, 28, 28, 1) and np.array_equal(first, dreams(model, 3, 2, prior=decoder, seed=5, steps=20))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(dream(model, 3, prior=decoder, seed=5, steps=20), dream(model, 3, prior=decoder, seed=6, steps=20))


def test_cli_writes_the_dreams_per_class_as_an_array_from_the_cached_prior(runs, prior, tmp_path):
    from trainers.prior import PRIOR_FILE

    root, _, _ = runs
    cached = (root / "softmax" / PRIOR_FILE).stat().st_mtime_ns
    out = tmp_path / "dreams.npy"
    result = CliRunner().invoke(app, ["visualize", str(root / "softmax"), "--what", "dream", "--per-class", "2", "--steps", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    pictures = np.load(out, allow_pickle=False)
    assert pictures.shape == (20, 28, 28, 1) and pictures.dtype == np.float32 and 0.0 <= pictures.min() <= pictures.max() <= 1.0
    assert (root / "softmax" / PRIOR_FILE).stat().st_mtime_ns == cached  # used, not trained again


def test_cli_writes_softmax_weights_as_classes_by_height_by_width(runs, tmp_path):
    from trainers.runs import load_run
    from trainers.visualize import weight_maps

    root, _, _ = runs
    out = tmp_path / "weights.npy"
    assert CliRunner().invoke(app, ["visualize", str(root / "softmax"), "--out", str(out)]).exit_code == 0
    assert np.array_equal(np.load(out), weight_maps(load_run(root / "softmax").model))


def test_dreams_of_a_run_whose_records_are_gone_say_what_is_missing_and_how_to_dream_without_a_prior(runs, tmp_path):
    import json
    import shutil

    root, _, _ = runs
    moved = tmp_path / "run"
    shutil.copytree(root / "softmax", moved, ignore=shutil.ignore_patterns("dream-prior.*"))
    settings = json.loads((moved / "preprocessing.json").read_text())
    settings["dataset"] = str(tmp_path / "gone")
    (moved / "preprocessing.json").write_text(json.dumps(settings))
    result = CliRunner().invoke(app, ["visualize", str(moved), "--what", "dream", "--out", str(tmp_path / "d.png")])
    assert result.exit_code == 1
    assert "gone" in result.output and "--prior none" in result.output and "Traceback" not in result.output
    without = ["visualize", str(moved), "--what", "dream", "--prior", "none", "--steps", "5", "--out", str(tmp_path / "d.png")]
    result = CliRunner().invoke(app, without)
    assert result.exit_code == 0, result.output


def test_an_unknown_prior_is_a_usage_error(runs, tmp_path):
    root, _, _ = runs
    result = CliRunner().invoke(app, ["visualize", str(root / "softmax"), "--what", "dream", "--prior", "gan", "--out", str(tmp_path / "d.png")])
    assert result.exit_code == 2 and "gan" in result.output


def test_a_prior_that_draws_one_picture_whatever_its_code_is_reported(runs, tmp_path):
    import shutil

    import keras

    from trainers.prior import PRIOR_FILE, variety

    root, _, _ = runs
    moved = tmp_path / "run"
    shutil.copytree(root / "softmax", moved, ignore=shutil.ignore_patterns("dream-prior.*"))
    code = keras.Input((16,))
    picture = keras.layers.Dense(784, activation="sigmoid", kernel_initializer="zeros", bias_initializer="random_normal")(code)
    collapsed = keras.Model(code, keras.layers.Reshape((28, 28, 1))(picture))
    collapsed.save(moved / PRIOR_FILE)
    assert variety(collapsed) < 1e-6
    result = CliRunner().invoke(app, ["visualize", str(moved), "--what", "dream", "--steps", "3", "--out", str(tmp_path / "d.png")])
    assert result.exit_code == 0, result.output
    assert "nearly the same picture" in result.output and "--prior none" in result.output


def test_the_autoencoder_prior_draws_varied_digits_from_a_standard_normal_code_and_loads_in_safe_mode(runs, tmp_path):
    """The prior 'auto' takes: an autoencoder, then a Gaussian fitted to its codes, in one decoder."""
    from trainers.prior import MIN_VARIETY, PRIOR_FILE, load_prior, train_prior, variety

    _, images, _ = runs
    decoder, info = train_prior(images[:500, :, :, None], steps=150, seed=0)
    assert info["kind"] == "ae" and info["latent"] == 32 and decoder.input_shape[1:] == (32,) and decoder.output_shape[1:] == (28, 28, 1)
    assert info["variety"] == pytest.approx(variety(decoder), abs=1e-4) and info["variety"] > MIN_VARIETY
    # the Gaussian: the mean of many drawn pictures is near the mean digit, far nearer than a blank page
    drawn = np.asarray(decoder(np.random.default_rng(1).normal(0, 1, (256, 32)).astype(np.float32)))
    mean_digit = images[:500].mean(axis=0)[:, :, None]
    assert np.abs(drawn.mean(axis=0) - mean_digit).mean() < 0.5 * np.abs(mean_digit).mean()
    decoder.save(tmp_path / PRIOR_FILE)
    loaded = load_prior(tmp_path, (28, 28, 1))  # safe mode
    codes = np.random.default_rng(2).normal(0, 1, (4, 32)).astype(np.float32)
    assert loaded is not None and np.allclose(np.asarray(loaded(codes)), np.asarray(decoder(codes)), atol=1e-5)


def test_a_cached_prior_of_another_kind_is_trained_again_unless_the_records_are_gone(runs, tmp_path, monkeypatch):
    import json
    import shutil

    import trainers.prior
    from leafprep.errors import LeafprepError
    from trainers.prior import PRIOR_FILE, PRIOR_INFO, decoder_for
    from trainers.runs import load_run

    root, _, _ = runs
    moved = tmp_path / "run"
    shutil.copytree(root / "softmax", moved, ignore=shutil.ignore_patterns("dream-prior.*"))
    cached, _ = trainers.prior.train_prior(np.zeros((8, 28, 28, 1), np.float32), kind="vae", steps=1)
    cached.save(moved / PRIOR_FILE)
    (moved / PRIOR_INFO).write_text(json.dumps({"images": 2000}))  # a VAE of before the kinds (no 'kind')
    trained = []

    def train(images, *, kind, **_):
        trained.append((len(images), kind))
        return cached, {"kind": kind, "images": len(images)}

    monkeypatch.setattr(trainers.prior, "train_prior", train)
    run = load_run(moved)
    assert decoder_for(run, kind="vae") is not None and trained == []  # the cache is a VAE
    decoder_for(run)  # auto wants the autoencoder
    assert trained == [(2000, "ae")] and json.loads((moved / PRIOR_INFO).read_text())["kind"] == "ae"
    decoder_for(run)
    assert len(trained) == 1  # now cached
    settings = json.loads((moved / "preprocessing.json").read_text())
    settings["dataset"] = str(tmp_path / "gone")
    (moved / "preprocessing.json").write_text(json.dumps(settings))
    gone = load_run(moved)
    assert decoder_for(gone, kind="ae") is not None and len(trained) == 1
    with pytest.raises(LeafprepError, match="gone"):
        decoder_for(gone, kind="vae")  # asked for another kind, and nothing to learn it from
    assert len(trained) == 1


def test_constrained_softmax_reaches_the_correlation_asked_for_and_pays_for_it_in_fit(mnist_test):
    from bench.train_mnist import _constrained_softmax
    from trainers.evaluate import class_templates, weight_map_correlation

    images, labels = mnist_test
    x, y = images[:2000], labels[:2000]
    templates = class_templates(x, y, 10)
    pixels = x.reshape(len(x), -1) / 255.0
    scores = {}
    for target in (None, 0.85):
        weights, bias = _constrained_softmax(x, y, templates, target, l2=1e-3 if target is None else 0.0)
        correlation = weight_map_correlation(weights.T.reshape(10, 28, 28), templates).mean()
        scores[target] = (correlation, ((pixels @ weights + bias).argmax(axis=1) == y).mean())
    assert scores[0.85][0] >= 0.845
    assert scores[None][0] < 0.8  # the constraint binds: left free, the maps drift from the class means
    assert scores[None][1] > scores[0.85][1]
