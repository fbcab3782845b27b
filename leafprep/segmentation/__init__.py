"""Segmentation: the mask of the object (a digit's ink, a leaf) in a photo.

:func:`segment` is the entry point; :mod:`.digits` and :mod:`.leaves` hold the
two recipes.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import NothingFoundError
from ..geometry import bounding_box
from ..loading import DEFAULT_MAX_PIXELS, ImageSource, _load
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
)

__all__ = [
    "DETAIL_SIDE",
    "KINDS",
    "WORK_SIDE",
    "DigitAnalysis",
    "DigitRegion",
    "LeafAnalysis",
    "analyse_digits",
    "analyse_leaf",
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
    "light_field",
    "mask_doubts",
    "refine_edges",
    "segment",
    "shadow_distance",
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
