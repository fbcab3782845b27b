"""Pictures for the page: PNG bytes and data URLs, heat maps, weight maps, boxes.

Everything works on numpy arrays with OpenCV and Pillow (no matplotlib: a
picture for a request must take milliseconds).
"""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

from leafprep.segmentation.common import working_image

__all__ = ["boxes", "data_url", "diverging", "heat_over", "png", "shrink", "to_uint8", "viridis"]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A [0, 1] float picture (H, W), (H, W, 1) or (H, W, 3), or a bool mask, as uint8 for a PNG."""
    values = image.astype(np.float32)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def shrink(picture: np.ndarray, side: int) -> np.ndarray:
    """``picture`` with its longer side at most ``side`` pixels (area averaging); small pictures unchanged."""
    return working_image(picture, side, keep=1.0)


def png(picture: np.ndarray) -> bytes:
    """PNG bytes of a uint8 picture (H, W) or (H, W, 3), or of a [0, 1] float picture.

    >>> png(np.zeros((2, 2), np.uint8))[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    if picture.dtype != np.uint8:
        picture = to_uint8(picture)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def data_url(picture: np.ndarray) -> str:
    """The picture as a ``data:image/png;base64,...`` URL."""
    return "data:image/png;base64," + base64.b64encode(png(picture)).decode("ascii")


def _to_rgb(picture: np.ndarray) -> np.ndarray:
    picture = picture if picture.dtype == np.uint8 else to_uint8(picture)
    return picture if picture.ndim == 3 else np.repeat(picture[:, :, None], 3, axis=2)


def heat_over(image: np.ndarray, heat: np.ndarray, *, scale: int = 4) -> np.ndarray:
    """A heat map in [0, 1] (jet colours) half over the network's input, both enlarged ``scale`` times: RGB uint8."""
    height, width = heat.shape
    size = (width * scale, height * scale)
    base = cv2.resize(_to_rgb(image), size, interpolation=cv2.INTER_NEAREST)
    hot = cv2.resize(to_uint8(heat), size, interpolation=cv2.INTER_LINEAR)
    colours = cv2.cvtColor(cv2.applyColorMap(hot, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(base, 0.5, colours, 0.5, 0.0)


def viridis(image: np.ndarray) -> np.ndarray:
    """A one-channel [0, 1] picture in viridis colours (as ``leafprep visualize`` draws dreams); RGB pictures as they are."""
    if image.ndim == 3 and image.shape[2] == 3:
        return to_uint8(image)
    return cv2.cvtColor(cv2.applyColorMap(to_uint8(image), cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def diverging(values: np.ndarray, scale: float) -> np.ndarray:
    """Weights on a blue (for) - white - red (against) scale symmetric around zero, saturating at ``scale``: RGB uint8.

    >>> diverging(np.array([[1.0, 0.0, -1.0]]), 1.0)[0].tolist()
    [[33, 102, 172], [247, 247, 247], [178, 24, 43]]
    """
    t = np.clip(values / (scale or 1.0), -1.0, 1.0)[..., None]
    white = np.array([247, 247, 247], np.float32)
    blue = np.array([33, 102, 172], np.float32)  # the ends of matplotlib's RdBu, as `leafprep visualize` draws weights
    red = np.array([178, 24, 43], np.float32)
    picture = np.where(t >= 0, white + t * (blue - white), white - t * (red - white))
    return np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def boxes(photo: np.ndarray, found: list[tuple[tuple[int, int, int, int], str]], *, colour: tuple[int, int, int] = (0, 170, 60)) -> np.ndarray:
    """The photo with each ``(box, text)`` drawn: a rectangle ``(x, y, w, h)`` and its text above it (RGB uint8)."""
    picture = _to_rgb(photo).copy()
    thickness = max(2, round(max(picture.shape[:2]) / 300))
    for (x, y, w, h), text in found:
        cv2.rectangle(picture, (x, y), (x + w - 1, y + h - 1), colour, thickness, cv2.LINE_AA)
        if text:
            scale = max(0.5, h / 60.0)
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            top = max(th + 4, y - 4)
            cv2.rectangle(picture, (x, top - th - 4), (x + tw + 4, top + 2), colour, -1)
            cv2.putText(picture, text, (x + 2, top - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return picture
