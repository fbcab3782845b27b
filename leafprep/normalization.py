"""MNIST-style normalisation: from a photo to a centred ``size`` x ``size`` image.

Digits follow MNIST's own recipe (LeCun et al. 1998), applied to the ink that
:mod:`leafprep.segmentation` finds:

1. crop the digit and turn its ink contrast into pen coverage in [0, 1];
2. if the pen was much thinner or thicker than MNIST's pens, redraw the
   skeleton with a pen of the nearest MNIST width (10th to 90th percentile of
   MNIST's stroke widths, relative to the digit's size), so thin ballpoints and
   fat markers come out as thick as MNIST strokes; a crop under 100 pixels
   (MNIST's own 28x28) is already at its final scale and keeps its pen;
3. optionally deskew (second moments);
4. fit into a ``box`` x ``box`` square (``box = size * 20 / 28``) keeping the
   aspect ratio, shrinking with area averaging (anti-aliasing);
5. translate so that the centre of mass lies at the centre of the
   ``size`` x ``size`` image.

Leaves follow the same recipe on the leaf's mask, with an optional rotation
that stands the main axis upright, petiole down, and three renderings: the
silhouette, the leaf's grey texture bright on black, or its colours on black.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import LeafprepWarning, ParameterError
from .geometry import (
    MNIST_MARGIN,
    bounding_box,
    box_size_for,
    center_by_mass,
    crop_to_content,
    fit_to_box,
    main_axis_angle,
    reading_order,
    render_strokes,
    rotate,
    stroke_width,
)
from .geometry import (
    deskew as deskew_image,
)
from .loading import DEFAULT_MAX_PIXELS, ImageSource, _load, describe_source
from .segmentation import (
    DETAIL_SIDE,
    KINDS,
    LEAF_WORK_SIDE,
    WORK_SIDE,
    DigitRegion,
    analyse_digits,
    analyse_leaf,
    analyse_leaves,
    cut_petiole,
    detect_kind,
    sheet_digits,
    validate_kind,
    working_image,
)

__all__ = [
    "Cutout",
    "Digit",
    "Steps",
    "MODES",
    "SMALL_ENLARGEMENT",
    "STROKE_RANGE",
    "detect_kind",
    "normalize",
    "normalize_all",
    "normalize_steps",
    "small_object_note",
]

#: Stroke widths MNIST digits have, as a fraction of the digit's longer side
#: (10th and 90th percentile over MNIST test digits, measured at half intensity).
STROKE_RANGE = (0.097, 0.185)

#: What a leaf becomes: its mask, its grey texture bright on black, or its colours on black.
MODES = ("silhouette", "gray", "rgb")


@dataclass(frozen=True)
class Cutout:
    """One normalised object of a photo that holds several: a digit of a sheet, a leaf of a scanner bed.

    Attributes
    ----------
    image : (size, size) or (size, size, 3) ndarray of float32
        The normalised object, in [0, 1], bright on black.
    box : tuple of int
        ``(x, y, width, height)`` of the object in the upright photo, in pixels.
    notes : tuple of str
        What leafprep warned of this object (cut by the border, split from a
        touching leaf, a doubtful mask).
    """

    image: np.ndarray
    box: tuple[int, int, int, int]
    notes: tuple[str, ...] = ()


#: The name :func:`normalize_all` gave its results when it read digits only.
Digit = Cutout


@dataclass(frozen=True)
class Steps:
    """Every stage of a normalisation, for pictures and debugging.

    Attributes
    ----------
    kind : {"digit", "leaf"}
        What was normalised (what ``kind="auto"`` chose).
    photo : (M, N, 3) ndarray of uint8
        The upright photo at working resolution.
    evidence : (M, N) ndarray of float32
        What the mask was cut from, in [0, 1]: for digits the photo with the
        paper and its light removed (``1 - ink contrast``); for leaves the
        distance from the background colours (scaled).
    mask : (M, N) ndarray of bool
        Everything found (all ink, all objects).
    chosen : (M, N) ndarray of bool
        The digit's ink, or the leaf.
    crop : (P, Q) or (P, Q, 3) ndarray of float32
        The object before it is fitted into the box.
    result : (size, size) or (size, size, 3) ndarray of float32
        The normalised image.
    notes : list of str
        What the user should know (polarity, leaf cut by the border...).
    scale : tuple of float
        ``(y, x)`` factors from ``photo``'s pixels to the full photo's.
    """

    kind: str
    photo: np.ndarray
    evidence: np.ndarray
    mask: np.ndarray
    chosen: np.ndarray
    crop: np.ndarray
    result: np.ndarray
    notes: list[str] = field(default_factory=list)
    scale: tuple[float, float] = (1.0, 1.0)


#: An object enlarged more than this many times to fill its box comes out blurred: normalising it warns.
SMALL_ENLARGEMENT = 2.0


def small_object_note(box: tuple[int, int, int, int], size: int, margin: float, what: str) -> str | None:
    """The warning for an object of full-size ``box`` that would be enlarged more than :data:`SMALL_ENLARGEMENT`
    times to fill the box of an output of ``size`` pixels (None when it is large enough).

    Examples
    --------
    >>> small_object_note((0, 0, 3, 6), 28, 4 / 28, "digit")[:76]
    'the digit is only 3x6 pixels in the photo: enlarged 3.3 times to fill its 20'
    >>> small_object_note((0, 0, 12, 20), 28, 4 / 28, "digit") is None
    True
    """
    _, _, width, height = box
    side = box_size_for(size, margin)
    longest = max(width, height, 1)
    if longest * SMALL_ENLARGEMENT >= side:
        return None
    return (
        f"the {what} is only {width}x{height} pixels in the photo: enlarged {side / longest:.1f} times to fill its {side}-pixel box, "
        "it comes out blurred (photograph it closer or at a higher resolution)"
    )


def _said_small(name: str, box: tuple[int, int, int, int], size: int, margin: float, what: str, prefix: str = "") -> list[str]:
    """:func:`small_object_note` for an object of full-size ``box``, warned (``prefix`` before it: which object of
    several) and returned as a list of notes (empty when the object is large enough)."""
    note = small_object_note(box, size, margin, what)
    if note is None:
        return []
    warnings.warn(LeafprepWarning(name, prefix + note), stacklevel=4)
    return [note]


def _min_side(size: int) -> int:
    return max(WORK_SIDE // 2, 24 * size)


def decode_min_side(kind: str, size: int, *, descriptors: bool = True) -> int:
    """The shortest side :func:`normalize` decodes a large JPEG down to (DCT scaling) for ``kind`` and ``size``.

    ``normalize(load(data, min_side=decode_min_side(kind, size)), kind, size)``
    equals ``normalize(data, kind, size)``: callers that need the decoded
    picture too (the dataset build hashes it) decode once.

    A leaf is decoded with its short side at least
    :data:`~leafprep.segmentation.DETAIL_SIDE`, where its colour and texture
    are measured. With ``descriptors=False`` (``leafprep build
    --no-descriptors``) only the working image matters: the short side need
    only reach the side the leaf is found at, which lets a scan decode at
    half size.
    """
    if kind == "none":  # resized as it is (the build's kind="none"): twice the output is room enough for an area filter
        return 2 * size
    if kind != "leaf":
        return _min_side(size)
    detail = max(_leaf_work_side(size) // 2, DETAIL_SIDE)
    return detail if descriptors else min(detail, _leaf_work_side(size))


def _coverage(ink: np.ndarray, region: DigitRegion, threshold: float) -> np.ndarray:
    """Pen coverage in [0, 1] of one digit, cropped with room for thicker strokes."""
    x, y, w, h = region.box
    pad = max(3, int(0.25 * max(w, h)))
    height, width = ink.shape
    y0, y1, x0, x1 = max(0, y - pad), min(height, y + h + pad), max(0, x - pad), min(width, x + w + pad)
    ink_crop = ink[y0:y1, x0:x1]
    own = cv2.dilate(region.mask[y0:y1, x0:x1].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    strokes = ink_crop[region.mask[y0:y1, x0:x1]]
    core = max(float(np.percentile(strokes, 90)), threshold) if strokes.size else threshold
    coverage = np.clip((ink_crop - 0.25 * core) / (0.5 * core), 0.0, 1.0) * own
    # The mask has the last word inside the digit (strokes mended across ruled lines).
    coverage = np.maximum(coverage, region.mask[y0:y1, x0:x1])
    # Room on every side, so a thicker redrawn pen still fits.
    return np.pad(coverage.astype(np.float32), pad)


def _even_strokes(coverage: np.ndarray) -> np.ndarray:
    """Redraw strokes much thinner or thicker than MNIST's with the nearest MNIST-like pen."""
    binary = coverage > 0.5
    box = bounding_box(binary)
    if box is None:
        return coverage
    extent = float(max(box[2], box[3]))
    width = stroke_width(binary)
    relative = width / extent
    low, high = STROKE_RANGE
    if low <= relative <= high:
        return coverage
    target = min(max(relative, low), high)
    skeleton_extent = max(1.0, extent - width)
    pen = target * skeleton_extent / (1.0 - target)
    return render_strokes(binary, pen)


