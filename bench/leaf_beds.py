"""Several leaves in one photo (issue 25): ``leafprep.segment_all`` on scanner beds and cards of real leaves.

The photos are made from real single leaves with their masks: the 200 Swedish
scans of ``../shared/data/leaves/swedish_masks`` (petiole included) and the
111 uci_dev phone photos on card (``bench.leaf_peers.uci_dev``, blade-only
masks: only the mask region is cut, so that no petiole is pasted; the pockets of
white scan bed the Swedish masks enclose are background, :func:`without_pockets`). Each leaf is
cut out with its mask (the colours along the cut taken from further in, as
``bench.leaf_photos`` does), turned, mirrored now and then, and scaled so that
5 to 20 of them cover 15-35% of a frame 1600-2400 px on the long side, at least
1-2.4% of the long side apart (a few millimetres on an A4 bed). A photo holds
one species (a user lays out one tree's leaves) or, one in four, several.

Four backgrounds in turn: a white scanner bed (plain, scanner noise, JPEG 92),
and, photographed as a phone would (light falling off, white balance, soft
shadows as far as in a single-leaf photo of the leaf, defocus, noise, JPEG 80-90; ``bench.leaf_photos``' ``_surface``,
``_light``, ``_shadow``, ``_camera``), blue card, white paper and wood. Beside
the leaves, as people put them there: a black or grey reference square, a strip
of colour chips with small gaps, a white paper label with dark writing (on blue
card and wood), dust (tens to hundreds of 1-3 px dark specks), small fragments
of leaf (1-6% of a leaf's area), and in about a third of the photos a touching
pair (the second leaf laid over the first by a few pixels; the first one's mask
loses the covered pixels). Photo ``i`` depends only on the seed and ``i``.

Measured: whether ``len(segment_all(photo))`` is the number of leaves; each true
leaf's IoU with the found leaf that fits it best (a missed leaf scores 0), by
background, by touching pair or not, by where the leaves came from; what was left
out (from segment_all's warning) and how often a square, chip, label or fragment
came back as a leaf; beside it ``leafprep.segment(kind="leaf")`` on each leaf's
own single-leaf photo against its mask (uci_dev with ``petiole=False``); with
``--alone N``, each leaf of the first N photos photographed alone where it lay
(the same surface, dust, light, shadows' fall and camera: :func:`photograph`),
framed as a single-leaf photo of it, and segmented; the
time of a 20-leaf 12-megapixel JPEG (4000x3000) on white and on blue card, the
bare decode beside it; and three bad inputs (no leaf, one leaf, 500 specks).

Run:  python -m bench.leaf_beds [--photos 100] [--seed 25] [--no-speed] [--no-picture] [--alone 20]
      python -m bench.leaf_beds --only 10 59 --dump /tmp/beds   (those photos only: a line of figures each, and with
      --dump the photo as PNG and its leaves as a label image, leaf k = k; no results written)
(about 6.5 minutes on 2 cores, making the photos about half of it). Writes
bench/results/leaf_beds.json (one line a photo; another seed: leaf_beds_seed{N}.json)
and docs/images/leaf_beds.png, and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

import leafprep
from bench import leaf_photos
from bench._mnist import ROOT
from bench.leaf_peers import uci_dev
from bench.leaf_quality import best_iou, iou, pairs
from leafprep.errors import DOUBT, LEFT_OUT

RESULTS = ROOT / "bench" / "results"
PICTURE = ROOT / "docs" / "images" / "leaf_beds.png"

#: The backgrounds, in turn (photo ``i`` lies on ``BACKGROUNDS[i % 4]``).
BACKGROUNDS = ("scanner", "blue card", "white paper", "wood")
#: Where the leaves come from, in turn by fours (``ORIGINS[(i // 4) % 2]``).
ORIGINS = ("swedish", "uci_dev")
#: Low-resolution grid of the layout (pixels a cell).
GRID = 4
#: The colours of a colour-chip strip (RGB).
CHIP_COLOURS = [
    (175, 54, 60),
    (70, 148, 73),
    (56, 61, 150),
    (231, 199, 31),
    (187, 86, 149),
    (8, 133, 161),
    (214, 126, 44),
    (243, 243, 242),
    (160, 160, 160),
    (85, 85, 85),
    (52, 52, 52),
]
LABEL_WORDS = ["Quercus robur", "Acer platanoides", "Betula", "Tilia cordata", "Fagus sylvatica", "Populus", "Salix", "leaves, park"]


# -- the leaves ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One real leaf, cut out: its colours and coverage in a crop, and where it came from."""

    key: str  # "swedish:images/02_Acer/l2nr001.jpg" or "uci_dev:images/..."
    origin: str
    species: str
    colour: np.ndarray  # (h, w, 3) float32, the leaf's colours (spread outward past its edge)
    cover: np.ndarray  # (h, w) float32, the mask slightly softened
    area: float  # pixels of the mask


