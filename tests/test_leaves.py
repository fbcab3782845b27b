from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

import leafprep
from leafprep import LeafprepWarning, NothingFoundError
from leafprep.geometry import bounding_box
from leafprep.synthetic import LEAF_SPECIES, leaf_photo
from photos import SHARED, encode


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def quiet_segment(*args, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeafprepWarning)
        return leafprep.segment(*args, **kwargs)


def card_with_leaf(card=(230, 150, 180), leaf=(60, 120, 40), size=(300, 240), hole=False, highlight=False) -> tuple[np.ndarray, np.ndarray]:
    """A flat elliptic leaf with a petiole on coloured card, and its exact mask."""
    height, width = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = card
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2 - 20), (60, 95), 0, 0, 360, 1, -1)
    cv2.line(mask, (width // 2, height // 2 + 70), (width // 2, height // 2 + 120), 1, 5)
    if hole:
        cv2.circle(mask, (width // 2 - 15, height // 2 - 40), 20, 0, -1)
    image[mask.astype(bool)] = leaf
    if highlight:
        cv2.circle(image, (width // 2 + 20, height // 2), 4, (250, 250, 250), -1)
    return image, mask.astype(bool)


@pytest.mark.parametrize("background", ["card", "wood", "scanner"])
@pytest.mark.parametrize("species", sorted(LEAF_SPECIES))
def test_segment_leaf_matches_exact_mask(species, background):
    photo, truth = leaf_photo(species, np.random.default_rng(11), background=background)
    assert iou(quiet_segment(photo, kind="leaf"), truth) >= 0.95


@pytest.mark.parametrize("card", [(230, 150, 180), (190, 40, 140), (70, 100, 185), (150, 150, 150), (20, 20, 22), (250, 250, 250)])
@pytest.mark.parametrize("leaf", [(60, 120, 40), (170, 40, 30), (120, 80, 40), (210, 190, 60)])
def test_segment_leaf_does_not_assume_white_or_green(card, leaf):
    photo, truth = card_with_leaf(card=card, leaf=leaf)
    assert iou(quiet_segment(photo, kind="leaf"), truth) >= 0.97


def test_segment_leaf_treats_cast_shadow_as_background():
    photo, truth = card_with_leaf()
    shadow = cv2.GaussianBlur(np.roll(truth.astype(np.float32), (10, 12), axis=(0, 1)), (0, 0), 3)
    shaded = (photo * (1 - 0.45 * shadow * ~truth)[..., None]).astype(np.uint8)
    assert iou(quiet_segment(shaded, kind="leaf"), truth) >= 0.97


def test_segment_leaf_fills_highlights_but_keeps_holes_unless_asked():
    photo, truth = card_with_leaf(hole=True, highlight=True)
    mask = quiet_segment(photo, kind="leaf")
    assert iou(mask, truth) >= 0.97  # the highlight is leaf, the hole is not
    filled = quiet_segment(photo, kind="leaf", fill_holes=True)
    assert filled.sum() > mask.sum() + 0.8 * np.pi * 20**2


def test_segment_leaf_can_cut_the_petiole():
    photo, _ = card_with_leaf()
    with_stalk = quiet_segment(photo, kind="leaf")
    blade = quiet_segment(photo, kind="leaf", petiole=False)
    stalk_tip = (photo.shape[0] // 2 + 115, photo.shape[1] // 2)
    assert with_stalk[stalk_tip] and not blade[stalk_tip]
    assert blade.sum() > 0.95 * (with_stalk.sum() - 5 * 50)


def test_segment_leaf_leaves_out_ruler_and_colour_chart():
    photo, truth = card_with_leaf(size=(360, 300))
    photo[335:350, 10:290] = (240, 230, 150)  # ruler
    photo[330:336:2, 10:290:8] = (20, 20, 20)
    for row in range(3):
        for col in range(4):
            photo[8 + row * 14 : 20 + row * 14, 230 + col * 14 : 242 + col * 14] = ((row * 80) % 255, (col * 60) % 255, 120)
    truth_full = np.zeros(photo.shape[:2], bool)
    truth_full[: truth.shape[0], : truth.shape[1]] = truth
    assert iou(quiet_segment(photo, kind="leaf"), truth_full) >= 0.95


def test_segment_leaf_on_blank_card_says_no_leaf_found():
    with pytest.raises(NothingFoundError, match="no leaf found"):
        leafprep.segment(np.full((200, 160, 3), (200, 120, 150), np.uint8), kind="leaf")


def test_segment_leaf_warns_when_leaf_is_cut_by_the_border():
    photo, truth = card_with_leaf()
    cut = photo[60:, :]  # the top of the blade is outside the photo
    with pytest.warns(LeafprepWarning, match="touches the image border"):
        mask = leafprep.segment(cut, kind="leaf")
    assert iou(mask, truth[60:]) >= 0.95


def test_segment_leaf_takes_the_largest_of_several_and_warns():
    big, truth = card_with_leaf(size=(300, 400))
    small = big.copy()
    cv2.ellipse(small, (340, 80), (25, 40), 0, 0, 360, (60, 120, 40), -1)
    with pytest.warns(LeafprepWarning, match="2 leaves found"):
        mask = leafprep.segment(small, kind="leaf")
    assert iou(mask, truth) >= 0.97


def test_the_several_leaves_warning_counts_the_leaves_segment_all_finds_and_says_how_to_get_each():
    photo, truth = card_with_leaf(size=(300, 600))
    cv2.rectangle(photo, (15, 15), (70, 70), (25, 25, 25), -1)  # a reference square: not a leaf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        leafprep.segment(photo, kind="leaf")
    assert not [w for w in caught if "leaves found" in str(w.message)]
    for centre in ((480, 110), (480, 210)):  # two more leaves, a little smaller, and a speck and a crumb beside them
        cv2.ellipse(photo, centre, (70, 40), 0, 0, 360, (60, 120, 40), -1)
    cv2.circle(photo, (560, 270), 2, (60, 120, 40), -1)
    cv2.circle(photo, (80, 260), 12, (60, 120, 40), -1)
    with pytest.warns(LeafprepWarning, match=r"3 leaves found: the largest is used \(--all, or segment_all\(\), gives each one\)"):
        mask = leafprep.segment(photo, kind="leaf")
    assert iou(mask, truth) >= 0.97
    assert len(leafprep.segment_all(photo)) == 3


def test_segment_leaf_mask_has_full_size_of_large_photo():
    photo, truth = card_with_leaf()
    large = cv2.resize(photo, (2400, 3000), interpolation=cv2.INTER_NEAREST)
    mask = quiet_segment(encode(large, "JPEG", quality=92), kind="leaf")
    assert mask.shape == (3000, 2400)
    assert iou(mask, cv2.resize(truth.astype(np.uint8), (2400, 3000), interpolation=cv2.INTER_NEAREST).astype(bool)) >= 0.97


@pytest.mark.parametrize("size", [28, 64, 224])
@pytest.mark.parametrize("mode", ["silhouette", "gray", "rgb"])
def test_normalize_leaf_gives_requested_size_mode_and_range(size, mode):
    photo, _ = leaf_photo("ovata", np.random.default_rng(1))
    out = leafprep.normalize(photo, kind="leaf", size=size, mode=mode)
    assert out.shape == ((size, size, 3) if mode == "rgb" else (size, size)) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() > 0.3
    assert out[0].max() == 0 and out[-1].max() == 0  # black margin, like MNIST
    box = bounding_box(out if out.ndim == 2 else out.max(axis=2), 0.05)
    assert max(box[2], box[3]) in (round(size * 20 / 28) - 1, round(size * 20 / 28))


def test_normalize_leaf_margin_sets_the_box():
    photo, _ = leaf_photo("lanceolata", np.random.default_rng(2))
    tight = leafprep.normalize(photo, kind="leaf", size=64, mode="silhouette", margin=0.0)
    loose = leafprep.normalize(photo, kind="leaf", size=64, mode="silhouette", margin=0.25)
    assert 30 <= max(bounding_box(loose, 0.05)[2:]) <= 32
    assert max(bounding_box(tight, 0.05)[2:]) >= 56


def test_normalize_leaf_orient_stands_leaf_upright_petiole_down():
    photo, _ = leaf_photo("ovata", np.random.default_rng(4), background="card")
    results = []
    for turns in range(4):
        out = leafprep.normalize(np.ascontiguousarray(np.rot90(photo, turns)), kind="leaf", size=64, mode="silhouette", orient=True)
        rows = np.flatnonzero(out.max(axis=1) > 0.5)
        top, bottom = rows[0], rows[-1]
        assert (out[bottom - 3 : bottom + 1] > 0.5).sum() < (out[top + 6 : top + 10] > 0.5).sum()  # thin stalk at the bottom
        _, _, w, h = bounding_box(out, 0.5)
        assert h > 1.3 * w  # upright
        results.append(out)
    for other in results[1:]:
        assert np.corrcoef(results[0].ravel(), other.ravel())[0, 1] > 0.85


def test_normalize_leaf_gray_is_bright_on_black_with_texture():
    photo, _ = leaf_photo("quercoides", np.random.default_rng(6), background="scanner")
    out = leafprep.normalize(photo, kind="leaf", size=96, mode="gray")
    inside = out[out > 0.05]
    assert inside.mean() > 0.3 and inside.std() > 0.05


def test_normalize_leaf_rejects_bad_mode():
    with pytest.raises(leafprep.ParameterError, match="mode must be one of"):
        leafprep.normalize(np.zeros((10, 10, 3), np.uint8), kind="leaf", mode="sepia")
    with pytest.raises(leafprep.ParameterError, match="gray only"):
        leafprep.normalize(np.zeros((10, 10, 3), np.uint8), kind="digit", mode="rgb")


@pytest.mark.filterwarnings("ignore::leafprep.LeafprepWarning")
def test_auto_kind_tells_leaf_from_digit_and_says_so(mnist_test):
    from leafprep.synthetic import ink_on_paper

    photo, _ = leaf_photo("ovata", np.random.default_rng(8))
    steps = leafprep.normalize_steps(photo, kind="auto")
    assert steps.kind == "leaf" and "kind=auto chose leaf" in steps.notes
    images, _ = mnist_test
    chosen = [leafprep.normalize_steps(ink_on_paper(image, scale=8), kind="auto") for image in images[:20]]
    assert sum(steps.kind == "digit" for steps in chosen) >= 17  # the documented rule is right about 90% of the time
    assert all(f"kind=auto chose {steps.kind}" in steps.notes for steps in chosen)


def test_segment_leaf_on_swedish_scans():
    pairs = sorted((SHARED / "leaves" / "swedish_masks" / "images").glob("*/*.jpg"))[::40]
    if not pairs:
        pytest.skip("../shared/data/leaves is not here")
    for image in pairs:
        truth = cv2.imread(str(image).replace("/images/", "/masks/").replace(".jpg", ".png"), cv2.IMREAD_GRAYSCALE) > 127
        assert iou(quiet_segment(image, kind="leaf"), truth) >= 0.95, image.name


def test_a_petiole_whose_base_has_the_card_colour_stays_with_its_leaf():
    # A real photo: a poplar leaf on magenta card, its petiole's base as red as the card. Placing the edges cut the
    # petiole off the blade and only the blade was kept; segment_all kept both. petiole=True keeps it in both.
    photo = SHARED / "leaves" / "uci_dev" / "images" / "03_Populus_nigra" / "iPAD2_C03_EX01.jpg"
    if not photo.exists():
        pytest.skip("../shared/data/leaves is not here")
    mask = quiet_segment(photo, kind="leaf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeafprepWarning)
        (found,) = leafprep.segment_all(photo)
    x, y, w, h = found.box
    assert np.array_equal(mask[y : y + h, x : x + w], found.mask) and mask.sum() == found.mask.sum()
    rows = np.flatnonzero(mask.any(axis=1))
    assert rows[-1] - rows[0] > 600  # blade and petiole (the blade alone is about 410 rows)
    assert iou(quiet_segment(photo, kind="leaf", petiole=False), quiet_segment(photo, kind="leaf", petiole=True)) < 0.99


def test_doubt_banner_wraps_to_fit_a_portrait_photo():
    import cv2

    from leafprep.figures import _wrap, outline

    photo = np.full((1280, 720, 3), 200, np.uint8)
    mask = np.zeros((1280, 720), bool)
    mask[300:900, 200:500] = True
    doubt = "the leaf barely stands out from its surroundings (its outline could be anywhere in a band of 25.0% of its area)"
    scale = max(0.4, 720 / 1400)
    lines = _wrap("doubtful mask: " + doubt, scale, 1, 720 - 12)
    assert len(lines) >= 2 and " ".join(lines) == "doubtful mask: " + doubt
    assert all(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= 708 for line in lines)
    picture = outline(photo, mask, doubts=[doubt])
    banner = np.flatnonzero((picture[:, 360] == 0).all(axis=1))  # the black banner down the middle column
    assert banner.size and banner.max() >= 2 * (round(26 * scale) + 4) - 4  # two lines or more


def test_a_dark_patch_of_a_blade_on_brown_wood_is_leaf_while_a_hole_showing_the_wood_stays_a_hole():
    """The patch is as near the wood as a shadow is (the distance that forgives shadows), but its colour is nearer
    the leaf's: leaf. The hole is the wood's own colour: the wood seen through the leaf."""

    def rgb_of(lab: tuple[float, float, float]) -> np.ndarray:
        return cv2.cvtColor(np.array([[lab]], np.float32), cv2.COLOR_LAB2RGB)[0, 0] * 255

    height, width = 600, 800
    light = (0.85 + 0.3 * np.arange(width, dtype=np.float32) / width)[None, :, None]  # falling light: not the fast path
    yy, xx = np.mgrid[:height, :width]
    blade = ((yy - 300) / 190) ** 2 + ((xx - 400) / 260) ** 2 < 1
    dark = ((yy - 260) / 50) ** 2 + ((xx - 330) / 70) ** 2 < 1
    hole = ((yy - 350) / 25) ** 2 + ((xx - 500) / 25) ** 2 < 1
    photo = np.empty((height, width, 3), np.float32)
    photo[:] = rgb_of((28, 15, 21))  # brown wood (CIELAB as measured on bench.leaf_beds' wood)
    photo[blade] = rgb_of((20, 0, 24))
    photo[dark] = rgb_of((15, 3, 20))
    photo[hole] = rgb_of((28, 15, 21))
    photo = cv2.GaussianBlur(photo * light, (0, 0), 1.0) + np.random.default_rng(0).normal(0, 2, photo.shape)
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = leafprep.segment(photo, kind="leaf")
        (found,) = leafprep.segment_all(photo)
    among = np.zeros(alone.shape, bool)
    x, y, w, h = found.box
    among[y : y + h, x : x + w] = found.mask
    for mask in (alone, among):
        assert mask[dark].mean() > 0.99
        assert mask[hole].mean() < 0.01


@pytest.mark.parametrize("kind", ["leaf", "digit"])
def test_a_tiny_image_is_called_too_small_not_empty(kind):
    tiny = np.full((5, 7, 3), 200, np.uint8)
    with pytest.raises(NothingFoundError, match=r"the image is only 7x5 pixels") as caught:
        quiet_segment(tiny, kind=kind)
    assert "at least 16 pixels" in str(caught.value)
    with pytest.raises(NothingFoundError, match=r"only 7x5 pixels"):
        leafprep.segment_all(tiny, kind="leaf")
    with pytest.raises(NothingFoundError, match=r"nothing stands out"):  # a blank photo of a fair size says what it is
        quiet_segment(np.full((64, 64, 3), 200, np.uint8), kind="leaf")
