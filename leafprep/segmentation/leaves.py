"""Finding one leaf in a photo or scan, on any background and in real light.

The leaf recipe, on an upright RGB photo (:func:`leaf_mask`; docs/leaves.md has
the figures behind each rule):

1. :func:`background_colours`: the colours of a ring along the image border
   (binned; the bins that make most of the ring and run all round it): card,
   cloth, the bands of wood grain.
2. :func:`light_field`: a smooth surface (a polynomial in x and y per channel,
   in log intensity) fitted to the ring, then to everything found to be
   background; :func:`flatten_light` divides it out, so that gradients,
   vignetting and colour casts go.
3. :func:`shadow_distance`: the distance of every pixel to the nearest
   background colour in CIELAB, forgiving what shadows do (a drop in
   lightness, and with it some turn of hue and loss of chroma).
   Scans and evenly lit neutral paper take a fast path instead:
   :func:`background_distance`, a pixel is ``f`` times a background colour
   plus a rest, a darker ``f`` counting a tenth.
4. Otsu's threshold over the capped distances; fainter pixels that touch an
   object join it; specks go; the largest object wins (rulers and colour
   charts, near-perfect rectangles, and objects cut by the border count less);
   pieces within a small gap join it (leaflets).
5. :func:`refine_edges`: the outline where the colour has gone 60% of the way
   from the local background to the local leaf (a soft shadow stays out).
6. Small holes are filled (not the card seen through the leaf); the petiole can
   be cut off (:func:`cut_petiole`, keeping lobes).
7. :func:`mask_doubts`: reasons to doubt the mask, given as warnings.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from itertools import pairwise

import cv2
import numpy as np

from ..errors import DOUBT, LeafprepWarning
from ..loading import ImageSource, _load
from .common import nothing_found, odd, working_image

__all__ = [
    "DETAIL_SIDE",
    "LeafAnalysis",
    "analyse_leaf",
    "background_colours",
    "background_distance",
    "border_ring",
    "cut_petiole",
    "edge_spread",
    "flatten_light",
    "leaf_mask",
    "light_field",
    "mask_doubts",
    "otsu_threshold",
    "refine_edges",
    "shadow_distance",
    "spread_doubt",
    "unsure_band",
]

#: Distance (RGB units) below which a pixel is always background.
MIN_DISTANCE = 14.0
# The threshold is OTSU_FACTOR times Otsu's (at least MIN_DISTANCE); pixels above WEAK_FACTOR of
# it that touch the leaf join it (pale petioles and rachises).
OTSU_FACTOR = 1.0
DISTANCE_CAP = 80.0
WEAK_FACTOR = 0.8
# Side of the RGB bins that background colours are counted in.
_BIN = 16
# Weight of "darker than the background" against hue and "lighter" changes.
_SHADOW_WEIGHT = 0.1
# Long side of the working image for leaves.
LEAF_WORK_SIDE = 1024
#: A leaf photo is decoded with its short side at least this long (JPEG's reduced decoding stops there), so that
#: its colour and texture (leafprep.description) are measured on real detail even when the leaf is found at a small size.
DETAIL_SIDE = 256
#: Share of the local contrast, from background to leaf, at which :func:`refine_edges` puts the outline.
EDGE_LEVEL = 0.6
#: Half-width of the band round the outline where :func:`refine_edges` may move it (share of the longer side).
EDGE_BAND = 0.006
# The fast path (scans, evenly lit paper) is taken when the light across the ring changes by less
# than this (log units) and every background colour's channels differ by less than NEUTRAL_SPREAD.
EVEN_LIGHT = 0.12
NEUTRAL_SPREAD = 30.0
#: A rectangle's convex hull fills its rotated rectangle over this share, and the rectangle itself over RECTANGLE_PART.
RECTANGLE_HULL = 0.92
RECTANGLE_PART = 0.7
# shadow_distance: weight of a darker pixel's drop in lightness, the turn of hue it forgives per unit of drop, and the scale
# from CIELAB to RGB-like units (so that MIN_DISTANCE and DISTANCE_CAP keep their meaning).
_SHADOW_LIGHTNESS = 0.25
_SHADOW_HUE = 0.55
_SHADOW_TURN = float(np.sin(np.radians(20.0)))
_SHADOW_CHROMA = 0.35
_SHADOW_FLOOR = 0.2
_LAB_SCALE = 2.5
# Added to intensities before the light field's logarithm (dark pixels are noisy).
_LIGHT_OFFSET = 8.0
#: What :func:`leaf_mask` says of a photo of several leaves (after their count); ``serve`` reads every leaf of such a photo.
SEVERAL_LEAVES = "leaves found: the largest is used"
#: Where several leaves were found and one is used: how to get each one.
ALL_HINT = "--all, or segment_all(), gives each one"
#: mask_doubts: a mask is doubtful when its outline could be anywhere in a band of more than this share of its area.
UNSURE_SHARE = 0.195
# edge_spread looks this far (share of the longer side) either side of the outline.
SPREAD_BAND = 0.012


@dataclass(frozen=True)
class LeafAnalysis:
    """What leaf segmentation found in a working image.

    Attributes
    ----------
    photo : (M, N, 3) ndarray of uint8
        The working image.
    distance : (M, N) ndarray of float32
        Colour distance of every pixel to the nearest background colour.
    objects : (M, N) ndarray of bool
        Everything that is not background.
    mask : (M, N) ndarray of bool
        The leaf.
    scale : tuple of float
        ``(y, x)`` factors from working to full-size pixels.
    notes : list of str
        Warnings for the user: leaf cut by the border, several leaves.
    px_per_mm : float or None
        The photo's own resolution (full-size pixels per millimetre), where its file gives one.
    """

    photo: np.ndarray
    distance: np.ndarray
    objects: np.ndarray
    mask: np.ndarray
    scale: tuple[float, float]
    notes: list[str] = field(default_factory=list)
    px_per_mm: float | None = None


def background_colours(rgb: np.ndarray, *, ring: float = 0.03, share: float = 0.01) -> np.ndarray:
    """Colours of the background, taken from a ring along the image border.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray
    ring : float, optional
        Width of the ring as a fraction of the shorter side.
    share : float, optional
        A bin of the ring's colours is a background colour if it holds at least
        this fraction of the ring, is among the commonest bins that make up
        90% of it, and holds at least 3% of four or more of the ring's 16 arcs
        (the background runs all round; a leaf, ruler or colour chart at the
        border does not).

    Returns
    -------
    colours : (K, 3) ndarray of float32
        Mean RGB colour of each background bin, most common first.
    """
    height, width = rgb.shape[:2]
    r = max(1, round(ring * min(height, width)))
    # The ring in 16 arcs: four along each side.
    arcs = []
    for side in (rgb[:r], rgb[-r:], np.swapaxes(rgb[r:-r, :r], 0, 1), np.swapaxes(rgb[r:-r, -r:], 0, 1)):
        cuts = [side.shape[1] * k // 4 for k in range(5)]
        arcs += [side[:, a:b].reshape(-1, 3) for a, b in pairwise(cuts) if b > a]
    samples = np.concatenate(arcs)
    starts = np.cumsum([0] + [len(arc) for arc in arcs])
    levels = 256 // _BIN
    bins = (samples // _BIN).astype(np.int64)
    keys = (bins[:, 0] * levels + bins[:, 1]) * levels + bins[:, 2]
    counts = np.bincount(keys, minlength=levels**3)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    # The commonest bins that together make 90% of the ring...
    before = np.concatenate([[0.0], np.cumsum(counts[order])[:-1] / len(samples)])
    candidates = [int(i) for i, b in zip(order, before) if b < 0.9 and counts[i] >= share * len(samples)]
    # ...that hold at least 3% of four or more of the 16 arcs: the background runs
    # all round; a leaf, ruler or colour chart at the border sits in a few arcs.
    chosen = []
    for key in candidates:
        inside = np.add.reduceat((keys == key).astype(np.int64), starts[:-1])
        if (inside >= 0.03 * np.diff(starts)).sum() >= 4:
            chosen.append(key)
    chosen = chosen or [int(order[0])]
    sums = np.stack([np.bincount(keys, weights=samples[:, c], minlength=levels**3) for c in range(3)], axis=1)
    return (sums[chosen] / counts[chosen, None]).astype(np.float32)


def _shading_distance(pixels: np.ndarray, colour: np.ndarray, squared_norms: np.ndarray | None = None) -> np.ndarray:
    """Distance of RGB ``pixels`` (..., 3) from ``colour``, forgiving shade.

    A pixel is split into ``f * colour`` (the background under more or less
    light) and a rest orthogonal to it. The rest counts fully; being brighter
    counts fully; being darker counts ``_SHADOW_WEIGHT`` times: a shadow has
    the background's colour at a lower ``f``.
    """
    if squared_norms is None:
        squared_norms = _dot(pixels * pixels, np.ones(3, np.float32))
    norm2 = float(colour @ colour) + 1e-6
    dot = _dot(pixels, colour)
    f = dot * np.float32(1.0 / norm2)
    # Brighter: f - 1; darker: (1 - f) * weight. The larger of the two is the right one.
    shade = np.maximum(f - 1.0, (1.0 - f) * np.float32(_SHADOW_WEIGHT))
    rest = squared_norms - dot * f
    np.maximum(rest, 0.0, out=rest)
    shade *= shade
    shade *= np.float32(norm2)
    rest += shade
    return rest


def _dot(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``pixels @ colour`` over the last axis, by OpenCV (much faster than numpy here)."""
    flat = cv2.transform(np.ascontiguousarray(pixels, np.float32).reshape(-1, 1, 3), colour.reshape(1, 3).astype(np.float32))
    return flat.reshape(pixels.shape[:-1])


