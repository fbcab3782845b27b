from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from leafprep import LeafprepError
from leafprep.augmentation import augment, augment_batch, load_pipeline, preset, save_pipeline
from leafprep.cli import app
from leafprep.errors import ParameterError


def digit_like() -> np.ndarray:
    """An asymmetric 'digit': a bar with a foot to the right (flipping it is visible)."""
    image = np.zeros((28, 28), np.float32)
    image[6:22, 10:13] = 1.0
    image[19:22, 13:20] = 1.0
    return image


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("digits", np.rint(digit_like() * 255).astype(np.uint8)),
        ("digits", digit_like()),
        ("digits", digit_like()[:, :, None]),
        ("leaves", np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)),
        ("leaves", np.random.default_rng(1).integers(0, 256, (48, 48)).astype(np.uint8)),
    ],
)
def test_presets_keep_shape_dtype_and_range(name, image):
    copies = augment(image, name, n=4, seed=7)
    assert copies.shape == (4, *image.shape) and copies.dtype == image.dtype
    top = 255 if image.dtype == np.uint8 else 1.0
    assert copies.min() >= 0 and copies.max() <= top
    assert not np.array_equal(copies[0], image)


def test_same_seed_same_copies_other_seed_other_copies():
    image = digit_like()
    assert np.array_equal(augment(image, "digits", n=3, seed=5), augment(image, "digits", n=3, seed=5))
    assert not np.array_equal(augment(image, "digits", n=3, seed=5), augment(image, "digits", n=3, seed=6))
    batch = np.stack([image] * 6)[..., None]
    assert np.array_equal(augment_batch(batch, "digits", seed=2), augment_batch(batch, "digits", seed=2))


def test_digits_are_never_flipped_leaves_are():
    image = digit_like()
    mirror = image[:, ::-1]

    def closer_to_mirror(copies: np.ndarray) -> int:
        return sum(float(((c - mirror) ** 2).sum()) < float(((c - image) ** 2).sum()) for c in copies)

    assert closer_to_mirror(augment(image, "digits", n=40, seed=1)) == 0
    assert closer_to_mirror(augment(image, "leaves", n=40, seed=1)) > 5


def test_leaves_keep_the_black_background_black():
    leaf = np.zeros((64, 64), np.float32)
    leaf[16:48, 24:40] = 0.6
    copies = augment(leaf, "leaves", n=10, seed=3)
    assert all(float(c[:4, :4].max()) == 0.0 for c in copies)  # corners stay background


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_custom_pipeline_file_round_trips(tmp_path, suffix):
    import albumentations as A

    pipeline = A.Compose([A.Affine(rotate=(-5, 5), p=1.0), A.GaussianBlur(sigma_limit=(0.5, 0.8), p=1.0)])
    save_pipeline(pipeline, tmp_path / f"mine{suffix}")
    image = digit_like()
    from_file = augment(image, tmp_path / f"mine{suffix}", n=3, seed=4)
    assert np.array_equal(from_file, augment(image, load_pipeline(tmp_path / f"mine{suffix}"), n=3, seed=4))
    assert np.array_equal(from_file, augment(image, pipeline, n=3, seed=4))


def test_bad_pipelines_are_named(tmp_path):
    (tmp_path / "broken.yaml").write_text("transform: [this is not albumentations\n")
    with pytest.raises(LeafprepError, match=r"broken\.yaml"):
        augment(digit_like(), tmp_path / "broken.yaml")
    with pytest.raises(LeafprepError, match="no such pipeline file"):
        augment(digit_like(), tmp_path / "missing.json")
    with pytest.raises(ParameterError, match="preset must be one of"):
        augment(digit_like(), "digit")  # not "digits"
    import albumentations as A

    with pytest.raises(ParameterError, match="changed the image shape"):
        augment(digit_like(), A.Compose([A.CenterCrop(20, 20)]))
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        augment(digit_like() * 3.0, "digits")


