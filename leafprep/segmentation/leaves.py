"""Finding one leaf in a photo or scan, on any background.

The leaf recipe, on an upright RGB photo:

1. :func:`background_distance` models the background instead of assuming a
   white or a green one: the colours of a ring along the image border (RGB,
   binned; every bin holding at least 2% of the ring is a background colour:
   card, cloth, wood grain, the shade of a shadow) and, for every pixel, the
   distance to the nearest of them once a change of light is allowed for:
   a pixel is ``f`` times a background colour plus a rest; the rest and a
   brighter ``f`` count fully, a darker ``f`` (a shadow) a tenth as much.
2. :func:`leaf_mask` thresholds that distance (Otsu over distances capped at
   ``DISTANCE_CAP``, at least ``MIN_DISTANCE``; fainter pixels that touch the leaf join it: pale petioles
   and rachises), removes specks, and keeps one object: the largest, with
   objects that look like rulers, labels or colour charts (near-perfect
   rectangles) and parts cut by the border counting less.  Parts within a small
   gap of it join it (leaflets of a compound leaf), small holes (specular
   highlights, pale veins) are filled, large holes stay unless asked, and the
   petiole can be cut off.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import pairwise

import cv2
import numpy as np

from ..errors import LeafprepWarning, NothingFoundError
from ..loading import ImageSource, _load
from .common import odd, working_image

__all__ = ["LeafAnalysis", "analyse_leaf", "background_colours", "background_distance", "leaf_mask", "otsu_threshold"]

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
    """

    photo: np.ndarray
    distance: np.ndarray
    objects: np.ndarray
    mask: np.ndarray
    scale: tuple[float, float]
    notes: list[str] = field(default_factory=list)


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
        cuts = np.linspace(0, side.shape[1], 5).astype(int)
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


def _is_rectangle(stats_area: int, contour: np.ndarray) -> bool:
    (_, _), (w, h), _ = cv2.minAreaRect(contour)
    return w * h > 0 and stats_area / (w * h) > 0.88


def leaf_mask(
    rgb: np.ndarray,
    *,
    fill_holes: bool = False,
    petiole: bool = True,
    name: str = "<array>",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Mask of the leaf in a photo.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    fill_holes : bool, optional
        Fill every hole in the blade (small holes, highlights and pale veins,
        are always filled).
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
        From :func:`background_distance`.
    notes : list of str
        What the user should know: the leaf touches the border, several leaves.

    Raises
    ------
    NothingFoundError
        Nothing stands out from the background.
    """
    height, width = rgb.shape[:2]
    distance = background_distance(rgb)
    # Otsu between background and objects: distances are capped first, so that
    # a bright ruler or colour chart does not split the objects into two classes.
    otsu = otsu_threshold(np.minimum(distance, DISTANCE_CAP))
    threshold = max(MIN_DISTANCE, OTSU_FACTOR * otsu)
    objects = (distance > threshold).astype(np.uint8)
    speck = max(1, round(min(height, width) / 300))
    objects = cv2.morphologyEx(objects, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * speck + 1,) * 2))
    objects = _hysteresis(objects, distance > max(0.75 * MIN_DISTANCE, WEAK_FACTOR * threshold))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(objects, connectivity=8)
    min_area = 0.002 * height * width
    candidates = []
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area < min_area:
            continue
        border = x == 0 or y == 0 or x + w == width or y + h == height
        contour = _largest_contour(labels[y : y + h, x : x + w] == i)
        weight = 0.15 if _is_rectangle(area, contour) else 1.0
        candidates.append((area * weight * (0.6 if border else 1.0), i, bool(border), int(area)))
    if not candidates:
        raise NothingFoundError(name, "no leaf found: nothing stands out from the background", "photograph the leaf on a plain background")
    candidates.sort(reverse=True)
    _, best, touches, best_area = candidates[0]
    mask = labels == best
    # Leaflets and pieces separated by a thin gap join the leaf, one after another.
    gap = max(2, round(0.015 * max(height, width)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1,) * 2)
    joinable = {i for weight, i, _, area in candidates[1:] if weight >= 0.5 * area}  # not rectangles
    while joinable:
        near = cv2.dilate(mask.astype(np.uint8), disc).astype(bool)
        joining = {i for i in joinable if near[labels == i].any()}
        if not joining:
            break
        for i in joining:
            mask |= labels == i
        joinable -= joining
    mask = _fill_holes(mask, None if fill_holes else 0.01 * best_area)
    if not petiole:
        mask = cut_petiole(mask)
    notes = []
    if touches:
        notes.append("the leaf touches the image border: only the visible part is used")
    others = sum(1 for _, i, border, area in candidates[1:] if not border and area >= 0.1 * best_area and not (mask & (labels == i)).any())
    if others:
        notes.append(f"{others + 1} leaves found: the largest is used")
    return mask, objects.astype(bool), distance, notes


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


def _largest_contour(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return max(contours, key=cv2.contourArea)


def _fill_holes(mask: np.ndarray, max_area: float | None) -> np.ndarray:
    """Fill holes of ``mask`` smaller than ``max_area`` pixels (all holes if None)."""
    inverse = (~mask).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    height, width = mask.shape
    filled = mask.copy()
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if x == 0 or y == 0 or x + w == width or y + h == height:
            continue  # the background around the leaf
        if max_area is None or area <= max_area:
            filled |= labels == i
    return filled


def cut_petiole(mask: np.ndarray) -> np.ndarray:
    """Remove the petiole: parts much thinner than the blade.

    An opening with a disc of a third of the blade's greatest half-width
    removes the stalk; the blade's own outline is then restored.

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
    _, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    blade = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    grown = cv2.dilate(blade.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (odd(radius * 1.2),) * 2)).astype(bool)
    return mask & grown


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

    Warns (:class:`LeafprepWarning`) when the leaf is cut by the border or
    there are several leaves.
    """
    loaded = _load(source, max_pixels=max_pixels, min_side=work_side // 2)
    work = working_image(loaded.rgb, work_side)
    mask, objects, distance, notes = leaf_mask(work, fill_holes=fill_holes, petiole=petiole, name=loaded.name)
    if warn:
        for note in notes:
            warnings.warn(LeafprepWarning(loaded.name, note), stacklevel=3)
    scale = (loaded.full_shape[0] / work.shape[0], loaded.full_shape[1] / work.shape[1])
    return LeafAnalysis(work, distance, objects, mask, scale, notes)