def _finish(coverage: np.ndarray, size: int, deskew: bool, margin: float) -> np.ndarray:
    if deskew:
        coverage = deskew_image(coverage)
    content = crop_to_content(coverage, 0.02)
    if content.size == 0:
        return np.zeros((size, size), dtype=np.float32)
    fitted = np.clip(fit_to_box(content, box_size_for(size, margin)), 0.0, 1.0)
    result = center_by_mass(fitted, size)
    peak = float(result.max())
    if peak > 0:
        result /= peak
    return result.astype(np.float32)


# Pen coverage is kept at most this many times the output box: enough to
# anti-alias the final shrink, and it bounds the cost of the skeleton.
OVERSAMPLING = 6


def _digit_image(
    ink: np.ndarray, region: DigitRegion, threshold: float, size: int, deskew: bool, margin: float = MNIST_MARGIN, even: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    coverage = _coverage(ink, region, threshold)
    scale = OVERSAMPLING * box_size_for(size, margin) / max(region.box[2], region.box[3])
    if scale < 1.0:
        shape = (max(1, round(coverage.shape[1] * scale)), max(1, round(coverage.shape[0] * scale)))
        coverage = cv2.resize(coverage, shape, interpolation=cv2.INTER_AREA)
    if even:
        coverage = _even_strokes(coverage)
    return _finish(coverage, size, deskew, margin), coverage


def _leaf_work_side(size: int) -> int:
    """Long side a leaf is found and cut out at: three times the output (at least 128), within the working size."""
    return min(LEAF_WORK_SIDE, max(128, 3 * size))


def _leaf_layers(photo: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """The leaf as an image in [0, 1], 0 outside the mask: (M, N) or (M, N, 3)."""
    coverage = mask.astype(np.float32)
    if mode == "silhouette":
        return coverage
    if mode == "rgb":
        return photo.astype(np.float32) / 255.0 * coverage[:, :, None]
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    inside = gray[mask]
    low, high = 0.0, 255.0
    if inside.size:
        ranks = [int(0.01 * (inside.size - 1)), int(0.99 * (inside.size - 1))]
        low, high = (float(v) for v in np.partition(inside, ranks)[ranks])
    texture = np.clip((gray - low) / max(float(high - low), 1.0), 0.0, 1.0)
    return (0.35 + 0.65 * texture) * coverage


def _upright(layers: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate so the main axis is vertical, then turn the petiole down.

    The petiole is what :func:`~leafprep.segmentation.cut_petiole` cuts off
    (its largest piece); a leaf without one is turned so that its thinner end
    is down.
    """
    turn = 90.0 - main_axis_angle(mask)
    layers, weight = rotate(layers, turn), rotate(mask.astype(np.float32), turn)
    solid = weight > 0.5
    rows = np.flatnonzero(solid.any(axis=1))
    if rows.size:
        centre = float(np.average(np.arange(weight.shape[0]), weights=weight.sum(axis=1)))
        stalk = solid & ~cut_petiole(solid)
        count, _, stats, centroids = cv2.connectedComponentsWithStats(stalk.astype(np.uint8), connectivity=8)
        if count > 1 and stats[1:, cv2.CC_STAT_AREA].max() >= 0.002 * solid.sum():
            flip = centroids[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), 1] < centre
        else:
            top, bottom = rows[0], rows[-1] + 1
            end = max(1, (bottom - top) // 6)
            flip = weight[top : top + end].sum() < weight[bottom - end : bottom].sum()
        if flip:
            layers, weight = layers[::-1, ::-1], weight[::-1, ::-1]
    return np.ascontiguousarray(layers), np.ascontiguousarray(weight)


def _leaf_image(photo: np.ndarray, mask: np.ndarray, size: int, mode: str, margin: float, orient: bool) -> tuple[np.ndarray, np.ndarray]:
    x, y, w, h = bounding_box(mask) or (0, 0, mask.shape[1], mask.shape[0])
    photo, mask = photo[y : y + h, x : x + w], mask[y : y + h, x : x + w]
    layers = _leaf_layers(photo, mask, mode)
    weight = mask.astype(np.float32)
    if orient:
        layers, weight = _upright(layers, mask)
        x, y, w, h = bounding_box(weight, 0.02) or (0, 0, weight.shape[1], weight.shape[0])
        layers, weight = layers[y : y + h, x : x + w], weight[y : y + h, x : x + w]
    box = box_size_for(size, margin)
    fitted = np.clip(fit_to_box(layers, box), 0.0, 1.0)
    mass = fit_to_box(weight, box)
    return center_by_mass(fitted, size, weights=mass).astype(np.float32), layers


def _check(kind: str, size: int, mode: str | None, margin: float | None) -> tuple[str, float]:
    validate_kind(kind, (*KINDS, "auto"))
    box_size_for(size, MNIST_MARGIN if margin is None else margin)
    if mode is not None and mode not in MODES:
        raise ParameterError("mode", f"mode must be one of {set(MODES)}, got {mode!r}")
    if kind == "digit" and mode not in (None, "gray"):
        raise ParameterError("mode", f"digits are normalised in gray only, got mode={mode!r}")
    return mode or "gray", MNIST_MARGIN if margin is None else margin


def normalize_steps(
    source: ImageSource,
    kind: str = "digit",
    size: int = 28,
    *,
    mode: str | None = None,
    margin: float | None = None,
    deskew: bool = False,
    orient: bool = False,
    fill_holes: bool = False,
    petiole: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Steps:
    """Normalise the object of a photo and keep every intermediate stage.

    Same parameters as :func:`normalize`.

    Returns
    -------
    steps : Steps
        ``steps.result`` equals ``normalize(source, ...)`` with the same
        arguments; ``steps.kind`` is the kind used.
    """
    mode, margin = _check(kind, size, mode, margin)
    name = describe_source(source)
    notes: list[str] = []
    if kind == "auto":
        loaded = _load(source, max_pixels=max_pixels, min_side=_min_side(size))
        kind = detect_kind(working_image(loaded.rgb, 512))
        notes.append(f"kind=auto chose {kind}")
        source = loaded.rgb
    if kind == "leaf":
        leaf = analyse_leaf(source, max_pixels=max_pixels, work_side=_leaf_work_side(size), fill_holes=fill_holes, petiole=petiole)
        result, crop = _leaf_image(leaf.photo, leaf.mask, size, mode, margin, orient)
        evidence = np.clip(leaf.distance / 100.0, 0.0, 1.0)
        notes += leaf.notes
        notes += _said_small(name, _full_box(cv2.boundingRect(leaf.mask.astype(np.uint8)), leaf.scale), size, margin, "leaf")
        return Steps("leaf", leaf.photo, evidence, leaf.objects, leaf.mask, crop, result, notes, leaf.scale)
    found = analyse_digits(source, max_pixels=max_pixels, min_side=_min_side(size))
    best = found.regions[0]
    result, crop = _digit_image(found.ink, best, found.threshold, size, deskew, margin, even=not found.crop)
    notes.append(f"ink {'darker' if found.polarity == 'dark' else 'lighter'} than the paper")
    notes += _said_small(name, _full_box(best.box, found.scale), size, margin, "digit")
    return Steps("digit", found.photo, 1.0 - found.ink, found.mask, best.mask, crop, result, notes, found.scale)


def normalize(
    source: ImageSource,
    kind: str = "digit",
    size: int = 28,
    *,
    mode: str | None = None,
    margin: float | None = None,
    deskew: bool = False,
    orient: bool = False,
    fill_holes: bool = False,
    petiole: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Turn a photo of a handwritten digit or a leaf into an MNIST-style image.

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`leafprep.load_image` accepts.
    kind : {"digit", "leaf", "auto"}, optional
        What the photo shows; ``"auto"`` decides with :func:`detect_kind`.
    size : int, optional
        Side of the output in pixels (digits and leaves alike, from 4 up; 28
        to 224 for leaves). The object is fitted into a box of
        ``round(size * (1 - 2 * margin))`` pixels: 20 for 28, as in MNIST.
    mode : {"gray", "silhouette", "rgb"}, optional
        Leaves only: the grey texture bright on black (default), the mask, or
        the colours on black. Digits are always gray.
    margin : float, optional
        Empty border on each side as a fraction of ``size``; MNIST's 4/28 by
        default.
    deskew : bool, optional
        Digits: shear the digit upright (second moments) before fitting it.
    orient : bool, optional
        Leaves: rotate the main axis (image moments) vertical, petiole down.
    fill_holes : bool, optional
        Leaves: fill every hole in the blade (small ones always are).
    petiole : bool, optional
        Leaves: keep the petiole; ``False`` cuts it off.
    max_pixels : int, optional
        Refuse larger images before decoding them.

    Returns
    -------
    image : (size, size) or (size, size, 3) ndarray of float32
        Values in [0, 1], the object bright on black, centre of mass at the
        centre; three channels (RGB) for ``mode="rgb"``.

    Raises
    ------
    ImageLoadError
        The source cannot be read as an image.
    NothingFoundError
        No digit stands out from the paper, or no leaf from the background.
    ParameterError
        ``kind``, ``size``, ``mode`` or ``margin`` is not valid.

    Warns
    -----
    LeafprepWarning
        The leaf touches the border (only the visible part is used), there
        are several leaves (the largest is used), or the leaf's mask is
        doubtful (the message starts with ``"doubtful mask: "``: check it).
        Digits and leaves: the object is so small in the photo that it is
        enlarged more than :data:`SMALL_ENLARGEMENT` times to fill its box
        (it comes out blurred).

    Examples
    --------
    >>> import numpy as np
    >>> page = np.full((100, 80), 230, dtype=np.uint8)
    >>> page[30:70, 38:43] = 20          # a "1" in dark ink
    >>> digit = normalize(page)
    >>> digit.shape, digit.dtype, float(digit.max())
    ((28, 28), dtype('float32'), 1.0)
    """
    return normalize_steps(
        source,
        kind,
        size,
        mode=mode,
        margin=margin,
        deskew=deskew,
        orient=orient,
        fill_holes=fill_holes,
        petiole=petiole,
        max_pixels=max_pixels,
    ).result


def _reading_order(regions: list[DigitRegion]) -> list[DigitRegion]:
    """Rows top to bottom (a region joins a row it overlaps vertically), then left to right."""
    return [regions[i] for i in reading_order([region.box for region in regions])]


def normalize_all(
    source: ImageSource,
    kind: str = "digit",
    size: int = 28,
    *,
    mode: str | None = None,
    margin: float | None = None,
    deskew: bool = False,
    orient: bool = False,
    fill_holes: bool = False,
    petiole: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Cutout]:
    """Find and normalise every object of a photo, in reading order: the digits of a sheet, the leaves of a scanner bed.

    Parameters
    ----------
    source, size, mode, margin, deskew, orient, fill_holes, petiole, max_pixels
        As for :func:`normalize`.
    kind : {"digit", "leaf"}, optional
        Leaves are found as :func:`leafprep.segment_all` finds them (what is
        not a leaf is left out, touching leaves are split).

    Returns
    -------
    objects : list of Cutout
        Rows top to bottom, each left to right; each with its normalised image,
        its box in the upright photo and its notes.

    Raises
    ------
    ImageLoadError, NothingFoundError, ParameterError
        As for :func:`normalize`.

    Warns
    -----
    LeafprepWarning
        Leaves: what was left out, and each leaf's notes, numbered. Digits
        and leaves: each object enlarged more than :data:`SMALL_ENLARGEMENT`
        times to fill its box, numbered (the note is in its ``notes`` too).
    """
    validate_kind(kind, ("digit", "leaf"))
    mode, margin = _check(kind, size, mode, margin)
    if kind == "leaf":
        found = analyse_leaves(source, max_pixels=max_pixels, fill_holes=fill_holes, petiole=petiole)
        leaves = []
        for index, leaf in enumerate(found.leaves):
            x, y, w, h = leaf.box
            image, _ = _leaf_image(found.photo[y : y + h, x : x + w], leaf.mask, size, mode, margin, orient)
            box = _full_box(leaf.box, found.scale)
            leaves.append(Cutout(image, box, (*leaf.notes, *_said_small(found.name, box, size, margin, "leaf", f"leaf {index:02d}: "))))
        return leaves
    sheet = analyse_digits(source, max_pixels=max_pixels, min_side=_min_side(size))
    digits = []
    name = describe_source(source)
    for index, region in enumerate(_reading_order(sheet_digits(sheet.regions))):
        image, _ = _digit_image(sheet.ink, region, sheet.threshold, size, deskew, margin, even=not sheet.crop)
        box = _full_box(region.box, sheet.scale)
        digits.append(Cutout(image, box, tuple(_said_small(name, box, size, margin, "digit", f"digit {index:02d}: "))))
    return digits


def _full_box(box: tuple[int, int, int, int], scale: tuple[float, float]) -> tuple[int, int, int, int]:
    """A working-size box in full-size pixels."""
    x, y, w, h = box
    scale_y, scale_x = scale
    return int(round(x * scale_x)), int(round(y * scale_y)), int(round(w * scale_x)), int(round(h * scale_y))