def _cut(rgb: np.ndarray, mask: np.ndarray, edge: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The largest part of ``mask`` cut from ``rgb``: colours (decontaminated ``edge`` px deep) and a softened coverage."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    mask = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero(mask)
    pad = 4
    top, bottom = max(0, ys.min() - pad), min(mask.shape[0], ys.max() + pad + 1)
    left, right = max(0, xs.min() - pad), min(mask.shape[1], xs.max() + pad + 1)
    crop = np.pad(mask[top:bottom, left:right], pad)
    colour = np.pad(rgb[top:bottom, left:right], ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    colour = leaf_photos._decontaminate(colour, crop, edge).astype(np.float32)
    cover = cv2.GaussianBlur(crop.astype(np.float32), (0, 0), 0.5)
    return colour, cover, float(crop.sum())


#: A Swedish pseudo-ground-truth mask encloses scan background where it is at least this grey (PROVENANCE's own check).
SCAN_PAPER = 200
#: Pockets of scan background smaller than this (pixels) are the outline's own mixed pixels, kept.
POCKET_PIXELS = 20


#: A leaf's median share of its frame in bench.leaf_photos' single-leaf photos (a fifth 2-8%, half 8-30%, the rest 30-70%).
SINGLE_LEAF_SHARE = 0.21


def single_leaf_frame(leaf_area: float) -> float:
    """The long side (pixels) of a 4:3 single-leaf photo in which a leaf of ``leaf_area`` pixels has its median share."""
    return float(np.sqrt(leaf_area / (0.75 * SINGLE_LEAF_SHARE)))


def without_pockets(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A Swedish pseudo-ground-truth mask without the pockets of white scan bed it encloses.

    The silhouettes of ``swedish_masks`` fill the gaps between a compound
    leaf's leaflets by the rachis (every Sorbus aucuparia mask holds 1-3%
    of scan background, no other species over 1.2%). Pasted as leaf, those
    pockets would be white patches of "leaf", and on white paper the true
    leaf would fall apart there; they are the bed's background, in the
    photo and in the truth.
    """
    paper = mask & (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) >= SCAN_PAPER)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(paper.astype(np.uint8), connectivity=8)
    pockets = np.isin(labels, [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= POCKET_PIXELS])
    return mask & ~pockets


def load_sources() -> tuple[list[Source], dict[str, tuple[Any, np.ndarray, bool]]]:
    """Every real leaf, and for each its single-leaf photo (array or path), its mask, and whether the petiole counts."""
    sources, originals = [], {}
    for rgb, scan_mask, name in pairs():
        key = f"swedish:{name}"
        mask = without_pockets(rgb, scan_mask)
        colour, cover, area = _cut(rgb, mask, 3.5)
        sources.append(Source(key, "swedish", Path(name).parent.name, colour, cover, area))
        originals[key] = (rgb, mask, True)
    for path, mask in uci_dev():
        key = f"uci_dev:{path.parent.name}/{path.name}"
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        colour, cover, area = _cut(rgb, mask, 6.0)
        sources.append(Source(key, "uci_dev", path.parent.name, colour, cover, area))
        originals[key] = (path, mask, False)
    return sources, originals


@dataclass
class Piece:
    """Something laid on the background: its colours, coverage and exact mask in a box at (x, y)."""

    kind: str  # "leaf", "square", "chip", "label", "fragment"
    colour: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w) float32
    truth: np.ndarray  # (h, w) bool
    x: int = 0
    y: int = 0
    key: str = ""  # the source leaf

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.truth.shape[1], self.truth.shape[0]


def _warp(colour: np.ndarray, cover: np.ndarray, scale: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``colour`` and ``cover`` turned by ``angle`` degrees and scaled, in a box that just holds them."""
    if scale < 0.7:  # shrink first so that the warp does not alias
        size = (max(1, round(cover.shape[1] * scale / 0.7)), max(1, round(cover.shape[0] * scale / 0.7)))
        factor = size[0] / cover.shape[1], size[1] / cover.shape[0]
        colour = cv2.resize(colour, size, interpolation=cv2.INTER_AREA)
        cover = cv2.resize(cover, size, interpolation=cv2.INTER_AREA)
        scale = scale / float(np.sqrt(factor[0] * factor[1]))
    h, w = cover.shape
    theta = np.radians(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) * scale
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ rotation.T
    low = corners.min(axis=0) - 2
    size = np.ceil(corners.max(axis=0) - low + 2).astype(int)
    matrix = np.hstack([rotation, -low[:, None]])
    dsize = (int(size[0]), int(size[1]))
    colour = cv2.warpAffine(colour, matrix, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cover = cv2.warpAffine(cover, matrix, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return colour, cover


def _trim(piece: Piece, pad: int = 2) -> Piece:
    """The piece in the box of its coverage, with ``pad`` pixels around."""
    ys, xs = np.nonzero(piece.alpha > 0.02)
    top, bottom = max(0, ys.min() - pad), min(piece.alpha.shape[0], ys.max() + pad + 1)
    left, right = max(0, xs.min() - pad), min(piece.alpha.shape[1], xs.max() + pad + 1)
    return Piece(
        piece.kind, piece.colour[top:bottom, left:right], piece.alpha[top:bottom, left:right], piece.truth[top:bottom, left:right], key=piece.key
    )


def render_leaf(source: Source, area: float, angle: float, mirror: bool) -> Piece:
    """A source leaf at ``area`` pixels, turned by ``angle`` degrees, mirrored or not."""
    colour, cover = (source.colour[:, ::-1], source.cover[:, ::-1]) if mirror else (source.colour, source.cover)
    colour, cover = _warp(np.ascontiguousarray(colour), np.ascontiguousarray(cover), float(np.sqrt(area / source.area)), angle)
    truth = cover > 0.5
    alpha = np.clip((cover - 0.5) * 1.6 + 0.5, 0, 1)  # an edge about a pixel wide before the camera's blur
    return _trim(Piece("leaf", colour, alpha, truth, key=source.key))


def render_rectangle(kind: str, width: float, height: float, colour: np.ndarray, angle: float) -> Piece:
    """A flat rectangle (reference square, chip, label) of ``colour`` (float32 (h, w, 3) or one RGB), turned by ``angle``."""
    w, h = max(2, round(width)), max(2, round(height))
    paint = np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3)).copy()
    cover = np.ones((h, w), np.float32)
    paint, cover = _warp(np.pad(paint, ((2, 2), (2, 2), (0, 0)), mode="edge"), np.pad(cover, 2), 1.0, angle)
    return _trim(Piece(kind, paint, cover, cover > 0.5))


def render_label(width: float, rng: np.random.Generator) -> Piece:
    """A white paper label with two lines of dark writing, slightly turned."""
    w = round(width)
    h = round(width * rng.uniform(0.32, 0.48))
    paper = np.empty((h, w, 3), np.uint8)
    paper[:] = np.clip(np.array((244, 243, 236)) * rng.uniform(0.96, 1.02), 0, 255).astype(np.uint8)
    ink = tuple(float(v) for v in rng.uniform(15, 60, 3))
    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX]))
    lines = [str(rng.choice(LABEL_WORDS)), f"2026-{int(rng.integers(6, 12)):02d}-{int(rng.integers(1, 29)):02d}  no. {int(rng.integers(1, 40))}"]
    thickness = max(1, round(h / 40))
    for row, text in enumerate(lines):
        (tw, th), _ = cv2.getTextSize(text, font, 1.0, thickness)
        size = min(0.84 * w / tw, 0.3 * h / th)
        (tw, th), _ = cv2.getTextSize(text, font, size, thickness)
        origin = (round(0.08 * w), round(h * (0.42 if row == 0 else 0.82)))
        cv2.putText(paper, text, origin, font, size, ink, thickness, cv2.LINE_AA)
    return render_rectangle("label", w, h, paper.astype(np.float32), rng.uniform(-6, 6))


