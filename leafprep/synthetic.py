"""Synthetic photos of handwritten digits, for sample data, tests and benchmarks.

A digit image (MNIST's, say) is drawn as ink on paper and photographed badly:
coloured, lined or squared paper, blue/black/red ink, faint or heavy pens, uneven
light, a hard shadow, sensor noise, blur and JPEG, and sometimes light chalk on a
dark board.  Every random choice comes from the ``rng`` passed in, so a seed
gives the same picture every time.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

__all__ = ["LEAF_SPECIES", "ink_on_paper", "leaf_bed", "leaf_photo", "random_photo", "sheet_photo"]

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


#: Leaf shapes :func:`leaf_photo` draws, with their outline parameters.
LEAF_SPECIES: dict[str, dict[str, Any]] = {
    "ovata": {"width": 0.32, "power": 0.9, "lobes": 0, "teeth": 22, "tooth": 0.025, "colour": (70, 115, 45)},
    "lanceolata": {"width": 0.12, "power": 1.0, "lobes": 0, "teeth": 30, "tooth": 0.012, "colour": (95, 130, 55)},
    "quercoides": {"width": 0.30, "power": 0.8, "lobes": 5, "teeth": 0, "tooth": 0.0, "colour": (120, 95, 40)},
    "palmata": {"width": 0.0, "power": 0.0, "lobes": 5, "teeth": 40, "tooth": 0.02, "colour": (165, 60, 35)},
}


def _blade_outline(species: str, rng: np.random.Generator, points: int = 240) -> np.ndarray:
    """Outline of a blade, base at (0, 0), tip at (0, 1), in leaf-length units."""
    shape = LEAF_SPECIES[species]
    if species == "palmata":
        theta = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False)
        lobes = np.abs(np.cos(shape["lobes"] / 2.0 * (theta - np.pi / 2))) ** 1.5
        teeth = 1 + shape["tooth"] * np.abs(np.sin(shape["teeth"] * theta))
        radius = 0.4 * (0.35 + 0.65 * lobes) * teeth * (1 + 0.05 * rng.uniform(-1, 1))
        return np.stack([radius * np.cos(theta), 0.14 + radius * np.sin(theta)], axis=1)
    y = np.linspace(0.0, 1.0, points)
    width = shape["width"] * (1 + 0.15 * rng.uniform(-1, 1))
    half = width * np.sin(np.pi * y ** shape["power"]) ** 0.9
    if shape["lobes"]:
        half *= 0.7 + 0.3 * np.abs(np.sin(shape["lobes"] * np.pi * y))
    if shape["teeth"]:
        half *= 1 + shape["tooth"] * np.abs(np.sin(shape["teeth"] * np.pi * y)) * 4
    right = np.stack([half, y], axis=1)
    left = np.stack([-half[::-1], y[::-1]], axis=1)
    return np.concatenate([right, left])


def _background(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "wood":
        base = np.array((150, 105, 65), np.float32) * rng.uniform(0.8, 1.15)
        grain = np.sin(xx / width * rng.uniform(25, 45) + 3 * np.sin(yy / height * 4 + rng.uniform(0, 6)))
        noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 2.0)
        return base * (1 + 0.12 * grain + 0.05 * noise)[..., None]
    if kind == "scanner":
        return np.full((height, width, 3), 246, np.float32)
    colours = [(230, 150, 180), (80, 110, 190), (150, 150, 150), (235, 225, 200), (25, 25, 28)]
    base = np.array(colours[rng.integers(len(colours))], np.float32)
    light = 1.0 - 0.15 * (xx / width) * rng.uniform(0, 1)
    return base * light[..., None]


def leaf_photo(species: str, rng: np.random.Generator, *, side: int = 420, background: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A procedural photo of one leaf, and its exact mask.

    The blade is drawn from an outline (lobes, teeth), with a petiole, a midrib
    and side veins, a colour with texture, on card, wood or a scanner-white
    background, with a cast shadow.

    Parameters
    ----------
    species : str
        One of :data:`LEAF_SPECIES`.
    rng : numpy.random.Generator
        Source of every random choice.
    side : int, optional
        Long side of the photo in pixels.
    background : {"card", "wood", "scanner"}, optional
        Random by default.

    Returns
    -------
    photo : (H, W, 3) ndarray of uint8
        RGB, JPEG-compressed once.
    mask : (H, W) ndarray of bool
        The leaf, petiole included.
    """
    height, width = side, int(side * rng.uniform(0.75, 1.0))
    background = background or str(rng.choice(["card", "card", "wood", "scanner"]))
    image = _background(background, height, width, rng)
    length = rng.uniform(0.55, 0.7) * height
    angle = rng.uniform(-35, 35)
    centre = np.array([width / 2 + rng.uniform(-0.08, 0.08) * width, height / 2 + rng.uniform(-0.05, 0.05) * height])
    rotation = np.array([[np.cos(np.radians(angle)), -np.sin(np.radians(angle))], [np.sin(np.radians(angle)), np.cos(np.radians(angle))]])

    def to_image(points: np.ndarray) -> np.ndarray:
        # Leaf units: y from base (0) to tip (1); image y grows downwards.
        local = np.stack([points[:, 0], 0.62 - points[:, 1]], axis=1) * length
        return local @ rotation.T + centre

    outline = _blade_outline(species, rng)
    # Keep the whole leaf inside the photo, with a margin of 4%.
    corners = np.concatenate([to_image(outline), to_image(np.array([[0.0, -0.22]]))])
    low = np.array([0.04 * width, 0.04 * height]) - corners.min(axis=0)
    high = np.array([0.96 * width, 0.96 * height]) - corners.max(axis=0)
    centre += np.clip(0.0, low, high) if (low <= high).all() else (low + high) / 2
    scale = 4  # draw at 4x and shrink: anti-aliased edges, exact masks
    blade = np.round(to_image(outline) * scale).astype(np.int32)
    stalk = np.round(to_image(np.array([[0.0, 0.02], [0.01, -0.22]])) * scale).astype(np.int32)
    big = np.zeros((height * scale, width * scale), np.uint8)
    cv2.fillPoly(big, [blade], 255)
    cv2.line(big, tuple(stalk[0]), tuple(stalk[1]), 255, max(2, int(0.022 * length * scale)))
    coverage = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    mask = coverage > 0.5

    shadow = cv2.GaussianBlur(np.roll(coverage, (int(rng.uniform(4, 12)), int(rng.uniform(-10, 10))), axis=(0, 1)), (0, 0), 4.0)
    image *= (1.0 - rng.uniform(0.15, 0.4) * shadow)[..., None]

    colour = np.array(LEAF_SPECIES[species]["colour"], np.float32) * rng.uniform(0.85, 1.15, 3)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 1.5)
    leaf = colour * (1 + 0.08 * texture)[..., None]
    veins = np.zeros((height * scale, width * scale), np.uint8)
    midrib = np.round(to_image(np.array([[0.0, 0.0], [0.0, 0.95]])) * scale).astype(np.int32)
    cv2.line(veins, tuple(midrib[0]), tuple(midrib[1]), 255, max(1, int(0.006 * length * scale)))
    for t in np.linspace(0.15, 0.8, 6):
        for sign in (-1, 1):
            vein = np.round(to_image(np.array([[0.0, t], [sign * 0.25, t + 0.12]])) * scale).astype(np.int32)
            cv2.line(veins, tuple(vein[0]), tuple(vein[1]), 255, max(1, int(0.003 * length * scale)))
    vein = cv2.resize(veins, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    leaf = leaf * (1 - 0.35 * vein[..., None]) + np.array((215, 225, 170), np.float32) * 0.35 * vein[..., None]
    image = image * (1 - coverage[..., None]) + leaf * coverage[..., None]
    image += rng.normal(0, 2.5, image.shape).astype(np.float32)
    photo = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), mask


