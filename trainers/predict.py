"""``leafprep predict``: a run's answers for your own photos, normalised exactly as its training data were."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .runs import Run, load_run

if TYPE_CHECKING:
    from leafprep.normalization import Steps

__all__ = ["Prediction", "predict", "predict_leaves", "predict_sheet", "prepare", "prepare_inputs", "prepare_steps"]


@dataclass
class Prediction:
    """The top classes for one photo (or one digit of a sheet)."""

    source: str
    top: list[tuple[str, float]]  # (label, probability), most likely first
    image: np.ndarray = field(repr=False)  # the normalised input (H, W, C) in [0, 1]
    probabilities: np.ndarray = field(repr=False)
    descriptors: np.ndarray | None = field(default=None, repr=False)  # a leaf's, where the run reads them

    @property
    def label(self) -> str:
        return self.top[0][0]


def prepare(run: Run, photo: Any) -> np.ndarray:
    """Normalise ``photo`` with the run's settings (kind, size, mode): (H, W, C) float32 in [0, 1]."""
    return prepare_inputs(run, photo)[0]


def prepare_steps(run: Run, photo: Any) -> tuple[np.ndarray, Steps | None]:
    """:func:`prepare`, and every stage of the normalisation (None for a run whose data were normalised elsewhere)."""
    image, steps, _ = prepare_inputs(run, photo)
    return image, steps


def prepare_inputs(run: Run, photo: Any) -> tuple[np.ndarray, Steps | None, np.ndarray | None]:
    """What the run's model reads of a photo, prepared as its training data were: (image, stages, descriptors).

    The image is (H, W, C) float32 in [0, 1]; the stages None for a run whose
    data were normalised elsewhere; the descriptors (float32) only where the
    run reads them, measured as ``leafprep build`` measured them
    (:func:`leafprep.description.describe_normalised` on the photo decoded
    at the same reduced size).
    """
    from leafprep.normalization import normalize_steps
    from leafprep.settings import as_is

    settings = run.settings
    kind, size, mode = settings["kind"], int(settings["size"]), settings.get("mode") or "gray"
    descriptors = None
    if kind == "none":  # the run's data were normalised elsewhere: so must its inputs be
        steps, image = None, as_is(photo, size, mode)
    elif run.reads_descriptors or kind == "leaf":
        from leafprep.description import describe_normalised
        from leafprep.errors import LeafprepError
        from leafprep.loading import DEFAULT_MAX_PIXELS, _load
        from leafprep.settings import leaf_decode_side

        if kind != "leaf":
            raise LeafprepError(str(run.folder), f"reads leaf descriptors, but its photos are of kind {kind!r}")
        # Decoded down as the run's build decoded its photos (smaller where it measured no descriptors).
        loaded = _load(photo, max_pixels=DEFAULT_MAX_PIXELS, min_side=leaf_decode_side(settings))
        steps = normalize_steps(loaded.rgb, "leaf", size, mode=mode)
        image = steps.result
        if run.reads_descriptors:
            descriptors = describe_normalised(steps, loaded.rgb, loaded.full_shape, loaded.name).values
    else:
        steps = normalize_steps(photo, kind, size, mode=None if kind == "digit" else mode)
        image = steps.result
    return (image[:, :, None] if image.ndim == 2 else image), steps, descriptors


def _top(run: Run, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(run.labels[i], float(probabilities[i])) for i in order]


def predict(run: str | os.PathLike[str] | Run, photos: list[Any], *, top_k: int = 3) -> list[Prediction]:
    """Normalise each photo as the run's data were and return its ``top_k`` classes.

    Raises the :class:`~leafprep.errors.LeafprepError` of the first photo that
    cannot be read or has nothing to find (the CLI reports each and goes on).
    """
    loaded = run if isinstance(run, Run) else load_run(run)
    prepared = [prepare_inputs(loaded, photo) for photo in photos]
    images = np.stack([image for image, _, _ in prepared]) if photos else np.zeros((0, *loaded.settings["image_shape"]), np.float32)
    described = [found for _, _, found in prepared]
    descriptors = np.stack(described) if photos and loaded.reads_descriptors else None  # type: ignore[arg-type]
    probabilities = loaded.probabilities(images, descriptors) if len(images) else np.zeros((0, len(loaded.labels)))
    return [
        Prediction(str(photo), _top(loaded, p, top_k), image, p, d)
        for photo, image, p, d in zip(photos, images, probabilities, described, strict=True)
    ]