def test_keras_layers_are_identity_outside_training_and_warp_without_change_is_exact():
    from leafprep._keras_layers import Blur, Noise, StrokeWidth, Warp

    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    for layer in (Warp(seed=1), StrokeWidth(seed=1), Blur(seed=1), Noise(seed=1)):
        assert np.array_equal(np.asarray(layer(images, training=False)), images)
    still = Warp(rotate=0, shear=0, scale=(1.0, 1.0), shift=0.0, alpha=0.0, probability=0.0, seed=1)
    assert np.allclose(np.asarray(still(images, training=True)), images, atol=1e-6)
    thicker = StrokeWidth(width=2, probability=1.0, seed=1)
    image = digit_like()[None, :, :, None]
    changed = np.asarray(thicker(image, training=True))
    assert changed.sum() != image.sum()  # dilated or eroded


def test_online_augmentation_in_records_load_is_deterministic(tmp_path, mnist_test):
    from test_build import mnist_idx

    from leafprep.build import BuildOptions, build
    from leafprep.records import load

    images, labels = mnist_test
    build(mnist_idx(tmp_path / "idx", images, labels, 300), tmp_path / "ds", BuildOptions(kind="none", split=(1.0, 0.0, 0.0)), workers=0)

    def pictures(**kwargs):
        return np.concatenate([x.numpy() for x, _ in load(tmp_path / "ds", "train", batch_size=64, **kwargs)])

    plain = pictures()
    first, again, other = pictures(augment="digits", seed=1), pictures(augment="digits", seed=1), pictures(augment="digits", seed=2)
    assert first.shape == plain.shape and first.dtype == np.float32 and first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(first, again) and not np.array_equal(first, other) and not np.array_equal(first, plain)
    save_pipeline(preset("digits"), tmp_path / "digits.yaml")  # albumentations online, in parallel
    from_file = pictures(augment=tmp_path / "digits.yaml", seed=1)
    assert np.array_equal(from_file, pictures(augment=tmp_path / "digits.yaml", seed=1))
    assert not np.array_equal(from_file, plain)


def test_build_augments_train_with_the_kind_preset(tmp_path, mnist_test):
    from test_build import mnist_idx

    from leafprep.build import BuildOptions, build

    images, labels = mnist_test
    mnist_idx(tmp_path / "idx", images, labels, 80, 20)
    report = build(tmp_path / "idx", tmp_path / "ds", BuildOptions(kind="none", augment=2), workers=0)
    meta = report.info
    assert meta["options"]["augment_preset"] == "digits"
    assert meta["splits"]["train"]["examples"] == 3 * 80 and meta["splits"]["test"]["examples"] == 20
    with pytest.raises(ParameterError, match="preset must be one of"):
        build(tmp_path / "idx", tmp_path / "ds2", BuildOptions(kind="none", augment=1, augment_preset="flowers"), workers=0)


def test_cli_augment_writes_copies_and_a_preview(tmp_path):
    from PIL import Image

    source = tmp_path / "in" / "7"
    source.mkdir(parents=True)
    for k in range(2):
        Image.fromarray(np.rint(np.roll(digit_like(), k, axis=1) * 255).astype(np.uint8)).save(source / f"d{k}.png")
    result = CliRunner().invoke(
        app, ["augment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--n", "3", "--preview", str(tmp_path / "grid.png")]
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == [f"7/d{k}-0{i}.png" for k in range(2) for i in (1, 2, 3)]
    assert np.asarray(Image.open(written and tmp_path / "out" / written[0])).shape == (28, 28)
    assert Image.open(tmp_path / "grid.png").size[0] > 4 * 64
    again = CliRunner().invoke(app, ["augment", str(tmp_path / "in"), "--out", str(tmp_path / "out2"), "--n", "3"])
    assert again.exit_code == 0
    assert all((tmp_path / "out" / w).read_bytes() == (tmp_path / "out2" / w).read_bytes() for w in written)
    assert CliRunner().invoke(app, ["augment", str(tmp_path / "in")]).exit_code == 2


def test_fused_affine_path_equals_the_general_resampling():
    from leafprep._keras_layers import Warp

    images = np.random.default_rng(2).random((6, 28, 28, 1)).astype(np.float32)
    fast = Warp(rotate=30, shear=10, scale=(0.8, 1.2), shift=0.1, alpha=0.0, probability=0.0, seed=3)(images, training=True)
    general = Warp(rotate=30, shear=10, scale=(0.8, 1.2), shift=0.1, alpha=1e-9, probability=1e-9, seed=3)(images, training=True)
    assert np.allclose(np.asarray(fast), np.asarray(general), atol=1e-4)
