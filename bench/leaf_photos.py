"""Realistic synthetic phone photos of single leaves, with exact masks.

A leaf is cut from one of the 200 Swedish scans (``../shared/data/leaves/swedish_masks``,
masks with the petiole), recoloured (green, dark glossy green, yellow-green,
yellow, red, brown, nearly black dried, variegated, pale underside), turned,
scaled from small to filling most of the frame, and laid on a surface users
photograph leaves on: white or cream paper (the most common), coloured card
like the UCI photos (pink, magenta, salmon, grey, blue, green, yellow), wood
or woven cloth, each with its fine grain.  It is then lit and photographed as
a phone would: a smooth light field (a gradient from one side, vignetting, a
warmer or cooler patch near a window) with 20-50% fall-off, white balance off,
a soft bluish shadow offset from the leaf (sometimes a harder one, sometimes
the shadow of the phone across the frame), a dark rim where the leaf edge
lifts, glossy highlights, a slight defocus, sensor noise stronger in the dark,
phone sharpening and JPEG at quality 80-90.  No ruler and no colour chart.

The mask is exact: the leaf's coverage after the same warp, over one half.
It includes the petiole, as the Swedish masks do (the uci_dev masks do not).

Use ``realistic_composite`` for one photo, ``realistic_set`` for a
deterministic set.  Run::

    python -m bench.leaf_photos --out /tmp/leaf-photos --count 24 [--seed 14] [--outline]

to write sample photos (JPEG), their masks (PNG) and ``contact-sheet.png``.
"""

from __future__ import annotations

import argparse
import csv
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from bench._mnist import DATA

__all__ = ["LEAF_STYLES", "SURFACES", "contact_sheet", "realistic_composite", "realistic_set"]

MASKS = DATA / "leaves" / "swedish_masks"

#: Surfaces a leaf lies on, with how often :func:`realistic_composite` picks each.
_SURFACE_WEIGHTS: dict[str, float] = {
    "white paper": 0.24,
    "cream paper": 0.06,
    "pink card": 0.10,
    "magenta card": 0.08,
    "salmon card": 0.05,
    "grey card": 0.07,
    "blue card": 0.06,
    "green card": 0.04,
    "yellow card": 0.05,
    "wood": 0.13,
    "cloth": 0.12,
}
SURFACES: tuple[str, ...] = tuple(_SURFACE_WEIGHTS)

# Card and paper colours (RGB, before light and white balance), a few shades each.
_CARDS: dict[str, list[tuple[int, int, int]]] = {
    "white paper": [(246, 246, 243), (242, 243, 245), (248, 246, 240)],
    "cream paper": [(240, 232, 210), (236, 226, 200)],
    "pink card": [(250, 135, 175), (245, 140, 165), (252, 125, 185)],
    "magenta card": [(225, 115, 195), (205, 95, 175), (235, 120, 210)],
    "salmon card": [(248, 140, 150), (250, 150, 140)],
    "grey card": [(160, 160, 162), (185, 186, 188), (120, 121, 124)],
    "blue card": [(90, 140, 210), (120, 170, 225), (60, 100, 175)],
    "green card": [(150, 205, 140), (110, 175, 110)],
    "yellow card": [(250, 225, 105), (245, 215, 80)],
}
_CLOTHS = [(24, 24, 27), (58, 58, 62), (52, 72, 112), (200, 186, 160), (228, 228, 222), (140, 32, 40), (40, 90, 62)]
_WOODS = [(205, 160, 110), (220, 185, 135), (160, 110, 70), (110, 72, 48)]

#: Least CIELAB distance between the leaf's median colour and the surface's; closer colourings are drawn again.
MIN_CONTRAST = 20.0

