"""Crop, fit into a box, centre by mass, deskew and stroke width: pure array geometry."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import ParameterError

__all__ = [
    "bounding_box",
    "crop_to_content",
    "fit_to_box",
    "center_by_mass",
    "deskew",
    "stroke_width",
    "render_strokes",
    "box_size_for",
]


def box_size_for(size: int, box_fraction: float = 20 / 28) -> int:
    """Side of the box an object is fitted into for an output of ``size`` pixels.

    Examples
    --------
    >>> box_size_for(28)
    20
    >>> box_size_for(56)
    40
    """
    if size < 4:
        raise ParameterError("size", f"size must be at least 4 pixels, got {size}")
    return max(1, int(round(size * box_fraction)))


def bounding_box(image: np.ndarray, threshold: float = 0.0) -> tuple[int, int, int, int] | None:
    """``(x, y, width, height)`` of the pixels above ``threshold``, or None if there are none.

    Parameters
    ----------
    image : (M, N) ndarray
    threshold : float, optional

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((5, 6)); a[1:3, 2:5] = 1
    >>> bounding_box(a)
    (2, 1, 3, 2)
    """
    rows = np.flatnonzero((image > threshold).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def crop_to_content(image: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Crop ``image`` to the bounding box of the pixels above ``threshold``."""
    box = bounding_box(image, threshold)
    if box is None:
        return image[:0, :0]
    x, y, w, h = box
    return image[y : y + h, x : x + w]


def fit_to_box(image: np.ndarray, box: int) -> np.ndarray:
    """Resize ``image`` so that its longer side is ``box`` pixels, keeping the aspect ratio.

    Shrinking uses area averaging (anti-aliasing, as MNIST did); enlarging uses
    bilinear interpolation.

    Parameters
    ----------
    image : (M, N) ndarray of float32
    box : int

    Returns
    -------
    fitted : (P, Q) ndarray of float32
        ``max(P, Q) == box``.
    """
    height, width = image.shape[:2]
    scale = box / max(height, width)
    new_w = max(1, min(box, int(round(width * scale))))
    new_h = max(1, min(box, int(round(height * scale))))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image.astype(np.float32), (new_w, new_h), interpolation=interpolation)


def center_by_mass(image: np.ndarray, size: int) -> np.ndarray:
    """Place ``image`` in a ``size`` x ``size`` canvas with its centre of mass at the centre.

    The translation is rounded to whole pixels (as in MNIST); ink pushed off the
    canvas is cut.

    Parameters
    ----------
    image : (M, N) ndarray of float32
        Non-negative weights, at most ``size`` on each side.
    size : int

    Returns
    -------
    canvas : (size, size) ndarray of float32
    """
    height, width = image.shape
    total = float(image.sum())
    if total <= 0.0:
        cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    else:
        cy = float((image.sum(axis=1) * np.arange(height)).sum() / total)
        cx = float((image.sum(axis=0) * np.arange(width)).sum() / total)
    top = int(np.floor(size / 2.0 - cy + 0.5))
    left = int(np.floor(size / 2.0 - cx + 0.5))
    canvas = np.zeros((size, size), dtype=np.float32)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(size, top + height), min(size, left + width)
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = image[y0 - top : y1 - top, x0 - left : x1 - left]
    return canvas


def deskew(image: np.ndarray) -> np.ndarray:
    """Shear ``image`` horizontally so that its main axis is vertical (second moments).

    Parameters
    ----------
    image : (M, N) ndarray of float32

    Returns
    -------
    deskewed : (M, P) ndarray of float32
        Wide enough to hold the sheared image.
    """
    moments = cv2.moments(image.astype(np.float32))
    if abs(moments["mu02"]) < 1e-6:
        return image
    skew = moments["mu11"] / moments["mu02"]
    height, width = image.shape
    cy = moments["m01"] / moments["m00"]
    pad = int(np.ceil(abs(skew) * height)) + 1
    # Inverse map: source x = output x + skew * (y - cy) - pad.
    matrix = np.array([[1.0, skew, -skew * cy - pad], [0.0, 1.0, 0.0]], dtype=np.float32)
    return cv2.warpAffine(
        image.astype(np.float32),
        matrix,
        (width + 2 * pad, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderValue=0.0,
    )


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of the shapes in ``mask``: area divided by skeleton length.

    Parameters
    ----------
    mask : (M, N) ndarray of bool

    Returns
    -------
    width : float
        In pixels; 0 for an empty mask.
    """
    from skimage.morphology import skeletonize

    area = float(mask.sum())
    if area == 0:
        return 0.0
    length = float(skeletonize(mask).sum())
    return area / max(length, 1.0)


def render_strokes(mask: np.ndarray, width: float) -> np.ndarray:
    """Redraw the strokes of ``mask`` with a round pen of ``width`` pixels.

    The skeleton of the mask is drawn again with an anti-aliased round pen, so
    every stroke gets the same width whatever pen wrote it.

    Parameters
    ----------
    mask : (M, N) ndarray of bool
    width : float
        Pen width in pixels.

    Returns
    -------
    strokes : (M, N) ndarray of float32
        Coverage in [0, 1].
    """
    from skimage.morphology import skeletonize

    skeleton = skeletonize(mask)
    if not skeleton.any():
        return mask.astype(np.float32)
    distance = cv2.distanceTransform((~skeleton).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(width / 2.0 + 0.5 - distance, 0.0, 1.0).astype(np.float32)
