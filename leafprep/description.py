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
  scikit-image) and grey-level co-occurrence statistics averaged over four
  directions (``glcm_contrast``, ``glcm_homogeneity``, ``glcm_energy``,
  ``glcm_correlation``).

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

import cv2
import numpy as np

from .errors import NothingFoundError
from .loading import DEFAULT_MAX_PIXELS, ImageSource

__all__ = [
    "DESCRIPTOR_GROUPS",
    "DESCRIPTOR_NAMES",
    "DESCRIBE_SIDE",
    "MIN_LEAF_PIXELS",
    "SHAPE_SIDE",
    "Descriptors",
    "describe",
    "leaf_descriptors",
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
# Radius (pixels) of the disc each curvature scale is measured with.
_DISC = 12
# The grey texture is measured on the leaf rescaled to this length.
_TEXTURE_SIDE = 128
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
    phi = 2 * np.pi * t[None, :] / period
    dcos = np.cos(n * phi[:, 1:]) - np.cos(n * phi[:, :-1])
    dsin = np.sin(n * phi[:, 1:]) - np.sin(n * phi[:, :-1])
    factor = period / (2 * n[:, 0] ** 2 * np.pi**2)
    ratio = delta / dt[:, None]
    a = factor * (dcos @ ratio[:, 0])
    b = factor * (dsin @ ratio[:, 0])
    c = factor * (dcos @ ratio[:, 1])
    d = factor * (dsin @ ratio[:, 1])
    coeffs = np.stack([a, b, c, d], axis=1)
    # Start point: rotate the phase so that the first harmonic starts at its semi-major axis.
    theta = 0.5 * np.arctan2(2 * (a[0] * b[0] + c[0] * d[0]), a[0] ** 2 - b[0] ** 2 + c[0] ** 2 - d[0] ** 2)
    turned = np.empty_like(coeffs)
    for k in range(harmonics):
        angle = (k + 1) * theta
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        turned[k] = (np.array([[a[k], b[k]], [c[k], d[k]]]) @ rotation).reshape(-1)
    # Rotation: turn the semi-major axis onto x; size: make it 1.
    psi = np.arctan2(turned[0, 2], turned[0, 0])
    spin = np.array([[np.cos(psi), np.sin(psi)], [-np.sin(psi), np.cos(psi)]])
    for k in range(harmonics):
        turned[k] = (spin @ turned[k].reshape(2, 2)).reshape(-1)
    major = abs(turned[0, 0]) or 1.0
    magnitudes = np.abs(turned / major)
    return np.concatenate([[magnitudes[0, 3]], magnitudes[1:].reshape(-1)])


def _curvature(mask: np.ndarray, outline: np.ndarray, length: float) -> np.ndarray:
    """Integral-area curvature histograms: for each radius, the share of a disc inside the leaf along the outline.

    Each radius is measured on the mask shrunk so that the disc is
    :data:`_DISC` pixels in radius (the same shares, a small fraction of the work).
    """
    points = _resample(outline, _OUTLINE_POINTS)
    inside = mask.astype(np.float32)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _DISC + 1,) * 2).astype(np.float32)
    disc /= disc.sum()
    histograms = []
    for percent in _CURVATURE_RADII:
        factor = min(1.0, _DISC / (percent / 100.0 * length))
        small = inside
        if factor < 1.0:
            size = (max(1, round(mask.shape[1] * factor)), max(1, round(mask.shape[0] * factor)))
            small = cv2.resize(inside, size, interpolation=cv2.INTER_AREA)
        share = cv2.filter2D(small, -1, disc, borderType=cv2.BORDER_CONSTANT)
        # Bilinear samples at the outline's points (the shares vary smoothly at this scale).
        x = np.clip(points[:, 0] * factor, 0, small.shape[1] - 1.001)
        y = np.clip(points[:, 1] * factor, 0, small.shape[0] - 1.001)
        x0, y0 = x.astype(int), y.astype(int)
        fx, fy = x - x0, y - y0
        values = (
            share[y0, x0] * (1 - fx) * (1 - fy)
            + share[y0, x0 + 1] * fx * (1 - fy)
            + share[y0 + 1, x0] * (1 - fx) * fy
            + share[y0 + 1, x0 + 1] * fx * fy
        )
        histograms.append(_soft_histogram(values, _CURVATURE_BINS))
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


