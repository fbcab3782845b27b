"""Pictures for people: the stages of a normalisation, and terminal previews."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DOUBT
from .normalization import Steps

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["class_sheet", "contact_sheet", "thumbnail", "outline", "outline_all", "save_steps", "steps_figure", "text_preview"]

# Darkest to brightest; two characters a pixel keep the picture square in a terminal.
_RAMP = " ░▒▓█"

#: Colour (RGB) of a doubtful mask's outline and banner.
DOUBT_COLOUR = (255, 150, 0)


def text_preview(image: np.ndarray) -> str:
    """Draw a normalised image with block characters, two per pixel.

    Parameters
    ----------
    image : (M, N) ndarray of float
        Values in [0, 1].

    Returns
    -------
    picture : str
        ``M`` lines of ``2 * N`` characters.

    Examples
    --------
    >>> import numpy as np
    >>> print(text_preview(np.array([[0.0, 1.0]])))
      ██
    """
    levels = np.clip(np.rint(np.asarray(image, dtype=np.float64) * (len(_RAMP) - 1)), 0, len(_RAMP) - 1).astype(int)
    return "\n".join("".join(_RAMP[v] * 2 for v in row) for row in levels)


def steps_figure(steps: Steps, title: str = "") -> Figure:
    """A matplotlib figure with one panel per stage: photo, flattened light, mask, crop, result.

    Parameters
    ----------
    steps : Steps
        From :func:`leafprep.normalize_steps`.
    title : str, optional
        Shown above the panels (the file name, say).

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    mask_view = np.zeros((*steps.mask.shape, 3), dtype=np.float32)
    mask_view[steps.mask] = (0.45, 0.45, 0.45)
    mask_view[steps.chosen] = (1.0, 1.0, 1.0)
    leaf = steps.kind == "leaf"
    panels = [
        ("photo", steps.photo, None),
        ("distance from background" if leaf else "light corrected", steps.evidence, "magma" if leaf else "gray"),
        (f"mask (chosen {steps.kind}: white)", mask_view, None),
        ("crop", steps.crop, "gray"),
        (f"result {steps.result.shape[0]}x{steps.result.shape[1]}", steps.result, "gray"),
    ]
    figure = Figure(figsize=(3.0 * len(panels), 3.4), layout="constrained")
    axes = figure.subplots(1, len(panels))
    for ax, (label, image, cmap) in zip(axes, panels):
        if cmap and image.ndim == 2:
            ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
    doubts = [note for note in steps.notes if note.startswith(DOUBT)]
    warning_colour = tuple(c / 255 for c in DOUBT_COLOUR)
    if doubts:  # shown even without a title: the user should check this mask
        axes[2].set_title("mask: DOUBTFUL", fontsize=10, color=warning_colour)
        for side in axes[2].spines.values():
            side.set_visible(True)
    if title or doubts:
        figure.suptitle("; ".join([t for t in (title, *steps.notes) if t]), fontsize=10, color=warning_colour if doubts else "black")
    return figure


def save_steps(steps: Steps, path: str | os.PathLike[str], title: str = "") -> None:
    """Write :func:`steps_figure` to ``path`` (PNG, SVG or PDF by extension)."""
    steps_figure(steps, title).savefig(path, dpi=100)


