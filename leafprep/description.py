"""Leaf descriptors: a named vector of numbers that says what a leaf looks like.

With ten photos a species, what a network learns from pixels is weak, while the
leaf's outline, measured from its mask, carries most of the answer (Leafsnap
named trees by the curvature of the outline alone). :func:`describe` finds the
leaf of a photo and measures it; :func:`leaf_descriptors` measures a leaf whose
mask you already have. Both give the same :data:`DESCRIPTOR_NAMES`, in the same
order, every release:

* **size** (``area_px`` ... ``perimeter_mm``): area, length and width (of the
  smallest rotated rectangle around the leaf) and perimeter in pixels of the
  full photo, and in millimetres where the scale is known (``px_per_mm``), else
  NaN;
* **shape**, invariant to position, rotation, reflection and scale:
  ``aspect_ratio`` (width over length, so in (0, 1]), ``eccentricity`` (of the
  ellipse of equal second moments), ``solidity`` (area over the convex hull's),
  ``convexity`` (the hull's perimeter over the outline's), ``circularity``
  (4 pi area / perimeter^2), ``rectangularity`` (area over the rotated
  rectangle's); ``hu1`` ... ``hu7``: the log-scaled Hu moments (magnitudes:
  the sign of the seventh only tells a leaf from its mirror image);
  ``efd1_d``, ``efd2_a`` ... ``efd10_d``: magnitudes of elliptic Fourier
  descriptors (Kuhl and Giardina 1982) normalised for position, size,
  rotation and start point; ``curv{r}_{k}``: multi-scale integral-area
  curvature histograms of the outline (Manay et al. 2006, as Leafsnap used
  them): at each of 256 points along the outline, the share of a disc of
  radius ``r`` percent of the leaf's length that lies inside the leaf
  (0.5 on a straight edge, more in a notch, less on a tooth), as a histogram
  of 8 bins (each value shared between its two nearest bins), for 4 radii;
* **margin**: ``teeth`` and ``teeth_depth`` (count and mean depth of the small
  convexity defects, depth relative to the leaf's length), ``lobes`` and
  ``lobe_depth`` (the same for deep ones), ``sinus_depth`` (the deepest);
* **colour and texture**: CIELAB mean and spread of the blade
  (``lab_l_mean`` ... ``lab_b_std``), a rotation-invariant uniform local
  binary pattern histogram of its grey texture (``lbp0`` ... ``lbp9``,
  scikit-image's definition, :func:`uniform_lbp`) and grey-level co-occurrence statistics averaged over four
  directions (``glcm_contrast``, ``glcm_homogeneity``, ``glcm_energy``,
  ``glcm_correlation``; scikit-image's ``graycoprops`` definitions).

Everything but the size is measured on the leaf rescaled to a fixed length
(:data:`SHAPE_SIDE` pixels), so a photo taken closer gives the same numbers.

Examples
--------
>>> import numpy as np
>>> photo = np.full((200, 200, 3), 235, np.uint8)
>>> mask = np.zeros((200, 200), bool)
>>> mask[50:150, 80:120] = True                     # a 100 x 40 rectangle
>>> photo[mask] = (60, 120, 40)
>>> d = leaf_descriptors(photo, mask)
>>> round(float(d["aspect_ratio"]), 2), round(float(d["rectangularity"]), 2)
(0.4, 1.0)
>>> len(d.values) == len(DESCRIPTOR_NAMES)
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .errors import NothingFoundError
from .loading import DEFAULT_MAX_PIXELS, ImageSource
from .segmentation.common import order_statistics

__all__ = [
    "DESCRIPTOR_GROUPS",
    "DESCRIPTOR_NAMES",
    "DESCRIBE_SIDE",
    "MIN_LEAF_PIXELS",
    "SHAPE_SIDE",
    "Descriptors",
    "describe",
    "describe_all",
    "describe_normalised",
    "leaf_batch",
    "leaf_descriptors",
    "leaf_example",
    "uniform_lbp",
]

#: The leaf is rescaled to this length (pixels, the longer side of its rotated rectangle) before its shape is measured.
SHAPE_SIDE = 256
#: Long side of the working image :func:`describe` segments the photo at (as ``leafprep segment`` does).
DESCRIBE_SIDE = 1024
#: A leaf mask smaller than this (pixels) cannot be described: its outline has too few points.
MIN_LEAF_PIXELS = 64

_HARMONICS = 10
_CURVATURE_RADII = (3, 6, 12, 24)  # percent of the leaf's length
_CURVATURE_BINS = 8
_OUTLINE_POINTS = 256
# The grey texture is measured on the leaf rescaled to this length.
_TEXTURE_SIDE = 256
_LBP_POINTS = 8
# Convexity defects deeper than these shares of the leaf's length are teeth, and lobes.
_TOOTH_DEPTH = 0.005
_LOBE_DEPTH = 0.08

_SIZE = ("area_px", "length_px", "width_px", "perimeter_px", "area_mm2", "length_mm", "width_mm", "perimeter_mm")
_SHAPE = ("aspect_ratio", "eccentricity", "solidity", "convexity", "circularity", "rectangularity", *(f"hu{k}" for k in range(1, 8)))
_EFD = ("efd1_d", *(f"efd{h}_{c}" for h in range(2, _HARMONICS + 1) for c in "abcd"))
_CURVATURE = tuple(f"curv{r}_{k}" for r in _CURVATURE_RADII for k in range(_CURVATURE_BINS))
_MARGIN = ("teeth", "teeth_depth", "lobes", "lobe_depth", "sinus_depth")
_COLOUR = ("lab_l_mean", "lab_l_std", "lab_a_mean", "lab_a_std", "lab_b_mean", "lab_b_std")
_TEXTURE = (*(f"lbp{k}" for k in range(_LBP_POINTS + 2)), "glcm_contrast", "glcm_homogeneity", "glcm_energy", "glcm_correlation")

#: The descriptors by group, in order.
DESCRIPTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "size": _SIZE,
    "shape": _SHAPE,
    "fourier": _EFD,
    "curvature": _CURVATURE,
    "margin": _MARGIN,
    "colour": _COLOUR,
    "texture": _TEXTURE,
}
#: Every descriptor's name, in the order of the vector.
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(name for group in DESCRIPTOR_GROUPS.values() for name in group)


@dataclass(frozen=True)
class Descriptors:
    """A leaf's descriptors: ``values[i]`` is :data:`DESCRIPTOR_NAMES` ``[i]``.

    ``d["solidity"]`` reads one by name; ``dict(d)`` gives them all.

    Attributes
    ----------
    values : (len(DESCRIPTOR_NAMES),) ndarray of float32
        NaN only for the millimetre sizes when the scale is not known.
    """

    values: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        return DESCRIPTOR_NAMES

    def __getitem__(self, name: str) -> float:
        return float(self.values[_INDEX[name]])

    def keys(self) -> tuple[str, ...]:
        return DESCRIPTOR_NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(DESCRIPTOR_NAMES)

    def __len__(self) -> int:
        return len(DESCRIPTOR_NAMES)


_INDEX = {name: i for i, name in enumerate(DESCRIPTOR_NAMES)}


def _outline(mask: np.ndarray) -> np.ndarray:
    """The largest outer contour of ``mask`` as (N, 2) float64 x, y points."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)


