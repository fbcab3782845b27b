"""Leaf descriptors: what they claim to be invariant to, their names, the CSV, the build's records, and the models that read them."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import leafprep
from leafprep.description import DESCRIPTOR_GROUPS, DESCRIPTOR_NAMES, leaf_descriptors
from leafprep.errors import NothingFoundError

ROOT = Path(__file__).resolve().parent.parent
LEAVES = ROOT / "sample_data" / "leaves"

# Descriptors that do not depend on where the leaf is, how it is turned or mirrored, or how large it is.
INVARIANT = [n for group in ("shape", "fourier", "curvature", "margin") for n in DESCRIPTOR_GROUPS[group]]


def toothed_leaf(side: int = 600, scale: float = 1.0, teeth: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """A photo of a toothed, egg-shaped leaf with a stalk on pale paper, and its mask: the test draws it itself."""
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    radius = 1.0 + 0.035 * np.sign(np.sin(teeth * t)) * (np.abs(np.sin(teeth * t)) ** 0.5)
    x = 0.55 * radius * np.sin(t) * (1.0 + 0.25 * np.cos(t))
    y = -radius * np.cos(t)
    points = np.stack([x, y], axis=1) * 160 * scale + side / 2
    mask = np.zeros((side, side), np.uint8)
    cv2.fillPoly(mask, [np.rint(points).astype(np.int32)], 1)
    stalk = (np.array([[0, 150], [0, 230]]) * scale + side / 2).astype(np.int32)
    cv2.line(mask, tuple(stalk[0]), tuple(stalk[1]), 1, max(2, round(6 * scale)))
    photo = np.full((side, side, 3), (236, 232, 225), np.uint8)
    rng = np.random.default_rng(0)
    leaf = np.clip(np.array([70, 130, 50]) + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)
    photo[mask > 0] = leaf[mask > 0]
    return photo, mask.astype(bool)


def _values(photo: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    d = leaf_descriptors(photo, mask)
    return {name: d[name] for name in INVARIANT}


def _close(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """Names whose values differ by more than a tolerance fit for a re-rasterised outline."""
    far = []
    for name in a:
        tolerance = 0.06 if name.startswith("curv") else 1.5 if name in ("teeth", "lobes") else 0.04 * max(1.0, abs(a[name]))
        if name.startswith("hu"):
            tolerance = 0.05 * max(1.0, abs(a[name])) + 0.3 * (name in ("hu5", "hu6", "hu7"))  # high-order moments are noisy
        if not abs(a[name] - b[name]) <= tolerance:
            far.append(f"{name}: {a[name]:.4f} vs {b[name]:.4f}")
    return far


def test_shape_descriptors_are_invariant_to_rotation_reflection_and_scale():
    photo, mask = toothed_leaf()
    reference = _values(photo, mask)
    turn = cv2.getRotationMatrix2D((300, 300), 37.0, 1.0)
    turned_photo = cv2.warpAffine(photo, turn, (600, 600), borderValue=(236, 232, 225))
    turned_mask = cv2.warpAffine(mask.astype(np.uint8), turn, (600, 600), flags=cv2.INTER_NEAREST).astype(bool)
    assert _close(reference, _values(turned_photo, turned_mask)) == []
    assert _close(reference, _values(photo[:, ::-1].copy(), mask[:, ::-1].copy())) == []
    bigger_photo, bigger_mask = toothed_leaf(side=900, scale=1.5)
    assert _close(reference, _values(bigger_photo, bigger_mask)) == []


def test_sizes_scale_with_the_photo_and_millimetres_follow_the_resolution():
    photo, mask = toothed_leaf()
    small = leaf_descriptors(photo, mask, px_per_mm=4.0)
    bigger_photo, bigger_mask = toothed_leaf(side=900, scale=1.5)
    big = leaf_descriptors(bigger_photo, bigger_mask)
    assert big["area_px"] / small["area_px"] == pytest.approx(2.25, rel=0.03)
    assert big["length_px"] / small["length_px"] == pytest.approx(1.5, rel=0.03)
    assert small["area_mm2"] == pytest.approx(small["area_px"] / 16.0)
    assert small["length_mm"] == pytest.approx(small["length_px"] / 4.0)
    assert math.isnan(big["area_mm2"])  # no scale given: unknown, not a guess
    # A working image at half size with scale 2 measures the same full-size leaf.
    half = leaf_descriptors(cv2.resize(photo, (300, 300), interpolation=cv2.INTER_AREA), cv2.resize(mask.astype(np.uint8), (300, 300)) > 0, scale=2.0)
    assert half["area_px"] == pytest.approx(small["area_px"], rel=0.03)


def test_margin_counts_teeth_and_tells_a_toothed_leaf_from_a_smooth_one():
    toothed = leaf_descriptors(*toothed_leaf(teeth=14))
    smooth = leaf_descriptors(*toothed_leaf(teeth=0))
    assert toothed["teeth"] >= 10 and smooth["teeth"] <= 2
    assert toothed["convexity"] < smooth["convexity"]
    assert smooth["solidity"] > toothed["solidity"]


def test_descriptor_names_and_order_are_stable():
    # A model trained on today's records must read tomorrow's the same: the order is part of the format.
    assert len(DESCRIPTOR_NAMES) == len(set(DESCRIPTOR_NAMES)) == 115
    assert DESCRIPTOR_NAMES[:4] == ("area_px", "length_px", "width_px", "perimeter_px")
    assert DESCRIPTOR_NAMES[-1] == "glcm_correlation"
    digest = hashlib.sha256(",".join(DESCRIPTOR_NAMES).encode()).hexdigest()[:16]
    assert digest == "a8e9df60f5edef64" or pytest.fail(f"the descriptor names changed (digest {digest}): that breaks every built dataset")


def test_a_leaf_too_small_to_describe_is_refused_with_the_reason():
    photo = np.full((50, 50, 3), 230, np.uint8)
    mask = np.zeros((50, 50), bool)
    mask[20:25, 20:25] = True
    with pytest.raises(NothingFoundError, match="too small to describe"):
        leaf_descriptors(photo, mask, source="tiny.jpg")


def test_describe_finds_the_leaf_and_is_deterministic():
    first = leafprep.describe(LEAVES / "ovata" / "leaf-1.jpg")
    again = leafprep.describe(LEAVES / "ovata" / "leaf-1.jpg")
    assert first.values.dtype == np.float32 and first.values.shape == (len(DESCRIPTOR_NAMES),)
    assert first.values.tobytes() == again.values.tobytes()
    assert dict(first)["solidity"] == first["solidity"]
    assert np.isfinite(first.values[:4]).all() and np.isnan(first.values[4:8]).all()


def test_describe_command_writes_a_csv_that_reads_back_to_the_same_numbers(tmp_path):
    from typer.testing import CliRunner

    from leafprep.cli import app

    out = tmp_path / "features.csv"
    result = CliRunner().invoke(app, ["describe", str(LEAVES), "--out", str(out), "--px-per-mm", "3"])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(list(LEAVES.glob("*/*.jpg")))
    assert list(rows[0])[:3] == ["source", "label", "area_px"]
    assert {row["label"] for row in rows} == {p.name for p in LEAVES.iterdir() if p.is_dir()}
    row = next(r for r in rows if r["source"].endswith("ovata/leaf-1.jpg"))
    expected = leafprep.describe(LEAVES / "ovata" / "leaf-1.jpg", px_per_mm=3.0)
    read = np.array([float(row[name]) for name in DESCRIPTOR_NAMES], np.float32)
    assert read.tobytes() == expected.values.tobytes()


def test_describe_command_lists_a_photo_without_a_leaf_and_writes_the_rest(tmp_path):
    from typer.testing import CliRunner

    from leafprep.cli import app

    folder = tmp_path / "photos" / "ovata"
    folder.mkdir(parents=True)
    (folder / "leaf.jpg").write_bytes((LEAVES / "ovata" / "leaf-1.jpg").read_bytes())
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 200, 3), 240, np.uint8))
    result = CliRunner().invoke(app, ["describe", str(tmp_path / "photos"), "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 1
    assert "blank.png" in result.output and "no leaf found" in result.output
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 2  # the header and the one leaf


@pytest.fixture(scope="module")
def leaf_dataset(tmp_path_factory):
    from leafprep.build import build, parse_split
    from leafprep.settings import BuildOptions

    out = tmp_path_factory.mktemp("leaf-ds") / "ds"
    report = build(LEAVES, out, BuildOptions(kind="leaf", size=64, split=parse_split("2/1")), workers=0)
    return out, report


def test_leaf_build_stores_each_leafs_descriptors_as_measured_on_its_own_mask(leaf_dataset):
    from leafprep.description import describe_normalised
    from leafprep.loading import DEFAULT_MAX_PIXELS, _load
    from leafprep.normalization import decode_min_side, normalize_steps
    from leafprep.records import iter_records, load

    out, _ = leaf_dataset
    meta = json.loads((out / "dataset_info.json").read_text())
    scaling = meta["descriptors"]
    assert scaling["names"] == list(DESCRIPTOR_NAMES)
    assert len(scaling["mean"]) == len(scaling["std"]) == len(DESCRIPTOR_NAMES)
    assert scaling["train_leaves"] == meta["splits"]["train"]["examples"]
    assert scaling["std"][DESCRIPTOR_NAMES.index("area_mm2")] == 0.0  # never known here
    import tensorflow as tf

    shard = next(out.glob("test-*.tfrecord"))
    _, payload = next(iter_records(shard))
    example = tf.train.Example.FromString(payload)
    stored = np.array(example.features.feature["descriptors"].float_list.value, np.float32)
    source = example.features.feature["source"].bytes_list.value[0].decode()
    loaded = _load(LEAVES / source, max_pixels=DEFAULT_MAX_PIXELS, min_side=decode_min_side("leaf", 64))
    steps = normalize_steps(loaded.rgb, "leaf", 64)
    expected = describe_normalised(steps, loaded.rgb, loaded.full_shape).values
    assert stored.tobytes() == expected.tobytes()
    inputs, _ = next(iter(load(out, "train", batch_size=4, descriptors=True)))
    assert inputs["image"].shape == (4, 64, 64, 1) and inputs["descriptors"].shape == (4, len(DESCRIPTOR_NAMES))
    only, _ = next(iter(load(out, "train", batch_size=4, descriptors=True, images=False)))
    assert list(only) == ["descriptors"]


def test_leaf_datasets_get_the_descriptor_recipe_and_digits_keep_theirs(leaf_dataset):
    from trainers.train import DIGIT_RECIPE, FUSED_RECIPE, LEAF_RECIPE, default_recipe

    meta = json.loads((leaf_dataset[0] / "dataset_info.json").read_text())
    assert default_recipe(meta) == LEAF_RECIPE and LEAF_RECIPE.model == "descriptors"
    assert default_recipe(meta, "leaf-fused") == FUSED_RECIPE and FUSED_RECIPE.hold_out > 0
    digits = {"options": {"kind": "digit", "photo_kind": "digit"}, "image_shape": [28, 28, 1]}
    assert default_recipe(digits) == DIGIT_RECIPE and DIGIT_RECIPE.model == "convnet" and DIGIT_RECIPE.epochs == 10
    assert default_recipe(meta, "leaf") == DIGIT_RECIPE  # a chosen image model keeps today's defaults


def test_the_default_leaf_run_starts_at_lda_and_names_the_sample_leaves(leaf_dataset, tmp_path):
    from trainers.models import TEMPERATURES, fit_discriminant, standardised
    from trainers.train import train

    out, _ = leaf_dataset
    metrics = train(out, tmp_path / "run", verbose=0)
    assert metrics["model"] == "descriptors" and metrics["options"]["recipe"] == "default"
    assert metrics["options"]["shrinkage"] in (0.01, 0.03, 0.1, 0.3, 0.5)
    assert metrics["options"]["temperature"] in TEMPERATURES
    assert metrics["test_accuracy"] >= 0.75  # 4 made-up species, 2 test leaves each
    # LDA in closed form: on well-separated classes the nearest whitened mean is each point's own class.
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(k * 3.0, 1.0, (10, len(DESCRIPTOR_NAMES))) for k in range(3)])
    labels = np.repeat(np.arange(3), 10)
    scaling = {"mean": values.mean(0).tolist(), "std": values.std(0).tolist(), "names": list(DESCRIPTOR_NAMES)}
    fitted = fit_discriminant(values, labels, 3, scaling)
    z = standardised(values, scaling) @ np.asarray(fitted["whiten"])
    nearest = np.argmin(((z[:, None] - np.asarray(fitted["class_means"])[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).all()


def test_the_lda_start_is_not_surer_of_its_wrong_answers_than_of_its_right_ones():
    """Ten leaves a species in 60 dimensions: LDA's own posterior gives its wrong answers 0.85 on average. The start
    keeps LDA's answers but takes the cross-validated temperature: on new leaves its probabilities say which answers
    to doubt, and their log loss is half."""
    from trainers.models import fit_discriminant, standardised

    rng = np.random.default_rng(1)
    dims, classes = 60, 6
    centres = rng.normal(0.0, 0.45, (classes, dims))

    def leaves(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(classes), count)
        return centres[labels] + rng.normal(0.0, 1.0, (len(labels), dims)), labels

    values, labels = leaves(10)
    scaling = {"mean": values.mean(0).tolist(), "std": values.std(0).tolist()}
    fitted = fit_discriminant(values, labels, classes, scaling)
    assert fitted["temperature"] > 1.0
    new, truth = leaves(200)
    z = standardised(new, scaling)
    squared = ((z @ np.asarray(fitted["whiten"]))[:, None] - np.asarray(fitted["class_means"])[None]) ** 2
    distances = squared.sum(-1)

    def probabilities(scale: float) -> np.ndarray:
        logits = -distances * scale / 2.0
        p = np.exp(logits - logits.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)

    calibrated, own = probabilities(1.0), probabilities(fitted["temperature"])  # LDA's own: the temperature undone
    answers = calibrated.argmax(1)
    assert (answers == own.argmax(1)).all()
    wrong = answers != truth
    assert 0.05 < wrong.mean() < 0.6  # classes that overlap: there are wrong answers to doubt
    assert own.max(1)[wrong].mean() > 0.8  # LDA's own posterior: sure of them
    assert calibrated.max(1)[wrong].mean() < min(0.7, calibrated.max(1)[~wrong].mean() - 0.15)
    loss = [-np.log(p[np.arange(len(truth)), truth] + 1e-12).mean() for p in (calibrated, own)]
    assert loss[0] < 0.6 * loss[1]


def test_a_build_without_descriptors_decodes_smaller_and_predict_sees_the_pictures_it_wrote(tmp_path):
    """Without descriptors a leaf photo is decoded only as large as the leaf is found at; a run of it decodes the same way."""
    import tensorflow as tf

    from leafprep.build import build, parse_split
    from leafprep.normalization import decode_min_side
    from leafprep.records import iter_records
    from leafprep.settings import BuildOptions
    from trainers.predict import prepare
    from trainers.runs import load_run
    from trainers.train import train

    out = tmp_path / "ds"
    build(LEAVES, out, BuildOptions(kind="leaf", size=28, split=parse_split("2/1"), descriptors=False), workers=0)
    meta = json.loads((out / "dataset_info.json").read_text())
    assert meta["options"]["decode_min_side"] == decode_min_side("leaf", 28, descriptors=False) == 128
    assert decode_min_side("leaf", 28) == 256  # a 360x324 sample photo decodes at full size there, at half here
    train(out, tmp_path / "run", model="softmax", epochs=1, max_steps=1, verbose=0)
    run = load_run(tmp_path / "run")
    assert run.settings["decode_min_side"] == 128
    checked = 0
    for shard in out.glob("*.tfrecord"):
        for _, payload in iter_records(shard):
            feature = tf.train.Example.FromString(payload).features.feature
            stored = np.frombuffer(feature["image/raw"].bytes_list.value[0], np.uint8).reshape(28, 28, 1)
            image = prepare(run, LEAVES / feature["source"].bytes_list.value[0].decode())
            assert np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8).tobytes() == stored.tobytes()
            checked += 1
    assert checked == meta["inputs"]["written"]


def test_a_fused_run_reloads_and_predicts_the_same_numbers_and_its_image_view_agrees(leaf_dataset, tmp_path):
    import tensorflow as tf

    from leafprep.records import iter_records
    from trainers.evaluate import evaluate
    from trainers.predict import predict
    from trainers.runs import load_run
    from trainers.train import FUSED_RECIPE, train
    from trainers.visualize import gradcam

    out, _ = leaf_dataset
    metrics = train(out, tmp_path / "run", model="leaf-fused", epochs=2, max_steps=2, verbose=0)
    assert metrics["model"] == "leaf-fused" and metrics["options"]["hold_out"] == FUSED_RECIPE.hold_out
    settings = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert settings["descriptors"]["names"] == list(DESCRIPTOR_NAMES)
    photos = sorted(LEAVES.glob("*/leaf-1.jpg"))
    first = predict(tmp_path / "run", photos)
    run = load_run(tmp_path / "run")
    again = predict(run, photos)
    assert all(a.probabilities.tobytes() == b.probabilities.tobytes() for a, b in zip(first, again, strict=True))
    # predict measures each leaf as the build did: the same descriptors the records hold.
    stored = {}
    for shard in out.glob("*.tfrecord"):
        for _, payload in iter_records(shard):
            feature = tf.train.Example.FromString(payload).features.feature
            stored[feature["source"].bytes_list.value[0].decode()] = np.array(feature["descriptors"].float_list.value, np.float32)
    for photo, prediction in zip(photos, first, strict=True):
        assert prediction.descriptors is not None
        assert prediction.descriptors.tobytes() == stored[photo.relative_to(LEAVES).as_posix()].tobytes()
    # The image-only view at a leaf's own descriptors gives the fused model's answer for it.
    view = run.image_model(first[0].descriptors)
    np.testing.assert_allclose(np.asarray(view(first[0].image[None], training=False))[0], first[0].probabilities, atol=1e-5)
    heat = gradcam(view, first[0].image)
    assert heat.shape == (64, 64) and np.isfinite(heat).all()
    report = evaluate(tmp_path / "run", out, "test")
    assert report["examples"] == json.loads((out / "dataset_info.json").read_text())["splits"]["test"]["examples"]


def test_descriptor_model_needs_a_leaf_dataset(tmp_path):
    from leafprep.errors import ParameterError
    from trainers.models import build_model

    with pytest.raises(ParameterError, match="build it with --kind leaf"):
        build_model("descriptors", (28, 28, 1), 10)


def test_serve_answers_a_leaf_photo_with_the_default_descriptor_run(leaf_dataset, tmp_path):
    pytest.importorskip("fastapi", reason="leafprep serve's extra is not installed (pip install 'leafprep[serve]')")
    from leafprep.serve.answers import predict
    from leafprep.serve.runs import load_runs
    from trainers.train import train

    out, _ = leaf_dataset
    train(out, tmp_path / "leaves", verbose=0)
    served = load_runs([tmp_path / "leaves"])["leaves"]
    assert served.facts["descriptors"] and served.facts["attention"] is None and served.facts["learned"] is None
    photo = LEAVES / "ovata" / "leaf-1.jpg"
    answer = predict(served, photo.read_bytes(), photo.name, steps=True, max_pixels=10**8)
    assert answer["label"] in served.labels and "describe" in answer["seconds"]
    assert answer["learned"] is None and "attention" not in answer  # no picture of pixels it never read


def test_uniform_lbp_gives_scikit_images_codes():
    from skimage.feature import local_binary_pattern

    from leafprep.description import uniform_lbp

    rng = np.random.default_rng(0)
    images = [
        (rng.random((120, 90)) * 255).astype(np.uint8),
        (rng.random((60, 70)) * 4).astype(np.uint8) * 60,  # few grey levels: many ties between a pixel and its neighbours
        np.repeat(np.arange(0, 255, 8, dtype=np.uint8)[None], 20, axis=0),
    ]
    for image in images:
        ours = uniform_lbp(image)[1:-1, 1:-1]
        theirs = local_binary_pattern(image, 8, 1, method="uniform")[1:-1, 1:-1]
        assert ours.dtype == np.uint8 and ours.max() <= 9
        # scikit-image adds each pixel's row to the offset before interpolating, so an exact tie may round
        # the other way there: at most one pixel in a thousand, and only where neighbours equal the centre.
        assert (ours == theirs).mean() >= 0.999


def test_glcm_statistics_are_scikit_images_on_the_blade_levels():
    from skimage.feature import graycomatrix, graycoprops

    from leafprep.description import _glcm_statistics

    rng = np.random.default_rng(1)
    blade = np.zeros((70, 90), bool)
    blade[10:60, 15:80] = rng.random((50, 65)) > 0.1  # a ragged blade: pairs that cross its edge are left out
    images = [
        np.where(blade, 1 + (rng.random(blade.shape) * 31).astype(np.uint8).clip(0, 30), 0).astype(np.uint8),
        np.where(blade, 1 + np.arange(90, dtype=np.uint8)[None] % 31, 0).astype(np.uint8),  # stripes: strong correlation
        np.where(blade, 7, 0).astype(np.uint8),  # one level: no spread, correlation 1 by definition
    ]
    for levels in images:
        matrix = graycomatrix(levels, [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=32, symmetric=True)[1:, 1:].astype(float)
        matrix /= matrix.sum(axis=(0, 1), keepdims=True)
        theirs = [float(np.nan_to_num(graycoprops(matrix, prop)).mean()) for prop in ("contrast", "homogeneity", "energy", "correlation")]
        assert np.allclose(_glcm_statistics(levels), theirs, rtol=1e-12, atol=1e-12)
