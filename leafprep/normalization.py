"""MNIST-style normalisation: from a photo to a centred ``size`` x ``size`` image.

MNIST's own recipe (LeCun et al. 1998), applied to the ink that
:mod:`leafprep.segmentation` finds:

1. crop the digit and turn its ink contrast into pen coverage in [0, 1];
2. if the pen was much thinner or thicker than MNIST's pens, redraw the
   skeleton with a pen of the nearest MNIST width (10th to 90th percentile of
   MNIST's stroke widths, relative to the digit's size), so thin ballpoints and
   fat markers come out as thick as MNIST strokes;
3. optionally deskew (second moments);
4. fit into a ``box`` x ``box`` square (``box = size * 20 / 28``) keeping the
   aspect ratio, shrinking with area averaging (anti-aliasing);
5. translate so that the centre of mass lies at the centre of the
   ``size`` x ``size`` image.

The result is float32 in [0, 1], ink bright on black, like MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import (
    bounding_box,
    box_size_for,
    center_by_mass,
    crop_to_content,
    fit_to_box,
    render_strokes,
    stroke_width,
)
from .geometry import (
    deskew as deskew_image,
)
from .loading import DEFAULT_MAX_PIXELS, ImageSource
from .segmentation import WORK_SIDE, DigitAnalysis, DigitRegion, analyse_digits, validate_kind

__all__ = ["Digit", "DigitSteps", "normalize", "normalize_all", "normalize_steps", "STROKE_RANGE"]

#: Stroke widths MNIST digits have, as a fraction of the digit's longer side
#: (10th and 90th percentile over MNIST test digits, measured at half intensity).
STROKE_RANGE = (0.097, 0.185)


@dataclass(frozen=True)
class Digit:
    """One normalised digit of a sheet.

    Attributes
    ----------
    image : (size, size) ndarray of float32
        The normalised digit, in [0, 1], ink bright on black.
    box : tuple of int
        ``(x, y, width, height)`` of the digit in the upright photo, in pixels.
    """

    image: np.ndarray
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class DigitSteps:
    """Every stage of the normalisation of one digit, for pictures and debugging.

    Attributes
    ----------
    photo : (M, N, 3) ndarray of uint8
        The upright photo at working resolution.
    flattened : (M, N) ndarray of float32
        The photo with the paper and its light removed: ``1 - ink contrast``.
    mask : (M, N) ndarray of bool
        All ink found.
    digit_mask : (M, N) ndarray of bool
        The ink of the chosen digit.
    crop : (P, Q) ndarray of float32
        Pen coverage of the digit, after stroke-width correction.
    result : (size, size) ndarray of float32
        The normalised digit.
    polarity : {"dark", "light"}
        Whether the ink was darker or lighter than the paper.
    """

    photo: np.ndarray
    flattened: np.ndarray
    mask: np.ndarray
    digit_mask: np.ndarray
    crop: np.ndarray
    result: np.ndarray
    polarity: str


def _min_side(size: int) -> int:
    return max(WORK_SIDE // 2, 24 * size)


def _coverage(ink: np.ndarray, region: DigitRegion, threshold: float) -> np.ndarray:
    """Pen coverage in [0, 1] of one digit, cropped with room for thicker strokes."""
    x, y, w, h = region.box
    pad = max(3, int(0.25 * max(w, h)))
    height, width = ink.shape
    y0, y1, x0, x1 = max(0, y - pad), min(height, y + h + pad), max(0, x - pad), min(width, x + w + pad)
    ink_crop = ink[y0:y1, x0:x1]
    own = cv2.dilate(region.mask[y0:y1, x0:x1].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    strokes = ink_crop[region.mask[y0:y1, x0:x1]]
    core = max(float(np.percentile(strokes, 90)), threshold) if strokes.size else threshold
    coverage = np.clip((ink_crop - 0.25 * core) / (0.5 * core), 0.0, 1.0) * own
    # The mask has the last word inside the digit (strokes mended across ruled lines).
    coverage = np.maximum(coverage, region.mask[y0:y1, x0:x1])
    # Room on every side, so a thicker redrawn pen still fits.
    return np.pad(coverage.astype(np.float32), pad)


def _even_strokes(coverage: np.ndarray) -> np.ndarray:
    """Redraw strokes much thinner or thicker than MNIST's with the nearest MNIST-like pen."""
    binary = coverage > 0.5
    box = bounding_box(binary)
    if box is None:
        return coverage
    extent = float(max(box[2], box[3]))
    width = stroke_width(binary)
    relative = width / extent
    low, high = STROKE_RANGE
    if low <= relative <= high:
        return coverage
    target = min(max(relative, low), high)
    skeleton_extent = max(1.0, extent - width)
    pen = target * skeleton_extent / (1.0 - target)
    return render_strokes(binary, pen)


def _finish(coverage: np.ndarray, size: int, deskew: bool) -> np.ndarray:
    if deskew:
        coverage = deskew_image(coverage)
    content = crop_to_content(coverage, 0.02)
    if content.size == 0:
        return np.zeros((size, size), dtype=np.float32)
    fitted = np.clip(fit_to_box(content, box_size_for(size)), 0.0, 1.0)
    result = center_by_mass(fitted, size)
    peak = float(result.max())
    if peak > 0:
        result /= peak
    return result.astype(np.float32)


