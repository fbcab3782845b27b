"""Segmentation: the mask of the object (a digit's ink, a leaf) in a photo.

:func:`segment` (one object a photo) and :func:`segment_all` (every digit of a
sheet, every leaf of a scanner bed) are the entry points; :mod:`.digits`,
:mod:`.leaves` and :mod:`.multiple` hold the recipes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import LeafprepWarning, NothingFoundError
from ..geometry import bounding_box, reading_order
from ..loading import DEFAULT_MAX_PIXELS, ImageSource, _load, describe_source
from .common import KINDS, WORK_SIDE, validate_kind, working_image
from .digits import (
    DigitAnalysis,
    DigitRegion,
    analyse_digits,
    detect_polarity,
    find_digits,
    ink_map,
    ink_mask,
    ink_threshold,
    sheet_digits,
)
from .leaves import (
    DETAIL_SIDE,
    LEAF_WORK_SIDE,
    LeafAnalysis,
    analyse_leaf,
    background_distance,
    cut_petiole,
    edge_spread,
    leaf_mask,
    light_field,
    mask_doubts,
    refine_edges,
    shadow_distance,
    spread_doubt,
)
from .multiple import LeafObject, LeavesAnalysis, analyse_leaves, leaf_masks, leaf_notes, soft_area, split_touching

__all__ = [
    "DETAIL_SIDE",
    "KINDS",
    "WORK_SIDE",
    "DigitAnalysis",
    "DigitRegion",
    "Found",
    "LeafAnalysis",
    "LeafObject",
    "LeavesAnalysis",
    "analyse_digits",
    "analyse_leaf",
    "analyse_leaves",
    "background_distance",
    "cut_petiole",
    "detect_kind",
    "detect_polarity",
    "edge_spread",
    "find_digits",
    "ink_map",
    "ink_mask",
    "ink_threshold",
    "leaf_mask",
    "leaf_masks",
    "leaf_notes",
    "light_field",
    "mask_doubts",
    "refine_edges",
    "segment",
    "segment_all",
    "shadow_distance",
    "sheet_digits",
    "soft_area",
    "split_touching",
    "spread_doubt",
    "validate_kind",
    "working_image",
]


def detect_kind(photo: np.ndarray) -> str:
    """Tell a photo of a digit from a photo of a leaf.

    The rule: segment the photo as a leaf (at 512 pixels). A leaf is a solid
    blade: the largest disc inside the object has a radius of at least 12% of
    its longer side, and the object fills at least 40% of its convex hull. Pen
    strokes are thinner than that. On the development images (130 digit
    photos and MNIST digits drawn on paper, 143 leaf scans and photos) the
    rule is right 90% of the time; narrow leaves (willow) and thick or round
    digits (a fat 0) are its usual mistakes, so pass ``kind`` when you know it.

    Parameters
    ----------
    photo : (M, N, 3) ndarray of uint8

    Returns
    -------
    kind : {"digit", "leaf"}
    """
    small = working_image(photo, 512)
    try:
        mask, _, _, _ = leaf_mask(small)
    except NothingFoundError:
        return "digit"
    box = bounding_box(mask)
    if box is None:
        return "digit"
    radius = float(cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5).max())
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    solidity = float(mask.sum()) / max(cv2.contourArea(cv2.convexHull(np.concatenate(contours))), 1.0)
    return "leaf" if radius >= 0.12 * max(box[2], box[3]) and solidity >= 0.4 else "digit"


def segment(
    source: ImageSource,
    kind: str = "digit",
    *,
    fill_holes: bool = False,
    petiole: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Mask of the object in a photo.

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`leafprep.load_image` accepts.
    kind : {"digit", "leaf", "auto"}, optional
        What to look for: the ink of the most prominent digit, or one leaf;
        ``"auto"`` decides with :func:`detect_kind`.
    fill_holes : bool, optional
        Leaves only: fill every hole in the blade (small ones always are).
    petiole : bool, optional
        Leaves only: keep the petiole; ``False`` cuts it off.
    max_pixels : int, optional
        Pixel limit passed to the loader.

    Returns
    -------
    mask : (M, N) ndarray of bool
        With the height and width of the upright (EXIF-applied) image.

    Raises
    ------
    ImageLoadError
        The source cannot be read.
    NothingFoundError
        No digit stands out from the paper, or no leaf from the background.

    Warns
    -----
    LeafprepWarning
        The leaf touches the border, there are several leaves, or the mask is
        doubtful (the message starts with ``"doubtful mask: "``; see
        :func:`leafprep.segmentation.mask_doubts`).
    """
    validate_kind(kind, (*KINDS, "auto"))
    if kind == "auto":
        loaded = _load(source, max_pixels=max_pixels, min_side=LEAF_WORK_SIDE // 2)
        kind = detect_kind(loaded.rgb)
        source = loaded.rgb
    if kind == "leaf":
        leaf = analyse_leaf(source, max_pixels=max_pixels, fill_holes=fill_holes, petiole=petiole)
        mask, scale = leaf.mask, leaf.scale
    else:
        digits = analyse_digits(source, max_pixels=max_pixels, min_side=WORK_SIDE // 2)
        mask, scale = digits.regions[0].mask, digits.scale
    height, width = round(mask.shape[0] * scale[0]), round(mask.shape[1] * scale[1])
    if mask.shape == (height, width):
        return mask.copy()
    return cv2.resize(mask.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR) > 127


@dataclass(frozen=True)
class Found:
    """One object of a photo that holds several: a digit of a sheet, a leaf of a scanner bed.

    Attributes
    ----------
    index : int
        Its place in reading order (rows top to bottom, each left to right), from 0.
    box : tuple of int
        ``(x, y, width, height)`` in pixels of the upright photo at full size.
    mask : (height, width) ndarray of bool
        The object within ``box``, at full size.
    area : float
        In full-size pixels; for a leaf to a fraction of a pixel
        (:func:`~leafprep.segmentation.multiple.soft_area`).
    notes : tuple of str
        What the user should know of this object (cut by the border, split from
        a touching leaf, a doubtful mask: these start with ``"doubtful mask: "``).
    """

    index: int
    box: tuple[int, int, int, int]
    mask: np.ndarray
    area: float
    notes: tuple[str, ...] = ()

    def area_mm2(self, px_per_mm: float) -> float:
        """The area in square millimetres, for a photo of ``px_per_mm`` full-size pixels per millimetre."""
        return self.area / px_per_mm**2


def _to_full(mask: np.ndarray, box: tuple[int, int, int, int], scale: tuple[float, float]) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """A working-size crop (``mask`` at ``box``) as a full-size box and crop."""
    x, y, w, h = box
    sy, sx = scale
    x0, y0 = int(round(x * sx)), int(round(y * sy))
    x1, y1 = max(x0 + 1, int(round((x + w) * sx))), max(y0 + 1, int(round((y + h) * sy)))
    if (x1 - x0, y1 - y0) == (w, h):
        return (x0, y0, w, h), mask.copy()
    resized = cv2.resize(mask.astype(np.uint8) * 255, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) > 127
    return (x0, y0, x1 - x0, y1 - y0), resized


def segment_all(
    source: ImageSource,
    kind: str = "leaf",
    *,
    fill_holes: bool = False,
    petiole: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Found]:
    """Every object of a photo, separately, in reading order: the leaves of a scanner bed, the digits of a sheet.

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`leafprep.load_image` accepts.
    kind : {"leaf", "digit"}, optional
        What to look for. Leaves: reference squares, colour chips, labels,
        specks and fragments far smaller than the leaves are left out (and
        said so in a warning); touching leaves are split at a narrow neck
        or between two notches of the outline (:mod:`leafprep.segmentation.multiple`).
    fill_holes, petiole : bool, optional
        Leaves only, as for :func:`segment`.
    max_pixels : int, optional
        Pixel limit passed to the loader.

    Returns
    -------
    objects : list of Found
        In reading order, each with its box, mask (within the box) and notes.

    Raises
    ------
    ImageLoadError
        The source cannot be read.
    NothingFoundError
        No leaf (or digit) stands out from the background.

    Warns
    -----
    LeafprepWarning
        What was left out (one warning), and each object's notes, numbered
        ("leaf 03: the leaf touches the image border ...").

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:300, :400]
    >>> bed = np.full((300, 400, 3), 240, np.uint8)
    >>> bed[((yy - 100) / 50) ** 2 + ((xx - 70) / 30) ** 2 < 1] = (40, 110, 30)    # two oval "leaves"
    >>> bed[((yy - 150) / 70) ** 2 + ((xx - 290) / 40) ** 2 < 1] = (40, 110, 30)
    >>> [found.box for found in segment_all(bed)]
    [(41, 51, 59, 99), (251, 81, 79, 139)]
    """
    validate_kind(kind, KINDS)
    if kind == "leaf":
        analysis = analyse_leaves(source, max_pixels=max_pixels, fill_holes=fill_holes, petiole=petiole)
        found = []
        for index, leaf in enumerate(analysis.leaves):
            box, mask = _to_full(leaf.mask, leaf.box, analysis.scale)
            found.append(Found(index, box, mask, leaf.area * analysis.scale[0] * analysis.scale[1], tuple(leaf.notes)))
        return found
    digits = analyse_digits(source, max_pixels=max_pixels, min_side=WORK_SIDE // 2)
    chosen = sheet_digits(digits.regions)
    regions = [chosen[i] for i in reading_order([region.box for region in chosen])]
    found = []
    for index, region in enumerate(regions):
        x, y, w, h = region.box
        box, mask = _to_full(region.mask[y : y + h, x : x + w], region.box, digits.scale)
        notes = ("the digit touches the image border",) if region.touches_border else ()
        for note in notes:
            warnings.warn(LeafprepWarning(describe_source(source), f"digit {index:02d}: {note}"), stacklevel=2)
        found.append(Found(index, box, mask, float(mask.sum()), notes))
    return found
