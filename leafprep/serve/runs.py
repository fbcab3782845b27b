"""The runs a server answers with: loaded once (Keras safe mode), warmed up, described by their facts.

A run's picture of what it learned is the weight map of a class for a
one-layer softmax network, and a dream of the class for any other (a
conv-net; on the run's dream prior when ``leafprep visualize --what dream``
has trained one): dreams take seconds, so each is made once and kept.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LeafprepError, ParameterError
from . import pictures

if TYPE_CHECKING:  # pragma: no cover
    from trainers.runs import Run

__all__ = ["ServedRun", "load_runs", "run_facts"]

#: Kinds of run the server can answer for: photos normalised as digits or leaves, or taken as they are.
KINDS = ("digit", "leaf", "none")


def run_facts(folder: Path, settings: dict[str, Any], model: Any) -> dict[str, Any]:
    """What the page shows of a run: kind, size, labels, model, accuracies from ``metrics.json``, pictures it can draw."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        metrics = metrics if isinstance(metrics, dict) else {}
    except (OSError, ValueError):
        metrics = {}
    from trainers.models import input_names

    convolutional = _has_convolutions(model)
    names = input_names(model)
    pixels = not names or "image" in names  # a descriptors-only model never sees the image
    return {
        "kind": settings["kind"],
        "size": int(settings["size"]),
        "mode": settings.get("mode") or "gray",
        "labels": list(settings["labels"]),
        "image_shape": list(settings.get("image_shape") or model.input_shape[1:]),
        "descriptors": "descriptors" in names,
        "model": metrics.get("model") or getattr(model, "name", None),
        "test_accuracy": metrics.get("test_accuracy"),
        "val_accuracy": metrics.get("val_accuracy"),
        "epochs": metrics.get("epochs_run"),
        "learned": None if not pixels else "dream" if convolutional else "weights",
        "attention": None if not pixels else "gradcam" if convolutional else "saliency",
    }


def _has_convolutions(model: Any) -> bool:
    import keras

    return any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)


@dataclass
class ServedRun:
    """A loaded run and what the server keeps for it.

    Attributes
    ----------
    name : str
        The name requests use (``?run=NAME``): the folder's name.
    run : trainers.runs.Run
        The model and its preprocessing settings.
    facts : dict
        :func:`run_facts`.
    """

    name: str
    run: Run
    facts: dict[str, Any]
    _learned: dict[int, bytes] = field(default_factory=dict, init=False, repr=False)
    _making: dict[int, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def kind(self) -> str:
        return str(self.facts["kind"])

    @property
    def size(self) -> int:
        return int(self.facts["size"])

    @property
    def labels(self) -> list[str]:
        return list(self.facts["labels"])

    def describe(self) -> dict[str, Any]:
        """The facts with the run's name, for ``GET /api/runs``."""
        return {"name": self.name, **self.facts}

    def probabilities(self, images: np.ndarray, descriptors: np.ndarray | None = None) -> np.ndarray:
        """The network's class probabilities for a batch ``(N, H, W, C)`` of inputs in [0, 1] (and their leaf descriptors): ``(N, classes)``."""
        return self.run.probabilities(images.astype(np.float32), descriptors)

    def attention(self, image: np.ndarray, class_index: int, descriptors: np.ndarray | None = None) -> np.ndarray:
        """Where the network looked for ``class_index`` in ``image`` (H, W, C): Grad-CAM for a conv-net, saliency otherwise, in [0, 1]."""
        from trainers.visualize import gradcam, saliency

        method = gradcam if self.facts["attention"] == "gradcam" else saliency
        return np.asarray(method(self.run.image_model(descriptors), image, class_index), np.float32)

    def label_index(self, label: str) -> int:
        """The index of a class by its label; :class:`ParameterError` for a label the run does not know."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise ParameterError("label", f"run {self.name!r} has no class {label!r}", f"its classes are {', '.join(self.labels)}") from None

    def learned_png(self, index: int, *, dream_steps: int = 150) -> bytes:
        """A PNG of what the run learned of class ``index``: its weight map (softmax) or its dream, made once and kept."""
        with self._lock:
            if index in self._learned:
                return self._learned[index]
            making = self._making.setdefault(index, threading.Lock())
        with making:  # one thread dreams a class; others asking for it wait for the same picture
            with self._lock:
                if index in self._learned:
                    return self._learned[index]
            picture = pictures.png(self._learned_picture(index, dream_steps))
            with self._lock:
                self._learned[index] = picture
        return picture

    def _learned_picture(self, index: int, dream_steps: int) -> np.ndarray:
        from trainers.visualize import dream, weight_maps

        model = self.run.image_model()
        if self.facts["learned"] == "weights":
            maps = weight_maps(model)
            scale = float(np.percentile(np.abs(maps), 99.5)) or 1.0  # as `leafprep visualize --what weights` draws them
            return pictures.diverging(maps[index], scale)
        if self._prior is not None:  # a digit or a leaf, not strokes
            return pictures.viridis(dream(model, index, prior=self._prior, seed=index))
        return pictures.viridis(dream(model, index, steps=dream_steps, seed=index))

    @functools.cached_property
    def _prior(self) -> Any:
        """The run's dream prior where 'leafprep visualize --what dream' has made one (loaded once), else None."""
        from trainers.prior import load_prior

        return load_prior(self.run.folder, tuple(self.facts["image_shape"]))


def load_runs(folders: Sequence[str | os.PathLike[str]]) -> dict[str, ServedRun]:
    """Load every run folder (Keras safe mode), answer a made-up photo with each, and name each by its folder (``name-2`` for a repeated name).

    Raises
    ------
    LeafprepError
        A folder is not a run, its model cannot be loaded, or its kind is not one the server answers for.
    """
    from trainers.runs import load_run

    from .answers import warm_up

    if not folders:
        raise ParameterError("RUN", "no run folder given", "give the --out folder of 'leafprep train'")
    served: dict[str, ServedRun] = {}
    for folder in folders:
        run = load_run(folder)
        kind = run.settings.get("kind")
        if kind not in KINDS:
            raise LeafprepError(
                str(folder), f"is a run for {kind!r} inputs, which the server cannot prepare", f"serve runs of kind {', '.join(KINDS)}"
            )
        base = Path(folder).resolve().name or "run"
        name, number = base, 2
        while name in served:
            name, number = f"{base}-{number}", number + 1
        entry = ServedRun(name, run, run_facts(Path(folder), run.settings, run.model))
        warm_up(entry)
        served[name] = entry
    return served