# Pen coverage is kept at most this many times the output box: enough to
# anti-alias the final shrink, and it bounds the cost of the skeleton.
OVERSAMPLING = 6


def _digit_image(ink: np.ndarray, region: DigitRegion, threshold: float, size: int, deskew: bool) -> tuple[np.ndarray, np.ndarray]:
    coverage = _coverage(ink, region, threshold)
    scale = OVERSAMPLING * box_size_for(size) / max(region.box[2], region.box[3])
    if scale < 1.0:
        shape = (max(1, round(coverage.shape[1] * scale)), max(1, round(coverage.shape[0] * scale)))
        coverage = cv2.resize(coverage, shape, interpolation=cv2.INTER_AREA)
    coverage = _even_strokes(coverage)
    return _finish(coverage, size, deskew), coverage


def _analyse(source: ImageSource, kind: str, size: int, max_pixels: int) -> DigitAnalysis:
    validate_kind(kind)
    box_size_for(size)  # validates size
    return analyse_digits(source, max_pixels=max_pixels, min_side=_min_side(size))


def normalize_steps(
    source: ImageSource,
    kind: str = "digit",
    size: int = 28,
    *,
    deskew: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DigitSteps:
    """Normalise the main digit of a photo and keep every intermediate stage.

    Same parameters as :func:`normalize`.

    Returns
    -------
    steps : DigitSteps
        ``steps.result`` equals ``normalize(source, kind, size, deskew=deskew)``.
    """
    found = _analyse(source, kind, size, max_pixels)
    best = found.regions[0]
    result, crop = _digit_image(found.ink, best, found.threshold, size, deskew)
    return DigitSteps(found.photo, 1.0 - found.ink, found.mask, best.mask, crop, result, found.polarity)


def normalize(
    source: ImageSource,
    kind: str = "digit",
    size: int = 28,
    *,
    deskew: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Turn a photo of a handwritten digit into an MNIST-style image.

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`leafprep.load_image` accepts.
    kind : {"digit"}, optional
        What the photo shows.
    size : int, optional
        Side of the output in pixels; the digit is fitted into a box of
        ``round(size * 20 / 28)`` pixels, as MNIST fits 20x20 into 28x28.
    deskew : bool, optional
        Shear the digit upright (second moments) before fitting it.
    max_pixels : int, optional
        Refuse larger images before decoding them.

    Returns
    -------
    image : (size, size) ndarray of float32
        Values in [0, 1], ink bright on black, centre of mass at the centre.

    Raises
    ------
    ImageLoadError
        The source cannot be read as an image.
    NothingFoundError
        No digit stands out from the paper.
    ParameterError
        ``kind`` or ``size`` is not valid.

    Examples
    --------
    >>> import numpy as np
    >>> page = np.full((100, 80), 230, dtype=np.uint8)
    >>> page[30:70, 38:43] = 20          # a "1" in dark ink
    >>> digit = normalize(page)
    >>> digit.shape, digit.dtype, float(digit.max())
    ((28, 28), dtype('float32'), 1.0)
    """
    return normalize_steps(source, kind, size, deskew=deskew, max_pixels=max_pixels).result


def _reading_order(regions: list[DigitRegion]) -> list[DigitRegion]:
    """Rows top to bottom (a region joins a row it overlaps vertically), then left to right."""
    rows: list[list[DigitRegion]] = []
    for region in sorted(regions, key=lambda r: r.box[1] + r.box[3] / 2.0):
        _, y, _, h = region.box
        center = y + h / 2.0
        if rows:
            last = rows[-1]
            top = min(r.box[1] for r in last)
            bottom = max(r.box[1] + r.box[3] for r in last)
            if top <= center <= bottom:
                last.append(region)
                continue
        rows.append([region])
    return [region for row in rows for region in sorted(row, key=lambda r: r.box[0])]


def _sheet_digits(regions: list[DigitRegion]) -> list[DigitRegion]:
    """Keep the regions of a sheet that are digits: of a digit's height and ink."""
    inner = [r for r in regions if not r.touches_border] or regions
    tallest = max(r.box[3] for r in inner)
    strongest = max(r.score for r in inner)
    return [r for r in inner if r.box[3] >= 0.35 * tallest and r.score >= 0.05 * strongest]


def normalize_all(
    source: ImageSource,
    kind: str = "digit",
    size: int = 28,
    *,
    deskew: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Digit]:
    """Find and normalise every digit on a sheet, in reading order.

    Parameters
    ----------
    source, kind, size, deskew, max_pixels
        As for :func:`normalize`.

    Returns
    -------
    digits : list of Digit
        Rows top to bottom, each left to right; each with its normalised image
        and its box in the upright photo.

    Raises
    ------
    ImageLoadError, NothingFoundError, ParameterError
        As for :func:`normalize`.
    """
    found = _analyse(source, kind, size, max_pixels)
    scale_y, scale_x = found.scale
    digits = []
    for region in _reading_order(_sheet_digits(found.regions)):
        image, _ = _digit_image(found.ink, region, found.threshold, size, deskew)
        x, y, w, h = region.box
        box = (int(round(x * scale_x)), int(round(y * scale_y)), int(round(w * scale_x)), int(round(h * scale_y)))
        digits.append(Digit(image, box))
    return digits
