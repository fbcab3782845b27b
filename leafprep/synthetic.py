"""Synthetic photos of handwritten digits, for sample data, tests and benchmarks.

A digit image (MNIST's, say) is drawn as ink on paper and photographed badly:
coloured, lined or squared paper, blue/black/red ink, faint or heavy pens, uneven
light, a hard shadow, sensor noise, blur and JPEG, and sometimes light chalk on a
dark board.  Every random choice comes from the ``rng`` passed in, so a seed
gives the same picture every time.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ink_on_paper", "random_photo", "sheet_photo"]

_PAPERS = {
    "white": (238, 238, 235),
    "grey": (196, 198, 200),
    "cream": (236, 228, 205),
    "sticky yellow": (250, 238, 130),
    "sticky pink": (250, 190, 210),
    "pale blue": (205, 222, 240),
}
_INKS = {"black": (25, 25, 30), "blue": (25, 45, 150), "red": (175, 30, 35), "pencil": (80, 80, 85)}


def _ink_alpha(digit: np.ndarray, scale: float, pen: float, rng: np.random.Generator | None) -> np.ndarray:
    """Ink coverage of ``digit`` enlarged ``scale`` times; ``pen`` > 1 thickens, < 1 thins."""
    size = (int(round(digit.shape[1] * scale)), int(round(digit.shape[0] * scale)))
    big = cv2.resize(digit.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_CUBIC)
    binary = (big > 0.45).astype(np.uint8)
    radius = int(round(abs(pen - 1.0) * scale * 1.2))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        binary = cv2.dilate(binary, kernel) if pen > 1 else cv2.erode(binary, kernel)
        if not binary.any():  # a pen too thin for this digit: keep the thinnest stroke
            binary = (big > 0.7).astype(np.uint8)
    alpha = cv2.GaussianBlur(binary.astype(np.float32), (0, 0), max(0.6, 0.08 * scale))
    return np.clip(alpha, 0.0, 1.0)


def ink_on_paper(digit: np.ndarray, *, scale: float = 8.0, margin: float = 0.5, ink: tuple[int, int, int] = (20, 20, 25)) -> np.ndarray:
    """Draw ``digit`` (bright on black) as dark ink on plain white paper.

    Parameters
    ----------
    digit : (M, N) ndarray of uint8
        Bright ink on black, e.g. an MNIST image.
    scale : float, optional
        Enlargement of the digit.
    margin : float, optional
        Paper around the digit, as a fraction of its enlarged size.
    ink : tuple of int, optional
        RGB colour of the ink.

    Returns
    -------
    photo : (P, Q, 3) ndarray of uint8
    """
    alpha = _ink_alpha(digit, scale, 1.0, None)
    pad = int(round(margin * alpha.shape[0]))
    alpha = np.pad(alpha, pad)
    paper = np.array((240, 240, 238), np.float32)
    photo = paper * (1 - alpha[..., None]) + np.array(ink, np.float32) * alpha[..., None]
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8)


def random_photo(digit: np.ndarray, rng: np.random.Generator, *, side: int = 480) -> np.ndarray:
    """A hard, random phone photo of ``digit`` (bright on black, e.g. MNIST).

    Parameters
    ----------
    digit : (M, N) ndarray of uint8
    rng : numpy.random.Generator
        Source of every random choice.
    side : int, optional
        Long side of the photo in pixels.

    Returns
    -------
    photo : (H, W, 3) ndarray of uint8
        RGB, JPEG-compressed once.
    """
    height = side
    width = int(side * rng.uniform(0.75, 1.0))
    digit_height = rng.uniform(0.18, 0.7) * height
    pen = float(rng.choice([0.55, 0.8, 1.0, 1.0, 1.3, 1.7]))
    alpha = _ink_alpha(digit, digit_height / digit.shape[0], pen, rng)
    angle = rng.uniform(-8, 8)
    rotation = cv2.getRotationMatrix2D((alpha.shape[1] / 2, alpha.shape[0] / 2), angle, 1.0)
    alpha = cv2.warpAffine(alpha, rotation, (alpha.shape[1], alpha.shape[0]))
    canvas = np.zeros((height, width), np.float32)
    ah, aw = alpha.shape
    ah, aw = min(ah, height), min(aw, width)
    top = int(rng.uniform(0.05 * height, max(0.05 * height + 1, height - ah - 0.05 * height)))
    left = int(rng.uniform(0.05 * width, max(0.05 * width + 1, width - aw - 0.05 * width)))
    top, left = min(top, height - ah), min(left, width - aw)
    canvas[top : top + ah, left : left + aw] = alpha[:ah, :aw]
    alpha = canvas * rng.uniform(0.45, 0.95)  # faint pens to heavy markers

    chalk = rng.random() < 0.12
    if chalk:
        paper = np.array(rng.choice([(35, 40, 38), (30, 55, 45), (20, 20, 25)]), np.float32)
        ink = np.array((235, 235, 228), np.float32)
    else:
        paper = np.array(list(_PAPERS.values())[rng.integers(len(_PAPERS))], np.float32)
        ink = np.array(list(_INKS.values())[rng.integers(len(_INKS))], np.float32)
    image = np.ones((height, width, 3), np.float32) * paper
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 3.0)
    image += texture[..., None] * 4.0
    ruling = rng.random()
    if not chalk and ruling < 0.45:
        spacing = int(rng.uniform(0.06, 0.12) * height)
        line_colour = np.array((150, 175, 215), np.float32)
        offset = int(rng.integers(spacing))
        for y in range(offset, height, spacing):
            image[y : y + 2] = 0.5 * image[y : y + 2] + 0.5 * line_colour
        if ruling < 0.2:  # squared paper
            for x in range(offset, width, spacing):
                image[:, x : x + 2] = 0.5 * image[:, x : x + 2] + 0.5 * line_colour
    image = image * (1 - alpha[..., None]) + ink * alpha[..., None]

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(direction) * xx / width + np.sin(direction) * yy / height) * rng.uniform(0.0, 0.45)
    light = 1.0 - (gradient - gradient.min())
    if rng.random() < 0.5:  # a hard shadow across the page (a hand, a phone)
        nx, ny = np.cos(rng.uniform(0, 2 * np.pi)), np.sin(rng.uniform(0, 2 * np.pi))
        cut = rng.uniform(-0.3, 0.3)
        side_of = (xx / width - 0.5) * nx + (yy / height - 0.5) * ny - cut
        shadow = cv2.GaussianBlur((side_of > 0).astype(np.float32), (0, 0), rng.uniform(0.8, 4.0))
        light *= 1.0 - shadow * rng.uniform(0.3, 0.55)
    image *= light[..., None]
    image += rng.normal(0, rng.uniform(1.5, 7.0), image.shape).astype(np.float32)
    blur = rng.uniform(0.0, 1.3)
    if blur > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    photo = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    quality = int(rng.integers(45, 95))
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def sheet_photo(rows: list[list[np.ndarray]], rng: np.random.Generator, *, cell: int = 110) -> np.ndarray:
    """A photo of a sheet with several digits written in rows.

    Parameters
    ----------
    rows : list of list of (M, N) ndarray of uint8
        The digits (bright on black) of each row, left to right.
    rng : numpy.random.Generator
        Source of the small random offsets, light and noise.
    cell : int, optional
        Pixels per digit position.

    Returns
    -------
    photo : (H, W, 3) ndarray of uint8
    """
    columns = max(len(row) for row in rows)
    height, width = cell * (len(rows) + 1), cell * (columns + 1)
    alpha = np.zeros((height, width), np.float32)
    for r, row in enumerate(rows):
        for c, digit in enumerate(row):
            ink = _ink_alpha(digit, cell * 0.75 / digit.shape[0], 1.0, None)
            top = int(cell * (r + 0.5) + rng.integers(-6, 7))
            left = int(cell * (c + 0.5) + rng.integers(-6, 7))
            patch = alpha[top : top + ink.shape[0], left : left + ink.shape[1]]
            np.maximum(patch, ink[: patch.shape[0], : patch.shape[1]], out=patch)
    paper = np.array((236, 233, 225), np.float32)
    image = paper * (1 - alpha[..., None] * 0.9) + np.array((30, 40, 110), np.float32) * alpha[..., None] * 0.9
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image *= (1.0 - 0.25 * xx / width - 0.1 * yy / height)[..., None]
    image += rng.normal(0, 3.0, image.shape).astype(np.float32)
    photo = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