def render_fragment(source: Source, area: float, leaf_area: float, rng: np.random.Generator) -> Piece:
    """A torn-off piece of a leaf of about ``area`` pixels: an irregular blob of its colours (the leaf at ``leaf_area``)."""
    radius = float(np.sqrt(area / np.pi))
    leaf = render_leaf(source, leaf_area, rng.uniform(0, 360), False)
    depth = cv2.distanceTransform(np.pad(leaf.truth, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    radius = min(radius, 0.8 * float(depth.max()))
    ys, xs = np.nonzero(depth >= radius * 1.25)
    if len(ys) == 0:
        ys, xs = np.nonzero(depth >= 0.8 * depth.max())
    pick = int(rng.integers(len(ys)))
    cy, cx, r = int(ys[pick]), int(xs[pick]), int(np.ceil(radius * 1.3)) + 2
    patch = np.pad(leaf.colour, ((r, r), (r, r), (0, 0)), mode="edge")[cy : cy + 2 * r + 1, cx : cx + 2 * r + 1]
    # An irregular outline: a circle whose radius wanders, drawn four times larger and shrunk (soft edge).
    angles = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    wander = 1 + 0.25 * np.convolve(rng.normal(0, 1, 28 + 4), np.ones(5) / 5, mode="valid")[:28] * 2.2
    ellipse = rng.uniform(0.6, 1.0)
    points = np.stack([r + radius * wander * np.cos(angles), r + radius * wander * ellipse * np.sin(angles)], axis=1)
    big = np.zeros(((2 * r + 1) * 4, (2 * r + 1) * 4), np.uint8)
    cv2.fillPoly(big, [np.round(points * 4 + 1.5).astype(np.int32)], 255)
    cover = cv2.resize(big, (2 * r + 1, 2 * r + 1), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return _trim(Piece("fragment", patch.astype(np.float32), cover, cover > 0.5, key=source.key))


# -- the layout ---------------------------------------------------------------------------------------


class Layout:
    """Where things lie, on a grid of :data:`GRID` pixels, with a gap kept around each."""

    def __init__(self, shape: tuple[int, int], gap: int):
        self.height, self.width = shape
        self.gap = max(1, gap // GRID)
        self.pad = self.gap + 2
        self.taken = np.zeros((self.height // GRID + 2 * self.pad + 2, self.width // GRID + 2 * self.pad + 2), bool)

    def footprint(self, piece: Piece, x: int, y: int) -> tuple[np.ndarray, int, int]:
        """The piece's mask at (x, y) on the grid, grown by the gap, and its corner in ``taken``."""
        ox, oy = x % GRID, y % GRID
        h, w = piece.truth.shape
        rows, cols = -(-(h + oy) // GRID), -(-(w + ox) // GRID)
        frame = np.zeros((rows * GRID, cols * GRID), bool)
        frame[oy : oy + h, ox : ox + w] = piece.truth
        cells = frame.reshape(rows, GRID, cols, GRID).any(axis=(1, 3))
        g = self.gap
        grown = cv2.dilate(np.pad(cells, g).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1))).astype(bool)
        return grown, y // GRID - g + self.pad, x // GRID - g + self.pad

    def fits(self, piece: Piece, x: int, y: int, margin: int) -> bool:
        h, w = piece.truth.shape
        if x < margin or y < margin or x + w > self.width - margin or y + h > self.height - margin:
            return False
        grown, top, left = self.footprint(piece, x, y)
        return not (self.taken[top : top + grown.shape[0], left : left + grown.shape[1]] & grown).any()

    def take(self, piece: Piece) -> None:
        grown, top, left = self.footprint(piece, piece.x, piece.y)
        self.taken[top : top + grown.shape[0], left : left + grown.shape[1]] |= grown

    def place(self, piece: Piece, rng: np.random.Generator, margin: int, tries: int = 300, near: str | None = None) -> bool:
        """Put ``piece`` somewhere free, on the grid (near an edge if ``near`` is "edge"); False if there is no room."""
        h, w = piece.truth.shape
        if w > self.width - 2 * margin or h > self.height - 2 * margin:
            return False
        grown, top, left = self.footprint(piece, 0, 0)  # the same at every grid point
        band = int(0.14 * max(self.width, self.height))
        low, high = (margin, margin), (self.width - margin - w, self.height - margin - h)
        for _ in range(tries):
            x, y = (int(rng.integers(a, b + 1)) for a, b in zip(low, high))
            if near == "edge":  # along one of the four edges
                side = int(rng.integers(4))
                if side == 0:
                    y = int(rng.integers(low[1], min(low[1] + band, high[1]) + 1))
                elif side == 1:
                    y = int(rng.integers(max(low[1], high[1] - band), high[1] + 1))
                elif side == 2:
                    x = int(rng.integers(low[0], min(low[0] + band, high[0]) + 1))
                else:
                    x = int(rng.integers(max(low[0], high[0] - band), high[0] + 1))
            x, y = x - x % GRID, y - y % GRID
            if x < margin or y < margin:
                continue
            cells = self.taken[top + y // GRID : top + y // GRID + grown.shape[0], left + x // GRID : left + x // GRID + grown.shape[1]]
            if not (cells & grown).any():
                piece.x, piece.y = x, y
                return True
        return False


def _overlap(a: Piece, b: Piece) -> int:
    """Pixels where the masks of two placed pieces overlap."""
    return _intersection(a.box, a.truth, b.box, b.truth)


def _intersection(a_box, a_mask: np.ndarray, b_box, b_mask: np.ndarray) -> int:
    ax, ay, aw, ah = a_box
    bx, by, bw, bh = b_box
    x0, y0, x1, y1 = max(ax, bx), max(ay, by), min(ax + aw, bx + bw), min(ay + ah, by + bh)
    if x0 >= x1 or y0 >= y1:
        return 0
    return int((a_mask[y0 - ay : y1 - ay, x0 - ax : x1 - ax] & b_mask[y0 - by : y1 - by, x0 - bx : x1 - bx]).sum())


def lay_touching(first: Piece, second: Piece, layout: Layout, rng: np.random.Generator, margin: int) -> bool:
    """Slide ``second`` towards the placed ``first`` until it lies over it by a few pixels; False if it cannot."""
    depth = int(rng.integers(2, 7))
    cx, cy = first.x + first.truth.shape[1] / 2, first.y + first.truth.shape[0] / 2
    h, w = second.truth.shape
    for _ in range(24):
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        start = max(first.truth.shape) / 2 + max(h, w) / 2 + 4
        contact = None
        for step in np.arange(start, 0, -2.0):
            second.x, second.y = round(cx + direction[0] * step - w / 2), round(cy + direction[1] * step - h / 2)
            if _overlap(first, second):
                contact = step + 2.0
                break
        if contact is None:
            continue
        for step in np.arange(contact, contact - 2.5, -1.0):  # the last step back, pixel by pixel
            second.x, second.y = round(cx + direction[0] * step - w / 2), round(cy + direction[1] * step - h / 2)
            if _overlap(first, second):
                contact = step
                break
        step = contact - depth + 1
        second.x, second.y = round(cx + direction[0] * step - w / 2), round(cy + direction[1] * step - h / 2)
        if _overlap(first, second) and layout.fits(second, second.x, second.y, margin):
            return True
    return False


# -- the photo ----------------------------------------------------------------------------------------


@dataclass
class Bed:
    """One photo of several leaves, with every leaf's exact mask and what lies beside them."""

    index: int
    photo: np.ndarray  # (H, W, 3) uint8 RGB
    leaves: list[Piece]  # the true leaves, masks with what later leaves cover taken away
    others: list[Piece]  # squares, chips, labels, fragments
    info: dict[str, Any] = field(default_factory=dict)
    conditions: Any = None  # what photograph() needs to take the same photo of other pieces
    whole: dict[int, np.ndarray] = field(default_factory=dict)  # a leaf's whole mask, where another lies over it


def _ground(background: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The background (float32 RGB): a scanner bed, or a surface of ``bench.leaf_photos`` made at ~960 px and enlarged."""
    height, width = shape
    if background == "scanner":
        base = np.array((247, 247, 244), np.float32) * rng.uniform(0.985, 1.01, 3).astype(np.float32)
        small = (max(8, round(height * 160 / max(shape))), max(8, round(width * 160 / max(shape))))
        even = cv2.resize(leaf_photos._smooth(small, 3, rng), (width, height), interpolation=cv2.INTER_LINEAR)
        return base * (1 + 0.006 * even)[..., None]
    small = (round(height * 960 / max(shape)), round(width * 960 / max(shape)))
    surface = cv2.resize(leaf_photos._surface(background, small, rng).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    fine = leaf_photos._grain(shape, 0.8, rng) * 0.008
    return surface * (1 + fine)[..., None]


def make_bed(
    index: int,
    seed: int,
    sources: list[Source],
    *,
    background: str | None = None,
    origin: str | None = None,
    count: int | None = None,
    shape: tuple[int, int] | None = None,
    touching: bool | None = None,
    dust: int | None = None,
    extras: bool = True,
) -> Bed:
    """Photo ``index`` of the set: every choice drawn from ``[seed, index]``, any of them fixed by the arguments."""
    rng = np.random.default_rng([seed, index])
    background = background or BACKGROUNDS[index % len(BACKGROUNDS)]
    origin = origin or ORIGINS[(index // len(BACKGROUNDS)) % len(ORIGINS)]
    drawn_count = int(rng.integers(5, 21))
    count = drawn_count if count is None else count
    mixed = bool(rng.random() < 0.25)
    drawn_touching = bool(rng.random() < 0.35)
    touching = (drawn_touching if touching is None else touching) and count >= 2
    long_side = int(rng.integers(1600, 2401))
    ratio = 1 / np.sqrt(2) if background == "scanner" else 0.75
    portrait = bool(rng.random() < 0.35)
    if shape is None:
        shape = (long_side, round(long_side * ratio)) if portrait else (round(long_side * ratio), long_side)
    height, width = shape
    big = max(shape)

    # The leaves: one species (or several), each drawn once before any is drawn again.
    pool = [s for s in sources if s.origin == origin]
    species = sorted({s.species for s in pool})
    if not mixed:
        chosen = str(rng.choice(species))
        pool = [s for s in pool if s.species == chosen]
    order: list[Source] = []
    while len(order) < count:
        order += [pool[i] for i in rng.permutation(len(pool))]
    order = order[:count]
    coverage = rng.uniform(0.15, 0.35)
    typical = coverage * height * width / max(count, 1)
    spread = 0.35 if mixed else 0.18
    areas = typical * np.clip(np.exp(rng.normal(0, spread, count)), 0.55, 1.8)
    aligned = bool(rng.random() < 0.5)  # leaves laid the same way up, or anyhow
    base_angle = rng.uniform(0, 360)
    margin = round(0.02 * big)
    layout = Layout(shape, round(rng.uniform(0.005, 0.012) * big))

    # What lies beside the leaves, along the edges, placed first.
    others: list[Piece] = []
    info: dict[str, Any] = {"square": None, "chips": 0, "label": False}
    if extras and rng.random() < 0.7:
        dark = bool(rng.random() < 0.6)
        grey = rng.uniform(12, 30) if dark else rng.uniform(105, 145)
        side = rng.uniform(0.025, 0.05) * big
        square = render_rectangle("square", side, side, np.full(3, grey, np.float32), rng.uniform(-8, 8))
        if layout.place(square, rng, margin, near="edge"):
            layout.take(square)
            others.append(square)
            info["square"] = "black" if dark else "grey"
    if extras and rng.random() < 0.5:
        chips, side, gap = int(rng.integers(4, 9)), rng.uniform(0.018, 0.03) * big, int(rng.integers(3, 9))
        colours = [CHIP_COLOURS[i] for i in rng.choice(len(CHIP_COLOURS), chips, replace=False)]
        tilt = rng.uniform(-3, 3)
        upright = bool(rng.random() < 0.4)
        strip = [render_rectangle("chip", side, side, np.array(c, np.float32), tilt) for c in colours]
        length = chips * (side + gap)
        carrier = Piece("strip", np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32), np.ones((round(side) + 4, round(length) + 4), bool))
        if upright:
            carrier.truth = carrier.truth.T.copy()
        if layout.place(carrier, rng, margin, near="edge"):
            step = side + gap
            for k, chip in enumerate(strip):
                chip.x = carrier.x + (0 if upright else round(k * step))
                chip.y = carrier.y + (round(k * step) if upright else 0)
                layout.take(chip)
                others.append(chip)
            info["chips"] = chips
    if extras and background in ("blue card", "wood") and rng.random() < 0.6:
        label = render_label(rng.uniform(0.12, 0.2) * big, rng)
        if layout.place(label, rng, margin, near="edge"):
            layout.take(label)
            others.append(label)
            info["label"] = True

    # The leaves, largest first; the touching pair first of all.
    pieces = []
    for source, area in zip(order, areas):
        angle = base_angle + rng.uniform(-15, 15) if aligned else rng.uniform(0, 360)
        pieces.append(render_leaf(source, float(area), angle, bool(rng.random() < 0.5)))
    pieces.sort(key=lambda p: -int(p.truth.sum()))
    leaves: list[Piece] = []
    pair = False
    if touching:
        for _ in range(6):
            if layout.place(pieces[0], rng, margin) and lay_touching(pieces[0], pieces[1], layout, rng, margin):
                pair = True
                break
        if pair:
            layout.take(pieces[0])
            layout.take(pieces[1])
            leaves += pieces[:2]
            pieces = pieces[2:]
    dropped = 0
    for piece in pieces:
        placed = False
        for _ in range(6):
            if layout.place(piece, rng, margin):
                placed = True
                break
            key = piece.key
            piece = render_leaf(next(s for s in sources if s.key == key), 0.85 * float(piece.truth.sum()), rng.uniform(0, 360), False)
        if placed:
            layout.take(piece)
            leaves.append(piece)
        else:
            dropped += 1

    # Fragments (torn-off pieces far smaller than a leaf) in the room that is left.
    fragments = 0
    if extras and order and rng.random() < 0.45:
        for _ in range(int(rng.integers(1, 7))):
            fragment = render_fragment(order[int(rng.integers(len(order)))], rng.uniform(0.01, 0.06) * typical, typical, rng)
            if layout.place(fragment, rng, margin, tries=100):
                layout.take(fragment)
                others.append(fragment)
                fragments += 1

    # The photo: background, dust, shadows, the pieces, the light, the camera or the scanner.
    pair_truth = leaves[0].truth.copy() if pair else None
    conditions = (background, shape, typical, dust, rng.bit_generator.state)
    photo, specks = photograph(conditions, others + leaves)
    if pair:  # the second leaf lies over the first
        first, second = leaves[0], leaves[1]
        x0, y0 = max(first.x, second.x), max(first.y, second.y)
        x1, y1 = min(first.x + first.box[2], second.x + second.box[2]), min(first.y + first.box[3], second.y + second.box[3])
        if x0 < x1 and y0 < y1:
            first.truth[y0 - first.y : y1 - first.y, x0 - first.x : x1 - first.x] &= ~second.truth[
                y0 - second.y : y1 - second.y, x0 - second.x : x1 - second.x
            ]
    info.update(
        background=background,
        origin=origin,
        species=sorted({key_species(p.key) for p in leaves}),
        mixed=mixed,
        touching=pair,
        leaves=len(leaves),
        dropped=dropped,
        fragments=fragments,
        dust=specks,
        shape=[height, width],
        coverage=round(float(sum(int(p.truth.sum()) for p in leaves)) / (height * width), 3),
    )
    bed = Bed(index, photo, leaves, [p for p in others if p.kind != "strip"], info, conditions)
    if pair_truth is not None:
        bed.whole = {0: pair_truth}
    return bed


def photograph(conditions: tuple[str, tuple[int, int], float, int | None, dict[str, Any]], pieces: list[Piece]) -> tuple[np.ndarray, int]:
    """The photo of ``pieces`` (the later over the earlier) on a background, and its specks of dust.

    ``conditions``: (background, shape, typical leaf area, specks of dust or None to draw them, the generator's
    state). The same conditions give the same surface, dust, light, shadows' fall and camera whatever lies on it:
    a leaf can be photographed alone as it lay among others.
    """
    background, shape, typical, dust, state = conditions
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    height, width = shape
    big = max(shape)
    ground = _ground(background, shape, rng)
    specks = int(rng.integers(20, 300)) if background in ("scanner", "white paper") else int(rng.integers(0, 150))
    specks = specks if dust is None else dust
    for _ in range(specks):
        grey = rng.uniform(25, 95)
        colour = (grey * rng.uniform(1.0, 1.15), grey, grey * rng.uniform(0.8, 1.0))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(ground, centre, int(rng.choice([0, 1, 1])), colour, -1, cv2.LINE_8)
    if background != "scanner":
        alpha = np.zeros(shape, np.float32)
        for piece in pieces:
            x, y, w, h = piece.box
            np.maximum(alpha[y : y + h, x : x + w], piece.alpha, out=alpha[y : y + h, x : x + w])
        dark, _ = leaf_photos._shadow(alpha, rng, single_leaf_frame(typical))
        ground *= 1.0 - dark[..., None] * np.array((1.0, 0.93, 0.78), np.float32)
    image = ground
    for piece in pieces:
        x, y, w, h = piece.box
        a = piece.alpha[..., None]
        image[y : y + h, x : x + w] = image[y : y + h, x : x + w] * (1 - a) + piece.colour * a
    if background == "scanner":
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 0.7))
        image += rng.normal(0, 1.0, image.shape[:2]).astype(np.float32)[..., None] * rng.uniform(1.0, 2.0)
        photo = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), specks
    small = (round(height * 400 / big), round(width * 400 / big))
    light, _ = leaf_photos._light(small, rng)
    light = cv2.resize(light, (width, height), interpolation=cv2.INTER_LINEAR)
    temperature, tint = rng.uniform(-1, 1), rng.uniform(-1, 1)
    balance = np.array((1 + 0.07 * temperature, 1 + 0.03 * tint, 1 - 0.08 * temperature), np.float32)
    image *= light * balance * rng.uniform(0.92, 1.06)
    photo, _ = leaf_photos._camera(image, rng)
    return photo, specks


def key_species(key: str) -> str:
    return key.split(":", 1)[1].split("/")[-2]


# -- scoring ------------------------------------------------------------------------------------------

_LEFT_OUT_COUNTS = re.compile(r"(\d[\d,]*) (rectangles?|specks?|fragments?)")


def left_out_of(messages: list[str]) -> dict[str, int]:
    """What segment_all's warning says it left out: rectangles, specks, fragments."""
    counts: Counter[str] = Counter()
    for message in messages:
        if LEFT_OUT not in message:
            continue
        found = _LEFT_OUT_COUNTS.findall(message.split(LEFT_OUT, 1)[1])
        if not found:
            raise ValueError(f"cannot read the left-out warning: {message!r}")
        for number, reason in found:
            counts[reason.rstrip("s") + "s"] += int(number.replace(",", ""))
    return dict(counts)


def run_segment_all(photo: Any) -> tuple[list[leafprep.Found], list[str], float, str | None]:
    """segment_all on ``photo``: what it found, its warnings, seconds, and the error if it raised."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", leafprep.LeafprepWarning)
        try:
            found, error = leafprep.segment_all(photo), None
        except leafprep.NothingFoundError as exc:
            found, error = [], str(exc)
    seconds = time.perf_counter() - start
    return found, [str(w.message.message) for w in caught if isinstance(w.message, leafprep.LeafprepWarning)], seconds, error


def score_bed(bed: Bed) -> dict[str, Any]:
    """How segment_all did on one photo."""
    found, messages, seconds, error = run_segment_all(bed.photo)
    true_areas = [int(p.truth.sum()) for p in bed.leaves]
    found_areas = [int(f.mask.sum()) for f in found]
    table = np.zeros((len(bed.leaves), len(found)))
    for i, leaf in enumerate(bed.leaves):
        for j, thing in enumerate(found):
            inter = _intersection(leaf.box, leaf.truth, thing.box, thing.mask)
            table[i, j] = inter / max(true_areas[i] + found_areas[j] - inter, 1)
    ious = table.max(axis=1) if len(found) else np.zeros(len(bed.leaves))
    # Each found object that fits no leaf (IoU < 0.5): what it covers.
    extra: Counter[str] = Counter()
    returned: Counter[str] = Counter()
    for j, thing in enumerate(found):
        on = {p.kind: 0 for p in bed.others}
        for piece in bed.others:
            on[piece.kind] += _intersection(piece.box, piece.truth, thing.box, thing.mask)
        kind = max(on, key=on.get) if on else None
        if kind and on[kind] > 0.5 * found_areas[j]:
            returned[kind] += 1
        if len(bed.leaves) and table[:, j].max() >= 0.5:
            continue
        leafy = sum(_intersection(leaf.box, leaf.truth, thing.box, thing.mask) for leaf in bed.leaves)
        if kind and on[kind] > 0.5 * found_areas[j]:
            extra[kind] += 1
        elif leafy > 0.5 * found_areas[j]:
            extra["part of a leaf"] += 1
        else:
            extra["background"] += 1
    # Leaves found together as one object, and leaves found in several pieces.
    merged = sum(1 for j in range(len(found)) if (table[:, j] > 0).sum() >= 2 and sorted(table[:, j])[-2] > 0.2)
    split = 0
    for i, leaf in enumerate(bed.leaves):
        covered = [_intersection(leaf.box, leaf.truth, thing.box, thing.mask) / max(true_areas[i], 1) for thing in found]
        split += int(sum(c > 0.15 for c in covered) >= 2)
    notes = Counter()
    for thing in found:
        for note in thing.notes:
            if note.startswith(DOUBT):
                notes["doubtful"] += 1
            elif "split between them" in note:
                notes["split from a touching leaf"] += 1
            elif "several touching leaves" in note:
                notes["may be several leaves"] += 1
            elif "image border" in note:
                notes["touches the border"] += 1
    placed = Counter(p.kind for p in bed.others)
    return {
        "index": bed.index,
        **bed.info,
        "found": len(found),
        "count_right": len(found) == len(bed.leaves),
        "error": error,
        "ious": [round(float(v), 4) for v in ious],
        "sources": [p.key for p in bed.leaves],
        "left_out": left_out_of(messages),
        "placed": dict(placed),
        "returned_as_leaf": dict(returned),
        "extra": dict(extra),
        "merged": merged,
        "split": split,
        "notes": dict(notes),
        "seconds": round(seconds, 3),
    }


def _figures(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"leaves": 0}
    array = np.asarray(values, np.float64)
    return {
        "leaves": len(values),
        "median_iou": round(float(np.median(array)), 4),
        "p10_iou": round(float(np.percentile(array, 10)), 4),
        "below_0_9": round(float((array < 0.9).mean()), 4),
        "missed": int((array == 0).sum()),
    }


def _group(records: list[dict[str, Any]], key, singles: dict[str, float]) -> dict[str, Any]:
    """Count accuracy and IoU figures of each group of photos, with the single-leaf median on the same leaves."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    out = {}
    for name, members in groups.items():
        out[name] = {
            "photos": len(members),
            "count_accuracy": round(sum(r["count_right"] for r in members) / len(members), 4),
            **_figures([v for r in members for v in r["ious"]]),
            "single_leaf_median_iou": round(float(np.median([singles[k] for r in members for k in r["sources"]])), 4),
        }
    return out


def single_leaf(keys: set[str], originals: dict[str, tuple[Any, np.ndarray, bool]]) -> dict[str, float]:
    """IoU of ``leafprep.segment(kind="leaf")`` on each leaf's own photo against its mask."""
    out = {}
    for key in sorted(keys):
        source, mask, petiole = originals[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", leafprep.LeafprepWarning)
            try:
                found = leafprep.segment(source, kind="leaf", petiole=petiole)
            except leafprep.NothingFoundError:
                found = np.zeros(mask.shape, bool)
        out[key] = round(iou(found, mask), 4)
    return out


def alone(bed: Bed) -> dict[str, list[float]]:
    """Each leaf of ``bed`` photographed alone where it lay (the same surface, dust, light, shadows' fall and camera),
    framed as a single-leaf photo of it (the leaf its median share of a 4:3 frame, :func:`single_leaf_frame`): the IoU
    of ``leafprep.segment(kind="leaf")`` and of ``segment_all``'s best fit on that photo against the leaf's whole mask.

    What a leaf's mask loses to the other leaves and the things beside them, and what to the surface and the camera.
    """
    height, width = bed.info["shape"]
    out: dict[str, list[float]] = {"segment": [], "segment_all": []}
    for k, leaf in enumerate(bed.leaves):
        photo, _ = photograph(bed.conditions, [leaf])
        x, y, w, h = leaf.box
        truth = np.zeros((height, width), bool)
        truth[y : y + h, x : x + w] = bed.whole.get(k, leaf.truth)
        side = single_leaf_frame(float(truth.sum()))
        frame_w, frame_h = (side, 0.75 * side) if w >= h else (0.75 * side, side)
        frame_w, frame_h = min(width, max(frame_w, w + 16)), min(height, max(frame_h, h + 16))
        x0 = int(np.clip(round(x + w / 2 - frame_w / 2), 0, width - frame_w))
        y0 = int(np.clip(round(y + h / 2 - frame_h / 2), 0, height - frame_h))
        window = (slice(y0, y0 + round(frame_h)), slice(x0, x0 + round(frame_w)))
        crop, true_crop = np.ascontiguousarray(photo[window]), truth[window]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", leafprep.LeafprepWarning)
            try:
                found = leafprep.segment(crop, kind="leaf")
            except leafprep.NothingFoundError:
                found = np.zeros(true_crop.shape, bool)
            try:
                every = leafprep.segment_all(crop)
            except leafprep.NothingFoundError:
                every = []
        out["segment"].append(round(iou(found, true_crop), 4))
        out["segment_all"].append(round(best_iou(every, true_crop), 4))
    return out


# -- speed and bad input ------------------------------------------------------------------------------


def speed(sources: list[Source], seed: int, background: str) -> dict[str, Any]:
    """segment_all on a 20-leaf 4000x3000 JPEG (median of 5 after one warm-up), and the bare decode."""
    bed = make_bed(
        10_000 + BACKGROUNDS.index(background), seed, sources, background=background, origin="swedish", count=20, shape=(3000, 4000), touching=False
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bed.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(bed.photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        found, _, _, _ = run_segment_all(path)
        times = [run_segment_all(path)[2] for _ in range(5)]
        decodes = []
        for _ in range(5):
            start = time.perf_counter()
            cv2.imread(str(path))
            decodes.append(time.perf_counter() - start)
        size = path.stat().st_size
    return {
        "background": background,
        "shape": [3000, 4000],
        "leaves": len(bed.leaves),
        "found": len(found),
        "jpeg_mb": round(size / 1e6, 2),
        "seconds": round(float(np.median(times)), 3),
        "all_seconds": [round(t, 3) for t in times],
        "decode_seconds": round(float(np.median(decodes)), 3),
    }


def bad_inputs(sources: list[Source], seed: int) -> list[dict[str, Any]]:
    """A photo with no leaf raises NothingFoundError; one leaf gives one; leaves among 500 specks give the leaves."""
    checks = []

    def expect_none(name: str, bed: Bed) -> None:
        found, _, _, error = run_segment_all(bed.photo)
        ok = error is not None and "no leaf found" in error
        checks.append({"check": name, "expected": "NothingFoundError: no leaf found", "got": error or f"{len(found)} leaves", "pass": ok})

    def expect_count(name: str, bed: Bed) -> None:
        found, messages, _, error = run_segment_all(bed.photo)
        got = f"{len(found)} leaves, left out: {left_out_of(messages)}" if error is None else error
        checks.append({"check": name, "expected": f"{len(bed.leaves)} leaves", "got": got, "pass": len(found) == len(bed.leaves)})

    expect_none("no leaf: a bare scanner bed", make_bed(20_000, seed, sources, background="scanner", count=0, dust=0, extras=False))
    expect_none("no leaf: a scanner bed with a square, chips and dust", _no_leaf_with_extras(sources, seed))
    expect_none("no leaf: bare blue card", make_bed(20_002, seed, sources, background="blue card", count=0, dust=0, extras=False))
    expect_count("one leaf on a scanner bed", make_bed(20_003, seed, sources, background="scanner", count=1, dust=40))
    expect_count("one leaf on blue card", make_bed(20_004, seed, sources, background="blue card", origin="uci_dev", count=1, dust=40))
    expect_count("8 leaves and 500 specks on a scanner bed", make_bed(20_005, seed, sources, background="scanner", count=8, dust=500, touching=False))
    expect_count(
        "8 leaves and 500 specks on white paper", make_bed(20_006, seed, sources, background="white paper", count=8, dust=500, touching=False)
    )
    return checks


def _no_leaf_with_extras(sources: list[Source], seed: int) -> Bed:
    for index in range(20_001, 40_001, 1000):
        bed = make_bed(index, seed, sources, background="scanner", count=0, dust=200)
        if any(piece.kind == "square" for piece in bed.others) and any(piece.kind == "chip" for piece in bed.others):
            break
    return bed


# -- the picture --------------------------------------------------------------------------------------


def tile(bed: Bed, record: dict[str, Any], side: int = 560) -> np.ndarray:
    """The photo shrunk to ``side`` px on the long side, segment_all's outlines and numbers drawn, a caption above."""
    found, _, _, _ = run_segment_all(bed.photo)
    height, width = bed.photo.shape[:2]
    scale = side / max(height, width)
    small = np.ascontiguousarray(cv2.resize(bed.photo, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA))
    for thing in found:
        x, y, w, h = thing.box
        contours, _ = cv2.findContours(thing.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            points = np.round((contour.astype(np.float64) + (x, y)) * scale).astype(np.int32)
            cv2.polylines(small, [points], True, (255, 40, 200), 2, cv2.LINE_AA)
        centre = (round((x + w / 2) * scale) - 6, round((y + h / 2) * scale) + 6)
        cv2.putText(small, str(thing.index), centre, cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(small, str(thing.index), centre, cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    caption = np.full((26, small.shape[1], 3), 255, np.uint8)
    extras = [
        w
        for w, on in (("square", record["square"]), ("chips", record["chips"]), ("label", record["label"]), ("touching pair", record["touching"]))
        if on
    ]
    text = f"{record['background']}: {record['leaves']} leaves, {record['found']} found" + (f" ({', '.join(extras)})" if extras else "")
    cv2.putText(caption, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([caption, small])


def save_picture(tiles: list[np.ndarray], path: Path, limit: int = 300_000) -> int:
    """Tiles side by side as a palette PNG under ``limit`` bytes (shrunk until it fits)."""
    height = max(t.shape[0] for t in tiles)
    row = np.hstack([np.vstack([t, np.full((height - t.shape[0], t.shape[1], 3), 255, np.uint8)]) for t in tiles])
    image = Image.fromarray(row)
    while True:
        buffer = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= limit or image.width < 600:
            break
        image = image.resize((round(image.width * 0.9), round(image.height * 0.9)), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


# -- the run ------------------------------------------------------------------------------------------


def causes(record: dict[str, Any]) -> list[str]:
    """Why a photo's count is wrong, as far as the scoring tells."""
    out = []
    if record["split"]:
        out.append("a leaf found in pieces")
    if record["merged"]:
        out.append("leaves found as one")
    if any(record["returned_as_leaf"].get(kind) for kind in ("square", "chip", "label")):
        out.append("a square, chip or label returned")
    if record["returned_as_leaf"].get("fragment"):
        out.append("a fragment returned")
    if any(v == 0 for v in record["ious"]):
        out.append("a leaf missed")
    return out or ["other"]


def summarise(records: list[dict[str, Any]], singles: dict[str, float]) -> dict[str, Any]:
    ious = [v for r in records for v in r["ious"]]
    single = [singles[k] for r in records for k in r["sources"]]
    by_origin_single = {
        origin: _figures([singles[k] for r in records for k in r["sources"] if r["origin"] == origin])
        for origin in sorted({r["origin"] for r in records})
    }
    left_out: Counter[str] = Counter()
    for r in records:
        left_out.update(r["left_out"])
    placed: Counter[str] = Counter()
    returned: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    for r in records:
        placed.update(r["placed"])
        returned.update(r["returned_as_leaf"])
        extra.update(r["extra"])
    wrong = [r for r in records if not r["count_right"]]
    return {
        "photos": len(records),
        "leaves": len(ious),
        "count_accuracy": round(sum(r["count_right"] for r in records) / len(records), 4),
        "too_many": sum(r["found"] > r["leaves"] for r in records),
        "too_few": sum(r["found"] < r["leaves"] for r in records),
        "multi_leaf": _figures(ious),
        "single_leaf_same_leaves": _figures(single),
        "single_leaf_unique_leaves": _figures([singles[k] for k in sorted({k for r in records for k in r["sources"]})]),
        "single_leaf_by_origin": by_origin_single,
        "by_background": _group(records, lambda r: r["background"], singles),
        "by_touching": _group(records, lambda r: "touching pair" if r["touching"] else "no touching pair", singles),
        "by_origin": _group(records, lambda r: r["origin"], singles),
        "by_mixed": _group(records, lambda r: "mixed species" if r["mixed"] else "one species", singles),
        "left_out": dict(left_out),
        "placed": dict(placed),
        "placed_dust": sum(r["dust"] for r in records),
        "returned_as_leaf": dict(returned),
        "photos_with_a_rectangle_returned": sum(any(r["returned_as_leaf"].get(k) for k in ("square", "chip", "label")) for r in records),
        "extra_found": dict(extra),
        "merged": sum(r["merged"] for r in records),
        "split": sum(r["split"] for r in records),
        "wrong_count_causes": dict(Counter(cause for r in wrong for cause in causes(r))),
        "wrong_counts": [
            {
                "causes": causes(r),
                **{
                    k: r[k]
                    for k in (
                        "index",
                        "background",
                        "origin",
                        "species",
                        "leaves",
                        "found",
                        "touching",
                        "extra",
                        "merged",
                        "split",
                        "returned_as_leaf",
                    )
                },
            }
            for r in wrong
        ],
        "seconds_per_photo": round(float(np.mean([r["seconds"] for r in records])), 3),
    }


def summarise_alone(records: list[dict[str, Any]]) -> dict[str, Any]:
    """segment_all's leaves against the same leaves photographed alone where they lay (:func:`alone`), by background."""
    out: dict[str, Any] = {}
    chosen = [r for r in records if "alone" in r]
    for name in ["all", *sorted({r["background"] for r in chosen})]:
        members = [r for r in chosen if name in ("all", r["background"])]
        out[name] = {
            "photos": len(members),
            "together": _figures([v for r in members for v in r["ious"]]),
            "alone_segment": _figures([v for r in members for v in r["alone"]["segment"]]),
            "alone_segment_all": _figures([v for r in members for v in r["alone"]["segment_all"]]),
        }
    return out


def print_tables(results: dict[str, Any]) -> None:
    s = results["summary"]
    multi, single = s["multi_leaf"], s["single_leaf_same_leaves"]
    print(f"\n{s['photos']} photos, {s['leaves']} real leaves (seed {results['seed']})\n")

    def iou_figures(f: dict[str, Any]) -> str:
        return f"{f['median_iou']:.3f} / {f['p10_iou']:.3f} / {f['below_0_9']:.1%}"

    print("| | figure | target |")
    print("|---|---|---|")
    print(f"| count right (len(segment_all) = leaves) | {s['count_accuracy']:.1%} ({s['too_many']} too many, {s['too_few']} too few) | >= 95% |")
    print(f"| per-leaf IoU, median / 10th percentile / share below 0.9 | {iou_figures(multi)} | median >= single-leaf |")
    print(f"| single-leaf segment on the same leaves' own photos | {iou_figures(single)} | |")
    for name in ("by_background", "by_touching", "by_origin", "by_mixed"):
        print(
            f"\n| {name.replace('_', ' ')} | photos | count right | leaves | median IoU / 10th percentile / below 0.9 | missed | single-leaf median |"
        )
        print("|---|---|---|---|---|---|---|")
        for group, f in s[name].items():
            print(
                f"| {group} | {f['photos']} | {f['count_accuracy']:.1%} | {f['leaves']} | {iou_figures(f)} | {f['missed']} "
                f"| {f['single_leaf_median_iou']:.3f} |"
            )
    if "alone" in results:
        print("\n| the first photos' leaves | photos | together: segment_all | each alone where it lay: segment | alone: segment_all |")
        print("|---|---|---|---|---|")
        for group, f in results["alone"].items():
            print(
                f"| {group} | {f['photos']} | {iou_figures(f['together'])} | {iou_figures(f['alone_segment'])} "
                f"| {iou_figures(f['alone_segment_all'])} |"
            )
    print(f"\nsingle leaf by origin: {s['single_leaf_by_origin']}")
    print(f"left out (sum of segment_all's counts): {s['left_out']}; placed: {s['placed']}, {s['placed_dust']} specks of dust")
    print(f"returned as a leaf: {s['returned_as_leaf']} (photos with a square, chip or label returned: {s['photos_with_a_rectangle_returned']})")
    print(f"why counts were wrong (photos): {s['wrong_count_causes']}")
    print(f"found objects that fit no leaf: {s['extra_found']}; leaves merged into one object: {s['merged']}; leaves found in pieces: {s['split']}")
    for wrong in s["wrong_counts"]:
        print(f"  wrong count: {wrong}")
    for check in results.get("speed", []):
        print(
            f"speed, {check['leaves']} leaves, 4000x3000 JPEG on {check['background']}: segment_all {check['seconds']:.2f} s (median of 5), "
            f"cv2.imread {check['decode_seconds']:.2f} s, found {check['found']}"
        )
    for check in results.get("bad_input", []):
        print(f"{'PASS' if check['pass'] else 'FAIL'}: {check['check']}: expected {check['expected']}, got {check['got']}")


def main() -> None:
    parser = argparse.ArgumentParser(description="segment_all on multi-leaf photos made from real leaves")
    parser.add_argument("--photos", type=int, default=100, help="how many photos (photo i is the same in every run)")
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--no-speed", action="store_true", help="skip the 12-megapixel timing")
    parser.add_argument("--no-picture", action="store_true", help="do not write docs/images/leaf_beds.png")
    parser.add_argument("--only", type=int, nargs="*", help="only these photos, printed (no results written)")
    parser.add_argument("--dump", type=Path, help="write the photos (PNG) and their leaves' masks here")
    parser.add_argument("--alone", type=int, default=0, metavar="N", help="also each leaf of the first N photos alone (12 s a photo)")
    args = parser.parse_args()
    start = time.perf_counter()

    sources, originals = load_sources()
    indices = args.only if args.only else list(range(args.photos))
    records, chosen_tiles = [], {}
    wanted = {"scanner": None, "blue card": None, "wood": None}
    for index in indices:
        bed = make_bed(index, args.seed, sources)
        record = score_bed(bed)
        if index < args.alone:
            record["alone"] = alone(bed)
        records.append(record)
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.dump / f"bed-{index:03d}.png"), cv2.cvtColor(bed.photo, cv2.COLOR_RGB2BGR))
            labels = np.zeros(bed.photo.shape[:2], np.uint8)
            for k, leaf in enumerate(bed.leaves, start=1):
                x, y, w, h = leaf.box
                labels[y : y + h, x : x + w][leaf.truth] = k
            cv2.imwrite(str(args.dump / f"bed-{index:03d}-leaves.png"), labels)
        if args.only:
            print(json.dumps({k: v for k, v in record.items() if k not in ("sources",)}))
        # The picture: the first photo on each of three backgrounds with something beside the leaves (a pair, if any).
        background = record["background"]
        if background in wanted and not args.no_picture and not args.only:
            score = (record["touching"], bool(record["square"] or record["chips"] or record["label"]), record["count_right"])
            if wanted[background] is None or score > wanted[background]:
                wanted[background] = score
                chosen_tiles[background] = tile(bed, record)
        print(
            f"photo {index:3d}: {record['background']:11s} {record['origin']:8s} {record['leaves']:2d} leaves, found {record['found']:2d}, "
            f"median IoU {np.median(record['ious']) if record['ious'] else 0:.3f}, {record['seconds']:.2f} s",
            flush=True,
        )
    if args.only:
        return

    singles = single_leaf({k for r in records for k in r["sources"]}, originals)
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.leaf_beds", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "summary": summarise(records, singles),
    }
    if args.alone:
        results["alone"] = summarise_alone(records)
    if not args.no_speed:
        results["speed"] = [speed(sources, args.seed, "scanner"), speed(sources, args.seed, "blue card")]
    results["bad_input"] = bad_inputs(sources, args.seed)
    if not args.no_picture and chosen_tiles:
        results["picture_bytes"] = save_picture([chosen_tiles[b] for b in wanted if b in chosen_tiles], PICTURE)
    results["single_leaf"] = singles
    results["per_photo"] = records
    results["seconds"] = round(time.perf_counter() - start, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # One line a photo and one for the single-leaf figures, the rest indented.
    head = json.dumps({k: v for k, v in results.items() if k not in ("single_leaf", "per_photo")}, indent=1)[:-2]
    lines = ",\n".join("  " + json.dumps(record) for record in records)
    text = f'{head},\n "single_leaf": {json.dumps(singles)},\n "per_photo": [\n{lines}\n ]\n}}\n'
    # A fresh seed keeps the dev set's file.
    written = RESULTS / ("leaf_beds.json" if args.seed == parser.get_default("seed") else f"leaf_beds_seed{args.seed}.json")
    written.write_text(text)
    print_tables(results)
    print(f"\n{results['seconds']:.0f} s; wrote {written}" + ("" if args.no_picture else f" and {PICTURE}"))


if __name__ == "__main__":
    main()
