"""Finding one leaf in a photo or scan, on any background.

The leaf recipe, on an upright RGB photo:

1. :func:`background_distance` models the background instead of assuming a
   white or a green one: the colours of a ring along the image border (CIE Lab,
   binned; every bin holding at least 2% of the ring is a background colour:
   card, cloth, wood grain, the shade of a shadow) and, for every pixel, the
   distance to the nearest of them.  Being darker than a background colour
   counts a quarter as much as a change of hue, so shadows stay background;
   being lighter or differently coloured counts fully.
2. :func:`leaf_mask` thresholds that distance (Otsu, at least
   ``MIN_DISTANCE``), removes specks, and keeps one object: the largest, with
   objects that look like rulers, labels or colour charts (near-perfect
   rectangles) and parts cut by the border counting less.  Parts within a small
   gap of it join it (leaflets of a compound leaf), small holes (specular
   highlights, pale veins) are filled, large holes stay unless asked, and the
   petiole can be cut off.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import LeafprepWarning, NothingFoundError
from ..loading import ImageSource, _load
from .common import odd, working_image

__all__ = ["LeafAnalysis", "analyse_leaf", "background_colours", "background_distance", "leaf_mask"]

#: Distance (Lab units) below which a pixel is always background.
MIN_DISTANCE = 12.0
# Side of the Lab bins that background colours are counted in.
_BIN = 16
# Weight of "darker than the background" against hue and "lighter" changes.
_SHADOW_WEIGHT = 0.25
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


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)


def background_colours(lab: np.ndarray, *, ring: float = 0.03, share: float = 0.02) -> np.ndarray:
    """Colours of the background, taken from a ring along the image border.

    Parameters
    ----------
    lab : (M, N, 3) ndarray of float32
        The image in OpenCV's 8-bit Lab scale (L, a, b in [0, 255]).
    ring : float, optional
        Width of the ring as a fraction of the shorter side.
    share : float, optional
        A bin of the ring's colours is a background colour if it holds at least
        this fraction of the ring.

    Returns
    -------
    colours : (K, 3) ndarray of float32
        Mean Lab colour of each background bin, most common first.
    """
    height, width = lab.shape[:2]
    r = max(1, round(ring * min(height, width)))
    samples = np.concatenate([lab[:r].reshape(-1, 3), lab[-r:].reshape(-1, 3), lab[r:-r, :r].reshape(-1, 3), lab[r:-r, -r:].reshape(-1, 3)])
    bins = (samples // _BIN).astype(np.int32)
    keys = (bins[:, 0] * 64 + bins[:, 1]) * 64 + bins[:, 2]
    unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    chosen = [i for i in order if counts[i] >= share * len(samples)] or [order[0]]
    inverse = inverse.reshape(-1)
    sums = np.stack([np.bincount(inverse, weights=samples[:, c], minlength=len(unique)) for c in range(3)], axis=1)
    return (sums[chosen] / counts[chosen, None]).astype(np.float32)


def background_distance(rgb: np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """Distance of every pixel to the nearest background colour.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    colours : (K, 3) ndarray, optional
        Background colours in OpenCV Lab; :func:`background_colours` by default.

    Returns
    -------
    distance : (M, N) ndarray of float32
        Euclidean in Lab, with the lightness difference weighted by 1/4 where
        the pixel is darker than the background colour (shadows).
    """
    lab = _lab(rgb)
    if colours is None:
        colours = background_colours(lab)
    if lab.shape[0] * lab.shape[1] <= 64**3:
        # Small images: measure every pixel against every colour.
        best_small = np.full(lab.shape[:2], np.inf, np.float32)
        for L, a, b in colours:
            dl = lab[..., 0] - L
            dl *= np.where(dl < 0, np.float32(_SHADOW_WEIGHT), np.float32(1.0))
            np.minimum(best_small, dl * dl + (lab[..., 1] - a) ** 2 + (lab[..., 2] - b) ** 2, out=best_small)
        return np.sqrt(best_small)
    # Large images: quantise Lab to 64 levels a channel and look the distance up in a table:
    # far cheaper than measuring every pixel against every colour.
    levels = (np.arange(64, dtype=np.float32) * 4.0 + 2.0)[:, None]
    best = np.full((64, 64, 64), np.inf, np.float32)
    for L, a, b in colours:
        dl = levels - L
        dl = np.where(dl < 0, dl * _SHADOW_WEIGHT, dl)[:, 0]
        da = (levels[:, 0] - a) ** 2
        db = (levels[:, 0] - b) ** 2
        table = dl[:, None, None] ** 2 + da[None, :, None] + db[None, None, :]
        np.minimum(best, table, out=best)
    np.sqrt(best, out=best)
    index = (lab.astype(np.uint8) >> 2).astype(np.intp)
    return best[index[..., 0], index[..., 1], index[..., 2]]


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
    scaled = np.clip(distance * 2.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = max(MIN_DISTANCE, otsu / 2.0)
    objects = (distance > threshold).astype(np.uint8)
    speck = max(1, round(min(height, width) / 300))
    objects = cv2.morphologyEx(objects, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * speck + 1,) * 2))
    objects = _hysteresis(objects, distance > max(0.75 * MIN_DISTANCE, 0.6 * threshold))
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
    others = sum(1 for _, i, border, area in candidates[1:] if not border and area >= 0.3 * best_area and not (mask & (labels == i)).any())
    if others:
        notes.append(f"{others + 1} leaves found: the largest is used")
    return mask, objects.astype(bool), distance, notes


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Weak pixels connected to strong ones (pale rachis, petiole) join them."""
    count, labels = cv2.connectedComponents((weak | strong.astype(bool)).astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[strong.astype(bool)])] = True
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