def leaf_bed(
    rng: np.random.Generator,
    *,
    leaves: int = 6,
    side: int = 1200,
    background: str = "scanner",
    species: str | None = None,
    touching: bool = False,
    square: bool = True,
    strip: bool = True,
    dust: int = 40,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A procedural photo of several leaves laid out on a scanner bed or a card, and each leaf's exact mask.

    Leaves from :func:`leaf_photo` are laid out in a grid (jittered, turned),
    with what people put beside them: a black reference square, a strip of
    colour chips, and dust.

    Parameters
    ----------
    rng : numpy.random.Generator
    leaves : int, optional
        How many leaves.
    side : int, optional
        Long side of the photo (landscape, 4:3).
    background : {"scanner", "blue"}, optional
        A white scanner bed or a blue card.
    species : str, optional
        One of :data:`LEAF_SPECIES` for every leaf (default: random per leaf).
    touching : bool, optional
        Push the first two leaves together until they touch.
    square, strip : bool, optional
        Add a reference square, a strip of six colour chips.
    dust : int, optional
        Dark specks of 1 to 3 pixels.

    Returns
    -------
    photo : (H, W, 3) ndarray of uint8
    masks : list of (H, W) ndarray of bool
        One per leaf, in the order they were laid (rows top to bottom, each left to right).
    """
    height, width = round(side * 0.75), side
    base = (246.0, 246.0, 244.0) if background == "scanner" else (80.0, 110.0, 190.0)
    image = np.empty((height, width, 3), np.float32)
    image[:] = base
    columns = int(np.ceil(np.sqrt(leaves * 4 / 3)))
    rows = int(np.ceil(leaves / columns))
    cell_w, cell_h = (width - 0.16 * width) / columns, (height - 0.12 * height) / rows
    masks: list[np.ndarray] = []
    for k in range(leaves):
        name = species or str(rng.choice(sorted(LEAF_SPECIES)))
        cell = int(min(cell_w, cell_h) * 0.95)
        photo, mask = leaf_photo(name, rng, side=cell, background="scanner")
        ys, xs = np.nonzero(mask)
        photo, mask = photo[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        h, w = mask.shape
        row, column = divmod(k, columns)
        x = int(0.02 * width + column * cell_w + (cell_w - w) / 2 + rng.uniform(-0.05, 0.05) * cell_w)
        y = int(0.10 * height + row * cell_h + (cell_h - h) / 2 + rng.uniform(-0.05, 0.05) * cell_h)
        if touching and k == 1:  # slide left until it overlaps the first leaf a little
            for shift in range(0, x, 2):
                moved = np.zeros((height, width), bool)
                moved[y : y + h, x - shift : x - shift + w] = mask
                if (masks[0] & moved).sum() > 0.002 * mask.sum():
                    x -= shift
                    break
        x, y = int(np.clip(x, 1, width - w - 1)), int(np.clip(y, 1, height - h - 1))
        full = np.zeros((height, width), bool)
        full[y : y + h, x : x + w] = mask
        for earlier in masks:
            earlier &= ~full
        image[full] = photo[mask]
        masks.append(full)
    chip = max(8, round(0.035 * height))
    if square:  # a black reference square, bottom right
        image[height - 3 * chip : height - 2 * chip, width - 3 * chip : width - 2 * chip] = (15, 15, 15)
    if strip:  # six colour chips in a row, along the top
        for i, colour in enumerate([(200, 40, 40), (40, 160, 60), (40, 60, 190), (230, 200, 40), (120, 120, 120), (30, 30, 30)]):
            image[chip // 2 : chip // 2 + chip, width - (8 - i) * chip - i * 2 : width - (7 - i) * chip - i * 2] = colour
    for _ in range(dust):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, int(rng.integers(1, 3)), (35, 30, 25), -1)
    image += rng.normal(0, 2.0, image.shape).astype(np.float32)
    photo = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return photo, masks
