"""Finding the ink of handwritten digits in photos.

The digit recipe, on an upright RGB photo:

1. :func:`ink_map` models the paper instead of assuming a white one: a grey
   morphological closing (for dark ink) or opening (for light ink) with a square
   larger than any pen stroke removes the strokes and keeps the paper with its
   shadows, so ``(paper - pixel) / paper`` (``(pixel - paper) / brightest ink
   around`` for light ink) in the channel where the ink differs most is the
   ink's contrast, whatever the paper colour, ink colour or light. The polarity
   comes from the grey levels minus their local median: the ink lies on one side
   of it. A crop of one digit (both sides under :data:`CROP_SIDE`, such as
   MNIST's own 28x28) is enlarged first and its paper modelled with a square of
   half its short side, as the digit fills it.
2. :func:`ink_mask` thresholds the contrast above the noise of the paper
   (median + 8 robust standard deviations, at least Otsu's threshold between
   faint and strong marks) and removes ruled lines, level or tilted up to
   :data:`MAX_TILT` degrees.
3. :func:`find_digits` groups the connected components into digits (parts that
   overlap in x and lie close in y, or touch when dilated; a speck joins only
   what it touches) and scores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ParameterError
from ..loading import ImageSource, _load
from .common import nothing_found, odd, sample_values, working_image

__all__ = ["ink_map", "ink_mask", "ink_threshold", "find_digits", "analyse_digits", "detect_polarity", "sheet_digits", "DigitRegion", "DigitAnalysis"]

# Marks with less contrast than this are never ink.
MIN_CONTRAST = 0.12

#: A photo with both sides under this many pixels is a crop of one digit (MNIST's
#: own 28x28, a cut-out): the digit fills it and its pen is already at its final scale.
CROP_SIDE = 100

# A crop is enlarged to this long side before segmentation, so that its strokes
# are several pixels wide for the masks, the rules below and the skeleton.
CROP_WORK_SIDE = 300

# Groups of ink smaller than this (working-image pixels) are dust, not digits.
MIN_DIGIT_SIDE = 8

#: Ruled lines are looked for up to this tilt, in degrees: paper photographed askew.
MAX_TILT = 10.0


@dataclass(frozen=True)
class DigitRegion:
    """One digit found in a working image.

    Attributes
    ----------
    box : tuple of int
        ``(x, y, width, height)`` of the digit in working-image pixels.
    mask : (M, N) ndarray of bool
        The digit's ink, same shape as the working image.
    score : float
        Ink contrast summed over the digit, weighted by closeness to the centre.
    touches_border : bool
        Whether the digit's ink reaches the image border.
    """

    box: tuple[int, int, int, int]
    mask: np.ndarray
    score: float
    touches_border: bool


def _paper(rgb: np.ndarray, operation: int, k: int) -> np.ndarray:
    """The paper under the ink: a grey closing (or opening) larger than any stroke.

    Large images are processed at half size, which changes the estimate by at
    most a pixel at the edges of hard shadows but takes a quarter of the time.
    """
    height, width = rgb.shape[:2]
    if max(height, width) > 640:
        small = cv2.resize(rgb, ((width + 1) // 2, (height + 1) // 2), interpolation=cv2.INTER_AREA)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (odd(k / 2), odd(k / 2)))
        paper = cv2.morphologyEx(small, operation, kernel, borderType=cv2.BORDER_REPLICATE)
        paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
        paper = cv2.morphologyEx(rgb, operation, kernel, borderType=cv2.BORDER_REPLICATE)
    return paper.astype(np.float32)


def detect_polarity(rgb: np.ndarray) -> str:
    """Tell whether the ink is darker (``"dark"``) or lighter (``"light"``) than the paper.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
        The photo.

    Returns
    -------
    polarity : {"dark", "light"}
        The grey levels minus their median over a window larger than any
        stroke leave the paper near zero, shadows included (a median keeps
        straight shadow edges where they are), and the ink on one side: the side
        whose values reach further beyond the paper's spread wins.
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = 400.0 / max(gray.shape)
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    paper = cv2.medianBlur(gray, odd(max(gray.shape) / 4.0))
    deviation = (gray.astype(np.float32) - paper.astype(np.float32)) / 255.0
    spread = max(0.03, 4.0 * 1.4826 * float(np.median(np.abs(deviation))))
    darker = float(np.clip(-deviation - spread, 0.0, None).sum())
    lighter = float(np.clip(deviation - spread, 0.0, None).sum())
    return "dark" if darker >= lighter else "light"


