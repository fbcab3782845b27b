"""Several leaves in one photo: every leaf found, cut out and measured (segment_all, --all)."""

from __future__ import annotations

import csv
import io
import math
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import leafprep
from leafprep.cli import app
from leafprep.loading import file_px_per_mm
from leafprep.segmentation import analyse_leaves, split_touching
from leafprep.segmentation.multiple import leaf_notes
from leafprep.synthetic import leaf_bed
from photos import SHARED


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1.0, float((a | b).sum()))


def frame_mask(found: leafprep.Found, shape: tuple[int, int]) -> np.ndarray:
    frame = np.zeros(shape, bool)
    x, y, w, h = found.box
    frame[y : y + h, x : x + w] = found.mask
    return frame


def best_ious(found: list[leafprep.Found], truths: list[np.ndarray]) -> list[float]:
    masks = [frame_mask(f, truths[0].shape) for f in found]
    return [max(iou(m, truth) for m in masks) for truth in truths]


def quiet_segment_all(photo, **kwargs) -> list[leafprep.Found]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return leafprep.segment_all(photo, **kwargs)


@pytest.mark.parametrize("background", ["scanner", "blue"])
def test_every_leaf_is_found_in_reading_order_and_squares_chips_and_dust_are_left_out_and_said(background):
    photo, truths = leaf_bed(np.random.default_rng(3), leaves=7, background=background, dust=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = leafprep.segment_all(photo)
    assert len(found) == 7
    assert [f.index for f in found] == list(range(7))
    # leaf_bed lays leaves row by row, left to right: reading order gives them back in that order.
    assert [iou(frame_mask(f, truths[0].shape), truth) for f, truth in zip(found, truths)] == pytest.approx([1.0] * 7, abs=0.03)
    said = " ".join(str(w.message) for w in caught)
    assert "left out as not leaves" in said and "rectangles (reference squares, colour chips, labels)" in said and "specks" in said
    left_out = analyse_leaves(photo, max_pixels=10**8, warn=False).left_out
    assert sum(count for reason, count in left_out.items() if reason.startswith("rectangle")) >= 2


def test_touching_leaves_are_split_at_the_narrow_neck_and_flagged():
    photo, truths = leaf_bed(np.random.default_rng(0), leaves=8, species="ovata", touching=True)
    assert (cv2.dilate(truths[0].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & truths[1]).any()  # they do touch
    found = quiet_segment_all(photo)
    assert len(found) == 8
    assert min(best_ious(found, truths)) > 0.97
    assert sum("split between them" in note for f in found for note in f.notes) == 2


def test_split_touching_cuts_two_discs_joined_by_a_thin_bridge_but_not_a_leaf_and_its_petiole():
    pair = np.zeros((200, 400), np.uint8)
    cv2.circle(pair, (100, 100), 80, 1, -1)
    cv2.circle(pair, (290, 100), 80, 1, -1)
    cv2.rectangle(pair, (170, 95), (215, 104), 1, -1)
    parts = split_touching(pair.astype(bool), typical_area=math.pi * 80**2)
    assert len(parts) == 2 and all(abs(p.sum() / (math.pi * 80**2) - 1) < 0.1 for p in parts)
    leaf = np.zeros((200, 400), np.uint8)
    cv2.circle(leaf, (100, 100), 80, 1, -1)
    cv2.rectangle(leaf, (170, 97), (390, 102), 1, -1)  # a long, thin petiole: not a leaf of its own
    assert len(split_touching(leaf.astype(bool), typical_area=math.pi * 80**2 / 1.6)) == 1


def test_a_small_part_far_from_convex_stays_with_its_leaf_unless_the_photos_leaves_are_lobed_but_a_small_leaf_is_split():
    """The last leaflets of a large compound leaf hang on a narrow rachis, a part under the typical leaf's area: as
    far from convex as a lobed leaf, it stays with the leaf (seven photos of bench.leaf_beds had a rowan in two).
    Where the photo's leaves are lobed themselves (typical_solidity), such a part is a leaf; a small convex leaf on
    the same neck always is."""

    def star(centre: tuple[int, int], length: int, width: int) -> np.ndarray:
        shape = np.zeros((400, 760), np.uint8)
        for angle in (90, 210, 330):
            cv2.ellipse(shape, centre, (length, width), angle, 0, 360, 1, -1)
        return shape

    big, small = star((200, 200), 170, 45), star((560, 200), 120, 32)
    disc = np.zeros((400, 760), np.uint8)
    cv2.circle(disc, (560, 200), 95, 1, -1)
    neck = np.zeros((400, 760), np.uint8)
    cv2.rectangle(neck, (200, 196), (560, 203), 1, -1)
    typical = big.sum() / 1.4  # the small star and the disc: 0.7-0.75 of it
    lobed = (big | small | neck).astype(bool)
    assert len(split_touching(lobed, typical_area=typical)) == 1
    assert len(split_touching(lobed, typical_area=typical, typical_solidity=0.68)) == 2
    parts = split_touching((big | disc | neck).astype(bool), typical_area=typical)
    assert len(parts) == 2 and iou(parts[1], disc.astype(bool)) > 0.97


def test_two_leaves_over_each_other_along_a_broad_edge_are_cut_between_the_notches_but_a_lobed_leaf_is_not():
    first, second = np.zeros((320, 520), np.uint8), np.zeros((320, 520), np.uint8)
    cv2.ellipse(first, (250, 100), (200, 60), 0, 0, 360, 1, -1)
    cv2.ellipse(second, (250, 210), (200, 60), 12, 0, 360, 1, -1)  # over the first along a third of its length
    pair = (first | second).astype(bool)
    typical = math.pi * 200 * 60
    parts = split_touching(pair, typical_area=typical)
    assert len(parts) == 2
    assert sorted(max(iou(part, truth) for part in parts) for truth in (first.astype(bool), second.astype(bool))) > [0.93, 0.93]
    # A lobed leaf twice the typical size: cutting off a lobe leaves neither part a whole convex leaf.
    lobed = np.zeros((400, 400), np.uint8)
    for angle in (90, 210, 330):
        cv2.ellipse(lobed, (200, 200), (170, 55), angle, 0, 360, 1, -1)
    assert len(split_touching(lobed.astype(bool), typical_area=lobed.sum() / 2.2)) == 1


def test_a_photo_with_no_leaf_still_says_no_leaf_found():
    blank = np.full((600, 800, 3), 244, np.uint8)
    with pytest.raises(leafprep.NothingFoundError, match="no leaf found"):
        leafprep.segment_all(blank)


def test_one_leaf_with_all_gives_one_image():
    photo, truths = leaf_bed(np.random.default_rng(1), leaves=1, square=False, strip=False)
    found = quiet_segment_all(photo)
    assert len(found) == 1 and best_ious(found, truths)[0] > 0.97
    assert len(leafprep.normalize_all(photo, "leaf", 64)) == 1


def test_a_photo_with_500_specks_is_not_500_leaves():
    photo, _ = leaf_bed(np.random.default_rng(2), leaves=4, dust=0)
    rng = np.random.default_rng(5)
    for _ in range(500):  # specks of 1 to 6 pixels across, some as large as the speck filter lets through
        cv2.circle(photo, (int(rng.integers(0, photo.shape[1])), int(rng.integers(0, photo.shape[0]))), int(rng.integers(1, 4)), (30, 25, 20), -1)
    found = quiet_segment_all(photo)
    assert len(found) == 4
    left_out = analyse_leaves(photo, max_pixels=10**8, warn=False).left_out
    assert left_out.get("specks", 0) > 250


def test_the_left_out_summary_groups_thousands_so_that_a_dithered_photo_reads_plainly():
    notes = leaf_notes([], {"specks": 89816, "rectangles (reference squares, colour chips, labels)": 3})
    assert notes == ["left out as not leaves: 89,816 specks, 3 rectangles (reference squares, colour chips, labels)"]


def test_on_a_scan_each_leaf_is_outlined_as_a_scan_of_it_alone_would_outline_it():
    # Three dark leaves and a pale one on a white scan, edges blurred as a scanner's optics blur them. One threshold
    # for the whole bed sat between the background and all four: the dark leaves lost a pixel of rim against a scan
    # of each alone (masks 0.997-0.999 the same); each leaf's own threshold gives the lone scan's mask.
    height, width = 900, 1600
    photo = np.full((height, width, 3), (245, 245, 241), np.float32)
    centres = [(300, 300), (800, 300), (1300, 300), (800, 650)]
    shapes = [((180, 90), 30, (40, 90, 30)), ((170, 100), -20, (35, 80, 25)), ((160, 95), 10, (45, 95, 35)), ((170, 95), 0, (200, 215, 160))]
    for (cx, cy), ((a, b), angle, colour) in zip(centres, shapes, strict=True):
        cover = np.zeros((height, width), np.float32)
        cv2.ellipse(cover, ((cx, cy), (2 * a, 2 * b), angle), 1.0, -1, lineType=cv2.LINE_AA)
        soft = cv2.GaussianBlur(cover, (0, 0), 1.5)[..., None]
        photo = photo * (1 - soft) + np.array(colour, np.float32) * soft
    photo = np.clip(photo + 0.5, 0, 255).astype(np.uint8)
    found = quiet_segment_all(photo)
    assert len(found) == 4
    for cx, cy in centres:
        y0, x0 = cy - 250, cx - 300
        alone = np.zeros((height, width), bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", leafprep.LeafprepWarning)
            alone[y0 : cy + 250, x0 : cx + 300] = leafprep.segment(photo[y0 : cy + 250, x0 : cx + 300], kind="leaf")
        together = []
        for leaf in found:
            mask = np.zeros((height, width), bool)
            x, y, w, h = leaf.box
            mask[y : y + h, x : x + w] = leaf.mask
            together.append((mask & alone).sum() / (mask | alone).sum())
        assert max(together) > 0.999


def test_a_leaf_hemmed_in_by_others_keeps_the_beds_threshold():
    from leafprep.segmentation.multiple import _own_threshold

    ids = np.full((60, 60), 2, np.int32)  # leaf 2 all round leaf 1: no background of leaf 1's own to take Otsu over
    ids[28:31, 28:31] = 1
    distance = np.full((60, 60), 50, np.float32)
    mask = _own_threshold(distance, ids, 1, (28, 28, 3, 3), (20, 20, 40, 40), np.ones((20, 20), bool))
    assert mask.sum() == 9 and mask[8:11, 8:11].all()


def _ellipses_scan(dpi: int) -> tuple[bytes, list[float]]:
    """A white scan with three anti-aliased green ovals of known area (square pixels), as a JPEG with its resolution."""
    height, width = 1500, 2000
    coverage = np.zeros((height, width), np.float32)
    areas = []
    for (cx, cy), (a, b), angle in [((450, 500), (260, 150), 25), ((1300, 550), (200, 200), 0), ((900, 1100), (330, 140), -60)]:
        cv2.ellipse(coverage, ((cx, cy), (2 * a, 2 * b), angle), 1.0, -1, lineType=cv2.LINE_AA)
        areas.append(math.pi * a * b)
    image = (
        np.full((height, width, 3), (245, 245, 241), np.float32) * (1 - coverage[..., None])
        + np.array((55, 115, 40), np.float32) * coverage[..., None]
    )
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=92, dpi=(dpi, dpi))
    return buffer.getvalue(), areas


def test_area_of_a_drawn_shape_on_a_scan_of_known_dpi_is_within_one_percent():
    data, areas = _ellipses_scan(300)
    px_per_mm = 300 / 25.4
    measured = leafprep.describe_all(data)
    assert len(measured) == 3
    for (_, descriptors), area in zip(measured, areas):
        assert descriptors["area_mm2"] == pytest.approx(area / px_per_mm**2, rel=0.01)
    for found, area in zip(quiet_segment_all(data), areas):
        assert found.area_mm2(px_per_mm) == pytest.approx(area / px_per_mm**2, rel=0.01)
    # The single-leaf describe reads the same resolution from the file.
    one = leafprep.describe(data)
    assert not math.isnan(one["area_mm2"])


def test_file_resolution_comes_from_jfif_exif_png_and_tiff_and_a_cameras_72_dpi_says_nothing():
    from leafprep.loading import _load

    image = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for fmt, kwargs in [("JPEG", {"dpi": (600, 600)}), ("PNG", {"dpi": (600, 600)}), ("TIFF", {"dpi": (600, 600)})]:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        assert _load(buffer.getvalue(), max_pixels=10**6, min_side=None).px_per_mm == pytest.approx(600 / 25.4, rel=1e-3)
    exif = Image.Exif()
    exif[0x011A], exif[0x011B], exif[0x0128] = 300.0, 300.0, 2  # XResolution, YResolution, inches
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    assert _load(buffer.getvalue(), max_pixels=10**6, min_side=None).px_per_mm == pytest.approx(300 / 25.4)
    assert file_px_per_mm({"dpi": (72, 72)}) is None and file_px_per_mm({}) is None


def test_cli_segment_all_writes_a_mask_a_leaf_its_box_and_area_and_a_numbered_overlay(tmp_path):
    photo, truths = leaf_bed(np.random.default_rng(4), leaves=5)
    source = tmp_path / "bed.png"
    Image.fromarray(photo).save(source, dpi=(300, 300))
    result = CliRunner().invoke(app, ["segment", str(source), "--all", "--out", str(tmp_path / "masks"), "--overlay", str(tmp_path / "overlay")])
    assert result.exit_code == 0, result.output
    masks = sorted((tmp_path / "masks").glob("bed-*.png"))
    assert [m.name for m in masks] == [f"bed-{i:02d}.png" for i in range(5)]
    for path, truth in zip(masks, truths):
        assert iou(np.asarray(Image.open(path)) > 0, truth) > 0.97
    assert result.stdout.count("mm²") == 5 and "#04: box x=" in result.stdout
    assert "5 leaves" in result.output and "left out as not leaves" in result.output
    overlay = np.asarray(Image.open(tmp_path / "overlay" / "bed.png"))
    assert overlay.shape == photo.shape


def test_the_doubts_banner_of_an_overlay_is_added_below_the_photo_and_hides_no_leaf():
    """Six doubtful leaves, the last rows of them along the photo's bottom edge: their reasons fill several lines,
    which go on a banner below the photo, so the lowest leaves' outlines and numbers still show."""
    from types import SimpleNamespace

    from leafprep.figures import DOUBT_COLOUR, outline_all

    photo = np.full((600, 800, 3), 230, np.uint8)
    objects = []
    for index in range(6):
        row, column = divmod(index, 3)
        box = (40 + column * 260, 200 + row * 250, 200, 150)  # the second row ends at the bottom edge
        mask = np.zeros((box[3], box[2]), bool)
        cv2.ellipse(mask.view(np.uint8), (100, 75), (95, 70), 0, 0, 360, 1, -1)
        doubt = "doubtful mask: the leaf barely stands out from its surroundings (its outline could be anywhere)"
        objects.append(SimpleNamespace(index=index, box=box, mask=mask, notes=[doubt]))
    picture = outline_all(photo, objects)
    assert picture.shape[0] > photo.shape[0] + 6 * 15 and picture.shape[1:] == photo.shape[1:]  # six lines or more below
    on_photo, banner = picture[: photo.shape[0]], picture[photo.shape[0] :]
    orange = np.abs(on_photo.astype(int) - DOUBT_COLOUR).sum(axis=-1) < 90  # the outlines are drawn anti-aliased
    assert orange[560:].any(axis=1).sum() > 20  # the bottom leaves' outlines, to the edge
    assert (banner == 0).all(axis=-1).mean() > 0.6 and (np.abs(banner.astype(int) - DOUBT_COLOUR).sum(axis=-1) < 90).any()


def test_cli_normalize_and_describe_all_give_one_image_and_one_row_a_leaf(tmp_path):
    photo, _ = leaf_bed(np.random.default_rng(6), leaves=4)
    source = tmp_path / "leaves" / "oak" / "bed.jpg"
    source.parent.mkdir(parents=True)
    Image.fromarray(photo).save(source, quality=92)
    result = CliRunner().invoke(app, ["normalize", str(source), "--kind", "leaf", "--all", "--size", "32", "--out", str(tmp_path / "n")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "n").glob("*.png")) == [f"bed-{i:02d}.png" for i in range(4)]
    result = CliRunner().invoke(app, ["describe", str(tmp_path / "leaves"), "--all", "--out", str(tmp_path / "leaves.csv")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "leaves.csv", encoding="utf-8")))
    assert [row["leaf"] for row in rows] == ["0", "1", "2", "3"] and {row["label"] for row in rows} == {"oak"}
    assert all(int(row["width"]) > 0 and row["area_mm2"] == "" for row in rows)  # no resolution in this JPEG: no mm


def test_cli_all_refuses_kind_auto_with_a_reason(tmp_path):
    photo, _ = leaf_bed(np.random.default_rng(6), leaves=2)
    source = tmp_path / "bed.png"
    Image.fromarray(photo).save(source)
    result = CliRunner().invoke(app, ["segment", str(source), "--all", "--kind", "auto"])
    assert result.exit_code == 2 and "--kind leaf or --kind digit" in result.output


def real_leaves(side: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Six real scanned leaves of ../shared (Swedish, with their masks), cropped to the leaf and scaled to ``side`` px long."""
    folder = SHARED / "leaves" / "swedish_masks"
    leaves = []
    for path in sorted((folder / "images").glob("*/*.jpg"))[5::33][:6]:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(folder / "masks" / path.parent.name / (path.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 127
        ys, xs = np.nonzero(mask)
        rgb, mask = rgb[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        factor = side / max(mask.shape)
        rgb = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        leaves.append((rgb, mask))
    return leaves


@pytest.mark.skipif(not (SHARED / "leaves" / "swedish_masks").exists(), reason="../shared/data/leaves/swedish_masks is not here")
def test_real_swedish_leaves_laid_on_blue_card_are_each_found():
    """Six real scanned leaves (with their masks) cut out and laid on a blue card with a reference square."""
    height, width = 1400, 2100
    card = np.empty((height, width, 3), np.uint8)
    card[:] = (70, 100, 175)
    truths = []
    for k, (rgb, mask) in enumerate(real_leaves(520)):
        row, column = divmod(k, 3)
        y, x = 80 + row * 640, 80 + column * 680
        card[y : y + mask.shape[0], x : x + mask.shape[1]][mask] = rgb[mask]
        truth = np.zeros((height, width), bool)
        truth[y : y + mask.shape[0], x : x + mask.shape[1]] = mask
        truths.append(truth)
    card[1250:1330, 1950:2030] = 20
    found = quiet_segment_all(card)
    assert len(found) == 6
    assert np.median(best_ious(found, truths)) > 0.97


def test_build_all_makes_one_example_a_leaf_keeps_a_photos_leaves_in_one_split_and_lists_each_leafs_box(tmp_path):
    import shutil

    from leafprep.build import BuildOptions, build

    for k in range(4):
        folder = tmp_path / "src" / ("oak" if k % 2 else "ash")
        folder.mkdir(parents=True, exist_ok=True)
        photo, _ = leaf_bed(np.random.default_rng(k), leaves=3, species="ovata" if k % 2 else "lanceolata", side=900)
        Image.fromarray(photo).save(folder / f"bed{k}.png")
    shutil.copy(tmp_path / "src" / "oak" / "bed1.png", tmp_path / "src" / "oak" / "copy.png")
    Image.fromarray(np.full((300, 400, 3), 240, np.uint8)).save(tmp_path / "src" / "oak" / "blank.png")
    options = BuildOptions(kind="leaf", size=32, split=(0.5, 0.0, 0.5), every=True)
    report = build(tmp_path / "src", tmp_path / "ds", options, workers=0)
    rows = list(csv.DictReader(open(tmp_path / "ds" / "manifest.csv", encoding="utf-8")))
    written = [row for row in rows if row["status"] == "written"]
    assert len(written) == 12 and report.info["splits"]["train"]["examples"] + report.info["splits"]["test"]["examples"] == 12
    for photo in {row["photo"] for row in written}:
        leaves = [row for row in written if row["photo"] == photo]
        assert [row["leaf"] for row in leaves] == ["0", "1", "2"] and len({row["split"] for row in leaves}) == 1
        assert all(row["source"] == f"{photo}#{int(row['leaf']):02d}" and int(row["width"]) > 0 for row in leaves)
    assert [row["status"] for row in rows if row["photo"] == "oak/copy.png"] == ["duplicate"] * 3
    assert [(row["status"], row["reason"]) for row in rows if row["source"] == "oak/blank.png"] == [
        ("rejected", "no leaf found: nothing stands out from the background")
    ]
    # Worker processes or none: the same bytes.
    build(tmp_path / "src", tmp_path / "ds2", options, workers=2)
    for name in ["manifest.csv", "dataset_info.json", *(p.name for p in (tmp_path / "ds").glob("*.tfrecord"))]:
        assert (tmp_path / "ds" / name).read_bytes() == (tmp_path / "ds2" / name).read_bytes(), name
    # The summary counts leaves, and says of how many photos (six: four beds, a copy, a blank).
    result = CliRunner().invoke(app, ["build", str(tmp_path / "src"), "--out", str(tmp_path / "ds3"), "--kind", "leaf", "--size", "32", "--all"])
    assert result.exit_code == 1
    summary = "leaves of 6 photos: 12 written + 1 rejected + 3 duplicate (of the rejected, 1 a whole photo: unreadable, or no leaf found in it)"
    assert summary in result.output
    # Two beds a species and the default 80/10/10: no bed is left for validation or test, and the summary says so.
    assert "the val split is empty: too few photos (a photo's leaves share a split) a class for its share" in result.output
    assert "the test split is empty" in result.output and report.empty_splits() == [] and report.dealt
    # What each bed left out (its square, strip and dust) is said once, not as a warning to check on every photo.
    assert "4 photo(s) with specks, rectangles or fragments left out as not leaves" in result.output
    assert not any(line.startswith("  warning") and "left out" in line for line in result.output.splitlines())


def test_predict_all_names_every_leaf_of_a_photo_and_the_species_over_all_of_them(serve_runs, tmp_path):
    from trainers.predict import disagreement, predict_leaves

    photo, _ = leaf_bed(np.random.default_rng(9), leaves=3, species="palmata", side=900)
    source = tmp_path / "bed.png"
    Image.fromarray(photo).save(source)
    overall, leaves = predict_leaves(serve_runs["leaves"], source, top_k=4)
    assert len(leaves) == 3 and len(overall) == 4 and [p for _, p in overall] == sorted((p for _, p in overall), reverse=True)
    mean = np.mean([leaf.probabilities for leaf in leaves], axis=0)
    assert overall[0][1] == pytest.approx(float(mean.max()), abs=1e-6)
    result = CliRunner().invoke(app, ["predict", str(serve_runs["leaves"]), str(source), "--all", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    assert f"{overall[0][0]}  (" in result.stdout and "over 3 leaves" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("  leaf")]
    assert [line.split(":")[0].strip() for line in lines] == ["leaf 00", "leaf 01", "leaf 02"]
    for line, leaf in zip(lines, leaves, strict=True):  # each leaf with its own top classes, as a photo of one leaf
        assert line.endswith(f"{leaf.label}  ({leaf.top[0][0]} {leaf.top[0][1]:.3f}, {leaf.top[1][0]} {leaf.top[1][1]:.3f})")
    assert "the leaves disagree" not in result.output  # one species: they agree
    # Leaves of two species side by side: each named, and the photo's answer said to be an average of disagreeing leaves.
    other, _ = leaf_bed(np.random.default_rng(10), leaves=2, species="lanceolata", side=900)
    mixed = tmp_path / "mixed.png"
    Image.fromarray(np.concatenate([photo, other[: photo.shape[0]]], axis=1)).save(mixed)
    with pytest.warns(leafprep.LeafprepWarning, match=r"mixed\.png: the leaves disagree \(3 say palmata, ") as said:
        _, named = predict_leaves(serve_runs["leaves"], mixed)
    labels = [leaf.label for leaf in named]
    assert len(labels) == 5 and set(labels) != {"palmata"}
    assert any(str(w.message).endswith(str(disagreement(labels))) for w in said)
    # One picture of steps a photo cannot show every leaf: refused before any work, as normalize --all --steps is.
    refused = CliRunner().invoke(app, ["predict", str(serve_runs["leaves"]), str(source), "--all", "--steps", str(tmp_path / "why")])
    assert refused.exit_code == 2 and "cannot be combined with --all" in refused.output and not (tmp_path / "why").exists()


def test_a_leaf_cut_by_the_photo_border_is_flagged_and_the_others_are_not():
    photo, truths = leaf_bed(np.random.default_rng(11), leaves=6, square=False, strip=False)
    xs = np.nonzero(truths[0])[1]
    cut = photo[:, int(xs.mean()) :]  # through the middle of the first leaf
    found = quiet_segment_all(cut)
    flagged = [f.index for f in found if any("touches the image border" in note for note in f.notes)]
    # What truly reaches the border (within 2 pixels: leaf_bed may lay a leaf at the edge).
    edge = np.zeros(cut.shape[:2], bool)
    edge[:2], edge[-2:], edge[:, :2], edge[:, -2:] = True, True, True, True
    touching = [f.index for f in found if (frame_mask(f, cut.shape[:2]) & edge).any()]
    assert len(found) == 6 and 0 in flagged and flagged == touching


def test_a_joint_between_boards_running_under_the_leaves_does_not_join_them_and_is_said():
    photo, truths = leaf_bed(np.random.default_rng(5), leaves=6, background="scanner", square=False, strip=False, dust=0)
    leaves = np.any(truths, axis=0)
    # A dark joint 2 px wide across the whole bed, through the middle of the first row of leaves (under them).
    row = int(np.mean(np.nonzero(truths[0])[0]))
    joint = np.zeros(leaves.shape, bool)
    joint[row : row + 2, :] = True
    photo = photo.copy()
    photo[joint & ~leaves] = (90, 80, 70)
    assert sum(bool((truth & cv2.dilate(joint.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)).any()) for truth in truths) >= 2
    found = quiet_segment_all(photo)
    assert len(found) == 6
    assert min(best_ious(found, truths)) > 0.95
    left_out = analyse_leaves(photo, max_pixels=10**8, warn=False).left_out
    assert any(reason.startswith("seam") for reason in left_out)


def test_a_leaf_as_faint_as_a_shadow_but_lying_alone_is_found_too():
    # Five dark green leaves and one olive-brown one on a brown table: the olive one stands out from the table
    # less than the threshold that keeps shadows out, but it lies alone, so it is a leaf.
    photo = np.empty((900, 1200, 3), np.float32)
    photo[:] = (205, 160, 110)
    truths = []
    for k, (cx, cy) in enumerate([(200, 200), (600, 200), (1000, 200), (200, 650), (600, 650), (1000, 650)]):
        mask = np.zeros((900, 1200), np.uint8)
        cv2.ellipse(mask, (cx, cy), (150, 80), 30 * k, 0, 360, 1, -1)
        photo[mask.astype(bool)] = (60, 90, 40) if k != 4 else (125, 105, 60)
        truths.append(mask.astype(bool))
    photo = cv2.GaussianBlur(np.clip(photo + np.random.default_rng(0).normal(0, 3, photo.shape), 0, 255).astype(np.uint8), (0, 0), 1.0)
    found = quiet_segment_all(photo)
    assert len(found) == 6
    assert min(best_ious(found, truths)) > 0.9


def test_brown_leaves_among_green_ones_on_a_brown_table_come_out_whole_and_not_with_their_shadow():
    # Four green leaves and two brown ones, dark at one end and nearly the table's colour at the other, one of them
    # with a soft shadow beside it. The photo's threshold lies between the table and all six leaves, above the pale
    # half of each brown leaf; each brown leaf grows into it as a photo of it alone would, not into its shadow.
    height, width = 1000, 1400
    photo = np.empty((height, width, 3), np.float32)
    photo[:] = (170, 125, 80)
    photo *= (0.85 + 0.25 * np.arange(width, dtype=np.float32) / width)[None, :, None]  # light falling off: a photo
    truths, brown = [], (1, 4)
    for k, (cx, cy) in enumerate([(220, 220), (700, 220), (1180, 220), (220, 720), (700, 720), (1180, 720)]):
        mask = np.zeros((height, width), np.uint8)
        cv2.ellipse(mask, (cx, cy), (170, 90), 25 * k, 0, 360, 1, -1)
        leaf = mask.astype(bool)
        if k == 4:
            shadow = cv2.GaussianBlur(np.roll(leaf, (12, 10), (0, 1)).astype(np.float32), (0, 0), 6)
            photo *= 1 - 0.25 * shadow[..., None]
        if k in brown:
            ys, xs = np.nonzero(leaf)
            along = ((xs - xs.min()) / np.ptp(xs))[:, None]
            photo[ys, xs] = (1 - along) * np.float32((70, 50, 35)) + along * np.float32((120, 90, 60))
        else:
            photo[leaf] = (55, 95, 40)
        truths.append(leaf)
    noisy = photo + np.random.default_rng(1).normal(0, 3, photo.shape)
    photo = cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (0, 0), 1.0)
    found = quiet_segment_all(photo)
    assert len(found) == 6
    ious = best_ious(found, truths)
    assert min(ious[k] for k in brown) > 0.98  # 0.75 and 0.81 when the photo's threshold alone decided
    assert min(iou for k, iou in enumerate(ious) if k not in brown) > 0.99
    shadowed = max((frame_mask(f, (height, width)) for f in found), key=lambda mask: iou(mask, truths[4]))
    assert (shadowed & ~truths[4]).sum() < 0.02 * truths[4].sum()  # its shadow stays out


def test_a_compound_leaf_whose_rachis_broke_into_two_half_leaf_pieces_is_one_leaf():
    photo = np.full((900, 1200, 3), 240, np.uint8)
    green = (50, 100, 40)
    for cx in (200, 500, 800):
        cv2.ellipse(photo, (cx, 220), (130, 60), 20, 0, 360, green, -1)
    cv2.ellipse(photo, (1050, 650), (130, 60), 70, 0, 360, green, -1)
    # Two pairs of leaflets on each half of a rachis broken by 8 px: each half about half a typical leaf.
    compound = np.zeros((900, 1200), np.uint8)
    for top, bottom in ((500, 646), (654, 800)):
        cv2.line(compound, (500, top), (500, bottom), 1, 3)
        for y in range(top + 30, bottom, 70):
            cv2.ellipse(compound, (452, y), (50, 18), -20, 0, 360, 1, -1)
            cv2.ellipse(compound, (548, y), (50, 18), 20, 0, 360, 1, -1)
    photo[compound.astype(bool)] = green
    found = quiet_segment_all(photo)
    assert len(found) == 5
    assert iou(frame_mask(found[3], compound.shape), compound.astype(bool)) > 0.9


def test_compound_leaves_whose_rachis_does_not_show_are_each_one_leaf_when_every_leaf_is_one():
    """Five rowan-like leaves on light wood, each seven leaflets a few pixels apart, no rachis to be seen and no
    other leaf in the photo: the typical leaf is a group of pieces within the joining gap (a leaf), not a piece (a
    leaflet), so each leaf's leaflets join (seed 28's photo 43 of bench.leaf_beds: 14 leaves came back as 94)."""
    photo = np.full((900, 1200, 3), (205, 175, 135), np.uint8)
    truths = []
    for cx, cy in ((250, 230), (650, 230), (1000, 260), (400, 650), (850, 660)):
        leaf = np.zeros((900, 1200), np.uint8)
        for row in range(3):  # three pairs of leaflets and the last one, 6-8 px apart
            y = cy - 110 + 56 * row
            cv2.ellipse(leaf, (cx - 54, y), (50, 25), 15, 0, 360, 1, -1)
            cv2.ellipse(leaf, (cx + 54, y), (50, 25), -15, 0, 360, 1, -1)
        cv2.ellipse(leaf, (cx, cy + 78), (25, 50), 0, 0, 360, 1, -1)
        photo[leaf.astype(bool)] = (60, 95, 40)
        truths.append(leaf.astype(bool))
    assert cv2.connectedComponents(np.any(truths, axis=0).astype(np.uint8))[0] - 1 == 35  # the pieces
    found = quiet_segment_all(photo)
    assert len(found) == 5 and min(best_ious(found, truths)) > 0.97


def test_a_chip_strip_on_a_narrow_card_is_left_out_as_a_rectangle_not_taken_for_a_leaf():
    """Its chips and the card's edge along their foot make one comb-shaped object, filling 0.8 of its rectangle
    (a leaf can too), but its convex hull fills the whole rectangle, as no leaf's does."""
    photo, truths = leaf_bed(np.random.default_rng(5), leaves=5, background="scanner", square=False, strip=False, dust=0)
    height, width = photo.shape[:2]
    x0, y0 = width - 300, height - 70
    colours = [(40, 60, 160), (200, 40, 40), (230, 200, 30), (60, 60, 60), (40, 150, 60), (150, 60, 150)]
    for k, colour in enumerate(colours):  # 30-pixel chips 15 pixels apart
        photo[y0 : y0 + 30, x0 + 45 * k : x0 + 45 * k + 30] = colour
    photo[y0 + 30 : y0 + 42, x0 : x0 + 255] = (120, 90, 60)  # the card's brown edge, joining them
    assert not any(truth[y0 - 5 : y0 + 47, x0 - 5 : x0 + 260].any() for truth in truths)
    found = quiet_segment_all(photo)
    assert len(found) == 5 and min(best_ious(found, truths)) > 0.95
    left_out = analyse_leaves(photo, max_pixels=10**8, warn=False).left_out
    assert sum(count for reason, count in left_out.items() if reason.startswith("rectangle")) == 1


def test_a_label_joined_to_a_thread_is_left_out_once_its_edges_are_placed():
    """A white label with writing on a blue card, a brown thread (or a grain of the wood) running from its foot:
    label and thread are one object, no rectangle; once the edges are placed the thread falls away from the label
    and the label is a rectangle again (photo 11 of ``bench.leaf_beds --seed 27``: a label returned as a leaf)."""
    photo, truths = leaf_bed(np.random.default_rng(5), leaves=5, background="blue", square=False, strip=False, dust=0)
    height, width = photo.shape[:2]
    x0, y0 = width - 300, height - 230
    assert not any(truth[y0 - 10 : y0 + 210, x0 - 10 : x0 + 230].any() for truth in truths)
    card = photo[y0 - 30, x0 - 30].astype(float)
    photo[y0 : y0 + 70, x0 : x0 + 220] = (236, 234, 228)
    for line in range(2):
        photo[y0 + 18 + 28 * line : y0 + 28 + 28 * line, x0 + 20 : x0 + 180] = (40, 40, 40)
    photo[y0 + 70 : y0 + 200, x0 + 100 : x0 + 102] = (0.6 * card + 0.4 * np.array([150, 120, 70])).astype(np.uint8)
    found = quiet_segment_all(photo)
    assert len(found) == 5 and min(best_ious(found, truths)) > 0.95
    left_out = analyse_leaves(photo, max_pixels=10**8, warn=False).left_out
    assert sum(count for reason, count in left_out.items() if reason.startswith("rectangle")) == 1


@pytest.mark.skipif(not (SHARED / "leaves" / "swedish_masks").exists(), reason="../shared/data/leaves/swedish_masks is not here")
def test_each_small_leaf_of_a_large_photo_is_outlined_as_well_as_in_a_photo_of_it_alone():
    """Six real leaves, each a fiftieth of a card under falling light, with soft shadows: the outline of each is
    placed within a band of that leaf's size (as in a photo of it alone), not of the frame's (issue 25's target:
    per leaf, no lower than the single-leaf figure)."""
    height, width = 1500, 2000
    card = np.empty((height, width, 3), np.float32)
    card[:] = (70, 100, 175)
    card *= (0.8 + 0.3 * np.arange(width, dtype=np.float32) / width)[None, :, None]  # not the fast path
    truths, shadow, pieces = [], np.zeros((height, width), np.float32), []
    for k, (rgb, mask) in enumerate(real_leaves(260)):
        row, column = divmod(k, 3)
        y, x = 250 + row * 700, 250 + column * 600
        truth = np.zeros((height, width), bool)
        truth[y : y + mask.shape[0], x : x + mask.shape[1]] = mask
        truths.append(truth)
        pieces.append((y, x, rgb, mask))
        shadow = np.maximum(shadow, np.roll(truth, (5, 4), (0, 1)).astype(np.float32))
    card *= 1 - 0.3 * cv2.GaussianBlur(shadow, (0, 0), 4)[..., None]
    for y, x, rgb, mask in pieces:
        card[y : y + mask.shape[0], x : x + mask.shape[1]][mask] = rgb[mask]
    photo = np.clip(cv2.GaussianBlur(card, (0, 0), 0.8), 0, 255).astype(np.uint8)
    found = quiet_segment_all(photo)
    assert len(found) == 6
    together = best_ious(found, truths)
    for truth, iou_together in zip(truths, together, strict=True):
        ys, xs = np.nonzero(truth)
        cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
        window = (slice(cy - 230, cy + 230), slice(cx - 300, cx + 300))  # the leaf a sixth of the photo
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alone = leafprep.segment(np.ascontiguousarray(photo[window]), kind="leaf")
        assert iou_together >= iou(alone, truth[window]) > 0.96


def test_the_colour_medians_of_soft_area_from_histograms_are_numpys_to_the_bit():
    from leafprep.segmentation.multiple import _medians

    rng = np.random.default_rng(1)
    for trial in range(60):
        height, width = (int(v) for v in rng.integers(5, 120, 2))
        photo = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        if trial % 2:
            photo = (photo // 37 * 37).astype(np.uint8)  # many ties, even counts: the mean of the two middle values
        where = rng.random((height, width)) < rng.uniform(0.01, 1.0)
        where[0, 0] = True
        expected = np.median(photo[where], axis=0).astype(np.float32)
        assert _medians(photo, where).tobytes() == expected.tobytes()


def _bed_of_ellipses(sizes: list[float]) -> np.ndarray:
    """Green ellipses on blue card, four a row; ``sizes`` in multiples of a 70x40 ellipse's axes."""
    photo = np.zeros((900, 1400, 3), np.uint8)
    photo[:] = (60, 90, 170)
    for k, size in enumerate(sizes):
        centre = (200 + 330 * (k % 4), 160 + 260 * (k // 4))
        cv2.ellipse(photo, centre, (round(70 * size), round(40 * size)), 0, 0, 360, (50, 130, 40), -1)
    return cv2.GaussianBlur(photo, (3, 3), 0)


def test_an_object_twice_the_leaves_of_a_uniform_bed_is_flagged_but_a_large_leaf_among_large_ones_is_not():
    # Twice the area of five others and no neck to split at: as two leaves lying over each other would be.
    uniform = quiet_segment_all(_bed_of_ellipses([1.0, 1.0, 1.0, 1.0, 1.0, 1.42]))
    flagged = [f.index for f in uniform if any("several touching" in n for n in f.notes)]
    assert len(uniform) == 6 and flagged == [5]
    # Two leaves of twice the others' area (several species on one bed): each has the other near its size.
    mixed = quiet_segment_all(_bed_of_ellipses([1.0, 1.0, 1.42, 1.0, 1.0, 1.42]))
    assert len(mixed) == 6 and not any("several touching" in n for f in mixed for n in f.notes)
