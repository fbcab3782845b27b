from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import leafprep
from leafprep import ImageLoadError, NothingFoundError, ParameterError
from leafprep.geometry import bounding_box, stroke_width
from photos import SHARED, encode, page_with_digit, ruled

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pixel correlation, allowing the two to differ by a shift of one pixel (centre-of-mass rounding)."""
    return max(float(np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.ravel())[0, 1]) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def plain_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("size", [16, 28, 56, 112])
def test_normalize_returns_float32_unit_range_of_requested_size(digit_page, size):
    out = leafprep.normalize(digit_page, size=size)
    assert out.shape == (size, size) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == 1.0


def test_normalize_fits_digit_into_mnist_box_with_mass_centered(digit_page):
    out = leafprep.normalize(digit_page)
    _, _, w, h = bounding_box(out, 0.0)
    assert max(w, h) == 20
    total = out.sum()
    cy = (out.sum(axis=1) * np.arange(28)).sum() / total
    cx = (out.sum(axis=0) * np.arange(28)).sum() / total
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_normalize_is_deterministic(digit_page):
    assert leafprep.normalize(digit_page).tobytes() == leafprep.normalize(digit_page.copy()).tobytes()


@pytest.mark.parametrize(
    "paper, ink",
    [
        ((240, 240, 235), (30, 40, 160)),  # blue ballpoint
        ((240, 240, 235), (180, 30, 30)),  # red
        ((250, 235, 120), (20, 20, 20)),  # sticky note
        ((150, 150, 150), (20, 20, 20)),  # grey paper, dim light
    ],
)
def test_normalize_is_independent_of_paper_and_ink_colour(paper, ink):
    reference = leafprep.normalize(page_with_digit())
    assert correlation(leafprep.normalize(page_with_digit(paper=paper, ink=ink)), reference) > 0.95


def test_normalize_detects_light_ink_on_dark_background():
    dark_on_light = leafprep.normalize(page_with_digit())
    light_on_dark = leafprep.normalize(page_with_digit(paper=(30, 35, 30), ink=(235, 235, 230)))
    assert correlation(light_on_dark, dark_on_light) > 0.95


def test_normalize_ignores_ruled_lines():
    page = page_with_digit(size=(300, 260), digit="4")
    lined = page.copy()
    lined[::25] = (150, 170, 220)
    lined[1::25] = (150, 170, 220)
    assert correlation(leafprep.normalize(lined), leafprep.normalize(page)) > 0.9


@pytest.mark.parametrize("angle, squared", [(0.0, False), (2.5, False), (2.0, True)], ids=["level", "turned", "squared and turned"])
def test_normalize_removes_ruled_lines_crossing_the_digit_and_keeps_its_bars(mnist_test, angle, squared):
    from leafprep.synthetic import ink_on_paper

    images, labels = mnist_test
    for label in (0, 2, 4, 5, 7):  # a round digit, then digits with bars of their own
        plain = ink_on_paper(images[np.flatnonzero(labels == label)[0]], scale=8)
        foot = int(np.flatnonzero((plain < 128).any(axis=(1, 2)))[-1])
        lined = ruled(plain, spacing=40, angle=angle, squared=squared, offset=foot)  # a line touches the foot of the digit
        score = correlation(leafprep.normalize(lined), leafprep.normalize(plain))
        assert score > 0.9, (label, score)


def test_normalize_corrects_uneven_light_and_hard_shadow():
    page = page_with_digit(size=(300, 260), digit="3").astype(np.float32)
    shaded = page.copy()
    shaded[:, 130:] *= 0.5  # a hard shadow through the digit
    shaded *= np.linspace(1.0, 0.7, 300)[:, None, None]
    out = leafprep.normalize(shaded.astype(np.uint8))
    assert correlation(out, leafprep.normalize(page.astype(np.uint8))) > 0.9


def test_normalize_groups_broken_strokes_into_one_digit():
    page = page_with_digit(size=(240, 200), digit="5")
    whole = leafprep.normalize(page)
    broken = page.copy()
    rows = np.flatnonzero((page < 128).any(axis=(1, 2)))
    broken[rows[0] + (rows[-1] - rows[0]) // 4 : rows[0] + (rows[-1] - rows[0]) // 4 + 6] = (235, 235, 230)
    assert correlation(leafprep.normalize(broken), whole) > 0.85


def test_normalize_leaves_out_a_dot_near_the_digit():
    page = page_with_digit(size=(300, 260), digit="3")
    rows = np.flatnonzero((page < 128).any(axis=(1, 2)))
    cols = np.flatnonzero((page < 128).any(axis=(0, 2)))
    height = rows[-1] - rows[0]
    dotted = page.copy()
    centre = (int(cols.mean()), int(rows[0] - 0.25 * height))  # a dot above the 3 turns it into a 5
    cv2.circle(dotted, centre, int(0.06 * height), (25, 25, 30), -1)
    assert correlation(leafprep.normalize(dotted), leafprep.normalize(page)) > 0.95


def test_normalize_ignores_specks_and_page_edge():
    page = page_with_digit(size=(300, 260), digit="2")
    noisy = page.copy()
    noisy[20:23, 30:33] = 20  # dust
    noisy[280:, :] = (60, 50, 40)  # the table below the page
    assert correlation(leafprep.normalize(noisy), leafprep.normalize(page)) > 0.9


def test_normalize_evens_out_pen_width():
    thin = leafprep.normalize(page_with_digit(pen=2, size=(400, 340)))
    thick = leafprep.normalize(page_with_digit(pen=22, size=(400, 340)))
    widths = [stroke_width(image > 0.5) for image in (thin, thick)]
    assert all(1.8 <= w <= 3.9 for w in widths), widths


def test_normalize_finds_small_digit_in_large_photo():
    page = np.full((1500, 2000, 3), 225, np.uint8)
    page[700:820, 950:1050] = page_with_digit(size=(120, 100), paper=(225, 225, 225))
    out = leafprep.normalize(encode(page, "JPEG", quality=90))
    alone = leafprep.normalize(page_with_digit(size=(120, 100), paper=(225, 225, 225)))
    assert correlation(out, alone) > 0.9


def test_normalize_finds_small_digit_in_wide_margin_of_large_photo(mnist_test):
    from leafprep.synthetic import ink_on_paper

    images, labels = mnist_test
    seven = images[np.flatnonzero(labels == 7)[0]]
    photo = np.full((3080, 4060, 3), 240, np.uint8)
    photo[1500:1556, 2000:2056] = ink_on_paper(seven, scale=2, margin=0.0)  # 56x56, the 7 itself about 40 pixels tall
    out = leafprep.normalize(encode(photo, "JPEG", quality=90))
    assert correlation(out, seven / 255.0) > 0.8


def crop_of(digit: np.ndarray, form: str) -> np.ndarray:
    """An MNIST digit as a small photo: 28x28 dark on white, 28x28 as MNIST has it, or a 60x80 crop of it on paper."""
    from leafprep.synthetic import ink_on_paper

    if form == "dark on white":
        return 255 - digit
    if form == "white on black":
        return digit
    return np.pad(ink_on_paper(digit, scale=2, margin=0.0), ((12, 12), (2, 2), (0, 0)), constant_values=240)


@pytest.mark.parametrize("form", ["dark on white", "white on black", "60x80 crop"])
def test_normalize_keeps_digit_of_small_photo_as_it_is(mnist_test, form):
    images, _ = mnist_test
    scores, lost = [], []
    for digit in images[:30]:
        out = leafprep.normalize(crop_of(digit, form))
        scores.append(correlation(out, digit / 255.0))
        near = cv2.dilate(out, np.ones((3, 3), np.uint8))  # allow a shift of a pixel
        lost.append(float(np.mean(near[digit > 127] < 0.25)))
    assert np.mean(scores) > 0.93 and min(scores) > 0.8, np.round(scores, 2)
    assert max(lost) < 0.05, np.round(lost, 2)  # no stroke lost


@pytest.mark.parametrize(
    "image",
    [np.full((300, 200, 3), 245, np.uint8), np.zeros((300, 200, 3), np.uint8), np.full((1, 1, 3), 128, np.uint8)],
    ids=["blank white page", "all black", "1x1"],
)
def test_normalize_says_no_digit_found(image):
    with pytest.raises(NothingFoundError, match="no digit found"):
        leafprep.normalize(image)


def test_normalize_validates_kind_and_size(digit_page):
    with pytest.raises(ParameterError, match="kind must be one of"):
        leafprep.normalize(digit_page, kind="cat")
    with pytest.raises(ParameterError, match="size must be at least"):
        leafprep.normalize(digit_page, size=2)


def test_normalize_deskew_straightens_slanted_one():
    page = np.full((200, 200, 3), 240, np.uint8)
    import cv2

    cv2.line(page, (80, 170), (120, 30), (20, 20, 20), 8)
    straight = leafprep.normalize(page, deskew=True)
    slanted = leafprep.normalize(page)
    assert bounding_box(straight, 0.3)[2] < bounding_box(slanted, 0.3)[2]


def test_segment_mask_has_upright_full_size_of_rotated_photo():
    page = page_with_digit(size=(1200, 1600))
    image = Image.fromarray(page)
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: upright is the transpose
    mask = leafprep.segment(encode(image, "JPEG", exif=exif.tobytes()))
    assert mask.shape == (1600, 1200) and mask.dtype == bool
    assert 0.005 < mask.mean() < 0.2


def test_segment_rejects_unreadable_source(tmp_path):
    with pytest.raises(ImageLoadError):
        leafprep.segment(tmp_path)


def test_normalize_all_reads_sheet_in_reading_order():
    digits = leafprep.normalize_all(SAMPLES / "sheets" / "sheet-0123456789.jpg")
    assert len(digits) == 10
    boxes = [d.box for d in digits]
    rows = [boxes[:5], boxes[5:]]
    for row in rows:
        assert [b[0] for b in row] == sorted(b[0] for b in row)
    assert max(b[1] for b in rows[0]) < min(b[1] for b in rows[1])
    assert all(d.image.shape == (28, 28) for d in digits)


def test_round_trip_of_mnist_digits_drawn_on_paper(mnist_test):
    from leafprep.synthetic import ink_on_paper

    images, _ = mnist_test
    scores = [plain_correlation(leafprep.normalize(ink_on_paper(d, scale=8)), d / 255.0) for d in images[:40]]
    assert np.mean(scores) >= 0.9, np.round(scores, 2)


def test_every_real_digit_photo_normalises():
    photos = sorted((SHARED / "digit_photos").glob("dcdl-*/*/*.png"))
    if not photos:
        pytest.skip("../shared/data/digit_photos is not here")
    assert len(photos) == 50
    for photo in photos:
        out = leafprep.normalize(photo)
        assert out.shape == (28, 28) and out.max() == 1.0


def test_normalize_all_reads_real_sheet_photo_in_reading_order():
    sheet = SHARED / "digit_photos" / "_multi_digit" / "dcdl-mwu__raw.jpg"
    if not sheet.exists():
        pytest.skip("../shared/data/digit_photos is not here")
    digits = leafprep.normalize_all(sheet)
    assert len(digits) == 10  # 0 1 2 / 3 4 5 / 6 7 8 / 9
    ys = [d.box[1] + d.box[3] / 2 for d in digits]
    xs = [d.box[0] + d.box[2] / 2 for d in digits]
    for row in (slice(0, 3), slice(3, 6), slice(6, 9)):
        assert xs[row] == sorted(xs[row])
        assert np.ptp(ys[row]) < 100
    assert ys[0] < ys[3] < ys[6] < ys[9]


def test_a_small_thin_digit_in_the_middle_of_a_large_empty_photo_is_found():
    """A 60x80-pixel "7" drawn with 2-pixel strokes in the middle of a 4060x3080 photo of plain paper."""
    import io

    import cv2
    from PIL import Image

    height, width = 3080, 4060
    page = np.full((height, width, 3), (236, 236, 232), np.uint8)
    page = np.clip(page + np.random.default_rng(0).normal(0, 3, page.shape), 0, 255).astype(np.uint8)
    cx, cy = width // 2, height // 2
    cv2.polylines(page, [np.array([[cx - 30, cy - 40], [cx + 30, cy - 40], [cx - 5, cy + 40]], np.int32)], False, (30, 30, 40), 2, cv2.LINE_AA)
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, "JPEG", quality=90)
    mask = leafprep.segment(buffer.getvalue())
    ys, xs = np.nonzero(mask)
    assert xs.min() >= cx - 34 and xs.max() <= cx + 34 and ys.min() >= cy - 44 and ys.max() <= cy + 44  # the 7, nothing else
    assert xs.max() - xs.min() > 50 and ys.max() - ys.min() > 70  # all of it


def test_a_digit_far_smaller_than_its_box_is_normalised_with_a_warning_that_it_comes_out_blurred():
    page = np.full((12, 16), 255, np.uint8)
    page[3:9, 6:9] = 0  # a 3x6-pixel mark: enlarged more than 3 times into the 20-pixel box
    with pytest.warns(leafprep.LeafprepWarning, match=r"the digit is only \d+x\d+ pixels in the photo: enlarged [\d.]+ times .* blurred"):
        out = leafprep.normalize(page)
    assert out.shape == (28, 28) and out.max() == 1.0
    with pytest.warns(leafprep.LeafprepWarning):
        steps = leafprep.normalize_steps(page)
    assert any("blurred" in note for note in steps.notes)


def test_mnist_sized_digits_and_sheets_of_digits_are_normalised_without_a_size_warning(mnist_test):
    import warnings

    images, _ = mnist_test
    with warnings.catch_warnings():
        warnings.simplefilter("error", leafprep.LeafprepWarning)
        for digit in images[:20]:
            leafprep.normalize(255 - digit)
        digits = leafprep.normalize_all(SAMPLES / "sheets" / "sheet-0123456789.jpg")
    assert not any(d.notes for d in digits)


def test_normalize_all_numbers_each_small_digit_it_warns_of():
    sheet = np.full((20, 48), 255, np.uint8)
    for x in (6, 20, 34):
        sheet[6:13, x : x + 3] = 0  # three marks 3x7 pixels: each enlarged nearly 3 times
    with pytest.warns(leafprep.LeafprepWarning) as said:
        digits = leafprep.normalize_all(sheet)
    messages = [str(w.message) for w in said if "blurred" in str(w.message)]
    assert len(digits) == 3 and all(len(d.notes) == 1 for d in digits)
    assert [m.split(": ")[1] for m in messages] == ["digit 00", "digit 01", "digit 02"]