#: Leaf colourings, with how often :func:`realistic_composite` picks each.
_STYLE_WEIGHTS: dict[str, float] = {
    "green": 0.24,
    "dark glossy green": 0.10,
    "yellow-green": 0.08,
    "yellow": 0.10,
    "red": 0.08,
    "brown": 0.12,
    "dried dark": 0.10,
    "variegated": 0.08,
    "pale underside": 0.10,
}
LEAF_STYLES: tuple[str, ...] = tuple(_STYLE_WEIGHTS)

# Target (hue in degrees, saturation, value) ranges of each colouring; None keeps the scan's.
_STYLE_HSV: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None] = {
    "green": None,
    "dark glossy green": ((100, 150), (0.40, 0.70), (0.16, 0.30)),
    "yellow-green": ((62, 80), (0.50, 0.80), (0.45, 0.65)),
    "yellow": ((42, 58), (0.60, 0.90), (0.68, 0.92)),
    "red": ((-12, 14), (0.55, 0.85), (0.35, 0.65)),
    "brown": ((18, 36), (0.35, 0.65), (0.25, 0.50)),
    "dried dark": ((20, 70), (0.06, 0.25), (0.12, 0.26)),
    "variegated": ((75, 110), (0.45, 0.75), (0.30, 0.50)),
    "pale underside": ((70, 105), (0.10, 0.26), (0.58, 0.78)),
}