def _resample(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced along a closed outline."""
    closed = np.vstack([points, points[:1]])
    steps = np.hypot(*np.diff(closed, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    targets = np.linspace(0.0, along[-1], count, endpoint=False)
    return np.stack([np.interp(targets, along, closed[:, 0]), np.interp(targets, along, closed[:, 1])], axis=1)


def _elliptic_fourier(points: np.ndarray, harmonics: int = _HARMONICS) -> np.ndarray:
    """Magnitudes of the normalised elliptic Fourier coefficients: ``|d1|``, then ``|a|, |b|, |c|, |d|`` of harmonics 2.. .

    Kuhl and Giardina's normalisation: the first harmonic's ellipse sets the
    start point, the rotation and the size (its semi-major axis becomes 1).
    Its remaining ambiguities (a half turn of the start point, the direction of
    travel, a reflection) only change signs, so the magnitudes are invariant.
    """
    closed = np.vstack([points, points[:1]])
    delta = np.diff(closed, axis=0)
    dt = np.hypot(delta[:, 0], delta[:, 1])
    keep = dt > 0
    delta, dt = delta[keep], dt[keep]
    t = np.concatenate([[0.0], np.cumsum(dt)])
    period = t[-1]
    n = np.arange(1, harmonics + 1)[:, None]
    phi = n * (2 * np.pi * t[None, :] / period)
    cos, sin = np.cos(phi), np.sin(phi)
    dcos, dsin = cos[:, 1:] - cos[:, :-1], sin[:, 1:] - sin[:, :-1]
    factor = period / (2 * n[:, 0] ** 2 * np.pi**2)
    ratio = delta / dt[:, None]
    a = factor * (dcos @ ratio[:, 0])
    b = factor * (dsin @ ratio[:, 0])
    c = factor * (dcos @ ratio[:, 1])
    d = factor * (dsin @ ratio[:, 1])
    # Start point: rotate the phase so that the first harmonic starts at its semi-major axis
    # (each harmonic's [[a, b], [c, d]] times the rotation by (k + 1) theta), all harmonics at once.
    theta = 0.5 * np.arctan2(2 * (a[0] * b[0] + c[0] * d[0]), a[0] ** 2 - b[0] ** 2 + c[0] ** 2 - d[0] ** 2)
    angle = n[:, 0] * theta
    ca, sa = np.cos(angle), np.sin(angle)
    ta, tb, tc, td = a * ca + b * sa, b * ca - a * sa, c * ca + d * sa, d * ca - c * sa
    # Rotation: turn the semi-major axis onto x (the spin [[cos, sin], [-sin, cos]] times each harmonic); size: make it 1.
    psi = np.arctan2(tc[0], ta[0])
    cp, sp = np.cos(psi), np.sin(psi)
    turned = np.stack([cp * ta + sp * tc, cp * tb + sp * td, cp * tc - sp * ta, cp * td - sp * tb], axis=1)
    major = abs(turned[0, 0]) or 1.0
    magnitudes = np.abs(turned / major)
    return np.concatenate([[magnitudes[0, 3]], magnitudes[1:].reshape(-1)])


def _curvature(mask: np.ndarray, outline: np.ndarray, length: float) -> np.ndarray:
    """Integral-area curvature histograms: for each radius, the share of a disc inside the leaf along the outline.

    A disc's count is summed row by row from the mask's running row sums, at
    the outline's points only (the work grows with the points and the radius,
    not with the image).
    """
    points = np.rint(_resample(outline, _OUTLINE_POINTS)).astype(np.int64)
    reach = int(math.ceil(max(_CURVATURE_RADII) / 100.0 * length)) + 2
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), reach, reach, reach, reach, cv2.BORDER_CONSTANT, value=0)
    # Running row sums, from OpenCV's integral image (its rows' differences), flattened: a disc's row is two lookups.
    running = np.diff(cv2.integral(padded), axis=0).ravel()
    stride = padded.shape[1] + 1
    centres = (points[:, 1] + reach) * stride + points[:, 0] + reach
    histograms = []
    for percent in _CURVATURE_RADII:
        radius = max(1, round(percent / 100.0 * length))
        offsets = np.arange(-radius, radius + 1)
        half = np.floor(np.sqrt(radius**2 - offsets**2)).astype(np.int64)
        right = running.take(centres[:, None] + (offsets * stride + half + 1)[None, :]).sum(axis=1)
        left = running.take(centres[:, None] + (offsets * stride - half)[None, :]).sum(axis=1)
        histograms.append(_soft_histogram((right - left) / float((2 * half + 1).sum()), _CURVATURE_BINS))
    return np.concatenate(histograms)


def _soft_histogram(values: np.ndarray, bins: int) -> np.ndarray:
    """A histogram of values in [0, 1] whose counts are shared linearly between the two nearest bin centres.

    A value that moves a little moves a little weight (a hard histogram jumps
    a whole count across a bin edge), so a re-rasterised outline gives nearly
    the same histogram.
    """
    position = np.clip(np.asarray(values, np.float64) * bins - 0.5, 0.0, bins - 1.0)
    lower = np.minimum(position.astype(np.int64), bins - 2)
    upper_share = position - lower
    counts = np.bincount(lower, weights=1.0 - upper_share, minlength=bins) + np.bincount(lower + 1, weights=upper_share, minlength=bins)
    return counts[:bins] / max(1, len(values))


def _margin(contour: np.ndarray, length: float) -> list[float]:
    """Teeth and lobes from the convexity defects: counts and depths (shares of the leaf's length)."""
    hull = cv2.convexHull(contour, returnPoints=False)
    depths = np.zeros(0)
    if hull is not None and len(hull) > 3:
        hull = np.sort(hull.reshape(-1))[:, None]
        try:
            defects = cv2.convexityDefects(contour, hull)
        except cv2.error:  # a self-touching outline
            defects = None
        if defects is not None:
            depths = defects.reshape(-1, 4)[:, 3] / 256.0 / length
    teeth = depths[(depths >= _TOOTH_DEPTH) & (depths < _LOBE_DEPTH)]
    lobes = depths[depths >= _LOBE_DEPTH]
    return [
        float(len(teeth)),
        float(teeth.mean()) if len(teeth) else 0.0,
        float(len(lobes)),
        float(lobes.mean()) if len(lobes) else 0.0,
        float(depths.max()) if len(depths) else 0.0,
    ]


def uniform_lbp(gray: np.ndarray) -> np.ndarray:
    """Rotation-invariant uniform local binary patterns, 8 points at radius 1, as scikit-image's
    ``local_binary_pattern(gray, 8, 1, method="uniform")`` defines them, in numpy, 64 rows at a time.

    Each pixel's 8 neighbours on a circle of radius 1 (the diagonal ones
    interpolated bilinearly) are compared with it; a pattern with at most two
    changes round the circle gets the count of neighbours at least as bright
    (0 to 8), any other pattern 9. scikit-image's loop takes about ten times
    as long on the blade crops the descriptors measure; the two agree on every
    pixel away from the border but for an exact tie that rounds the other way
    (at most one in a thousand where a neighbour equals the centre; ``tests/test_description.py``).

    Parameters
    ----------
    gray : (M, N) ndarray

    Returns
    -------
    codes : (M, N) ndarray of uint8
        In 0..9; the border pixels see their edge repeated.
    """
    whole = np.pad(np.asarray(gray), 1, mode="edge")  # integers compare exactly as they are
    g = whole.astype(np.float64)
    height, width = gray.shape
    code = np.empty((height, width), np.uint8)
    top, bottom, scratch = (np.empty((_LBP_ROWS, width)) for _ in range(3))
    for r0 in range(0, height, _LBP_ROWS):  # a few rows at a time: the float rows stay in the cache
        rows = min(_LBP_ROWS, height - r0)
        t, b, s = top[:rows], bottom[:rows], scratch[:rows]
        centre, centre_whole = g[1 + r0 : 1 + r0 + rows, 1:-1], whole[1 + r0 : 1 + r0 + rows, 1:-1]
        block = code[r0 : r0 + rows]
        block[:] = 0
        for p, (y0, x0, fy, fx) in enumerate(_LBP_NEIGHBOURS):
            ya, xa = 1 + r0 + y0, 1 + x0
            if not fx and not fy:  # a neighbour on the grid: compared as it is
                at_least = whole[ya : ya + rows, xa : xa + width] >= centre_whole
            else:  # between four pixels: bilinear, in scikit-image's order of operations (ties come out the same)
                np.multiply(g[ya : ya + rows, xa : xa + width], 1 - fx, out=t)
                t += np.multiply(g[ya : ya + rows, xa + 1 : xa + 1 + width], fx, out=s)
                np.multiply(g[ya + 1 : ya + 1 + rows, xa : xa + width], 1 - fx, out=b)
                b += np.multiply(g[ya + 1 : ya + 1 + rows, xa + 1 : xa + 1 + width], fx, out=s)
                t *= 1 - fy
                t += np.multiply(b, fy, out=b)
                at_least = t >= centre  # value - centre >= 0, exactly (a difference of floats is 0 only for equal ones)
            block |= at_least.view(np.uint8) << p
    return cv2.LUT(code, _UNIFORM)


def _neighbours() -> list[tuple[int, int, float, float]]:
    """Each LBP neighbour's grid cell (row, column offsets) and place within it (fractions down and across)."""
    cells = []
    for p in range(_LBP_POINTS):
        dy = round(-math.sin(2 * math.pi * p / _LBP_POINTS), 5)
        dx = round(math.cos(2 * math.pi * p / _LBP_POINTS), 5)
        y0, x0 = math.floor(dy), math.floor(dx)
        cells.append((y0, x0, dy - y0, dx - x0))
    return cells


_LBP_NEIGHBOURS = _neighbours()
_LBP_ROWS = 64


def _uniform_table() -> np.ndarray:
    """For each 8-bit pattern: its count of ones if it changes at most twice round the circle, else 9."""
    table = np.zeros(256, np.uint8)
    for code in range(256):
        bits = [(code >> p) & 1 for p in range(_LBP_POINTS)]
        changes = sum(bits[p] != bits[(p + 1) % _LBP_POINTS] for p in range(_LBP_POINTS))
        table[code] = sum(bits) if changes <= 2 else _LBP_POINTS + 1
    return table


_UNIFORM = _uniform_table()


def _texture(gray: np.ndarray, mask: np.ndarray) -> list[float]:
    """Uniform LBP histogram and GLCM statistics of the blade's grey texture."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if inner.sum() < 16:
        inner = mask
    codes = uniform_lbp(gray)
    where = inner.view(np.uint8)
    size = int(np.count_nonzero(inner))
    # Counts under the blade by OpenCV's histogram (exact integers, as np.bincount would give them).
    lbp = cv2.calcHist([codes], [0], where, [_LBP_POINTS + 2], [0, _LBP_POINTS + 2]).reshape(-1).astype(np.float64) / max(1, size)
    # Grey levels stretched over the blade (1st to 99th percentile), 32 levels; 0 is kept for the background.
    if size:
        low, high = (float(v) for v in order_statistics(gray, inner, (int(0.01 * (size - 1)), int(0.99 * (size - 1)))))
    else:
        low, high = 0.0, 255.0
    levels = 1 + np.clip((gray.astype(np.float32) - low) / max(float(high - low), 1.0) * 31, 0, 30).astype(np.uint8)
    levels[~inner] = 0
    return [*lbp.tolist(), *_glcm_statistics(levels)]


_GLCM_STEPS = ((0, 1), (1, 1), (1, 0), (1, -1))  # distance 1 at 0, 45, 90 and 135 degrees, as scikit-image's graycomatrix
_GLCM_LEVELS = 32
# Row and column of each cell of a co-occurrence matrix of the blade's 31 levels (raveled), and the weights of its statistics.
_GLCM_I = np.repeat(np.arange(_GLCM_LEVELS - 1, dtype=np.float64), _GLCM_LEVELS - 1)
_GLCM_J = np.tile(np.arange(_GLCM_LEVELS - 1, dtype=np.float64), _GLCM_LEVELS - 1)
_GLCM_CONTRAST = (_GLCM_I - _GLCM_J) ** 2
_GLCM_HOMOGENEITY = 1.0 / (1.0 + _GLCM_CONTRAST)


def _glcm_statistics(levels: np.ndarray) -> list[float]:
    """Contrast, homogeneity, energy and correlation of the symmetric grey-level co-occurrence matrices of ``levels``
    (1 to 31 on the blade, 0 off it; pairs with a 0 left out), averaged over the four directions.

    The same numbers as scikit-image's ``graycomatrix(levels, [1], [0, pi/4, pi/2, 3pi/4], 32, symmetric=True)``,
    cut to levels 1.., then ``graycoprops`` (to the last bits of a float64; ``tests/test_description.py``): one
    histogram a direction (OpenCV's, two channels), the statistics as products with each matrix raveled.
    """
    height, width = levels.shape
    n = _GLCM_LEVELS
    p = np.empty((len(_GLCM_STEPS), (n - 1) * (n - 1)))
    for k, (dy, dx) in enumerate(_GLCM_STEPS):
        first = levels[: height - dy, max(0, -dx) : width - max(0, dx)]
        second = levels[dy:, max(0, dx) : width - max(0, -dx)]
        # The pairs' counts by OpenCV's two-channel histogram: exact integers, in half the time of a bincount of codes.
        pairs = cv2.calcHist([first, second], [0, 1], None, [n, n], [0, n, 0, n]).astype(np.float64)
        p[k] = (pairs + pairs.T)[1:, 1:].ravel()
    total = p.sum(axis=1, keepdims=True)
    p = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    contrast, homogeneity = p @ _GLCM_CONTRAST, p @ _GLCM_HOMOGENEITY
    energy = np.sqrt(np.einsum("ij,ij->i", p, p))
    diff_i, diff_j = _GLCM_I[None, :] - (p @ _GLCM_I)[:, None], _GLCM_J[None, :] - (p @ _GLCM_J)[:, None]
    std_i, std_j = np.sqrt(np.einsum("ij,ij->i", p, diff_i**2)), np.sqrt(np.einsum("ij,ij->i", p, diff_j**2))
    flat = (std_i < 1e-15) | (std_j < 1e-15)  # one level: correlation 1, as scikit-image defines it
    correlation = np.where(flat, 1.0, np.einsum("ij,ij->i", p, diff_i * diff_j) / np.where(flat, 1.0, std_i * std_j))
    return [float(v) for v in np.nan_to_num(np.stack([contrast, homogeneity, energy, correlation])).mean(axis=1)]


def _colour(photo: np.ndarray, mask: np.ndarray) -> list[float]:
    """CIELAB mean and spread of the blade (L in [0, 100], a and b around 0; OpenCV's 8-bit conversion, rescaled)."""
    mean, std = cv2.meanStdDev(cv2.cvtColor(photo, cv2.COLOR_RGB2LAB), mask=mask.view(np.uint8))
    mean, std = mean.reshape(-1) - (0.0, 128.0, 128.0), std.reshape(-1)
    scale = (100.0 / 255.0, 1.0, 1.0)
    return [float(v) for channel in range(3) for v in (mean[channel] * scale[channel], std[channel] * scale[channel])]


def _rescaled_mask(mask: np.ndarray, length: float, side: int) -> np.ndarray:
    """The leaf's mask, cropped to its box (and a pixel around it) and rescaled so that the leaf is ``side`` pixels long."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    factor = side / max(length, 1.0)
    crop = np.pad(mask[y : y + h, x : x + w], 1).astype(np.float32)
    size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR) > 0.5


def _blade(detail: np.ndarray, mask: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """The leaf's box in ``detail`` (the working photo or a larger one of the same framing) and its mask,
    both rescaled so that the leaf is :data:`_TEXTURE_SIDE` pixels long: where colour and texture are measured."""
    fy, fx = detail.shape[0] / mask.shape[0], detail.shape[1] / mask.shape[1]
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    x0, y0 = int(math.floor(x * fx)), int(math.floor(y * fy))
    x1, y1 = min(detail.shape[1], max(x0 + 1, int(math.ceil((x + w) * fx)))), min(detail.shape[0], max(y0 + 1, int(math.ceil((y + h) * fy))))
    factor = _TEXTURE_SIDE / max(length * math.sqrt(fx * fy), 1.0)
    size = (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor)))
    crop = detail[y0:y1, x0:x1]
    photo = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR)
    blade = cv2.resize(mask[y : y + h, x : x + w].astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > 0.5
    if not blade.any():
        blade[:] = True
    return photo, blade


def describe_normalised(steps: Any, decoded: np.ndarray, full_shape: tuple[int, int] | None = None, source: str = "<array>") -> Descriptors:
    """The descriptors of a leaf that ``normalize_steps(decoded, "leaf", ...)`` normalised, in the same pass.

    The build, ``leafprep predict`` and ``serve`` all measure a leaf this
    way, so that a run sees the descriptors it was trained on: the outline
    from the normalisation's own mask (``steps.chosen``, at its working
    size), colour and texture from ``decoded``, sizes in pixels of the photo
    (``full_shape``, its size before a reduced decode).

    Parameters
    ----------
    steps : leafprep.normalization.Steps
        Of a leaf.
    decoded : (M, N, 3) ndarray of uint8
        The photo as it was given to ``normalize_steps``.
    full_shape : tuple of int, optional
        ``(height, width)`` of the photo at full size (default: ``decoded``'s).
    source : str, optional
        The input, for messages.
    """
    height, width = full_shape or decoded.shape[:2]
    scale = (steps.scale[0] * height / decoded.shape[0], steps.scale[1] * width / decoded.shape[1])
    return leaf_descriptors(steps.photo, steps.chosen, scale=scale, detail=decoded, source=source)


def leaf_descriptors(
    photo: np.ndarray,
    mask: np.ndarray,
    *,
    scale: float | tuple[float, float] = 1.0,
    px_per_mm: float | None = None,
    detail: np.ndarray | None = None,
    area: float | None = None,
    source: str = "<array>",
) -> Descriptors:
    """Measure a leaf whose mask is known.

    Parameters
    ----------
    photo : (M, N, 3) ndarray of uint8
        RGB photo (a grey photo as three equal channels).
    mask : (M, N) ndarray of bool
        The leaf. Its largest outer outline is measured; holes are ignored.
    scale : float or (float, float), optional
        Full-size pixels per pixel of ``photo`` (``(y, x)`` factors, as
        :class:`~leafprep.segmentation.LeafAnalysis` gives them): the sizes
        are in pixels of the full photo.
    px_per_mm : float, optional
        Full-size pixels per millimetre, where known (a scan's resolution):
        the millimetre sizes are NaN without it.
    detail : (P, Q, 3) ndarray of uint8, optional
        The same photo at a higher resolution (the decoded photo that
        ``photo`` was shrunk from): colour and texture are measured on it,
        with the mask enlarged to it. The outline is always measured on
        ``mask``.
    area : float, optional
        The leaf's area in pixels of ``mask``, where already measured; by
        default :func:`leafprep.segmentation.soft_area` measures it from the
        colours along the outline (to a fraction of a pixel, so that a scan
        of known resolution gives square millimetres within 1%).
    source : str, optional
        The input, for messages.

    Returns
    -------
    descriptors : Descriptors

    Raises
    ------
    NothingFoundError
        The mask is smaller than :data:`MIN_LEAF_PIXELS` pixels: too small to describe.
    """
    mask = np.asarray(mask, bool)
    pixels = int(mask.sum())
    if pixels < MIN_LEAF_PIXELS:
        raise NothingFoundError(
            source,
            f"the leaf is too small to describe ({pixels} pixels, at least {MIN_LEAF_PIXELS} needed)",
            "photograph it closer or at a higher resolution",
        )
    sy, sx = (scale, scale) if isinstance(scale, (int, float)) else scale
    linear = math.sqrt(sy * sx)
    contour = _outline(mask).astype(np.int32).reshape(-1, 1, 2)
    (_, _), (rw, rh), _ = cv2.minAreaRect(contour)
    length, width = max(rw, rh, 1.0), max(min(rw, rh), 1.0)
    perimeter = cv2.arcLength(contour, True)
    if area is None:
        from .segmentation import soft_area

        area = soft_area(photo, mask) if photo.shape[:2] == mask.shape else float(pixels)
    size_px = [area * sy * sx, length * linear, width * linear, perimeter * linear]
    size_mm = [v / px_per_mm**2 if k == 0 else v / px_per_mm for k, v in enumerate(size_px)] if px_per_mm else [math.nan] * 4

    big_mask = _rescaled_mask(mask, length, SHAPE_SIDE)
    outline = _outline(big_mask)
    contour = outline.astype(np.int32).reshape(-1, 1, 2)
    area = max(float(cv2.contourArea(contour)), 1.0)  # the outline's own area: ratios to its hull and rectangle stay <= 1
    perimeter = cv2.arcLength(contour, True)
    hull = cv2.convexHull(contour)
    (_, _), (rw, rh), _ = cv2.minAreaRect(contour)
    big_length = max(rw, rh, 1.0)
    moments = cv2.moments(big_mask.astype(np.uint8), binaryImage=True)
    mu20, mu02, mu11 = moments["mu20"], moments["mu02"], moments["mu11"]
    spread = math.sqrt(4 * mu11**2 + (mu20 - mu02) ** 2)
    major, minor = mu20 + mu02 + spread, max(mu20 + mu02 - spread, 0.0)
    hu = cv2.HuMoments(moments).reshape(-1)
    shape = [
        min(rw, rh) / max(rw, rh, 1.0),
        math.sqrt(max(0.0, 1.0 - minor / major)) if major > 0 else 0.0,
        area / max(cv2.contourArea(hull), 1.0),
        cv2.arcLength(hull, True) / max(perimeter, 1.0),
        4 * math.pi * area / max(perimeter**2, 1.0),
        area / max(rw * rh, 1.0),
        *(-math.log10(abs(v)) if abs(v) > 1e-30 else 30.0 for v in hu),
    ]
    texture_photo, texture_mask = _blade(photo if detail is None else detail, mask, length)
    values = [
        *size_px,
        *size_mm,
        *shape,
        *_elliptic_fourier(outline),
        *_curvature(big_mask, outline, big_length),
        *_margin(contour, big_length),
        *_colour(texture_photo, texture_mask),
        *_texture(cv2.cvtColor(texture_photo, cv2.COLOR_RGB2GRAY), texture_mask),
    ]
    return Descriptors(np.asarray(values, np.float32))


def describe(
    source: ImageSource,
    *,
    px_per_mm: float | None = None,
    work_side: int = DESCRIBE_SIDE,
    fill_holes: bool = False,
    petiole: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Descriptors:
    """Find the leaf of a photo and measure it (:func:`leaf_descriptors`).

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`leafprep.load_image` accepts.
    px_per_mm : float, optional
        Pixels of the full photo per millimetre, for the sizes in millimetres.
    work_side : int, optional
        The photo is segmented and measured at this long side at most.
    fill_holes, petiole, max_pixels
        As for :func:`leafprep.segment`.

    Returns
    -------
    descriptors : Descriptors

    Raises
    ------
    ImageLoadError
        The source cannot be read.
    NothingFoundError
        No leaf stands out from the background, or it is too small to describe.

    Warns
    -----
    LeafprepWarning
        As :func:`leafprep.segment` does (a leaf cut by the border, several leaves, a doubtful mask).
    """
    from .segmentation import analyse_leaf

    leaf = analyse_leaf(source, max_pixels=max_pixels, work_side=work_side, fill_holes=fill_holes, petiole=petiole)
    return leaf_descriptors(leaf.photo, leaf.mask, scale=leaf.scale, px_per_mm=px_per_mm or leaf.px_per_mm, source=_name(source))


def describe_all(
    source: ImageSource,
    *,
    px_per_mm: float | None = None,
    fill_holes: bool = False,
    petiole: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[tuple[tuple[int, int, int, int], Descriptors]]:
    """Find every leaf of a photo (:func:`leafprep.segment_all`) and measure each (:func:`leaf_descriptors`).

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`leafprep.load_image` accepts.
    px_per_mm : float, optional
        Pixels of the full photo per millimetre, for the sizes in millimetres
        (default: the file's own resolution where it gives one, as scans do).
    fill_holes, petiole, max_pixels
        As for :func:`leafprep.segment_all`.

    Returns
    -------
    leaves : list of (box, Descriptors)
        In reading order; ``box`` is ``(x, y, width, height)`` in the upright photo.

    Raises
    ------
    ImageLoadError
        The source cannot be read.
    NothingFoundError
        No leaf stands out from the background, or one is too small to describe.

    Warns
    -----
    LeafprepWarning
        As :func:`leafprep.segment_all` does.
    """
    from .normalization import _full_box
    from .segmentation import analyse_leaves

    found = analyse_leaves(source, max_pixels=max_pixels, fill_holes=fill_holes, petiole=petiole)
    return [(_full_box(leaf.box, found.scale), _describe_leaf(found, index, px_per_mm)) for index, leaf in enumerate(found.leaves)]


def _describe_leaf(found: Any, index: int, px_per_mm: float | None = None) -> Descriptors:
    """:func:`leaf_descriptors` of one leaf of a :class:`~leafprep.segmentation.LeavesAnalysis`, sizes in mm from
    ``px_per_mm`` or the photo's own resolution."""
    leaf = found.leaves[index]
    return leaf_descriptors(
        found.photo,
        leaf.full_mask(found.photo.shape[:2]),
        scale=found.scale,
        px_per_mm=px_per_mm or found.px_per_mm,
        detail=found.decoded,
        area=leaf.area,
        source=f"{found.name} leaf {index:02d}",
    )


def leaf_example(found: Any, index: int, size: int, mode: str = "gray", *, descriptors: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """One leaf of a photo of several, as ``leafprep build --all`` writes it: its normalised image and its descriptors.

    ``leafprep build --all``, ``leafprep predict --all`` and ``serve`` all cut a
    leaf out this way, so that a run sees what it was trained on.

    Parameters
    ----------
    found : leafprep.segmentation.LeavesAnalysis
        What :func:`leafprep.segmentation.analyse_leaves` found.
    index : int
        Which leaf (reading order).
    size : int
        Side of the normalised image.
    mode : {"gray", "silhouette", "rgb"}, optional
    descriptors : bool, optional
        Measure the leaf (:func:`leaf_descriptors`) too; else None.

    Returns
    -------
    image : (size, size) or (size, size, 3) ndarray of float32
    values : (len(DESCRIPTOR_NAMES),) ndarray of float32 or None

    Raises
    ------
    NothingFoundError
        The leaf is too small to describe.
    """
    from .geometry import MNIST_MARGIN
    from .normalization import _leaf_image

    leaf = found.leaves[index]
    x, y, w, h = leaf.box
    image, _ = _leaf_image(found.photo[y : y + h, x : x + w], leaf.mask, size, mode, MNIST_MARGIN, False)
    return image, _describe_leaf(found, index).values if descriptors else None


def leaf_batch(found: Any, size: int, mode: str = "gray", *, descriptors: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Every leaf of a photo of several as a run reads them (:func:`leaf_example`): images ``(N, size, size, C)``
    float32 and descriptors ``(N, len(DESCRIPTOR_NAMES))`` (None without)."""
    examples = [leaf_example(found, index, size, mode, descriptors=descriptors) for index in range(len(found.leaves))]
    images = np.stack([image[:, :, None] if image.ndim == 2 else image for image, _ in examples]).astype(np.float32)
    return images, np.stack([np.asarray(values) for _, values in examples]) if descriptors else None


def _name(source: ImageSource) -> str:
    from .loading import describe_source

    return describe_source(source)
