"""Every leaf of a photo: scanner beds, sheets and boards with several leaves.

:func:`leaf_masks` shares the first steps of :func:`~.leaves.leaf_mask` (the
background, the light, the distance, what stands out) and then, instead of
choosing one object, keeps every object that is a leaf:

1. Reference squares, colour chips and labels (near-perfect rectangles) are
   left out, and so are specks and fragments far smaller than the leaves: under
   :data:`FRAGMENT_SHARE` of the typical leaf (the lower median of the groups of
   objects within the joining gap of one another, of those of at least a tenth of
   the largest one's area: :func:`_typical_area`) or under :data:`MIN_LEAF_SHARE` of
   the frame. Seams of the surface (long straight thin lines, :func:`_seams`:
   the joint between two boards) are taken out first, so that they do not join
   the leaves lying across them. A leaf fainter than the threshold that lies
   alone, leaf-sized, is kept too (:func:`_faint_leaves`). What was left out is
   counted, by reason.
2. Touching leaves are split where a narrow neck joins them, or, lying over
   each other along a broad edge, between two notches of the outline
   (:func:`split_touching`; a part smaller than the typical leaf and far less
   convex than a leaf, the leaflets of a compound leaf, stays joined); an object much larger than the typical leaf that
   has no such neck (at least :data:`OVERSIZED` times its area and
   :data:`OVERSIZED_OVER_OTHERS` times every other leaf's, among three or more
   leaves) is kept whole and flagged.
3. On a photo, a leaf that the photo's threshold cuts into pieces (a brown
   leaf among green ones on a brown table) grows into its own fainter parts,
   as a photo of it alone would take them (:func:`_grow_faint_parts`); on a
   scan each leaf is thresholded over its own surroundings (:func:`_own_threshold`).
   Edges are placed as for one leaf (:func:`~.leaves.refine_edges`, once for
   all the leaves), holes filled, petioles cut if asked, and each leaf's
   doubts are its own (cut by the border, doubtful mask).
4. The leaves come in reading order: rows top to bottom, each left to right.

:func:`soft_area` measures a leaf's area to a fraction of a pixel from the
colours along its outline, so that real sizes hold on a scan of known
resolution.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import DOUBT, LEFT_OUT, LeafprepWarning
from ..geometry import reading_order
from ..loading import ImageSource, _load
from .common import nothing_found, order_statistics, working_image
from .leaves import (
    DETAIL_SIDE,
    EDGE_BAND,
    _fill_holes,
    _hysteresis,
    _is_rectangle,
    _largest_contour,
    _largest_part,
    _object_threshold,
    _parts_of,
    _Scene,
    _scene,
    _weak_level,
    cut_petiole,
    refine_edges,
    speck_disc,
    spread_doubt,
    unsure_band,
)

__all__ = [
    "FAINT_GROWTH",
    "FRAGMENT_SHARE",
    "MANY_WORK_SIDE",
    "OVERSIZED_OVER_OTHERS",
    "OWN_MARGIN",
    "MIN_LEAF_SHARE",
    "LeafObject",
    "LeavesAnalysis",
    "analyse_leaves",
    "leaf_masks",
    "soft_area",
    "split_touching",
]

#: Long side of the working image when every leaf is wanted (each leaf is a part of the frame).
MANY_WORK_SIDE = 2048
#: An object under this share of the typical leaf's area is a fragment (dust, a torn-off piece).
FRAGMENT_SHARE = 0.2
#: An object under this share of the frame is a speck, whatever the leaves' size.
MIN_LEAF_SHARE = 0.0003
#: A neck is narrow when its width is at most this share of the narrower part's greatest width.
NECK_SHARE = 0.35
#: A part split off at a neck must hold this share of the typical leaf's area (a lobe or a petiole does not) ...
PART_SHARE = 0.5
#: ... and, when smaller than the typical leaf, be at least this convex (solidity), or as convex as the photo's own
#: leaves less :data:`SOLIDITY_MARGIN` where they are lobed: a few leaflets of a compound leaf are not a leaf.
LEAF_SOLIDITY = 0.75
SOLIDITY_MARGIN = 0.1
#: An object under this share of the typical leaf's area within :data:`JOIN_GAP` of a larger one joins it (leaflets, a cut blade).
JOIN_SHARE = 0.6
#: The gap, as a share of the working image's longer side.
JOIN_GAP = 0.008
#: Only an object this many times the typical leaf's area is split (a compound leaf's rachis is a narrow neck too).
SPLIT_FROM = 1.8
#: A thin straight line at least this share of the frame's longer side long is a seam of the surface, not part of a leaf.
SEAM_LENGTH = 0.3
#: ... and stands out along at least this share of its length (under leaves or as a line).
SEAM_COVER = 0.9
#: Two leaves over each other along a broad edge are cut between two of the outline's this many deepest notches ...
NOTCH_COUNT = 6
#: ... each at least this share of the object's square-root area deep, ...
NOTCH_DEPTH = 0.02
#: ... when both parts come out at least this convex (solidity) ...
CONVEX_PART = 0.85
#: ... and this much more convex than the object.
CONVEX_GAIN = 0.08
#: A region standing out by this share of the threshold, alone and leaf-sized, is a faint leaf (:func:`_faint_leaves`) ...
FAINT_SHARE = 0.5
#: ... when it is between these multiples of the typical leaf's area.
FAINT_AREA = (0.5, 2.0)
#: An unsplit object this many times the typical leaf's area is flagged as possibly several touching leaves ...
OVERSIZED = 1.8
#: ... when it is also this many times the area of every other leaf of the photo: two touching leaves are about twice
#: a leaf of their photo, while on a bed of several species a large leaf has others near its size. On the beds of
#: ``bench.leaf_beds`` (seeds 25-28, 400 photos) the flag fell on 65 objects, 4 of them two leaves; with this rule on 6,
#: the same 4 among them (the lowest of them 1.72 times the next leaf). Two such pairs in one photo, and nothing
#: else near their size, are not flagged (each has the other).
OVERSIZED_OVER_OTHERS = 1.5
#: A leaf's median share of its frame in real single-leaf phone photos (uci_dev, 111 photos: 0.15): the outlines of
#: several leaves are placed as in a photo of each leaf alone, where :data:`~.leaves.EDGE_BAND` was measured.
SINGLE_LEAF_SHARE = 0.15
#: On a photo, a leaf grows into its pixels fainter than the photo's threshold allows, down to the level its own
#: surroundings give and this share of its own median distance from the background (:func:`_grow_faint_parts`).
FAINT_GROWTH = 0.5
#: On a scan (the fast path), each leaf's threshold is taken again over its box widened by this share of its size on
#: each side (:func:`_own_threshold`).
OWN_MARGIN = 0.5
#: ... and the bed's threshold kept where fewer pixels than this lie round the leaf away from the others.
OWN_SAMPLE = 64

# Why an object is left out: (one, several).
_RECTANGLE = ("rectangle (a reference square, colour chip or label)", "rectangles (reference squares, colour chips, labels)")
_SPECK = ("speck", "specks")
_NO_LEAVES = ("no leaf found: nothing stands out from the background", "photograph the leaves on a plain background")
_SEAM = ("seam across the frame (a joint between boards, a fold)", "seams across the frame (joints between boards, folds)")
_FRAGMENT = ("fragment far smaller than the leaves", "fragments far smaller than the leaves")


@dataclass(frozen=True)
class LeafObject:
    """One leaf of a working image.

    Attributes
    ----------
    mask : (h, w) ndarray of bool
        The leaf within ``box``.
    box : tuple of int
        ``(x, y, width, height)`` in working pixels.
    area : float
        Area in working pixels, to a fraction of a pixel (:func:`soft_area`).
    notes : list of str
        What the user should know of this leaf (cut by the border, possibly
        several touching leaves, doubts starting with :data:`~leafprep.errors.DOUBT`).
    """

    mask: np.ndarray
    box: tuple[int, int, int, int]
    area: float
    notes: list[str] = field(default_factory=list)

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The leaf's mask in a frame of ``shape`` (the working image's)."""
        frame = np.zeros(shape, bool)
        x, y, w, h = self.box
        frame[y : y + h, x : x + w] = self.mask
        return frame