def _texture(gray: np.ndarray, mask: np.ndarray) -> list[float]:
    """Uniform LBP histogram and GLCM statistics of the blade's grey texture."""
    from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if inner.sum() < 16:
        inner = mask
    codes = local_binary_pattern(gray, _LBP_POINTS, 1, method="uniform")
    lbp = np.bincount(codes[inner].astype(np.int64), minlength=_LBP_POINTS + 2)[: _LBP_POINTS + 2] / max(1, int(inner.sum()))
    # Grey levels stretched over the blade (1st to 99th percentile), 32 levels; 0 is kept for the background.
    values = gray[inner].astype(np.float32)
    low, high = np.percentile(values, [1, 99]) if values.size else (0.0, 255.0)
    levels = 1 + np.clip((gray.astype(np.float32) - low) / max(float(high - low), 1.0) * 31, 0, 30).astype(np.uint8)
    levels[~inner] = 0
    matrix = graycomatrix(levels, [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=32, symmetric=True, normed=False)
    matrix = matrix[1:, 1:].astype(np.float64)  # pairs within the blade only
    total = matrix.sum(axis=(0, 1), keepdims=True)
    matrix = np.divide(matrix, total, out=np.zeros_like(matrix), where=total > 0)
    stats = [float(np.nan_to_num(graycoprops(matrix, prop)).mean()) for prop in ("contrast", "homogeneity", "energy", "correlation")]
    return [*lbp.tolist(), *stats]


def _colour(photo: np.ndarray, mask: np.ndarray) -> list[float]:
    lab = cv2.cvtColor(photo.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[mask]
    return [v for channel in range(3) for v in (float(lab[:, channel].mean()), float(lab[:, channel].std()))]


def _rescaled(image: np.ndarray, mask: np.ndarray, length: float, side: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """The leaf's box (and ``pad`` pixels around it), rescaled so that the leaf is ``side`` pixels long."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    factor = side / max(length, 1.0)
    crop_mask = np.pad(mask[y : y + h, x : x + w], pad).astype(np.float32)
    crop = np.pad(image[y : y + h, x : x + w], ((pad, pad), (pad, pad), *(((0, 0),) if image.ndim == 3 else ())), mode="edge")
    size = (max(1, round(crop_mask.shape[1] * factor)), max(1, round(crop_mask.shape[0] * factor)))
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(crop, size, interpolation=interpolation), cv2.resize(crop_mask, size, interpolation=interpolation) > 0.5


def leaf_descriptors(
    photo: np.ndarray,
    mask: np.ndarray,
    *,
    scale: float | tuple[float, float] = 1.0,
    px_per_mm: float | None = None,
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
    size_px = [pixels * sy * sx, length * linear, width * linear, perimeter * linear]
    size_mm = [v / px_per_mm**2 if k == 0 else v / px_per_mm for k, v in enumerate(size_px)] if px_per_mm else [math.nan] * 4

    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    # Room around the leaf for the widest curvature disc.
    _, big_mask = _rescaled(gray, mask, length, SHAPE_SIDE, int(math.ceil(0.3 * length)) + 2)
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
    texture_gray, texture_mask = _rescaled(gray, mask, length, _TEXTURE_SIDE, 1)
    values = [
        *size_px,
        *size_mm,
        *shape,
        *_elliptic_fourier(outline),
        *_curvature(big_mask, outline, big_length),
        *_margin(contour, big_length),
        *_colour(photo, mask),
        *_texture(texture_gray, texture_mask),
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
    return leaf_descriptors(leaf.photo, leaf.mask, scale=leaf.scale, px_per_mm=px_per_mm, source=_name(source))


def _name(source: ImageSource) -> str:
    from .loading import describe_source

    return describe_source(source)