def _lab(colours: np.ndarray) -> np.ndarray:
    """Median CIELAB colour (L 0-100) of RGB colours (N, 3) in 0-255."""
    lab = cv2.cvtColor(np.clip(colours, 0, 255).astype(np.float32)[None] / 255.0, cv2.COLOR_RGB2LAB)[0]
    return np.median(lab, axis=0)


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _smooth(shape: tuple[int, int], cells: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise, zero mean and about unit deviation, varying over ``cells`` cells along the long side."""
    height, width = shape
    step = max(height, width) / max(cells, 1.0)
    grid = rng.normal(0.0, 1.0, (int(np.ceil(height / step)) + 3, int(np.ceil(width / step)) + 3)).astype(np.float32)
    big = cv2.resize(grid, (int(round(grid.shape[1] * step)), int(round(grid.shape[0] * step))), interpolation=cv2.INTER_CUBIC)
    top, left = int(step), int(step)
    field = cv2.GaussianBlur(big[top : top + height, left : left + width], (0, 0), step / 3)
    return field / max(float(field.std()), 1e-6)


def _grain(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Fine blurred noise of unit deviation (paper, card fibres)."""
    noise = cv2.GaussianBlur(rng.normal(0.0, 1.0, shape).astype(np.float32), (0, 0), sigma)
    return noise / max(float(noise.std()), 1e-6)


# -- surfaces -------------------------------------------------------------------------------------------


def _card(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    colours = _CARDS[kind]
    base = np.array(colours[int(rng.integers(len(colours)))], np.float32) * rng.uniform(0.96, 1.03, 3).astype(np.float32)
    fine = _grain(shape, rng.uniform(0.6, 1.0), rng) * rng.uniform(0.008, 0.02)
    fibre = _grain(shape, rng.uniform(2.0, 4.0), rng) * rng.uniform(0.004, 0.012)
    cockle = _smooth(shape, rng.uniform(6, 14), rng) * rng.uniform(0.0, 0.015)
    surface = base * (1.0 + fine + fibre + cockle)[..., None]
    if rng.random() < 0.5:  # a few specks of dust or fibre
        for _ in range(int(rng.integers(1, 6))):
            y, x = int(rng.integers(shape[0])), int(rng.integers(shape[1]))
            cv2.circle(surface, (x, y), int(rng.integers(1, 3)), tuple(float(v) for v in base * rng.uniform(0.55, 0.85)), -1)
    return surface


def _wood(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A table top or floor board: long fine streaks, thin darker grain lines, a joint now and then."""
    height, width = shape
    turned = rng.random() < 0.5
    h, w = (width, height) if turned else (height, width)  # grain along x here
    base = np.array(_WOODS[int(rng.integers(len(_WOODS)))], np.float32) * rng.uniform(0.92, 1.06, 3).astype(np.float32)
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    warp = _smooth((h, w), rng.uniform(2, 5), rng) * rng.uniform(4, 20)
    period = rng.uniform(6, 22)
    phase = np.mod((yy + warp) / period, 1.0)
    lines = np.exp(-(((phase - 0.5) / rng.uniform(0.06, 0.16)) ** 2))  # thin late-wood lines
    lines *= 0.6 + 0.4 * np.clip(_smooth((h, w), 8, rng), -1, 1)

    def streaks(across: float, along: float) -> np.ndarray:
        noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigmaX=along, sigmaY=across)
        return noise / max(float(noise.std()), 1e-6)

    shade = 1.0 - rng.uniform(0.06, 0.14) * lines + 0.045 * streaks(0.7, 30) + 0.025 * streaks(3, 100) + 0.03 * _smooth((h, w), 3, rng)
    wood = base * shade[..., None]
    wood[..., 2] *= 1.0 - 0.05 * lines  # darker lines are redder
    if rng.random() < 0.5:  # a joint between two boards
        y = int(rng.uniform(0.15, 0.85) * h)
        wood[y : y + 2] *= 0.5
        wood[y + 2 :] *= rng.uniform(0.9, 1.08, 3).astype(np.float32)
    return np.ascontiguousarray(wood.transpose(1, 0, 2)) if turned else wood


def _cloth(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    height, width = shape
    base = np.array(_CLOTHS[int(rng.integers(len(_CLOTHS)))], np.float32) * rng.uniform(0.92, 1.08, 3).astype(np.float32)
    pad = int(0.1 * max(height, width))
    h, w = height + 2 * pad, width + 2 * pad
    period = rng.uniform(2.6, 5.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Plain weave: warp and weft threads alternate over and under; each thread varies in thickness.
    warp_threads = cv2.resize(rng.normal(0, 1, (1, int(w / period) + 2)).astype(np.float32), (w, 1), interpolation=cv2.INTER_NEAREST)
    weft_threads = cv2.resize(rng.normal(0, 1, (int(h / period) + 2, 1)).astype(np.float32), (1, h), interpolation=cv2.INTER_NEAREST)
    cx, cy = np.sin(2 * np.pi * xx / period), np.sin(2 * np.pi * yy / period)
    over = (np.sign(np.sin(np.pi * xx / period) * np.sin(np.pi * yy / period)) + 1) / 2
    weave = over * (0.5 + 0.5 * np.abs(cy)) * (1 + 0.08 * warp_threads) + (1 - over) * (0.5 + 0.5 * np.abs(cx)) * (1 + 0.08 * weft_threads)
    weave = (weave - weave.mean()) / max(float(weave.std()), 1e-6)
    fabric = 1.0 + rng.uniform(0.05, 0.12) * weave + 0.03 * _grain((h, w), 1.5, rng)
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-25, 25), 1.0)
    fabric = cv2.warpAffine(fabric, rotation, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)[pad : pad + height, pad : pad + width]
    wrinkles = _smooth(shape, rng.uniform(3, 7), rng)
    fabric *= 1.0 + rng.uniform(0.03, 0.09) * np.tanh(1.5 * wrinkles)
    return base * fabric[..., None]


def _surface(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    if kind == "wood":
        return _wood(shape, rng)
    if kind == "cloth":
        return _cloth(shape, rng)
    return _card(kind, shape, rng)


# -- the leaf -------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _scan(index: int) -> tuple[np.ndarray, np.ndarray, str]:
    with open(MASKS / "pairs.csv", newline="") as handle:
        row = list(csv.DictReader(handle))[index]
    rgb = cv2.cvtColor(cv2.imread(str(MASKS / row["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(str(MASKS / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127
    return rgb, mask, row["image"]


@lru_cache(maxsize=1)
def _scan_count() -> int:
    with open(MASKS / "pairs.csv", newline="") as handle:
        return len(list(csv.DictReader(handle)))


def _decontaminate(rgb: np.ndarray, mask: np.ndarray, edge: float = 3.5) -> np.ndarray:
    """Leaf colours with the scanner's light fringe replaced by the nearest inner leaf colour.

    The scans blur the edge into the white ground over about three pixels, so
    colours nearer the edge than ``edge`` pixels are taken from further in.
    """
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    inner = (depth > edge) & (rgb.min(axis=2) < 200)
    if inner.sum() < 50:
        inner = (depth > 1.5) & (rgb.min(axis=2) < 200)
    if not inner.any():
        return rgb.copy()
    _, labels = cv2.distanceTransformWithLabels((~inner).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros((int(labels.max()) + 1, 3), np.uint8)
    lut[labels[inner]] = rgb[inner]
    return lut[labels]


def _recolour(rgb: np.ndarray, mask: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """Leaf colours (float 0-255) in ``style``, keeping the scan's texture and veins."""
    hsv = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)  # H in degrees, S and V in 0-1
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    inside = mask if mask.any() else np.ones(mask.shape, bool)
    h0, s0, v0 = (float(np.median(c[inside])) for c in (hue, sat, val))
    target = _STYLE_HSV[style]
    if target is None:  # the scan's own green, shifted a little
        th, ts, tv = h0 + rng.uniform(-12, 12), s0 * rng.uniform(0.85, 1.2), v0 * rng.uniform(0.85, 1.25)
    else:
        th, ts, tv = (rng.uniform(*bounds) for bounds in target)
    contrast = rng.uniform(0.7, 1.25)
    shape = mask.shape
    out_h = th + (hue - h0) * rng.uniform(0.2, 0.5)
    out_s = ts * np.clip(sat / max(s0, 1e-3), 0.3, 2.0) ** 0.6
    out_v = tv * np.clip(val / max(v0, 1e-3), 0.1, 4.0) ** contrast
    if style in ("yellow", "brown", "red", "dried dark") and rng.random() < 0.6:  # patchy autumn colours
        patch = _smooth(shape, rng.uniform(3, 8), rng)
        out_h = out_h + patch * rng.uniform(4, 12)
        out_v = out_v * (1 + 0.12 * patch)
    if style == "variegated":  # a cream or yellow margin, or irregular blotches
        if rng.random() < 0.75:
            depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
            width = rng.uniform(0.015, 0.045) * max(mask.shape) * (1 + 0.35 * _smooth(shape, rng.uniform(6, 12), rng))
            patch = _sigmoid((width - depth) / 1.5)
        else:
            patch = _sigmoid(4 * (_smooth(shape, rng.uniform(4, 9), rng) - rng.uniform(0.4, 1.0)))
        out_h = out_h * (1 - patch) + rng.uniform(45, 60) * patch
        out_s = out_s * (1 - patch) + rng.uniform(0.15, 0.45) * patch
        out_v = out_v * (1 - patch) + rng.uniform(0.75, 0.92) * patch
    if style == "pale underside":  # raised, lighter veins and a waxy bloom
        out_v = out_v * (1 + 0.06 * _smooth(shape, 5, rng))
    out_v = out_v * (1 + rng.uniform(0.03, 0.1) * _smooth(shape, rng.uniform(2, 5), rng))  # the leaf is not flat
    new = np.stack([np.mod(out_h, 360.0), np.clip(out_s, 0, 1), np.clip(out_v, 0, 1)], axis=2).astype(np.float32)
    return cv2.cvtColor(new, cv2.COLOR_HSV2RGB) * 255.0


def _place(mask: np.ndarray, frame: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, float, str]:
    """Affine map of the leaf crop into the frame: turned, scaled to a drawn coverage, inside the frame."""
    height, width = frame
    points = cv2.findNonZero(mask.astype(np.uint8)).reshape(-1, 2).astype(np.float64)
    if len(points) > 4000:
        points = points[:: len(points) // 4000]
    area = float(mask.sum())
    size = rng.random()
    if size < 0.2:
        coverage, label = rng.uniform(0.02, 0.08), "small"
    elif size < 0.7:
        coverage, label = rng.uniform(0.08, 0.3), "medium"
    else:
        coverage, label = rng.uniform(0.3, 0.7), "large"
    if label == "large":  # long axis along the frame's long axis, so that it can fill the frame
        centred = points - points.mean(axis=0)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        axis = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        angle = (90.0 if height >= width else 0.0) - axis + rng.uniform(-12, 12) + 180.0 * int(rng.integers(2))
    else:
        angle = rng.uniform(0, 360)
    theta = np.radians(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    turned = points @ rotation.T
    span = turned.max(axis=0) - turned.min(axis=0) + 2.0
    margin = 0.015 * max(height, width)
    fit = min((width - 2 * margin) / span[0], (height - 2 * margin) / span[1])
    scale = min(np.sqrt(coverage * height * width / area), fit)
    low = turned.min(axis=0) * scale
    spare = np.array([width, height]) - 2 * margin - span * scale
    # Leaves sit nearer the middle than the edges: the mean of two uniforms.
    offset = margin + spare * (rng.random(2) + rng.random(2)) / 2 - low
    matrix = np.hstack([rotation * scale, offset[:, None]])
    return matrix, scale, label


# -- light and camera -----------------------------------------------------------------------------------


def _light(shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A smooth multiplicative light field per channel, brightest near 1, and its description."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width - 0.5, yy / height - 0.5
    direction = rng.uniform(0, 2 * np.pi)
    along = np.cos(direction) * u + np.sin(direction) * v
    along = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
    fall = rng.uniform(0.12, 0.4)
    light = 1.0 - fall * along ** rng.uniform(0.8, 1.6)
    vignette = rng.uniform(0.05, 0.25)
    light *= 1.0 - vignette * ((u**2 + v**2) / 0.5) ** 1.2
    light *= 1.0 + rng.uniform(0.0, 0.04) * _smooth(shape, rng.uniform(1.5, 3), rng)
    field = np.repeat(light[..., None], 3, axis=2)
    words = f"light falls off {1 - float(light.min() / light.max()):.0%}"
    if rng.random() < 0.5:  # warmer (sun, bulb) or cooler (sky) light near a window
        cy, cx = rng.uniform(-0.2, 1.2) * height, rng.uniform(-0.2, 1.2) * width
        sigma = rng.uniform(0.3, 0.7) * max(height, width)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        warm = rng.random() < 0.5
        tint = np.array((0.10, 0.03, -0.08) if warm else (-0.06, 0.0, 0.08), np.float32) * rng.uniform(0.4, 1.0)
        field *= 1.0 + blob[..., None] * tint
        words += ", warmer patch" if warm else ", cooler patch"
    return field / float(field.max()), words


def _shadow(alpha: np.ndarray, rng: np.random.Generator, scale: float | None = None) -> tuple[np.ndarray, str]:
    """How much each background pixel is darkened by the leaf's shadows (0: not at all).

    How far a shadow falls and how soft it is are shares of ``scale``: the
    long side of a single-leaf photo of the leaf (this frame's by default).
    A shadow's offset comes from the leaf's lift and the light, not from how
    much else the frame holds, so a bed of several leaves passes the frame
    a single-leaf photo of its leaves would have.
    """
    long_side = max(alpha.shape)
    reach = long_side if scale is None else scale
    dark = np.zeros(alpha.shape, np.float32)
    hard = rng.random() < 0.2
    angle = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(0.005, 0.025) * reach * (1.8 if hard else 1.0)
    shift = np.float32([[1, 0, distance * np.cos(angle)], [0, 1, distance * np.sin(angle)]])
    moved = cv2.warpAffine(alpha, shift, (alpha.shape[1], alpha.shape[0]))
    sigma = rng.uniform(1.0, 2.5) if hard else rng.uniform(0.004, 0.014) * reach
    strength = rng.uniform(0.3, 0.5) if hard else rng.uniform(0.2, 0.5)
    dark = np.maximum(dark, strength * cv2.GaussianBlur(moved, (0, 0), sigma))
    # Where the edge lifts off the surface the light cannot reach: a narrow dark rim.
    rim = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(2.0, 4.0))
    dark = np.maximum(dark, rng.uniform(0.08, 0.22) * rim)
    words = "hard shadow" if hard else "soft shadow"
    if rng.random() < 0.15:  # the phone or a hand shadows part of the frame
        height, width = alpha.shape
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        side = np.cos(angle) * (xx / width - 0.5) + np.sin(angle) * (yy / height - 0.5) - rng.uniform(0.2, 0.45)
        edge = cv2.GaussianBlur((side > 0).astype(np.float32), (0, 0), rng.uniform(0.02, 0.06) * long_side)
        dark = 1 - (1 - dark) * (1 - rng.uniform(0.15, 0.35) * edge)
        words += ", phone shadow"
    return dark, words


def _highlights(alpha: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Glossy sheen on the leaf, 0-1: a broad soft reflection of the window, broken up by the leaf's relief."""
    shape = alpha.shape
    broad = _sigmoid(3 * (_smooth(shape, rng.uniform(2, 5), rng) - rng.uniform(0.3, 1.0)))
    relief = np.clip(0.85 + 0.15 * _smooth(shape, rng.uniform(8, 16), rng), 0, 1)
    return np.clip(strength * broad * relief, 0, 1) * alpha


def _camera(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Defocus, sensor noise (stronger in the dark), phone sharpening and JPEG; uint8 RGB and the quality."""
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.6, 1.1))
    shape = image.shape[:2]
    level = rng.uniform(1.2, 3.5)
    luma = image.mean(axis=2, keepdims=True)
    sigma = level * (0.5 + 1.1 * (1.0 - np.clip(luma, 0, 255) / 255.0))
    noise = rng.normal(0, 1, shape).astype(np.float32)[..., None] * 0.7
    chroma = cv2.GaussianBlur(rng.normal(0, 1, (*shape, 3)).astype(np.float32), (0, 0), 0.9) * 1.2
    image = image + sigma * (noise + chroma)
    if rng.random() < 0.7:  # phones sharpen
        blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.0, 2.0))
        image = image + rng.uniform(0.2, 0.6) * (image - blurred)
    photo = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    quality = int(rng.integers(80, 91))
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), quality


# -- the photo ------------------------------------------------------------------------------------------


def _compose(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, surface: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    if surface is None:
        surface = _pick(rng, _SURFACE_WEIGHTS)
    elif surface not in _SURFACE_WEIGHTS:
        raise ValueError(f"unknown surface {surface!r}; one of {SURFACES}")
    if not mask.any():
        raise ValueError("empty leaf mask")
    ys, xs = np.nonzero(mask)
    pad = 4
    top, bottom = max(0, ys.min() - pad), min(mask.shape[0], ys.max() + pad + 1)
    left, right = max(0, xs.min() - pad), min(mask.shape[1], xs.max() + pad + 1)
    crop_mask = mask[top:bottom, left:right]
    crop = _decontaminate(rgb[top:bottom, left:right], crop_mask)

    # Frame: a phone photo shrunk to 720-1000 px on the long side, mostly portrait and 3:4.
    long_side = int(rng.integers(720, 1001))
    ratio = float(rng.choice([0.75, 0.75, 0.75, 0.75, 0.5625, 1.0]))
    height, width = long_side, int(round(long_side * ratio))
    if rng.random() < 0.25:
        height, width = width, height
    ground = _surface(surface, (height, width), rng)
    # A colouring the eye can tell from the surface (not a dark green leaf on dark green cloth).
    ground_lab = _lab(ground[:: max(1, height // 64), :: max(1, width // 64)].reshape(-1, 3))
    for _ in range(8):
        style = _pick(rng, _STYLE_WEIGHTS)
        leaf = _recolour(crop, crop_mask, style, rng)
        if float(np.linalg.norm(_lab(leaf[crop_mask]) - ground_lab)) >= MIN_CONTRAST:
            break
    matrix, scale, _ = _place(crop_mask, (height, width), rng)
    coverage_src = cv2.GaussianBlur(crop_mask.astype(np.float32), (0, 0), 0.5)
    if scale < 0.7:  # shrink first so that the warp does not alias
        small = (max(1, int(round(crop_mask.shape[1] * scale / 0.7))), max(1, int(round(crop_mask.shape[0] * scale / 0.7))))
        factor = np.array([small[0] / crop_mask.shape[1], small[1] / crop_mask.shape[0]])
        leaf = cv2.resize(leaf, small, interpolation=cv2.INTER_AREA)
        coverage_src = cv2.resize(coverage_src, small, interpolation=cv2.INTER_AREA)
        matrix = np.hstack([matrix[:, :2] / factor[None, :], matrix[:, 2:]])
    flags = cv2.INTER_LINEAR
    alpha = cv2.warpAffine(coverage_src, matrix, (width, height), flags=flags)
    leaf = cv2.warpAffine(leaf, matrix, (width, height), flags=flags)
    truth = alpha > 0.5
    alpha = np.clip((alpha - 0.5) * 1.6 + 0.5, 0, 1)  # edge about a pixel wide before defocus

    dark, shadow_words = _shadow(alpha, rng)
    bluish = np.array((1.0, 0.93, 0.78), np.float32)  # shadows are lit by the sky: red falls most
    ground = ground * (1.0 - dark[..., None] * bluish)
    glossy = style == "dark glossy green" or rng.random() < 0.3
    if glossy:
        sheen = _highlights(alpha, rng, rng.uniform(0.15, 0.45))[..., None]
        leaf = leaf + (235.0 - leaf) * sheen
    image = ground * (1 - alpha[..., None]) + leaf * alpha[..., None]
    light, light_words = _light((height, width), rng)
    temperature, tint = rng.uniform(-1, 1), rng.uniform(-1, 1)
    balance = np.array((1 + 0.07 * temperature, 1 + 0.03 * tint, 1 - 0.08 * temperature), np.float32)
    image = image * light * balance * rng.uniform(0.92, 1.06)
    photo, quality = _camera(image, rng)
    balance_words = "warm" if temperature > 0.4 else "cool" if temperature < -0.4 else "neutral"
    coverage = float(truth.mean())
    size = "small" if coverage < 0.08 else "medium" if coverage < 0.3 else "large"
    words = (
        f"{style} leaf on {surface}, {size} ({coverage:.0%} of frame), {shadow_words}, {light_words}, "
        f"{balance_words} white balance{', glossy' if glossy else ''}, JPEG {quality}"
    )
    return photo, truth, words


def realistic_composite(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, surface: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One leaf of a scan photographed as a phone would.

    Parameters
    ----------
    rgb : (H, W, 3) ndarray of uint8
        A scan of a leaf (RGB).
    mask : (H, W) ndarray of bool
        The leaf in the scan.
    rng : numpy.random.Generator
        Source of every random choice.
    surface : str, optional
        One of :data:`SURFACES`; drawn at random (white paper most often) by default.

    Returns
    -------
    photo : (P, Q, 3) ndarray of uint8
        RGB, 720-1000 px on the long side, JPEG-compressed once.
    mask : (P, Q) ndarray of bool
        The exact leaf, petiole included when ``mask`` has it.

    Examples
    --------
    >>> rgb = np.full((60, 40, 3), 250, np.uint8); mask = np.zeros((60, 40), bool)
    >>> mask[10:50, 12:28] = True; rgb[mask] = (60, 110, 40)
    >>> photo, truth = realistic_composite(rgb, mask, np.random.default_rng(0), surface="pink card")
    >>> photo.dtype, photo.shape[:2] == truth.shape, 720 <= max(photo.shape) <= 1000, bool(truth.any())
    (dtype('uint8'), True, True, True)
    """
    photo, truth, _ = _compose(rgb, mask, rng, surface)
    return photo, truth


def realistic_set(count: int, seed: int, surfaces: tuple[str, ...] | None = None) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``count`` realistic photos of the Swedish leaves, cycling through the 200 scans.

    Photo ``i`` depends only on ``seed`` and ``i`` (its generator is seeded with
    ``[seed, i]``), so a longer set starts with the shorter one.

    Parameters
    ----------
    count : int
    seed : int
    surfaces : tuple of str, optional
        Only these surfaces (of :data:`SURFACES`), in turn; all, drawn by their
        weights, by default.

    Returns
    -------
    photos : list of (photo, truth, description)
        RGB uint8 photo, bool mask (petiole included), and a line saying what is in it.
    """
    out = []
    scans = _scan_count()
    for index in range(count):
        rgb, mask, name = _scan(index % scans)
        surface = surfaces[index % len(surfaces)] if surfaces else None
        photo, truth, words = _compose(rgb, mask, np.random.default_rng([seed, index]), surface)
        out.append((photo, truth, f"{name}: {words}"))
    return out


def contact_sheet(photos: list[np.ndarray], *, tile: int = 240, columns: int = 6, truths: list[np.ndarray] | None = None) -> np.ndarray:
    """Photos side by side in a grid, each fitted into a ``tile`` square on grey.

    Parameters
    ----------
    photos : list of (H, W, 3) ndarray of uint8
    tile : int, optional
        Side of each cell in pixels.
    columns : int, optional
    truths : list of (H, W) ndarray of bool, optional
        When given, each mask's outline is drawn in cyan.

    Returns
    -------
    sheet : ndarray of uint8, RGB
    """
    rows = (len(photos) + columns - 1) // columns
    sheet = np.full((rows * tile + (rows + 1) * 4, columns * tile + (columns + 1) * 4, 3), 40, np.uint8)
    for index, photo in enumerate(photos):
        height, width = photo.shape[:2]
        scale = tile / max(height, width)
        size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        if truths is not None:
            edge = cv2.resize(truths[index].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(edge, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            small = np.ascontiguousarray(small)
            cv2.drawContours(small, contours, -1, (0, 255, 255), 1)
        r, c = divmod(index, columns)
        top = 4 + r * (tile + 4) + (tile - size[1]) // 2
        left = 4 + c * (tile + 4) + (tile - size[0]) // 2
        sheet[top : top + size[1], left : left + size[0]] = small
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description="Write realistic synthetic leaf photos and a contact sheet")
    parser.add_argument("--out", type=Path, required=True, help="folder for the photos, masks and contact-sheet.png")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--outline", action="store_true", help="draw each mask's outline on the contact sheet")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    photos = realistic_set(args.count, args.seed)
    lines = []
    for index, (photo, truth, words) in enumerate(photos):
        stem = f"leaf-{index:03d}"
        cv2.imwrite(str(args.out / f"{stem}.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(args.out / f"{stem}-mask.png"), truth.astype(np.uint8) * 255)
        lines.append(f"{stem}\t{words}")
    sheet = contact_sheet([p for p, _, _ in photos], columns=args.columns, truths=[t for _, t, _ in photos] if args.outline else None)
    cv2.imwrite(str(args.out / "contact-sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    (args.out / "descriptions.tsv").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {len(photos)} photos, masks and contact-sheet.png to {args.out}")


if __name__ == "__main__":
    main()