def background_distance(rgb: np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """Distance of every pixel to the nearest background colour, forgiving shadows.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    colours : (K, 3) ndarray, optional
        Background colours (RGB); :func:`background_colours` by default.

    Returns
    -------
    distance : (M, N) ndarray of float32
        In RGB units: the part of a pixel that a change of light on a
        background colour cannot explain (see :func:`_shading_distance`).
    """
    if colours is None:
        colours = background_colours(rgb)
    table = rgb.shape[0] * rgb.shape[1] > 64**3
    if not table:
        pixels = rgb.astype(np.float32)  # small images: every pixel against every colour
    else:
        # Large images: a table over RGB quantised to 64 levels a channel, looked up per pixel.
        levels = np.arange(64, dtype=np.float32) * 4.0 + 2.0
        pixels = np.ascontiguousarray(np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1))
    norms = _dot(pixels * pixels, np.ones(3, np.float32))
    first, *others = colours.astype(np.float32)
    best = _shading_distance(pixels, first, norms)
    for colour in others:
        np.minimum(best, _shading_distance(pixels, colour, norms), out=best)
    np.sqrt(best, out=best)
    if table:
        index = (rgb >> 2).astype(np.intp)
        return best[index[..., 0], index[..., 1], index[..., 2]]
    return best


