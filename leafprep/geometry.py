"""Crop, fit into a box, centre by mass, deskew and stroke width: pure array geometry."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import ParameterError

__all__ = [
    "reading_order",
    "bounding_box",
    "crop_to_content",
    "fit_to_box",
    "center_by_mass",
    "deskew",
    "stroke_width",
    "render_strokes",
    "box_size_for",
    "main_axis_angle",
    "rotate",
    "MNIST_MARGIN",
]


#: MNIST's margin: a 20x20 box in a 28x28 image leaves 4/28 of the side on each side.
MNIST_MARGIN = 4 / 28


def box_size_for(size: int, margin: float = MNIST_MARGIN) -> int:
    """Side of the box an object is fitted into for an output of ``size`` pixels.

    Parameters
    ----------
    size : int
        Side of the output, at least 4.
    margin : float, optional
        Empty border on each side as a fraction of ``size``, in [0, 0.5).

    Examples
    --------
    >>> box_size_for(28)
    20
    >>> box_size_for(56)
    40
    >>> box_size_for(64, margin=0.0)
    64
    """
    if size < 4:
        raise ParameterError("size", f"size must be at least 4 pixels, got {size}")
    if not 0.0 <= margin < 0.5:
        raise ParameterError("margin", f"margin must be in [0, 0.5), got {margin}")
    return max(1, int(round(size * (1.0 - 2.0 * margin))))


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


def center_by_mass(image: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Place ``image`` in a ``size`` x ``size`` canvas with its centre of mass at the centre.

    The translation is rounded to whole pixels (as in MNIST); ink pushed off the
    canvas is cut.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray of float32
        At most ``size`` on each side.
    size : int
    weights : (M, N) ndarray, optional
        Mass of each pixel; ``image`` itself (which must then be 2-D) by default.

    Returns
    -------
    canvas : (size, size) or (size, size, C) ndarray of float32
    """
    height, width = image.shape[:2]
    mass = image if weights is None else weights
    total = float(mass.sum())
    if total <= 0.0:
        cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    else:
        cy = float((mass.sum(axis=1) * np.arange(height)).sum() / total)
        cx = float((mass.sum(axis=0) * np.arange(width)).sum() / total)
    top = int(np.floor(size / 2.0 - cy + 0.5))
    left = int(np.floor(size / 2.0 - cx + 0.5))
    canvas = np.zeros((size, size, *image.shape[2:]), dtype=np.float32)
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


def main_axis_angle(mask: np.ndarray) -> float:
    """Angle in degrees of the main axis of ``mask`` (image moments), counter-clockwise from the x axis.

    Parameters
    ----------
    mask : (M, N) ndarray

    Returns
    -------
    angle : float
        In (-90, 90]; 0 for a horizontal shape, 90 for a vertical one.

    Examples
    --------
    >>> import numpy as np
    >>> bar = np.zeros((20, 20)); bar[2:18, 9:11] = 1
    >>> round(main_axis_angle(bar))
    90
    """
    m = cv2.moments(mask.astype(np.float32))
    if m["m00"] == 0:
        return 0.0
    # Image rows grow downwards, so the y axis is flipped for a counter-clockwise angle.
    angle = 0.5 * np.degrees(np.arctan2(-2.0 * m["mu11"], m["mu20"] - m["mu02"]))
    return float(angle if angle > -90 else angle + 180)


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Rotate ``image`` counter-clockwise by ``angle`` degrees on a canvas large enough to hold it.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray of float32
    angle : float

    Returns
    -------
    rotated : ndarray of float32
        Zero outside the rotated image.
    """
    height, width = image.shape[:2]
    radians = np.radians(angle)
    new_w = int(np.ceil(abs(width * np.cos(radians)) + abs(height * np.sin(radians))))
    new_h = int(np.ceil(abs(width * np.sin(radians)) + abs(height * np.cos(radians))))
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.0)
    matrix[0, 2] += (new_w - width) / 2.0
    matrix[1, 2] += (new_h - height) / 2.0
    return cv2.warpAffine(image.astype(np.float32), matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=0.0)


def reading_order(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """The order in which a person reads objects laid out on a page: rows top to bottom, each left to right.

    An object joins the current row when its vertical centre falls within the
    row's extent; otherwise it starts a new row.

    Parameters
    ----------
    boxes : list of (x, y, width, height)

    Returns
    -------
    order : list of int
        Indexes into ``boxes``.

    Examples
    --------
    >>> reading_order([(50, 0, 10, 10), (0, 2, 10, 10), (0, 40, 10, 10)])
    [1, 0, 2]
    """
    rows: list[list[int]] = []
    extent: list[tuple[float, float]] = []
    for i in sorted(range(len(boxes)), key=lambda k: boxes[k][1] + boxes[k][3] / 2.0):
        _, y, _, h = boxes[i]
        centre = y + h / 2.0
        if rows and extent[-1][0] <= centre <= extent[-1][1]:
            rows[-1].append(i)
            extent[-1] = (min(extent[-1][0], y), max(extent[-1][1], y + h))
            continue
        rows.append([i])
        extent.append((y, y + h))
    return [i for row in rows for i in sorted(row, key=lambda k: boxes[k][0])]
