"""Test helpers: synthetic photos and encoded files made in memory."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def page_with_digit(
    *,
    paper=(235, 235, 230),
    ink=(25, 25, 30),
    size=(240, 200),
    pen=6,
    digit="7",
) -> np.ndarray:
    """An RGB photo of paper with one digit drawn by OpenCV's Hershey font."""
    height, width = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = paper
    scale = height / 60.0
    (tw, th), _ = cv2.getTextSize(digit, cv2.FONT_HERSHEY_SIMPLEX, scale, pen)
    origin = ((width - tw) // 2, (height + th) // 2)
    cv2.putText(image, digit, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, ink, pen, cv2.LINE_AA)
    return image


def ruled(photo: np.ndarray, *, spacing: int, angle: float = 0.0, squared: bool = False, offset: int = 0, colour=(120, 150, 210)) -> np.ndarray:
    """``photo`` on ruled (or squared) paper turned ``angle`` degrees, the lines under the ink.

    The lines are ``spacing`` pixels apart, one through row ``offset`` at the
    left edge; a positive ``angle`` makes them rise to the right.
    """
    height, width = photo.shape[:2]
    paper = np.full_like(photo, 255)
    slope = np.tan(np.radians(angle))
    reach = int(abs(slope) * max(height, width)) + spacing
    for y in range(offset - spacing * ((offset + reach) // spacing), height + reach, spacing):
        cv2.line(paper, (0, y), (width - 1, int(round(y - slope * (width - 1)))), colour, 2, cv2.LINE_AA)
    for x in range(-reach, width + reach, spacing) if squared else ():
        cv2.line(paper, (x, 0), (int(round(x + slope * (height - 1))), height - 1), colour, 2, cv2.LINE_AA)
    return np.minimum(photo, paper)


def encode(image: np.ndarray | Image.Image, fmt: str, **params) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