@dataclass(frozen=True)
class LeavesAnalysis:
    """Every leaf that :func:`analyse_leaves` found in a photo.

    Attributes
    ----------
    photo : (M, N, 3) ndarray of uint8
        The working image.
    leaves : list of LeafObject
        In reading order, in working pixels.
    left_out : dict of str to int
        What stood out from the background but is not a leaf, counted by reason.
    scale : tuple of float
        ``(y, x)`` factors from working to full-size pixels.
    px_per_mm : float or None
        The photo's own resolution (full-size pixels per millimetre), where its file gives one.
    decoded : (P, Q, 3) ndarray of uint8
        The photo as decoded (at least as large as ``photo``), for colour and texture.
    full_shape : tuple of int
        ``(height, width)`` of the upright photo at full size.
    name : str
        The source, for messages.
    """

    photo: np.ndarray
    leaves: list[LeafObject]
    left_out: dict[str, int]
    scale: tuple[float, float]
    px_per_mm: float | None
    decoded: np.ndarray
    full_shape: tuple[int, int]
    name: str = "<array>"


def split_touching(mask: np.ndarray, typical_area: float, *, typical_solidity: float | None = None) -> list[np.ndarray]:
    """Split an object where narrow necks join leaf-sized parts, or where two notches of its outline part two whole leaves.

    Only an object of at least :data:`SPLIT_FROM` times ``typical_area`` is
    split (a compound leaf's leaflets hang on a narrow rachis too). The
    parts are the watershed basins of the distance to the background,
    grown from its peaks; two neighbouring parts stay joined unless the neck
    between them is at most :data:`NECK_SHARE` of the narrower part's
    greatest width and both hold at least :data:`PART_SHARE` of
    ``typical_area`` (so lobes, teeth and petioles stay with their leaf);
    a part smaller than ``typical_area`` must also be at least
    :data:`LEAF_SOLIDITY` convex (or ``typical_solidity`` less
    :data:`SOLIDITY_MARGIN`, when that is lower): the last few leaflets of a
    large compound leaf hang on a narrow rachis, and a whole leaf smaller
    than the typical one is seldom that far from convex.
    An object left whole that way (two leaves lying over each other along a
    broad edge have no narrow neck) is cut between two notches of its
    outline where both parts come out whole, convex leaves
    (:func:`_cut_at_notches`).

    Parameters
    ----------
    mask : (M, N) ndarray of bool
        One connected object.
    typical_area : float
        The area of a typical leaf of the photo, in pixels.
    typical_solidity : float, optional
        How convex the photo's leaves are (the median solidity of its
        leaf-sized objects): where they are lobed (maples), a small lobed part
        is still split off as a leaf.

    Returns
    -------
    parts : list of (M, N) ndarray of bool
        One mask per leaf, largest first; ``[mask]`` when nothing is split.
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    mask = np.asarray(mask, bool)
    if mask.sum() < SPLIT_FROM * typical_area:
        return [mask]
    floor = LEAF_SOLIDITY if typical_solidity is None else min(LEAF_SOLIDITY, typical_solidity - SOLIDITY_MARGIN)

    def not_a_leaf(part: np.ndarray, area: int) -> bool:
        return area < PART_SHARE * typical_area or (area < typical_area and _solidity(_largest_contour(part)) < floor)

    distance = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    peaks = h_maxima(distance, max(2.0, 0.15 * float(distance.max())))
    count, markers = cv2.connectedComponents(peaks.astype(np.uint8), connectivity=8)
    if count <= 2:
        return _cut_at_notches(mask, typical_area)
    basins = watershed(-distance, markers, mask=mask)
    parts = {label: basins == label for label in range(1, count) if (basins == label).any()}
    # Join neighbours across wide necks, and parts too small to be a leaf, until every neck left is narrow.
    while len(parts) > 1:
        widths = {label: float(distance[part].max()) for label, part in parts.items()}
        areas = {label: int(part.sum()) for label, part in parts.items()}
        unfit = {label: not_a_leaf(part, areas[label]) for label, part in parts.items()}  # once a part, not once a pair
        best = None
        for a in parts:
            grown = cv2.dilate(parts[a].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            for b in parts:
                if b <= a:
                    continue
                neck = grown & parts[b]
                if not neck.any():
                    continue
                neck_width = float(distance[neck].max())
                small = unfit[a] or unfit[b]
                wide = neck_width > NECK_SHARE * min(widths[a], widths[b])
                if small or wide:
                    # Small parts join first, then the widest necks.
                    key = (small, neck_width / max(min(widths[a], widths[b]), 1e-6))
                    if best is None or key > best[0]:
                        best = (key, a, b)
        if best is None:
            break
        _, a, b = best
        parts[a] = parts[a] | parts.pop(b)
    if len(parts) == 1:
        return _cut_at_notches(mask, typical_area)
    return sorted(parts.values(), key=lambda part: -int(part.sum()))


def _typical_area(labels: np.ndarray, kept: list[int], areas: dict[int, int], gap: int) -> tuple[float, int]:
    """The typical leaf's area, and how many groups were leaf-sized.

    Objects within ``gap`` pixels of one another are a group (a leaf and the
    pieces that will join it: the leaflets of a compound leaf whose pale
    rachis does not stand out); the typical leaf is the lower median of the
    groups' areas, of the groups of at least a tenth of the largest (of a leaf
    and a touching pair, the leaf). Counting the pieces instead, a photo of
    rowan leaves on light wood had a few leaflets for its typical leaf, and
    every leaf was cut into its leaflets.
    """
    return _typical_of(_group_areas(labels, kept, areas, gap)[1].values())


def _typical_of(group_areas: Iterable[int]) -> tuple[float, int]:
    """The typical leaf's area among groups of these areas (the lower median of those of at least a tenth of the
    largest's), and how many those are."""
    totals = list(group_areas)
    largest = max(totals)
    sizable = sorted(a for a in totals if a >= 0.1 * largest)
    return float(sizable[(len(sizable) - 1) // 2]), len(sizable)


def _group_areas(labels: np.ndarray, kept: list[int], areas: dict[int, int], gap: int) -> tuple[np.ndarray, Counter[int]]:
    """Objects ``kept`` of ``labels`` within ``gap`` pixels of one another, as groups: (each label's group, each group's area)."""
    objects = np.isin(labels, kept).astype(np.uint8)
    reach = max(1, (gap + 1) // 2)
    _, groups = cv2.connectedComponents(cv2.dilate(objects, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)), connectivity=8)
    group_of = np.zeros(int(labels.max()) + 1, np.int64)
    group_of[labels[objects > 0]] = groups[objects > 0]
    totals: Counter[int] = Counter()
    for i in kept:
        totals[int(group_of[i])] += areas[i]
    return group_of, totals


def _crop(labels: np.ndarray, stat: np.ndarray) -> np.ndarray:
    """The box of one object's ``cv2.connectedComponentsWithStats`` row (x, y, width, height, ...) in ``labels``."""
    x, y, w, h = (int(v) for v in stat[:4])
    return labels[y : y + h, x : x + w]


def _solidity(contour: np.ndarray) -> float:
    """Area over the convex hull's area, of an outline."""
    return float(cv2.contourArea(contour)) / max(float(cv2.contourArea(cv2.convexHull(contour))), 1.0)


def _cut_at_notches(mask: np.ndarray, typical_area: float) -> list[np.ndarray]:
    """Two leaves lying over each other along a broad edge (no narrow neck): cut along the straight line
    between two notches of the outline where both parts come out whole leaves, each far more convex than the two together.

    Of the :data:`NOTCH_COUNT` deepest notches (convexity defects at least
    :data:`NOTCH_DEPTH` of the object's square-root area deep), every pair is
    tried; a cut is kept when both parts hold :data:`PART_SHARE` of the typical
    leaf and the less convex of them has a solidity of at least
    :data:`CONVEX_PART` and :data:`CONVEX_GAIN` more than the object's. Lobes
    (a maple's, an oak's) and leaflets are not that convex on their own, so a
    single large leaf stays whole. Returns ``[mask]`` when no cut is kept.
    """
    contour = _largest_contour(mask, simple=False)
    hull = cv2.convexHull(contour, returnPoints=False)
    if hull is None or len(hull) < 4:
        return [mask]
    try:
        defects = cv2.convexityDefects(contour, np.sort(hull.reshape(-1))[:, None])
    except cv2.error:  # a self-touching outline
        return [mask]
    if defects is None:
        return [mask]
    defects = defects.reshape(-1, 4)
    deep = defects[np.argsort(-defects[:, 3], kind="stable")][:NOTCH_COUNT]
    deep = deep[deep[:, 3] / 256.0 >= NOTCH_DEPTH * math.sqrt(float(mask.sum()))]
    whole = _solidity(contour)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for (_, _, a, _), (_, _, b, _) in itertools.combinations(deep.tolist(), 2):
        cut = mask.astype(np.uint8)
        cv2.line(cut, tuple(int(v) for v in contour[a, 0]), tuple(int(v) for v in contour[b, 0]), 0, 3)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(cut, connectivity=4)
        if count < 3:
            continue
        first, second = (1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")[:2]).tolist()
        if stats[second, cv2.CC_STAT_AREA] < PART_SHARE * typical_area:
            continue
        one, two = labels == first, labels == second
        convex = min(_solidity(_largest_contour(one)), _solidity(_largest_contour(two)))
        if convex >= max(CONVEX_PART, whole + CONVEX_GAIN) and (best is None or convex > best[0]):
            best = (convex, one, two)
    if best is None:
        return [mask]
    parts = _give_pieces([best[1], best[2]], mask & ~(best[1] | best[2]))
    return sorted(parts, key=lambda part: -int(part.sum()))


#: How far (pixels) outside a leaf the ring of background that :func:`soft_area` compares it with reaches.
_RING_OUTER = 4


def soft_area(photo: np.ndarray, mask: np.ndarray, others: np.ndarray | None = None) -> float:
    """The area of ``mask``'s object to a fraction of a pixel, from the colours along its outline.

    A pixel on the outline of a shrunk or scanned image is a mix of leaf and
    background: its share of leaf is where its colour lies between the local
    background's (the median of a ring just outside) and the leaf's (the
    median just inside). The pixels well inside count one each.

    Parameters
    ----------
    photo : (M, N, 3) ndarray of uint8
    mask : (M, N) ndarray of bool
    others : (M, N) ndarray of bool, optional
        Other objects, kept out of the background ring.

    Returns
    -------
    area : float
        In pixels; the pixel count of ``mask`` where the leaf barely differs
        from the background.
    """
    mask = np.asarray(mask, bool)
    count = float(mask.sum())
    if not count:
        return count
    # Only the mask's box and the ring's reach round it matter: the same pixels, in the same order, as the whole image.
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    reach = _RING_OUTER + 1
    y0, y1, x0, x1 = max(0, y - reach), min(mask.shape[0], y + h + reach), max(0, x - reach), min(mask.shape[1], x + w + reach)
    photo, mask = photo[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    others = None if others is None else np.asarray(others, bool)[y0:y1, x0:x1]
    cross, blob = np.ones((3, 3), np.uint8), mask.astype(np.uint8)
    inner = cv2.erode(blob, cross, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    core = cv2.erode(inner.astype(np.uint8), cross, iterations=2).astype(bool)
    grown = cv2.dilate(blob, cross).astype(bool)
    ring = cv2.dilate(blob, cross, iterations=_RING_OUTER).astype(bool) & ~cv2.dilate(blob, cross, iterations=2).astype(bool)
    if others is not None:
        ring &= ~others
    if core.sum() < 16 or ring.sum() < 16:
        return count
    background, leaf = (_medians(photo, part) for part in (ring, core))
    axis = leaf - background
    contrast = float(axis @ axis)
    if contrast < 30.0**2:  # too faint to weigh a pixel's share
        return count
    band = grown & ~inner
    share = np.clip(((photo[band].astype(np.float32) - background) @ axis) / contrast, 0.0, 1.0)
    return float(inner.sum()) + float(share.sum())


def _medians(photo: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``np.median(photo[where], axis=0)`` as float32, from each channel's 8-bit histogram under ``where`` (the same
    numbers: the middle value, or the mean of the two middle ones)."""
    image = np.ascontiguousarray(photo, np.uint8)
    total = int(np.count_nonzero(where))
    middle = (total // 2,) if total % 2 else (total // 2 - 1, total // 2)
    return np.array([sum(order_statistics(image, where, middle, channel)) / len(middle) for channel in range(image.shape[2])], np.float32)


def leaf_masks(
    rgb: np.ndarray,
    *,
    fill_holes: bool = False,
    petiole: bool = True,
    name: str = "<array>",
) -> tuple[list[LeafObject], dict[str, int]]:
    """Every leaf in a photo, separately, in reading order.

    Parameters
    ----------
    rgb : (M, N, 3) ndarray of uint8
    fill_holes, petiole, name
        As for :func:`~.leaves.leaf_mask`.

    Returns
    -------
    leaves : list of LeafObject
        Rows top to bottom, each left to right.
    left_out : dict of str to int
        What stood out but is not a leaf, by reason (rectangles, specks, fragments).

    Raises
    ------
    NothingFoundError
        No leaf stands out from the background.
    """
    height, width = rgb.shape[:2]
    scene = _scene(rgb)
    seams, seam_count = _seams(scene.objects)
    objects = scene.objects & ~seams
    count, labels, stats, _ = cv2.connectedComponentsWithStats(objects, connectivity=8)
    left_out: Counter[tuple[str, str]] = Counter()
    # Specks the opening took away (dust, paper fibres) are counted too: nothing is left out unsaid.
    raw_count, raw = cv2.connectedComponents((scene.distance > scene.threshold).astype(np.uint8), connectivity=8)
    kept_raw = np.unique(raw[scene.objects > 0])
    left_out[_SPECK] += raw_count - 1 - int((kept_raw > 0).sum())
    left_out[_SEAM] += seam_count
    kept = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < MIN_LEAF_SHARE * height * width:
            left_out[_SPECK] += 1
        elif _is_rectangle(area, _largest_contour(labels[y : y + h, x : x + w] == i)):
            left_out[_RECTANGLE] += 1
        else:
            kept.append(i)
    if not kept:
        raise nothing_found(name, rgb.shape, *_NO_LEAVES, "leaf")
    areas = {i: int(stats[i, cv2.CC_STAT_AREA]) for i in kept}
    typical, leaf_count = _typical_area(labels, kept, areas, round(JOIN_GAP * max(height, width)))
    # How convex the photo's leaves are: the median solidity of the objects of about the typical leaf's area.
    leaf_sized = [i for i in kept if 0.5 * typical <= areas[i] <= 1.5 * typical]
    solidity = float(np.median([_solidity(_largest_contour(_crop(labels, stats[i]) == i)) for i in leaf_sized])) if leaf_sized else None
    # Leaves too faint for the threshold that lie well apart from everything else become objects too.
    leaves_so_far = np.isin(labels, [i for i in kept if areas[i] >= FRAGMENT_SHARE * typical])
    for part, (x, y) in _faint_leaves(scene, leaves_so_far, typical, round(JOIN_GAP * max(height, width))):
        new = len(stats)
        crop = labels[y : y + part.shape[0], x : x + part.shape[1]]
        for inside in set(np.unique(crop[part]).tolist()) - {0}:  # its brightest bits, found as specks or fragments
            labels[labels == inside] = new
            kept = [i for i in kept if i != inside]
        crop[part] = new
        areas[new] = int((crop == new).sum())
        stats = np.vstack([stats, [x, y, part.shape[1], part.shape[0], areas[new]]])
        kept.append(new)
    # Pieces much smaller than a leaf within a small gap of a larger object are part of it: leaflets whose
    # rachis is too thin to see, a blade cut in two by a pale midrib.
    joined = _join_pieces(labels, stats, kept, areas, typical, round(JOIN_GAP * max(height, width)))
    parts: list[tuple[np.ndarray, tuple[int, int], list[str]]] = []  # mask crop, its corner, notes
    # Each object with the pieces that joined it, and their area together.
    members_of = {i: [i, *(j for j, host in joined.items() if host == i)] for i in kept if i not in joined}
    totals = {i: sum(areas[j] for j in members) for i, members in members_of.items()}
    for i, members in members_of.items():
        if totals[i] < FRAGMENT_SHARE * typical:
            left_out[_FRAGMENT] += 1
            continue
        x, y = min(int(stats[j, 0]) for j in members), min(int(stats[j, 1]) for j in members)
        x1 = max(int(stats[j, 0] + stats[j, 2]) for j in members)
        y1 = max(int(stats[j, 1] + stats[j, 3]) for j in members)
        crop = labels[y:y1, x:x1] == i
        pieces = split_touching(crop, typical, typical_solidity=solidity)
        extra = np.isin(labels[y:y1, x:x1], members[1:])
        if extra.any():
            pieces = _give_pieces(pieces, extra)
        for piece in pieces:
            notes = []
            if len(pieces) > 1:
                notes.append(f"it touched {len(pieces) - 1} other lea{'f' if len(pieces) == 2 else 'ves'}: split between them")
            elif (
                leaf_count >= 3  # with fewer, a larger leaf is as likely
                and totals[i] >= OVERSIZED * typical
                and totals[i] >= OVERSIZED_OVER_OTHERS * max((area for j, area in totals.items() if j != i), default=0)
            ):
                notes.append(
                    f"it may be several touching leaves ({totals[i] / typical:.1f} times the typical leaf's area, no neck or notches to split at)"
                )
            parts.append((piece, (x, y), notes))
    # Edges placed once for every leaf (as for one leaf), then each pixel goes back to its own leaf.
    ids = np.zeros((height, width), np.int32)
    for k, (piece, (x, y), _) in enumerate(parts, start=1):
        ids[y : y + piece.shape[0], x : x + piece.shape[1]][piece] = k
    boxes = [(x, y, piece.shape[1], piece.shape[0]) for piece, (x, y), _ in parts]
    if scene.refined:
        _grow_faint_parts(ids, boxes, scene)
    union = ids > 0
    band = edge_band(typical, (height, width))
    refined = refine_edges(scene.flat, union, band=band, spread=EDGE_BAND) if scene.refined else union
    between = unsure_band(scene.flat, union) if scene.refined else np.zeros_like(union)
    leaves = []
    reach = max(2, round(band * max(height, width))) + 2  # refine_edges' reach, and two pixels
    for k, ((piece, _, notes), (x, y, w, h)) in enumerate(zip(parts, boxes, strict=True), start=1):
        x0, y0 = max(0, x - 2 * reach), max(0, y - 2 * reach)
        x1, y1 = min(width, x + w + 2 * reach), min(height, y + h + 2 * reach)
        local_ids = ids[y0:y1, x0:x1]
        owner = _nearest_owner(local_ids)
        if scene.refined:
            found = local_ids == k
            mask = refined[y0:y1, x0:x1] & (owner == k)
            mask |= found & (scene.distance[y0:y1, x0:x1] > np.median(scene.distance[y0:y1, x0:x1][found]))
            mask = _parts_of(mask, found) if mask.any() else found
        else:  # a scan: no edges placed; the leaf's own threshold, as in a scan of it alone
            mask = _own_threshold(scene.distance, ids, k, (x, y, w, h), (x0, y0, x1, y1), owner == k)
        card_holes = scene.distance[y0:y1, x0:x1] if not (scene.neutral or fill_holes) else None
        mask = _fill_holes(mask, None if fill_holes else 0.01 * float(piece.sum()), card_holes, 0.7 * scene.threshold, scene.flat[y0:y1, x0:x1])
        if not petiole:
            mask = cut_petiole(mask)
        if not mask.any():
            continue
        if _is_rectangle(*_largest_outline(mask)):  # its edges placed, a label or a chip strip shows itself
            left_out[_RECTANGLE] += 1
            continue
        bx, by, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
        box = (x0 + bx, y0 + by, bw, bh)
        if box[0] == 0 or box[1] == 0 or box[0] + bw == width or box[1] + bh == height:
            notes = ["the leaf touches the image border: only the visible part is used", *notes]
        spread = float((between[y0:y1, x0:x1] & mask).sum()) / max(float(mask.sum()), 1.0)
        doubt = spread_doubt(spread) if scene.refined else None
        others = scene.objects[y0:y1, x0:x1].astype(bool) | (local_ids > 0)
        measured = soft_area(rgb[y0:y1, x0:x1], mask, others & ~mask)
        notes = [*notes, *([DOUBT + doubt] if doubt else [])]
        leaves.append(LeafObject(mask[by : by + bh, bx : bx + bw].copy(), box, measured, notes))
    if not leaves:
        raise nothing_found(name, rgb.shape, *_NO_LEAVES, "leaf")
    order = reading_order([leaf.box for leaf in leaves])
    return [leaves[i] for i in order], {(one if n == 1 else several): n for (one, several), n in left_out.items() if n}


def _own_threshold(
    distance: np.ndarray, ids: np.ndarray, k: int, box: tuple[int, int, int, int], window: tuple[int, int, int, int], own: np.ndarray
) -> np.ndarray:
    """Leaf ``k``'s mask within ``window`` on a scan (the fast path), thresholded as a scan of that leaf alone would be.

    One threshold for the whole photo sits between the background and all
    the leaves together: a pale leaf among dark ones loses its rim, a dark
    one gains a halo. Here Otsu's threshold is taken again over the leaf's
    own surroundings (its box widened by :data:`OWN_MARGIN` of its size on
    each side, the other leaves and a margin round them left out) and the
    leaf is grown from its pixels above it, by hysteresis as for the photo.

    Parameters
    ----------
    distance : (M, N) ndarray of float32
        The scene's distance from the background.
    ids : (M, N) ndarray of int32
        Each found leaf's pixels, numbered from 1.
    k : int
        The leaf.
    box : tuple of int
        Its ``(x, y, width, height)``.
    window : tuple of int
        ``(x0, y0, x1, y1)``: where its mask is wanted (its box and a margin).
    own : bool ndarray
        Within ``window``, the pixels nearer to it than to any other leaf.
    """
    height, width = ids.shape
    x, y, w, h = box
    x0, y0, x1, y1 = window
    mx, my = round(OWN_MARGIN * w), round(OWN_MARGIN * h)
    around = (slice(max(0, y - my), min(height, y + h + my)), slice(max(0, x - mx), min(width, x + w + mx)))
    others = (ids[around] > 0) & (ids[around] != k)
    grow = max(3, round(0.01 * max(height, width)))
    near_others = cv2.dilate(others.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)).astype(bool)
    local = distance[y0:y1, x0:x1]
    found = ids[y0:y1, x0:x1] == k
    sample = distance[around][~near_others]
    if sample.size < OWN_SAMPLE:  # hemmed in by other leaves: no surroundings of its own to threshold on
        return found & own
    threshold = _object_threshold(sample)
    strong = cv2.morphologyEx((local > threshold).astype(np.uint8), cv2.MORPH_OPEN, speck_disc(ids.shape)).astype(bool)
    grown = _hysteresis(strong & found, (local > _weak_level(threshold)) & own).astype(bool)
    return grown if grown.any() else found & own


def _grow_faint_parts(ids: np.ndarray, boxes: list[tuple[int, int, int, int]], scene: _Scene) -> None:
    """Grow each leaf of ``ids`` (in place, and its box in ``boxes``) into its own fainter parts.

    The photo's threshold sits between the background and all its leaves
    together: on a bed of green leaves with a few brown ones on a brown
    table it lies above half of each brown leaf, which comes out cut in
    pieces. Here each leaf grows, by hysteresis, into the pixels above the
    level its own surroundings give (as a photo of it alone would: Otsu's
    threshold over its box widened by :data:`OWN_MARGIN` of its size, only
    the pixels nearer to it than to any other leaf and not what was left out)
    and at least :data:`FAINT_GROWTH` of its own median distance from the
    background (not into its shadow), where that is below the photo's level.
    The window widens while the leaf grows to its edge.
    """
    weak = _weak_level(scene.threshold)
    height, width = ids.shape
    left_out = None  # labels, chips, specks: taken once a leaf needs them (most photos' leaves do not)
    for k, (x, y, w, h) in enumerate(boxes, start=1):
        inside = scene.distance[y : y + h, x : x + w][ids[y : y + h, x : x + w] == k]
        floor = FAINT_GROWTH * float(np.median(inside)) if inside.size else weak
        if floor >= weak:  # it stands out well enough for the photo's level: most leaves
            continue
        if left_out is None:  # no leaf has grown yet: ids are as found
            left_out = scene.objects.astype(bool) & (ids == 0)
        pad = round(OWN_MARGIN * max(w, h)) + 2
        for attempt in range(3):
            y0, y1, x0, x1 = max(0, y - pad), min(height, y + h + pad), max(0, x - pad), min(width, x + w + pad)
            local = ids[y0:y1, x0:x1]
            free = (_nearest_owner(local) == k) & ~left_out[y0:y1, x0:x1]
            distance = scene.distance[y0:y1, x0:x1]
            level = max(_weak_level(_object_threshold(distance[free])), floor)
            if level >= weak:
                break
            grown = _hysteresis(local == k, free & (distance > level)).astype(bool)
            at_edge = (y0 > 0 and grown[0].any()) or (y1 < height and grown[-1].any())
            at_edge |= (x0 > 0 and grown[:, 0].any()) or (x1 < width and grown[:, -1].any())
            if not at_edge or attempt == 2:
                local[grown] = k
                bx, by, bw, bh = cv2.boundingRect(grown.astype(np.uint8))
                boxes[k - 1] = (x0 + bx, y0 + by, bw, bh)
                break
            pad *= 2


def edge_band(typical: float, shape: tuple[int, int]) -> float:
    """How far :func:`~.leaves.refine_edges` may move the outlines of leaves of ``typical`` pixels (a share of
    the frame's longer side): as far as in a photo of one such leaf alone, where it is
    :data:`SINGLE_LEAF_SHARE` of a 4:3 frame, and never further than :data:`~.leaves.EDGE_BAND` of this frame.

    The frame's own band is several times wider beside a leaf that fills a twentieth of it: the outline
    could then move past the leaf's edge into its shadow, and the colours "just inside" came from deep in
    the blade. On the 100 photos of ``bench.leaf_beds`` this put each leaf's outline nearer its true one
    (median IoU 0.9862 -> 0.9872; 10th percentile 0.945 -> 0.952). The local means are still taken at the
    frame's scale: at the leaf's, they followed the blade's own texture and did worse.
    """
    alone = math.sqrt(typical / (0.75 * SINGLE_LEAF_SHARE))  # the longer side of that photo
    return EDGE_BAND * min(1.0, alone / max(shape))


def _seams(objects: np.ndarray) -> tuple[np.ndarray, int]:
    """Long straight thin lines across the frame (the joint between two boards of a table, a fold of the card):
    their pixels (uint8 0/1) and how many lines.

    Thin is what an opening with the speck filter's disc takes away (a
    petiole, a rachis, such a line); a line is long when it runs straight
    for at least :data:`SEAM_LENGTH` of the frame's longer side and stands
    out along :data:`SEAM_COVER` of it (leaves lying across it allowed). Leaves are never such lines, and without
    this a joint joins every leaf it passes under into one object.
    """
    height, width = objects.shape
    disc = speck_disc(objects.shape)
    thin = objects & (1 - cv2.morphologyEx(objects, cv2.MORPH_OPEN, disc))
    side = max(height, width)
    length = round(SEAM_LENGTH * side)
    found = cv2.HoughLinesP(thin * 255, 1, np.pi / 360, length // 2, minLineLength=length, maxLineGap=round(0.1 * side))
    seams = np.zeros_like(objects)
    for x0, y0, x1, y1 in found.reshape(-1, 4) if found is not None else ():
        steps = max(abs(int(x1) - int(x0)), abs(int(y1) - int(y0))) + 1
        along = objects[np.linspace(y0, y1, steps).round().astype(int), np.linspace(x0, x1, steps).round().astype(int)]
        if along.mean() >= SEAM_COVER:  # not a row of thin bits of leaves with background between
            cv2.line(seams, (int(x0), int(y0)), (int(x1), int(y1)), 1, len(disc))
    lines, labels = cv2.connectedComponents(seams)
    seams &= thin
    return seams, int((np.bincount(labels[seams > 0], minlength=lines)[1:] > 0).sum())


def _faint_leaves(scene: _Scene, leaves: np.ndarray, typical: float, gap: int) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Leaves that stand out from the background by less than the threshold, well apart from every object found.

    A dark olive leaf on brown wood is as far from the wood as a shadow is,
    so the threshold that keeps shadows out leaves it out too. A shadow lies
    beside what casts it; such a leaf lies alone. So a region over
    :data:`FAINT_SHARE` of the threshold counts (the speck filter's opening
    first) when it is leaf-sized (:data:`FAINT_AREA` times the typical leaf),
    touches neither the border nor the surroundings of the ``leaves`` found
    (``gap`` pixels), and is not a near-rectangle. Returns each one's mask
    crop and corner.
    """
    height, width = leaves.shape
    faint = cv2.morphologyEx((scene.distance > FAINT_SHARE * scene.threshold).astype(np.uint8), cv2.MORPH_OPEN, speck_disc(leaves.shape))
    near = cv2.dilate(leaves.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1,) * 2)).astype(bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(faint, connectivity=8)
    found = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if not FAINT_AREA[0] * typical <= area <= FAINT_AREA[1] * typical or x == 0 or y == 0 or x + w == width or y + h == height:
            continue
        part = labels[y : y + h, x : x + w] == i
        if near[y : y + h, x : x + w][part].any() or _is_rectangle(area, _largest_contour(part)):
            continue
        found.append((part, (x, y)))
    return found


def _join_pieces(labels: np.ndarray, stats: np.ndarray, kept: list[int], areas: dict[int, int], typical: float, gap: int) -> dict[int, int]:
    """Which small objects (under :data:`JOIN_SHARE` of the typical leaf) join which larger one within ``gap`` pixels: {small: host}.

    A piece near a piece that joined a host joins that host too (the leaflets of
    a compound leaf whose rachis broke in two places hang on one another), and
    small pieces near no host but near one another are one object (its largest
    piece the host; a fragment when they make under :data:`FRAGMENT_SHARE` of
    the typical leaf together).
    """
    hosts = {i for i in kept if areas[i] >= JOIN_SHARE * typical}
    if gap < 1:
        return {}
    height, width = labels.shape
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1,) * 2)
    objects = set(kept)
    neighbours = {}  # a small piece: the objects within the gap, a pixel each where they border it
    for i in kept:
        if i in hosts:
            continue
        x, y, w, h = (int(v) for v in stats[i, :4])
        x0, y0, x1, y1 = max(0, x - gap), max(0, y - gap), min(width, x + w + gap), min(height, y + h + gap)
        local = labels[y0:y1, x0:x1]
        near = cv2.dilate((local == i).astype(np.uint8), disc).astype(bool)
        neighbours[i] = [int(v) for v in local[near] if v != i and v in objects]
    joined: dict[int, int] = {}
    while True:
        found = {}
        for i, around in neighbours.items():
            if i in joined:
                continue
            owners = [v if v in hosts else joined[v] for v in around if v in hosts or v in joined]
            if owners:
                found[i] = max(sorted(set(owners)), key=owners.count)  # the host it borders most
        if not found:
            break
        joined.update(found)
    # Small pieces near no host but near one another are one object (a compound leaf in pieces; a fragment if small):
    # the largest is the host.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    free = sorted(i for i in neighbours if i not in joined)
    at = {i: k for k, i in enumerate(free)}
    pairs = np.array([(at[i], at[v]) for i in free for v in neighbours[i] if v in at], np.int64).reshape(-1, 2)
    near = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(free), len(free)))
    _, group = connected_components(near, directed=False)
    members: dict[int, list[int]] = {}
    for i, g in zip(free, group.tolist()):
        members.setdefault(g, []).append(i)
    for together in members.values():
        if len(together) > 1:
            host = max(together, key=lambda i: (areas[i], -i))
            joined.update({i: host for i in together if i != host})
    return joined