def ink_map(rgb: np.ndarray, *, polarity: str = "auto", paper_side: int | None = None) -> tuple[np.ndarray, str]:
    """Contrast of every pixel against the paper around it.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
        The photo.
    polarity : {"auto", "dark", "light"}, optional
        Whether the ink is darker or lighter than its background; ``"auto"``
        decides with :func:`detect_polarity`.
    paper_side : int, optional
        Side in pixels of the square that models the paper; it must be wider
        than any stroke. 1/8 of the photo's long side by default, enough for a
        digit up to about half the photo's size; a crop that the digit fills
        needs more.

    Returns
    -------
    ink : (M, N) ndarray of float32
        0 on paper, up to 1 for ink of full contrast, in the colour channel where
        the ink differs most from the paper.
    polarity : {"dark", "light"}
        The polarity used.
    """
    if polarity == "auto":
        polarity = detect_polarity(rgb)
    if polarity not in ("dark", "light"):
        raise ParameterError("polarity", f"polarity must be one of {{'auto', 'dark', 'light'}}, got {polarity!r}")
    height, width = rgb.shape[:2]
    k = odd(paper_side or max(height, width) / 8.0)
    image = rgb.astype(np.float32)
    if polarity == "dark":
        paper = _paper(rgb, cv2.MORPH_CLOSE, k)
        contrast = (paper - image) / np.maximum(paper, 24.0)
    else:
        paper = _paper(rgb, cv2.MORPH_OPEN, k)
        # Relative to the brightest ink around, the light's strength cancels out;
        # the floor keeps sensor noise on a dark board from turning into contrast.
        brightest = _paper(rgb, cv2.MORPH_DILATE, k)
        contrast = (image - paper) / np.maximum(brightest, 80.0)
    # A channel in which bright features (coloured rulings) are denser than the
    # kernel gets a biased paper estimate: remove each channel's typical offset.
    offsets = np.median(contrast.reshape(-1, 3)[:: max(1, contrast.size // 3 // 100_000)], axis=0).astype(np.float32)
    contrast -= offsets
    ink = np.maximum(np.maximum(contrast[:, :, 0], contrast[:, :, 1]), contrast[:, :, 2])
    np.clip(ink, 0.0, 1.0, out=ink)
    return ink.astype(np.float32), polarity


def ink_threshold(ink: np.ndarray) -> float:
    """Threshold that separates ink from the paper's noise in an :func:`ink_map`.

    Parameters
    ----------
    ink : (M, N) ndarray of float32
        An ink map.

    Returns
    -------
    threshold : float
        ``max(MIN_CONTRAST, median + 8 * sigma, otsu / 2)`` where sigma is the
        robust (MAD) standard deviation of the map and ``otsu`` is Otsu's
        threshold over the marks above the noise.
    """
    sample = sample_values(ink)
    median = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - median)))
    noise = max(MIN_CONTRAST, median + 8.0 * sigma)
    marks = ink[ink > noise]
    if marks.size < 16:
        return noise
    values = np.clip(marks * 255.0, 0, 255).astype(np.uint8).reshape(-1, 1)
    otsu, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return max(noise, 0.5 * float(otsu) / 255.0)


