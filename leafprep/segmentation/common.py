"""Pieces shared by the digit and leaf segmenters."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import NothingFoundError, ParameterError

__all__ = ["KINDS", "MIN_IMAGE_SIDE", "WORK_SIDE", "nothing_found", "validate_kind", "working_image"]

#: Kinds of object leafprep segments and normalises.
KINDS = ("digit", "leaf")

# Long side of the image that segmentation works on (pixels).
WORK_SIDE = 1280

#: An image with a side shorter than this that holds no object is called too small rather than empty.
MIN_IMAGE_SIDE = 16


def nothing_found(name: str, shape: tuple[int, ...], reason: str, hint: str, what: str) -> NothingFoundError:
    """The error for a photo in which no ``what`` (digit, leaf) was found: ``reason`` and ``hint``, or, for an image
    under :data:`MIN_IMAGE_SIDE` pixels on a side, that it is too small to hold one."""
    height, width = shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        return NothingFoundError(
            name, f"no {what} found: the image is only {width}x{height} pixels", f"give the photo itself, at least {MIN_IMAGE_SIDE} pixels a side"
        )
    return NothingFoundError(name, reason, hint)


def order_statistics(image: np.ndarray, where: np.ndarray, ranks: tuple[int, ...], channel: int = 0) -> list[int]:
    """The values of the given ranks (0: the smallest) among one 8-bit channel of ``image`` under ``where``.

    What ``np.partition(image[where][..., channel], ranks)`` would pick, from
    OpenCV's histogram of the channel under the mask (several times faster on
    a leaf's tens of thousands of pixels).

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray of uint8
    where : (M, N) ndarray of bool
        Holds at least ``max(ranks) + 1`` pixels.
    ranks : tuple of int
    channel : int, optional

    Returns
    -------
    values : list of int
    """
    histogram = cv2.calcHist([image], [channel], where.view(np.uint8), [256], [0, 256])
    below = np.cumsum(histogram.reshape(-1).astype(np.int64))
    return [int(np.searchsorted(below, rank, side="right")) for rank in ranks]


def validate_kind(kind: str, allowed: tuple[str, ...] = KINDS) -> str:
    """Return ``kind`` if it is one of ``allowed``, else raise :class:`ParameterError`."""
    if kind not in allowed:
        raise ParameterError("kind", f"kind must be one of {set(allowed)}, got {kind!r}")
    return kind


def working_image(rgb: np.ndarray, work_side: int = WORK_SIDE, *, keep: float = 0.8) -> np.ndarray:
    """Shrink ``rgb`` so that its long side is at most ``work_side`` (INTER_AREA).

    Images that would shrink by a factor of ``keep`` or more are kept as they
    are (by default those up to a quarter longer: shrinking them would cost
    more than it saves; ``keep=1.0`` keeps only those that fit already).
    """
    height, width = rgb.shape[:2]
    scale = work_side / max(height, width)
    if scale >= keep:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def sample_values(values: np.ndarray, limit: int = 100_000) -> np.ndarray:
    """An evenly strided sample of at most about ``limit`` values, for robust statistics."""
    flat = values.reshape(-1)
    return flat[:: max(1, flat.size // limit)]


def odd(value: float) -> int:
    value = max(3, int(round(value)))
    return value if value % 2 else value + 1