def predict_sheet(run: str | os.PathLike[str] | Run, photo: Any, *, top_k: int = 3) -> tuple[str, list[Prediction]]:
    """Read every digit of a sheet, in reading order: (the number as a string, one prediction a digit)."""
    from leafprep.normalization import normalize_all

    loaded = run if isinstance(run, Run) else load_run(run)
    digits = normalize_all(photo, size=int(loaded.settings["size"]))
    if not digits:
        return "", []
    images = np.stack([d.image[:, :, None] for d in digits]).astype(np.float32)
    probabilities = np.asarray(loaded.model.predict_on_batch(images))
    found = [
        Prediction(f"{photo} digit {n + 1}", _top(loaded, p, top_k), image, p) for n, (image, p) in enumerate(zip(images, probabilities, strict=True))
    ]
    return "".join(item.label for item in found), found


def predict_leaves(run: str | os.PathLike[str] | Run, photo: Any, *, top_k: int = 3) -> tuple[list[tuple[str, float]], list[Prediction]]:
    """Name every leaf of a photo of several, in reading order: (the species over all of them, one prediction a leaf).

    Each leaf is cut out and measured as ``leafprep build --all`` did it
    (:func:`leafprep.description.leaf_batch`); the species over all of them
    ranks the classes by their probabilities averaged over the leaves.
    """
    from leafprep.description import leaf_batch
    from leafprep.loading import DEFAULT_MAX_PIXELS
    from leafprep.segmentation import analyse_leaves

    loaded = run if isinstance(run, Run) else load_run(run)
    settings = loaded.settings
    if settings["kind"] != "leaf":
        from leafprep.errors import LeafprepError

        raise LeafprepError(str(loaded.folder), f"names leaves, but its photos are of kind {settings['kind']!r}: use --all for digit sheets")
    found = analyse_leaves(photo, max_pixels=DEFAULT_MAX_PIXELS)
    size, mode = int(settings["size"]), settings.get("mode") or "gray"
    images, descriptors = leaf_batch(found, size, mode, descriptors=loaded.reads_descriptors)
    probabilities = loaded.probabilities(images, descriptors)
    leaves = [
        Prediction(f"{photo} leaf {n:02d}", _top(loaded, p, top_k), image, p, None if descriptors is None else descriptors[n])
        for n, (image, p) in enumerate(zip(images, probabilities, strict=True))
    ]
    differ = disagreement([leaf.label for leaf in leaves])
    if differ:
        import warnings

        from leafprep.errors import LeafprepWarning

        warnings.warn(LeafprepWarning(found.name, differ), stacklevel=2)
    return _top(loaded, probabilities.mean(axis=0), top_k), leaves


def disagreement(labels: list[str]) -> str | None:
    """What the leaves of one photo say where they name different species, most often named first (None where they agree).

    >>> disagreement(["oak", "ash", "oak"])
    'the leaves disagree (2 say oak, 1 says ash): the species over all of them averages their probabilities'
    """
    from collections import Counter

    counts = Counter(labels).most_common()
    if len(counts) < 2:
        return None
    said = ", ".join(f"{n} {'says' if n == 1 else 'say'} {label}" for label, n in counts)
    return f"the leaves disagree ({said}): the species over all of them averages their probabilities"


def save_steps(run: Run, photo: Any, prediction: Prediction, path: str | os.PathLike[str]) -> None:
    """A picture: the photo, the normalised input the network saw, and its probability bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from leafprep.loading import load_image

    figure = Figure(figsize=(10, 3.2))
    left, middle, right = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1, 1.6]})
    left.imshow(load_image(photo))
    left.set_title(Path(str(photo)).name[:30], fontsize=9)
    image = prediction.image
    middle.imshow(image[:, :, 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1)
    middle.set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=9)
    for axes in (left, middle):
        axes.axis("off")
    order = np.argsort(-prediction.probabilities)[: min(10, len(run.labels))][::-1]
    right.barh([run.labels[i][:16] for i in order], prediction.probabilities[order], color="#4a7fb5")
    right.set_xlim(0, 1)
    right.set_title(f"{prediction.label} ({prediction.top[0][1]:.0%})", fontsize=9)
    right.tick_params(labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