def _ruling_tilt(faint: np.ndarray) -> float:
    """Tilt in degrees of the ruled lines of ``faint`` (positive: rising to the right).

    The marks (a sample of them) are projected across lines turned every half
    degree, then every twentieth of a degree around the best: the pixels of a
    ruled line all fall into one row at its own tilt, where the projection is
    at its sharpest. Ruled paper has two lines or more: if fewer rows than that
    hold 60% of the width, the tilt is 0.
    """
    width = faint.shape[1]
    points = cv2.findNonZero(faint)
    if points is None or len(points) < 1.2 * width:
        return 0.0
    step = max(1, len(points) // 10_000)
    xs, ys = points.reshape(-1, 2)[::step].T.astype(np.float32)

    def sharpest(angles: np.ndarray, bin_size: float) -> tuple[float, np.ndarray]:
        turn = np.radians(angles).astype(np.float32)[:, None]
        rows = np.floor((ys * np.cos(turn) + xs * np.sin(turn)) / bin_size).astype(np.int64)
        rows -= rows.min(axis=1, keepdims=True)
        bins = int(rows.max()) + 1
        rows += bins * np.arange(len(angles))[:, None]  # one histogram per angle, side by side
        counts = np.bincount(rows.ravel(), minlength=bins * len(angles)).reshape(len(angles), bins) * step
        best = int(np.argmax(np.square(counts, dtype=np.float64).sum(axis=1)))
        return float(angles[best]), counts[best]

    def lines(counts: np.ndarray, length: float) -> int:
        # Above the floor that upright lines (squared paper) give every row; neighbouring rows are one thick line.
        rows = np.flatnonzero(counts - np.median(counts) >= length)
        return int(rows.size and 1 + np.count_nonzero(np.diff(rows) > 1))

    coarse, counts = sharpest(np.arange(-MAX_TILT, MAX_TILT + 0.25, 0.5), 4.0)
    if lines(counts, 0.3 * width) < 2:
        return 0.0
    tilt, counts = sharpest(coarse + np.arange(-0.5, 0.525, 0.05), 1.0)
    return tilt if lines(counts, 0.6 * width) >= 2 else 0.0


def _thin_runs(faint: np.ndarray, length: int, thickness: float) -> np.ndarray:
    """Level runs of ``faint`` at least ``length`` pixels long and at most ``thickness`` thick."""
    lines = np.zeros_like(faint)
    if length < 24 or np.count_nonzero(faint, axis=1).max() < length:
        return lines  # no row holds enough ink for a line
    runs = cv2.morphologyEx(faint, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
    thin = stats[:, cv2.CC_STAT_AREA] / np.maximum(stats[:, cv2.CC_STAT_WIDTH], 1) <= thickness
    thin[0] = False  # the background
    return thin.astype(np.uint8)[labels]


def _level_runs(faint: np.ndarray, tilt: float, length: int, thickness: float) -> np.ndarray:
    """:func:`_thin_runs` of ``faint`` sheared so that lines of ``tilt`` degrees lie level, sheared back."""
    if abs(tilt) < 0.05:
        return _thin_runs(faint, length, thickness)
    height, width = faint.shape
    slope = float(np.tan(np.radians(tilt)))
    pad = int(np.ceil(abs(slope) * width))
    shear = np.array([[1.0, 0.0, 0.0], [slope, 1.0, pad if slope < 0 else 0.0]])  # y' = y + slope * x
    level = cv2.warpAffine(faint, shear, (width, height + pad), flags=cv2.INTER_NEAREST)
    runs = _thin_runs(level, length, thickness)
    return cv2.warpAffine(runs, shear, (width, height), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)


def _remove_ruled_lines(mask: np.ndarray, faint: np.ndarray) -> np.ndarray:
    """Remove thin straight lines that run across the image (ruled or squared paper).

    A line is a run at least 60% of the image's width long (an upright one,
    80% of its height) and at most 2.5% of it thick, found in ``faint``, a mask
    at a lower threshold where the lines are unbroken, along the tilt of the
    paper (:func:`_ruling_tilt`); a digit's stroke is never that long and thin
    at once. The strokes the lines ran through are mended.
    """
    height, width = mask.shape
    tilt = _ruling_tilt(faint)
    lines = _level_runs(faint, tilt, int(0.6 * width), max(3.0, 0.025 * width))
    if tilt or np.count_nonzero(faint, axis=0).max() >= 0.8 * height:
        # Upright lines are level ones of the transposed image, where the paper's tilt is reversed.
        upright = _level_runs(np.ascontiguousarray(faint.T), -tilt, int(0.8 * height), max(3.0, 0.025 * height))
        lines |= upright.T
    if not lines.any():
        return mask
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    kept = mask & (1 - lines)
    # Mend the strokes the lines ran through: bridge short gaps across them.
    bridged = cv2.morphologyEx(kept, cv2.MORPH_CLOSE, np.ones((9, 1), np.uint8)) | cv2.morphologyEx(kept, cv2.MORPH_CLOSE, np.ones((1, 9), np.uint8))
    return kept | (bridged & lines & mask)


def ink_mask(ink: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Boolean mask of the ink in an :func:`ink_map`, without ruled lines.

    Parameters
    ----------
    ink : (M, N) ndarray of float32
        An ink map.
    threshold : float, optional
        Contrast threshold; :func:`ink_threshold` by default.

    Returns
    -------
    mask : (M, N) ndarray of bool
    """
    if threshold is None:
        threshold = ink_threshold(ink)
    mask = (ink > threshold).astype(np.uint8)
    mask = _remove_ruled_lines(mask, (ink > 0.5 * threshold).astype(np.uint8))
    return mask.astype(bool)


def _group_components(stats: np.ndarray, keep: list[int], gap: float, speck: float) -> list[list[int]]:
    """Union components whose boxes overlap in x and lie close in y, or nearly touch.

    A speck (a part whose longer side is under ``speck``) joins only a part it
    nearly touches: a dot a little way above a 3 is not the bar of a 5.
    """
    parent = {i: i for i in keep}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a_index, a in enumerate(keep):
        ax, ay, aw, ah = stats[a, :4]
        for b in keep[a_index + 1 :]:
            bx, by, bw, bh = stats[b, :4]
            x_overlap = min(ax + aw, bx + bw) - max(ax, bx)
            y_gap = max(ay, by) - min(ay + ah, by + bh)
            x_gap = -x_overlap
            stacked = x_overlap >= 0.5 * min(aw, bw) and y_gap <= 0.6 * max(ah, bh) and min(max(aw, ah), max(bw, bh)) >= speck
            touching = x_gap <= gap and y_gap <= gap
            if stacked or touching:
                parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in keep:
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: min(g))


def find_digits(ink: np.ndarray, mask: np.ndarray) -> list[DigitRegion]:
    """Group the ink of ``mask`` into digit candidates, best first.

    Parameters
    ----------
    ink : (M, N) ndarray of float32
        The ink map the mask came from.
    mask : (M, N) ndarray of bool
        The ink mask.

    Returns
    -------
    regions : list of DigitRegion
        Sorted by decreasing score.  Specks (parts under 1/20 of the largest
        part's size), dust (groups under :data:`MIN_DIGIT_SIDE` pixels) and long
        thin lines are left out; a part under 1/5 of the largest one joins a
        digit only if it nearly touches it.
    """
    height, width = mask.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return []
    sizes = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    biggest = float(sizes.max())
    keep = []
    for i in range(1, count):
        w, h, area = stats[i, 2:5]
        if max(w, h) < max(4.0, biggest / 20.0) or area < 6:
            continue
        thin = min(w, h) <= max(3, 0.03 * max(w, h)) and max(w, h) > 0.3 * max(height, width)
        dash = w >= 10 * h and h <= 4  # a piece of a ruled line; digits have no such stroke alone
        if thin or dash:
            continue
        keep.append(i)
    if not keep:
        return []
    gap = max(2.0, 0.08 * biggest)
    regions = []
    lut_base = np.zeros(count, dtype=bool)
    speck = 0.2 * max(sizes[i - 1] for i in keep)  # of the largest part that may be a digit
    for group in _group_components(stats, keep, gap, speck):
        x0 = min(stats[i, 0] for i in group)
        y0 = min(stats[i, 1] for i in group)
        x1 = max(stats[i, 0] + stats[i, 2] for i in group)
        y1 = max(stats[i, 1] + stats[i, 3] for i in group)
        lut = lut_base.copy()
        lut[group] = True
        region_mask = lut[labels]
        strength = float(ink[y0:y1, x0:x1][region_mask[y0:y1, x0:x1]].sum())
        cx, cy = (x0 + x1) / 2.0 / width, (y0 + y1) / 2.0 / height
        centrality = 1.0 - 0.6 * min(1.0, 2.0 * float(np.hypot(cx - 0.5, cy - 0.5)))
        border = x0 <= 0 or y0 <= 0 or x1 >= width or y1 >= height
        w, h = x1 - x0, y1 - y0
        if max(w, h) < MIN_DIGIT_SIDE:
            continue  # dust, JPEG noise
        # Digits are upright-ish blobs; page edges and stray strokes are not.
        shape = 1.0 if h >= 0.5 * w else 0.4
        score = strength * centrality * shape * (0.35 if border else 1.0)
        regions.append(DigitRegion((int(x0), int(y0), int(w), int(h)), region_mask, score, bool(border)))
    regions.sort(key=lambda r: -r.score)
    return regions


@dataclass(frozen=True)
class DigitAnalysis:
    """What segmentation found in a working image: every stage the normaliser needs."""

    photo: np.ndarray  # (M, N, 3) uint8, the working image
    ink: np.ndarray  # (M, N) float32 contrast
    threshold: float
    mask: np.ndarray  # (M, N) bool, all ink
    regions: list[DigitRegion]  # best first, never empty
    polarity: str
    scale: tuple[float, float]  # (y, x) factors from working to full-size pixels
    crop: bool  # a photo under CROP_SIDE pixels: one digit at its final scale


def _enlarged(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` enlarged (bilinear) so that its long side is :data:`CROP_WORK_SIDE`."""
    height, width = rgb.shape[:2]
    scale = CROP_WORK_SIDE / max(height, width)
    return cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)


def analyse_digits(source: ImageSource, *, max_pixels: int, min_side: int) -> DigitAnalysis:
    """Load ``source`` and find its digits; raise :class:`NothingFoundError` if there are none.

    A crop (both sides under :data:`CROP_SIDE`) is enlarged first, and its paper
    is modelled with a square of half its short side, as the digit fills it.
    """
    loaded = _load(source, max_pixels=max_pixels, min_side=min_side)
    work = working_image(loaded.rgb)
    crop = max(work.shape[:2]) < CROP_SIDE
    if crop:
        work = _enlarged(work)
    ink, polarity = ink_map(work, paper_side=min(work.shape[:2]) // 2 if crop else None)
    threshold = ink_threshold(ink)
    mask = ink_mask(ink, threshold)
    regions = find_digits(ink, mask)
    if not regions:
        raise nothing_found(
            loaded.name,
            loaded.rgb.shape,
            "no digit found: the image holds no marks that stand out from the paper",
            "photograph the digit closer, in even light",
            "digit",
        )
    scale = (loaded.full_shape[0] / work.shape[0], loaded.full_shape[1] / work.shape[1])
    return DigitAnalysis(work, ink, threshold, mask, regions, polarity, scale, crop)


def sheet_digits(regions: list[DigitRegion]) -> list[DigitRegion]:
    """The regions of a sheet that are digits: of a digit's height and ink (not borders, dots, smudges)."""
    inner = [r for r in regions if not r.touches_border] or regions
    tallest = max(r.box[3] for r in inner)
    strongest = max(r.score for r in inner)
    return [r for r in inner if r.box[3] >= 0.35 * tallest and r.score >= 0.05 * strongest]
