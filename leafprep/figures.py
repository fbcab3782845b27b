"""Pictures for people: the stages of a normalisation, and terminal previews."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .normalization import DigitSteps

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["steps_figure", "save_steps", "text_preview"]

# Darkest to brightest; two characters a pixel keep the picture square in a terminal.
_RAMP = " ░▒▓█"


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


def steps_figure(steps: DigitSteps, title: str = "") -> Figure:
    """A matplotlib figure with one panel per stage: photo, flattened light, mask, crop, result.

    Parameters
    ----------
    steps : DigitSteps
        From :func:`leafprep.normalize_steps`.
    title : str, optional
        Shown above the panels (the file name, say).

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    mask_view = np.zeros(steps.mask.shape + (3,), dtype=np.float32)
    mask_view[steps.mask] = (0.45, 0.45, 0.45)
    mask_view[steps.digit_mask] = (1.0, 1.0, 1.0)
    panels = [
        ("photo", steps.photo, None),
        ("light corrected", steps.flattened, "gray"),
        ("mask (chosen: white)", mask_view, None),
        ("crop (pen coverage)", steps.crop, "gray"),
        (f"result {steps.result.shape[0]}x{steps.result.shape[1]}", steps.result, "gray"),
    ]
    figure = Figure(figsize=(3.0 * len(panels), 3.4), layout="constrained")
    axes = figure.subplots(1, len(panels))
    for ax, (label, image, cmap) in zip(axes, panels):
        if cmap:
            ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
    if title:
        figure.suptitle(f"{title}  (ink {'darker' if steps.polarity == 'dark' else 'lighter'} than paper)", fontsize=10)
    return figure


def save_steps(steps: DigitSteps, path: str | os.PathLike[str], title: str = "") -> None:
    """Write :func:`steps_figure` to ``path`` (PNG, SVG or PDF by extension)."""
    steps_figure(steps, title).savefig(path, dpi=100)
