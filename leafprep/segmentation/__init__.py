"""Segmentation: the mask of the object (a digit's ink, a leaf) in a photo.

:func:`segment` is the entry point; :mod:`.digits` and :mod:`.leaves` hold the
two recipes.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..loading import DEFAULT_MAX_PIXELS, ImageSource
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
from .leaves import LEAF_WORK_SIDE, LeafAnalysis, analyse_leaf, background_distance, cut_petiole, leaf_mask

__all__ = [
    "KINDS",
    "WORK_SIDE",
    "DigitAnalysis",
    "DigitRegion",
    "LeafAnalysis",
    "analyse_digits",
    "analyse_leaf",
    "background_distance",
    "cut_petiole",
    "detect_polarity",
    "find_digits",
    "ink_map",
    "ink_mask",
    "ink_threshold",
    "leaf_mask",
    "segment",
    "validate_kind",
    "working_image",
]


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
    kind : {"digit", "leaf"}, optional
        What to look for: the ink of the most prominent digit, or one leaf.
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
        The leaf touches the border, or there are several leaves.
    """
    validate_kind(kind)
    if kind == "leaf":
        leaf = analyse_leaf(source, max_pixels=max_pixels, min_side=LEAF_WORK_SIDE // 2, fill_holes=fill_holes, petiole=petiole)
        mask, scale = leaf.mask, leaf.scale
    else:
        digits = analyse_digits(source, max_pixels=max_pixels, min_side=WORK_SIDE // 2)
        mask, scale = digits.regions[0].mask, digits.scale
    height, width = round(mask.shape[0] * scale[0]), round(mask.shape[1] * scale[1])
    if mask.shape == (height, width):
        return mask.copy()
    return cv2.resize(mask.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR) > 127