def thumbnail(image: np.ndarray, tile: int) -> np.ndarray:
    """Fit ``image`` (grey in [0, 1] or RGB uint8) into a ``tile`` x ``tile`` RGB square."""
    import cv2

    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    height, width = image.shape[:2]
    scale = tile / max(height, width)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    resized = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=interpolation)
    square = np.full((tile, tile, 3), 255, np.uint8)
    top, left = (tile - resized.shape[0]) // 2, (tile - resized.shape[1]) // 2
    square[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return square


def contact_sheet(entries: list[tuple[str, np.ndarray | None, np.ndarray]], *, tile: int = 112, columns: int = 5) -> np.ndarray:
    """One picture of many results, to check a batch at a glance.

    Parameters
    ----------
    entries : list of (str, ndarray or None, ndarray)
        A caption, the photo (RGB uint8, or None) and the normalised result
        (grey in [0, 1]) of each input.
    tile : int, optional
        Side of each thumbnail in pixels.
    columns : int, optional
        Entries per row.

    Returns
    -------
    sheet : (H, W, 3) ndarray of uint8
        Each entry is its photo beside its result (the result alone when no
        entry has a photo), with the caption below (none when all are empty).
    """
    import cv2

    with_photos = any(photo is not None for _, photo, _ in entries)
    caption = 18 if any(text for text, _, _ in entries) else 0
    gap = 8 if with_photos or caption else 2
    cell_w, cell_h = (2 if with_photos else 1) * tile + gap, tile + caption + gap
    rows = max(1, -(-len(entries) // columns))
    sheet = np.full((rows * cell_h, min(columns, max(1, len(entries))) * cell_w, 3), 255, np.uint8)
    for index, (text, photo, result) in enumerate(entries):
        top, left = (index // columns) * cell_h + gap // 2, (index % columns) * cell_w + gap // 2
        if photo is not None:
            sheet[top : top + tile, left : left + tile] = thumbnail(photo, tile)
        offset = tile if with_photos else 0
        sheet[top : top + tile, left + offset : left + offset + tile] = thumbnail(result, tile)
        if caption:
            label = text if len(text) <= 30 else "..." + text[-27:]
            cv2.putText(sheet, label, (left, top + tile + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def outline(photo: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 0, 255), *, doubts: list[str] | None = None) -> np.ndarray:
    """The photo with the outline of ``mask`` drawn on it, and the outside dimmed.

    Parameters
    ----------
    photo : (M, N, 3) ndarray of uint8
    mask : (M, N) ndarray of bool
    colour : tuple of int, optional
        RGB colour of the outline.
    doubts : list of str, optional
        Why the mask is doubtful (see :func:`leafprep.segmentation.mask_doubts`):
        the outline is then drawn in orange, with a banner above the photo saying why.

    Returns
    -------
    picture : (M, N, 3) ndarray of uint8
        Taller by the banner where there are doubts.
    """
    import cv2

    picture = photo.copy()
    picture[~mask] = (picture[~mask] * 0.45).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, round(max(mask.shape) / 400))
    cv2.drawContours(picture, contours, -1, DOUBT_COLOUR if doubts else colour, thickness, cv2.LINE_AA)
    if doubts:
        picture = _banner(picture, [DOUBT + doubt for doubt in doubts], bottom=False)
    return picture


def _banner(picture: np.ndarray, texts: list[str], *, bottom: bool) -> np.ndarray:
    """``picture`` with ``texts`` in the doubt colour on a black banner added above it (or below it): the banner hides
    nothing of the photo (the leaves of a bed lie to its edges).

    Each text is wrapped to the photo's width (a portrait photo is narrow).
    """
    import cv2

    scale = max(0.4, picture.shape[1] / 1400)
    height, weight = round(26 * scale) + 4, max(1, round(scale * 1.5))
    lines = [line for text in texts for line in _wrap(text, scale, weight, picture.shape[1] - 12)]
    banner = np.zeros((height * len(lines) + 4, picture.shape[1], 3), np.uint8)
    for row, line in enumerate(lines):
        cv2.putText(banner, line, (6, height * (row + 1) - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, DOUBT_COLOUR, weight, cv2.LINE_AA)
    return np.vstack([picture, banner] if bottom else [banner, picture])


def outline_all(photo: np.ndarray, objects: Sequence[Any], colour: tuple[int, int, int] = (255, 0, 255)) -> np.ndarray:
    """The photo with every object's outline and number drawn on it (the leaves of a scanner bed, the digits of a sheet).

    Parameters
    ----------
    photo : (M, N, 3) ndarray of uint8
        The upright photo at full size.
    objects : sequence of leafprep.Found
        Each with ``index``, ``box`` (full-size pixels), ``mask`` (within
        the box) and ``notes``; a doubtful one (a note starting with
        ``"doubtful mask: "``) is drawn in orange and its reasons are listed
        in a banner below the photo, numbered.
    colour : tuple of int, optional
        RGB colour of the outlines.

    Returns
    -------
    picture : (M, N, 3) ndarray of uint8
        Taller by the banner where a mask is doubtful.
    """
    import cv2

    from .errors import DOUBT

    picture = photo.copy()
    inside = np.zeros(photo.shape[:2], bool)
    for found in objects:
        x, y, w, h = found.box
        inside[y : y + h, x : x + w] |= found.mask
    picture[~inside] = (picture[~inside] * 0.45).astype(np.uint8)
    thickness = max(1, round(max(photo.shape[:2]) / 600))
    scale = max(0.5, max(photo.shape[:2]) / 1600)
    weight = max(1, round(scale * 2))
    doubts = []
    for found in objects:
        x, y, w, h = found.box
        doubtful = [note.removeprefix(DOUBT) for note in found.notes if note.startswith(DOUBT)]
        doubts += [f"leaf {found.index:02d}: {DOUBT}{note}" for note in doubtful]
        contours, _ = cv2.findContours(found.mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE, offset=(x, y))
        cv2.drawContours(picture, contours, -1, DOUBT_COLOUR if doubtful else colour, thickness, cv2.LINE_AA)
        label = f"{found.index:02d}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
        corner = (max(0, x), max(th + 4, y))
        cv2.rectangle(picture, (corner[0], corner[1] - th - 4), (corner[0] + tw + 6, corner[1] + 2), (0, 0, 0), -1)
        cv2.putText(
            picture, label, (corner[0] + 3, corner[1] - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, DOUBT_COLOUR if doubtful else colour, weight, cv2.LINE_AA
        )
    if doubts:
        picture = _banner(picture, doubts, bottom=True)
    return picture


def _wrap(text: str, scale: float, weight: int, width: int) -> list[str]:
    """``text`` in lines that fit ``width`` pixels in OpenCV's simplex font (a word longer than the width gets a line of its own)."""
    import cv2

    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(candidate, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)[0][0] <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def class_sheet(samples: dict[str, list[np.ndarray]], counts: dict[str, int], *, tile: int = 48) -> np.ndarray:
    """Samples of every class in rows, with a bar of the class's size at the right.

    Parameters
    ----------
    samples : dict of str to list of ndarray
        Images (uint8, grey or RGB) of each class.
    counts : dict of str to int
        Examples of each class, drawn as a histogram bar.
    tile : int, optional

    Returns
    -------
    sheet : (H, W, 3) ndarray of uint8
    """
    import cv2

    columns = max((len(v) for v in samples.values()), default=1)
    label_w, bar_w = 140, 200
    most = max(counts.values(), default=1) or 1
    sheet = np.full((max(1, len(samples)) * (tile + 4), label_w + columns * (tile + 4) + bar_w, 3), 255, np.uint8)
    for row, (name, images) in enumerate(samples.items()):
        top = row * (tile + 4) + 2
        cv2.putText(sheet, name[:18], (4, top + tile // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for col, image in enumerate(images):
            left = label_w + col * (tile + 4)
            sheet[top : top + tile, left : left + tile] = thumbnail(image, tile)
        length = int((bar_w - 60) * counts.get(name, 0) / most)
        left = label_w + columns * (tile + 4) + 4
        sheet[top + tile // 3 : top + 2 * tile // 3, left : left + length] = (70, 110, 180)
        cv2.putText(sheet, str(counts.get(name, 0)), (left + length + 4, top + tile // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return sheet