def border_ring(height: int, width: int, ring: float = 0.03) -> np.ndarray:
    """A ring along the image border, ``ring`` of the shorter side wide (bool mask)."""
    r = max(1, round(ring * min(height, width)))
    mask = np.zeros((height, width), bool)
    mask[:r] = mask[-r:] = True
    mask[:, :r] = mask[:, -r:] = True
    return mask


@functools.cache
def _polynomial_terms(height: int, width: int, degree: int) -> np.ndarray:
    """The terms ``x**i * y**j`` (``i + j <= degree``) on an (height, width) grid scaled to [-1, 1]: (height * width, terms)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x = x / max(width - 1, 1) * 2 - 1
    y = y / max(height - 1, 1) * 2 - 1
    return np.stack([x**i * y**j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=-1).reshape(-1, (degree + 1) * (degree + 2) // 2)


def light_field(rgb: np.ndarray, background: np.ndarray, *, degree: int = 3, side: int = 64) -> np.ndarray:
    """How the light on the background changes across the frame.

    A smooth surface (a polynomial of ``degree`` in x and y, per channel, in
    log intensity) fitted to the ``background`` pixels, robustly: pixels more
    than three robust standard deviations off the surface (grain, specks,
    leaf parts in the ring) are left out and the fit repeated. It follows a
    fall-off from one side, vignetting in the corners and a colour cast.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    background : (M, N) ndarray of bool
        Pixels known to be background (at first the border ring).
    degree : int, optional
        Degree of the polynomial: 2 when only the ring is known, 3 when most of
        the frame is.
    side : int, optional
        The fit is made on the image shrunk to this long side.

    Returns
    -------
    field : (M, N, 3) ndarray of float32
        Multiplicative light per channel, 1 at the background's median.
    """
    height, width = rgb.shape[:2]
    return cv2.resize(np.exp(_log_light(rgb, background, degree, side)), (width, height), interpolation=cv2.INTER_LINEAR)


def _log_light(rgb: np.ndarray, background: np.ndarray, degree: int, side: int) -> np.ndarray:
    """:func:`light_field` in log units, on the image shrunk to ``side`` (float32, 0 at the background's median)."""
    return _fit_log_light(*_shrunk(rgb, background, side), degree)


def _fit_log_light(small: np.ndarray, known: np.ndarray, degree: int) -> np.ndarray:
    """:func:`_log_light` on a shrunk image and its known pixels (:func:`_shrunk`)."""
    small_size = (small.shape[1], small.shape[0])
    if known.sum() < 3 * (degree + 1) * (degree + 2):
        return np.zeros((small_size[1], small_size[0], 3), np.float32)
    # Only the known pixels take part in the fit (on a scan, the ring is a small share of the frame).
    values = np.log(small.reshape(-1, 3)[known] + _LIGHT_OFFSET).astype(np.float64)
    all_terms = _polynomial_terms(small_size[1], small_size[0], degree)
    terms = all_terms[known].astype(np.float64)
    keep = np.ones(len(values), bool)
    # Least squares by the normal equations (a few terms on [-1, 1]: well conditioned, and far
    # cheaper than an SVD on the 700-pixel scans that only need to know the light is even).
    ridge = 1e-9 * np.eye(terms.shape[1])
    for _ in range(3):
        kept = terms[keep]
        _, coefficients = cv2.solve(kept.T @ kept + ridge, kept.T @ values[keep], flags=cv2.DECOMP_CHOLESKY)
        fitted = terms @ coefficients
        error = np.abs(values - fitted).max(axis=1)
        keep = error < 3.0 * 1.4826 * _median(error) + 1e-3
    surface = (all_terms @ coefficients.astype(np.float32)).reshape(small_size[1], small_size[0], 3)
    surface -= np.array([_median(fitted[:, c]) for c in range(3)], np.float32)
    return surface


def _shrunk(rgb: np.ndarray, background: np.ndarray | None, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` shrunk to ``side`` pixels (long side; float32), and which of its pixels are ``background`` (flat bool).

    ``background=None`` is the border ring, drawn at the small size: shrinking
    a thin ring can lose two of its sides (a one-pixel ring on a narrow scan),
    and a fit to two sides is free to curve at will across the frame.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    small_size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    if background is None:
        return small, border_ring(small_size[1], small_size[0]).reshape(-1)
    known = cv2.resize(background.astype(np.uint8), small_size, interpolation=cv2.INTER_AREA).reshape(-1) > 0
    return small, known


def _plainly_even(small: np.ndarray, ring: np.ndarray) -> bool:
    """The ring's own colours (log units; :func:`_shrunk` with the ring) vary by under half ``EVEN_LIGHT``: no fit needed.

    A smooth light field fitted to such a ring stays within ``EVEN_LIGHT`` across
    the frame (checked on the 200 Swedish scans and every photo set of
    bench.leaf_quality: never the other way round); a scan takes the fast path
    without the fit.
    """
    values = np.log(small.reshape(-1, 3)[ring] + _LIGHT_OFFSET)
    return values.size > 0 and _largest_range(values) < EVEN_LIGHT / 2


def _largest_range(values: np.ndarray) -> float:
    """The largest of the three channels' ranges (max - min) of ``values`` (..., 3)."""
    channels = values.reshape(-1, 3).T.copy()  # rows: reductions along a row are much faster than down columns
    return float((channels.max(axis=1) - channels.min(axis=1)).max())


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array, without its overhead (a few microseconds, not twenty)."""
    n = len(values)
    middle = np.partition(values, [(n - 1) // 2, n // 2])
    return 0.5 * float(middle[(n - 1) // 2] + middle[n // 2])


def flatten_light(rgb: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``rgb`` with the light :func:`light_field` found divided out (uint8)."""
    flat = (rgb.astype(np.float32) + _LIGHT_OFFSET) / field - _LIGHT_OFFSET
    return np.clip(np.rint(flat), 0, 255).astype(np.uint8)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.float32) * np.float32(1 / 255.0), cv2.COLOR_RGB2LAB)


@functools.cache
def _lab_table() -> np.ndarray:
    """CIELAB of RGB quantised to 64 levels a channel (the centres of the levels): (64**3, 3), read-only."""
    levels = np.arange(64, dtype=np.float32) * 4.0 + 2.0
    table = _lab(np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 1, 3)).reshape(-1, 3)
    table.flags.writeable = False
    return table


def shadow_distance(rgb: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest background colour, in CIELAB, forgiving shadows.

    Measured on real photos of leaves on coloured card, a shadow on the card
    keeps its chroma and turns its hue by up to 20 degrees while its lightness
    drops by up to 30; a leaf (green, brown, nearly black) loses the card's
    chroma. So against each background colour: a lighter pixel counts fully;
    for a darker one, the drop in lightness counts ``_SHADOW_LIGHTNESS`` and
    the turn of hue ``_SHADOW_HUE`` as much, while a change of chroma counts
    fully. On a neutral background (no hue) a darker pixel's colour counts fully.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    colours : (K, 3) ndarray
        Background colours (RGB).

    Returns
    -------
    distance : (M, N) ndarray of float32
        In RGB-like units (CIELAB distance times ``_LAB_SCALE``).
    """
    table = rgb.shape[0] * rgb.shape[1] > 64**3
    lab = _lab_table() if table else _lab(rgb.reshape(-1, 1, 3)).reshape(-1, 3)
    lightness, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    best = None
    for c_l, c_a, c_b in _lab(np.asarray(colours, np.float32).reshape(-1, 1, 3)).reshape(-1, 3):
        d_l = lightness - c_l
        darker = d_l < 0
        d_a, d_b = a - c_a, b - c_b
        chroma = float(np.hypot(c_a, c_b))
        if chroma > 1.0:
            radial = (d_a * c_a + d_b * c_b) / chroma
            turn = np.abs(d_b * c_a - d_a * c_b) / chroma
            # Forgiven: a turn of up to _SHADOW_HUE times the drop, and never more than _SHADOW_TURN of the hue circle.
            turn[darker] = np.maximum(turn[darker] - np.minimum(-_SHADOW_HUE * d_l[darker], _SHADOW_TURN * chroma), 0.0)
            faded = darker & (radial < 0)
            radial[faded] = np.minimum(radial[faded] - _SHADOW_CHROMA * d_l[faded], 0.0)
        else:
            radial, turn = d_a, d_b
        # A shadow keeps at least _SHADOW_FLOOR of the light: lightness below that counts fully.
        floor = 116.0 * np.cbrt(_SHADOW_FLOOR * ((c_l + 16.0) / 116.0) ** 3) - 16.0
        below = np.maximum(floor - lightness[darker], 0.0)
        d_l[darker] = d_l[darker] * _SHADOW_LIGHTNESS - below * (1.0 - _SHADOW_LIGHTNESS)
        squared = d_l * d_l + radial * radial + turn * turn
        best = squared if best is None else np.minimum(best, squared)
    assert best is not None
    distance = np.sqrt(best) * np.float32(_LAB_SCALE)
    if table:
        index = (rgb >> 2).astype(np.intp)
        return distance.reshape(64, 64, 64)[index[..., 0], index[..., 1], index[..., 2]]
    return distance.reshape(rgb.shape[:2])


def refine_edges(rgb: np.ndarray, mask: np.ndarray, level: float = EDGE_LEVEL, *, band: float = EDGE_BAND, spread: float | None = None) -> np.ndarray:
    """Place the leaf's outline where the colour has gone ``level`` of the way from the background to the leaf.

    In a band around the outline, each pixel is compared with the mean colour
    of the leaf just inside and of the background just outside (Gaussian
    weighted, so both follow the light along the outline): a soft shadow
    beside the leaf is the background there, a blurred edge is cut at
    ``level``.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    mask : (M, N) ndarray of bool
    level : float, optional
        Share of the local contrast, 0.5 is half-way.
    band : float, optional
        Half-width of the band around the outline where pixels may change
        side, as a share of the image's longer side.
    spread : float, optional
        The scale of the local means, as the same share (default: ``band``).
        :func:`leafprep.segmentation.multiple.leaf_masks` narrows the band
        to each leaf's size and keeps the means at the frame's scale.

    Returns
    -------
    mask : (M, N) ndarray of bool
    """
    position, where = _edge_position(rgb, mask, band, spread)
    refined = mask.copy()
    refined[where] = position[where] >= level
    return refined


def _edge_position(rgb: np.ndarray, mask: np.ndarray, band: float, spread: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For :func:`refine_edges`: each pixel's position from the local background (0) to the local leaf (1), and where it may change side."""
    height, width = mask.shape
    reach = max(2, round(band * max(height, width)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
    inner = cv2.erode(mask.astype(np.uint8), disc)
    grown = cv2.dilate(mask.astype(np.uint8), disc)
    # Positions are measured in CIELAB: between a dark leaf and its shadow on the card, RGB puts the
    # shadow nearer the leaf than the eye (and the masks people draw) does.
    image = _lab(rgb)
    # The local means are smooth: computed on the image shrunk by about the band's width, then enlarged.
    near = reach if spread is None else max(2, round(spread * max(height, width)))
    shrink = max(1, near // 2)
    small_size = (max(1, width // shrink), max(1, height // shrink))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    sigma = 3.0 * near / shrink

    def local_mean(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small_weight = cv2.resize(weight.astype(np.float32), small_size, interpolation=cv2.INTER_AREA)
        weights = cv2.GaussianBlur(small_weight, (0, 0), sigma)
        sums = cv2.GaussianBlur(small * small_weight[..., None], (0, 0), sigma)
        mean = cv2.resize(sums / np.maximum(weights, 1e-6)[..., None], (width, height), interpolation=cv2.INTER_LINEAR)
        return mean, cv2.resize(weights, (width, height), interpolation=cv2.INTER_LINEAR)

    leaf, leaf_weight = local_mean(inner)
    background, background_weight = local_mean(1 - grown)
    axis = leaf - background
    contrast = (axis * axis).sum(axis=-1)
    position = ((image - background) * axis).sum(axis=-1) / np.maximum(contrast, 1e-6)
    # Edges too faint to place stay as found (MIN_DISTANCE is in RGB-like units, _LAB_SCALE times CIELAB).
    where = (grown > 0) & (inner == 0) & (leaf_weight > 0.02) & (background_weight > 0.02) & (contrast > (MIN_DISTANCE / _LAB_SCALE) ** 2)
    return position, where


def edge_spread(rgb: np.ndarray, mask: np.ndarray) -> float:
    """How far the leaf's outline is from sharp: the share of its area between the outlines at 30% and 90% of the contrast.

    :func:`refine_edges` places the outline at two levels of the local
    contrast from the background to the leaf; on a sharp edge they nearly
    agree, while soft shadows, blur, a translucent or hairy edge and a leaf
    that barely differs from the card put them far apart.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    mask : (M, N) ndarray of bool

    Returns
    -------
    spread : float
        Pixels between the two outlines over the mask's area.
    """
    return float(unsure_band(rgb, mask).sum()) / max(float(mask.sum()), 1.0)


def unsure_band(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The pixels between the outlines at 30% and 90% of the contrast (:func:`edge_spread` counts them; a leaf
    of several counts its own)."""
    position, where = _edge_position(rgb, mask, SPREAD_BAND)
    # Inside the band the two outlines differ where 0.3 <= position < 0.9; outside it they agree.
    return where & (position >= 0.3) & (position < 0.9)


def mask_doubts(mask: np.ndarray, spread: float) -> list[str]:
    """Reasons to doubt a leaf mask, for the user to check it.

    Parameters
    ----------
    mask : (M, N) ndarray of bool
        The leaf.
    spread : float
        :func:`edge_spread` of the mask.

    Returns
    -------
    doubts : list of str
        Empty when the mask looks sound. The mask is doubtful when it runs
        along two or more image borders (the background was probably taken
        for the leaf), covers an implausible share of the frame (over 80% or
        under 0.5%), or the leaf barely differs from its surroundings: its
        outline could be placed anywhere in a band of more than
        ``UNSURE_SHARE`` of its area (:func:`edge_spread`, measured off the
        fast path for scans), so the mask could be that far off.
    """
    height, width = mask.shape
    doubts = []
    edge = max(1, round(0.005 * min(height, width)))
    borders = sum(int(side.mean() > 0.1) for side in (mask[:edge].any(0), mask[-edge:].any(0), mask[:, :edge].any(1), mask[:, -edge:].any(1)))
    if borders >= 2:
        doubts.append(f"it runs along {borders} image borders")
    share = float(mask.mean())
    if share > 0.8 or share < 0.005:
        doubts.append(f"it covers {share:.1%} of the frame")
    unsure = spread_doubt(spread)
    if unsure:
        doubts.append(unsure)
    return doubts


def spread_doubt(spread: float) -> str | None:
    """The doubt :func:`mask_doubts` raises for an :func:`edge_spread` over ``UNSURE_SHARE`` (None below it)."""
    if spread <= UNSURE_SHARE:
        return None
    return f"the leaf barely stands out from its surroundings (its outline could be anywhere in a band of {spread:.1%} of its area)"


def _is_rectangle(stats_area: int, contour: np.ndarray) -> bool:
    """Whether an object is a reference square, a colour chip (or a strip of them) or a label, not a leaf.

    It fills its rotated rectangle (over 0.88), or its convex hull does (over
    ``RECTANGLE_HULL``) while it fills over ``RECTANGLE_PART`` of it: a label's
    writing, the gaps of a chip strip or a shadow along one side take pixels from
    a rectangle but not its straight sides. Real leaves' hulls fill at most 0.89 of
    their rectangles (311 masks of uci_dev and Swedish scans; two touching leaves
    in the multi-leaf bench 0.91, with themselves filling 0.6).
    """
    (_, _), (w, h), _ = cv2.minAreaRect(contour)
    if w * h <= 0:
        return False
    fill = stats_area / (w * h)
    return fill > 0.88 or (fill > RECTANGLE_PART and cv2.contourArea(cv2.convexHull(contour)) / (w * h) > RECTANGLE_HULL)


def leaf_mask(
    rgb: np.ndarray,
    *,
    fill_holes: bool = False,
    petiole: bool = True,
    name: str = "<array>",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Mask of the leaf in a photo.

    Scans and evenly lit photos on a neutral background (white or grey paper)
    take the fast path: :func:`background_distance` against the colours of the
    border ring. Other photos (coloured card, uneven light) are first evened
    out by :func:`light_field` (fitted to the ring, then to everything found to
    be background), measured with the shadow-tolerant :func:`shadow_distance`,
    and the leaf's outline is placed by :func:`refine_edges`.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    fill_holes : bool, optional
        Fill every hole in the blade (small holes, highlights and pale veins,
        are always filled; on coloured card, holes of the card's colour stay).
    petiole : bool, optional
        Keep the petiole (stalk); ``False`` cuts thin parts off the blade.
    name : str, optional
        The source, for messages.

    Returns
    -------
    mask : (M, N) ndarray of bool
        The leaf.
    objects : (M, N) ndarray of bool
        Everything that is not background.
    distance : (M, N) ndarray of float32
        Distance of every pixel from the background (RGB units).
    notes : list of str
        What the user should know: the leaf touches the border, several
        leaves, and doubts about the mask (each starting with :data:`DOUBT`).

    Raises
    ------
    NothingFoundError
        Nothing stands out from the background.
    """
    height, width = rgb.shape[:2]
    scene = _scene(rgb)
    objects, distance, flat, refined, neutral = scene.objects, scene.distance, scene.flat, scene.refined, scene.neutral
    threshold = scene.threshold
    count, labels, stats, _ = cv2.connectedComponentsWithStats(objects, connectivity=8)
    min_area = 0.002 * height * width
    candidates = []
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area < min_area:
            continue
        border = x == 0 or y == 0 or x + w == width or y + h == height
        contour = _largest_contour(labels[y : y + h, x : x + w] == i)
        rectangle = _is_rectangle(area, contour)
        weight = 0.15 if rectangle else 1.0
        candidates.append((area * weight * (0.6 if border else 1.0), i, bool(border), int(area), rectangle))
    if not candidates:
        raise nothing_found(
            name, rgb.shape, "no leaf found: nothing stands out from the background", "photograph the leaf on a plain background", "leaf"
        )
    candidates.sort(reverse=True)
    _, best, touches, best_area, _ = candidates[0]
    mask = labels == best
    # Leaflets and pieces separated by a thin gap join the leaf, one after another.
    gap = max(2, round(0.015 * max(height, width)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1,) * 2)
    joinable = {i for _, i, _, _, rectangle in candidates[1:] if not rectangle}
    while joinable:
        near = cv2.dilate(mask.astype(np.uint8), disc).astype(bool)
        joining = {i for i in joinable if near[labels == i].any()}
        if not joining:
            break
        for i in joining:
            mask |= labels == i
        joinable -= joining
    # The fast path (scans, evenly lit paper) keeps its speed: its edges are not measured.
    spread = edge_spread(flat, mask) if refined else 0.0
    if refined:
        found = mask
        mask = refine_edges(flat, mask)
        # What stands out from the background more than the leaf's own middle does (a pale or red petiole
        # beside a dark blade) is leaf, whatever the local contrast says.
        mask |= found & (distance > np.median(distance[found]))
        # Every part of the leaf as first found, where its edges split it (a petiole whose base has the card's colour).
        mask = _parts_of(mask, found) if mask.any() else labels == best
    # On coloured card, holes of the card's own colour are the card seen through the leaf.
    card_holes = distance if not (neutral or fill_holes) else None
    mask = _fill_holes(mask, None if fill_holes else 0.01 * best_area, card_holes, 0.7 * threshold, flat)
    if not petiole:
        mask = cut_petiole(mask)
    notes = []
    if touches:
        notes.append("the leaf touches the image border: only the visible part is used")
    others = _other_leaves(candidates, best, mask, labels)
    if others:
        notes.append(f"{others + 1} {SEVERAL_LEAVES} ({ALL_HINT})")
    notes += [DOUBT + doubt for doubt in mask_doubts(mask, spread)]
    return mask, objects.astype(bool), distance, notes


def _other_leaves(candidates: list[tuple[float, int, bool, int, bool]], best: int, mask: np.ndarray, labels: np.ndarray) -> int:
    """How many leaves beside the chosen one ``segment_all`` would find, by its rules: rectangles (reference squares,
    labels) left out, objects within its joining gap of one another one leaf, the typical leaf the lower median of
    those of at least a tenth of the largest's area, and a fragment under :data:`~.multiple.FRAGMENT_SHARE` of it;
    leaves cut by the border, and what joined the chosen leaf, not counted."""
    from .multiple import FRAGMENT_SHARE, JOIN_GAP, _group_areas, _typical_of

    kept = [i for _, i, _, _, rectangle in candidates if not rectangle]
    if len(kept) < 2:
        return 0
    areas = {i: area for _, i, _, area, _ in candidates}
    group_of, totals = _group_areas(labels, kept, areas, round(JOIN_GAP * max(labels.shape)))
    typical, _ = _typical_of(totals.values())
    ours = {int(group_of[best])} | {int(group_of[i]) for i in kept if (mask & (labels == i)).any()}
    cut = {int(group_of[i]) for _, i, border, _, rectangle in candidates if border and not rectangle}
    return sum(1 for group, area in totals.items() if group not in ours and group not in cut and area >= FRAGMENT_SHARE * typical)


@dataclass(frozen=True)
class _Scene:
    """Everything that stands out from the background of a working image, before any object is chosen."""

    objects: np.ndarray  # uint8 0/1
    distance: np.ndarray  # float32, RGB-like units
    flat: np.ndarray  # the photo with its light evened out (the photo itself on the fast path)
    refined: bool  # False on the fast path (scans): edges are not placed again
    neutral: bool  # a neutral (grey, white) background
    threshold: float


def _scene(rgb: np.ndarray) -> _Scene:
    """The first steps of :func:`leaf_mask` (1 to 4 of the module's recipe), shared with :func:`leaf_masks`."""
    height, width = rgb.shape[:2]
    colours = background_colours(rgb)
    neutral = bool((np.ptp(colours, axis=1) < NEUTRAL_SPREAD).all())
    small, ring = _shrunk(rgb, None, 64)
    fast = neutral and _plainly_even(small, ring)
    if not fast:
        log_light = _fit_log_light(small, ring, 2)
        fast = neutral and _largest_range(log_light) < EVEN_LIGHT
    if fast:  # scans, evenly lit paper
        distance = background_distance(rgb, colours)
        objects, threshold = _objects(distance)
        flat, refined = rgb, False
    else:
        flat = flatten_light(rgb, cv2.resize(np.exp(log_light), (width, height), interpolation=cv2.INTER_LINEAR))
        distance = shadow_distance(flat, background_colours(flat))
        objects, threshold = _objects(distance)
        # Fit the light again to everything that is background, not just the ring.
        grow = max(3, round(0.02 * max(height, width)))
        background = ~cv2.dilate(objects, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)).astype(bool)
        if background.mean() > 0.05:
            flat = flatten_light(rgb, light_field(rgb, background, degree=3 if background.mean() > 0.3 else 2))
            distance = shadow_distance(flat, background_colours(flat))
            objects, threshold = _objects(distance)
        refined = True
    return _Scene(objects, distance, flat, refined, neutral, threshold)


def _objects(distance: np.ndarray) -> tuple[np.ndarray, float]:
    """Everything that stands out from the background (uint8 0/1), and the threshold used.

    Otsu between background and objects: distances are capped first, so that a
    bright ruler or colour chart does not split the objects into two classes.
    Specks are opened away; fainter pixels that touch an object join it.
    """
    threshold = _object_threshold(distance)
    objects = cv2.morphologyEx((distance > threshold).astype(np.uint8), cv2.MORPH_OPEN, speck_disc(distance.shape))
    return _hysteresis(objects, distance > _weak_level(threshold)), threshold


def _object_threshold(distances: np.ndarray) -> float:
    """The threshold between background and objects over ``distances``: :data:`OTSU_FACTOR` times Otsu's, the
    distances capped at :data:`DISTANCE_CAP` first, at least :data:`MIN_DISTANCE`."""
    return max(MIN_DISTANCE, OTSU_FACTOR * otsu_threshold(np.minimum(distances, DISTANCE_CAP)))


def _weak_level(threshold: float) -> float:
    """How far from the background a fainter pixel must be to join an object it touches (hysteresis)."""
    return max(0.75 * MIN_DISTANCE, WEAK_FACTOR * threshold)


def speck_disc(shape: tuple[int, ...]) -> np.ndarray:
    """The speck filter's disc for an image of ``shape``: what an opening with it takes away is a speck or a thin line
    (a diameter of about a 150th of the shorter side)."""
    speck = max(1, round(min(shape[:2]) / 300))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * speck + 1,) * 2)


def _largest_part(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected part of ``mask`` (``mask`` itself when it has one part or none)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) if count > 2 else mask


def _parts_of(mask: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` that overlap ``found`` (the leaf as first found, with the pieces joined to it)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    keep = np.zeros(count, bool)
    keep[np.unique(labels[found & mask])] = True
    keep[0] = False
    return keep[labels] if keep.any() else _largest_part(mask)


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold over ``values`` (clipped to [0, 255]), from the middle of the best range.

    Where several thresholds separate the classes equally well (two narrow
    peaks), the middle one is returned, not the lowest as ``cv2.threshold``
    does.

    Examples
    --------
    >>> otsu_threshold(np.array([10.0] * 50 + [80.0] * 50))
    45.0
    >>> otsu_threshold(np.array([80.0] * 10))
    79.5
    """
    histogram = np.bincount(np.clip(values, 0, 255).astype(np.int64).reshape(-1), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight = np.cumsum(histogram)
    total = weight[-1]
    mass = np.cumsum(histogram * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mass[-1] * weight - mass * total) ** 2 / (weight * (total - weight))
    between = np.nan_to_num(between[:-1], nan=0.0, posinf=0.0)
    if between.max() <= 0.0:  # a single level: every value is in the upper class
        return float(np.clip(values, 0, 255).min()) - 0.5
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    return float((best[0] + best[-1] + 1) / 2.0)


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Weak pixels connected to strong ones (pale rachis, petiole) join them."""
    count, labels = cv2.connectedComponents((weak | strong.astype(bool)).astype(np.uint8), connectivity=8)
    keep = np.bincount(labels[strong.astype(bool)], minlength=count) > 0
    keep[0] = False
    return keep[labels].astype(np.uint8)


def _largest_contour(mask: np.ndarray, *, simple: bool = True) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE if simple else cv2.CHAIN_APPROX_NONE)
    return max(contours, key=cv2.contourArea)


def _fill_holes(
    mask: np.ndarray, max_area: float | None, distance: np.ndarray | None = None, background_below: float = 0.0, rgb: np.ndarray | None = None
) -> np.ndarray:
    """Fill holes of ``mask`` smaller than ``max_area`` pixels (all holes if None).

    With ``distance``, a hole whose median distance from the background is
    under ``background_below`` is the card seen through the leaf and stays.
    With ``rgb`` too, only when its colour (CIELAB median) is also nearer the
    background's just outside the leaf than the leaf's own: a dark patch of a
    blade on brown wood is as near the wood as a shadow is, but it is leaf;
    and a hole of any size that is nearer the leaf's colour is filled.
    """
    inverse = (~mask).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    height, width = mask.shape
    filled = mask.copy()
    colours: tuple[np.ndarray, np.ndarray] | None = None

    def median_lab(where: np.ndarray) -> np.ndarray:  # CIELAB of those pixels only (pointwise: as of the whole image)
        assert rgb is not None
        return np.median(_lab(rgb[where][:, None, :]).reshape(-1, 3), axis=0)

    def nearer_leaf(hole: np.ndarray) -> bool:
        nonlocal colours
        if colours is None:
            near = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
            outside = cv2.dilate(near.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~near
            inside = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
            if not outside.any() or not inside.any():
                return False
            colours = (median_lab(inside), median_lab(outside))
        leaf, background = colours
        colour = median_lab(hole)
        return bool(np.linalg.norm(colour - leaf) < np.linalg.norm(colour - background))

    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if x == 0 or y == 0 or x + w == width or y + h == height:
            continue  # the background around the leaf
        if max_area is None or area <= max_area:
            hole = labels == i
            if distance is not None and area > 4 and np.median(distance[hole]) < background_below and (rgb is None or not nearer_leaf(hole)):
                continue
            filled |= hole
        elif rgb is not None and distance is not None and nearer_leaf(hole := labels == i):
            filled |= hole
    return filled


def cut_petiole(mask: np.ndarray) -> np.ndarray:
    """Remove the petiole: a long part much thinner than the blade.

    An opening with a disc of a third of the blade's greatest half-width
    separates the blade; the blade's own outline is then restored. Of the
    parts the opening removed, those thinner than 0.4 of the disc and at
    least three times as long as they are wide (stalks) are cut; thicker or
    stubby ones (lobes, a pointed tip, teeth) are kept.

    Parameters
    ----------
    mask : (M, N) ndarray of bool

    Returns
    -------
    blade : (M, N) ndarray of bool
    """
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    radius = max(1, int(inside.max() / 3))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, disc)
    if not opened.any():
        return mask
    blade = _largest_part(opened.astype(bool))
    grown = cv2.dilate(blade.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (odd(radius * 1.2),) * 2)).astype(bool)
    kept = mask & grown
    count, parts, part_stats, _ = cv2.connectedComponentsWithStats((mask & ~grown).astype(np.uint8), connectivity=8)
    touching = cv2.dilate(kept.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    for i in range(1, count):
        part = parts == i
        if not touching[part].any():
            continue
        half_width = float(inside[part].max())
        if half_width >= 0.4 * radius or part_stats[i, cv2.CC_STAT_AREA] < 3 * (2 * half_width) ** 2:
            kept |= part
    return kept


def analyse_leaf(
    source: ImageSource,
    *,
    max_pixels: int,
    work_side: int = LEAF_WORK_SIDE,
    fill_holes: bool = False,
    petiole: bool = True,
    warn: bool = True,
) -> LeafAnalysis:
    """Load ``source`` and find its leaf at ``work_side`` pixels (long side) at most.

    Warns (:class:`LeafprepWarning`) when the leaf is cut by the border, there
    are several leaves, or the mask is doubtful (:func:`mask_doubts`).
    """
    loaded = _load(source, max_pixels=max_pixels, min_side=max(work_side // 2, DETAIL_SIDE))
    work = working_image(loaded.rgb, work_side)
    mask, objects, distance, notes = leaf_mask(work, fill_holes=fill_holes, petiole=petiole, name=loaded.name)
    if warn:
        for note in notes:
            warnings.warn(LeafprepWarning(loaded.name, note), stacklevel=3)
    scale = (loaded.full_shape[0] / work.shape[0], loaded.full_shape[1] / work.shape[1])
    return LeafAnalysis(work, distance, objects, mask, scale, notes, loaded.px_per_mm)
