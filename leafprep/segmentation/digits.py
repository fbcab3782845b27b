"""Finding the ink of handwritten digits in photos.

The digit recipe, on an upright RGB photo:

1. :func:`ink_map` models the paper instead of assuming a white one: a grey
   morphological closing (for dark ink) or opening (for light ink) with a square
   larger than any pen stroke removes the strokes and keeps the paper with its
   shadows, so ``(paper - pixel) / paper`` (``(pixel - paper) / pixel`` for
   light ink) in the channel where the ink differs most is the ink's contrast,
   whatever the paper colour, ink colour or light. The polarity comes from the
   grey levels minus their local median: the ink lies on one side of it.
2. :func:`ink_mask` thresholds the contrast above the noise of the paper
   (median + 8 robust standard deviations, at least Otsu's threshold between
   faint and strong marks) and removes ruled lines and specks.
3. :func:`find_digits` groups the connected components into digits (parts that
   overlap in x and lie close in y, or touch when dilated) and scores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import NothingFoundError, ParameterError
from ..loading import ImageSource, _load
from .common import odd, sample_values, working_image

__all__ = ["ink_map", "ink_mask", "ink_threshold", "find_digits", "analyse_digits", "detect_polarity", "DigitRegion", "DigitAnalysis"]

# Marks with less contrast than this are never ink.
MIN_CONTRAST = 0.12


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


def ink_map(rgb: np.ndarray, *, polarity: str = "auto") -> tuple[np.ndarray, str]:
    """Contrast of every pixel against the paper around it.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
        The photo.
    polarity : {"auto", "dark", "light"}, optional
        Whether the ink is darker or lighter than its background; ``"auto"``
        decides with :func:`detect_polarity`.

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
    k = odd(max(height, width) / 8.0)
    image = rgb.astype(np.float32)
    if polarity == "dark":
        paper = _paper(rgb, cv2.MORPH_CLOSE, k)
        contrast = (paper - image) / np.maximum(paper, 24.0)
    else:
        paper = _paper(rgb, cv2.MORPH_OPEN, k)
        # The light's strength cancels out; the floor keeps sensor noise on a dark
        # board from turning into contrast.
        contrast = (image - paper) / np.maximum(image, 80.0)
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


def _remove_ruled_lines(mask: np.ndarray, faint: np.ndarray) -> np.ndarray:
    """Remove thin straight lines that run across the image (ruled or squared paper).

    A line is a horizontal run at least 60% of the image's width long (a
    vertical one, 80% of its height) and at most 2.5% of it thick, found in
    ``faint``, a mask at a lower threshold where the lines are unbroken; a
    digit's stroke is never that long and thin at once.
    """
    height, width = mask.shape
    lines = np.zeros_like(mask)
    for axis, extent, length in ((1, width, 0.6), (0, height, 0.8)):
        if extent < 40 or np.count_nonzero(faint, axis=axis).max() < length * extent:
            continue  # no row (column) holds enough ink for a line
        shape = (int(length * width), 1) if axis == 1 else (1, int(length * height))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, shape)
        runs = cv2.morphologyEx(faint, cv2.MORPH_OPEN, kernel)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
        for i in range(1, count):
            length = max(stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT])
            if stats[i, cv2.CC_STAT_AREA] / length <= max(3.0, 0.025 * extent):
                lines[labels == i] = 1
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


def _group_components(stats: np.ndarray, keep: list[int], gap: float) -> list[list[int]]:
    """Union components whose boxes overlap in x and lie close in y, or nearly touch."""
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
            stacked = x_overlap >= 0.5 * min(aw, bw) and y_gap <= 0.6 * max(ah, bh)
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
        part's size) and long thin lines are left out.
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
    for group in _group_components(stats, keep, gap):
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
        if max(w, h) < max(6.0, 0.015 * max(height, width)):
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


def analyse_digits(source: ImageSource, *, max_pixels: int, min_side: int) -> DigitAnalysis:
    """Load ``source`` and find its digits; raise :class:`NothingFoundError` if there are none."""
    loaded = _load(source, max_pixels=max_pixels, min_side=min_side)
    work = working_image(loaded.rgb)
    ink, polarity = ink_map(work)
    threshold = ink_threshold(ink)
    mask = ink_mask(ink, threshold)
    regions = find_digits(ink, mask)
    if not regions:
        raise NothingFoundError(
            loaded.name,
            "no digit found: the image holds no marks that stand out from the paper",
            "photograph the digit closer, in even light",
        )
    scale = (loaded.full_shape[0] / work.shape[0], loaded.full_shape[1] / work.shape[1])
    return DigitAnalysis(work, ink, threshold, mask, regions, polarity, scale)