def _give_pieces(parts: list[np.ndarray], extra: np.ndarray) -> list[np.ndarray]:
    """Each connected piece of ``extra`` added to the part it lies nearest to."""
    if len(parts) == 1:
        return [parts[0] | extra]
    ids = np.zeros(parts[0].shape, np.int32)
    for k, part in enumerate(parts):
        ids[part] = k + 1
    owner = _nearest_owner(ids)
    return [part | (extra & (owner == k + 1)) for k, part in enumerate(parts)]


def _largest_outline(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """The area and outline of the largest part of ``mask`` (what :func:`~.leaves._is_rectangle` takes)."""
    part = _largest_part(mask)
    return int(part.sum()), _largest_contour(part)


def _nearest_owner(ids: np.ndarray) -> np.ndarray:
    """For every pixel, the id of the nearest labelled pixel (0 where there is none)."""
    if not (ids == 0).any() or not ids.any():
        return ids
    from scipy import ndimage

    _, (rows, cols) = ndimage.distance_transform_edt(ids == 0, return_indices=True)
    return ids[rows, cols]


def analyse_leaves(
    source: ImageSource,
    *,
    max_pixels: int,
    work_side: int = MANY_WORK_SIDE,
    fill_holes: bool = False,
    petiole: bool = True,
    warn: bool = True,
) -> LeavesAnalysis:
    """Load ``source`` and find every leaf at ``work_side`` pixels (long side) at most.

    Warns (:class:`LeafprepWarning`) once for what was left out, and for each
    leaf cut by the border, possibly several touching leaves, or doubtful.
    """
    loaded = _load(source, max_pixels=max_pixels, min_side=max(work_side // 2, DETAIL_SIDE))
    work = working_image(loaded.rgb, work_side)
    leaves, left_out = leaf_masks(work, fill_holes=fill_holes, petiole=petiole, name=loaded.name)
    if warn:
        for note in leaf_notes(leaves, left_out):
            warnings.warn(LeafprepWarning(loaded.name, note), stacklevel=3)
    scale = (loaded.full_shape[0] / work.shape[0], loaded.full_shape[1] / work.shape[1])
    return LeavesAnalysis(work, leaves, left_out, scale, loaded.px_per_mm, loaded.rgb, loaded.full_shape, loaded.name)


def leaf_notes(leaves: list[LeafObject], left_out: dict[str, int]) -> list[str]:
    """The warnings of a multi-leaf photo: what was left out (one line), then each leaf's, numbered."""
    notes = []
    if left_out:
        notes.append(LEFT_OUT + ", ".join(f"{count:,} {reason}" for reason, count in left_out.items()))
    for index, leaf in enumerate(leaves):
        for note in leaf.notes:
            prefix = DOUBT if note.startswith(DOUBT) else ""
            notes.append(f"{prefix}leaf {index:02d}: {note.removeprefix(DOUBT)}")
    return notes
