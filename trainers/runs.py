"""A run folder: what ``leafprep train`` writes, and loading it back (Keras safe mode).

::

    model.keras          the best checkpoint (by validation accuracy, or training loss without a val split)
    preprocessing.json   how the data were built: kind, size, mode, labels, image shape, the dataset
    metrics.json         final accuracies, epochs, timing, options
    history.csv          one row an epoch
    logs/                TensorBoard logs
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leafprep.errors import LeafprepError

__all__ = ["MODEL_FILE", "SETTINGS_FILE", "Run", "load_run"]

MODEL_FILE = "model.keras"
SETTINGS_FILE = "preprocessing.json"


@dataclass
class Run:
    """A trained model and the preprocessing its data went through."""

    folder: Path
    model: Any
    settings: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.settings["labels"])

    @property
    def reads_descriptors(self) -> bool:
        """Whether the model reads a leaf's descriptors (the models of :data:`trainers.models.DESCRIPTOR_MODELS`)."""
        from .models import input_names

        return "descriptors" in input_names(self.model)

    def inputs(self, images: np.ndarray, descriptors: np.ndarray | None = None) -> Any:
        """What the model takes for a batch of images ``(N, H, W, C)`` and, where it reads them, their descriptors ``(N, D)``."""
        from .models import input_names

        names = input_names(self.model)
        if not names:
            return np.asarray(images, np.float32)
        if descriptors is None:
            raise LeafprepError(str(self.folder), "this run reads leaf descriptors, and none were given", "describe the photos (leafprep.describe)")
        given = {"image": np.asarray(images, np.float32), "descriptors": np.asarray(descriptors, np.float32)}
        return {name: given[name] for name in names}

    def probabilities(self, images: np.ndarray, descriptors: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for a batch of normalised images (and their descriptors)."""
        return np.asarray(self.model.predict_on_batch(self.inputs(images, descriptors)), np.float64)

    def image_model(self, descriptors: np.ndarray | None = None) -> Any:
        """A model of images alone, for saliency, Grad-CAM and dreams (:func:`trainers.models.image_view`)."""
        from .models import image_view

        return image_view(self.model, descriptors)


def load_run(folder: str | os.PathLike[str]) -> Run:
    """Load a run folder written by :func:`trainers.train.train`.

    The model is loaded in Keras safe mode (no arbitrary code from the file).

    Raises
    ------
    LeafprepError
        The folder is missing or is not a run (no ``model.keras`` or ``preprocessing.json``).
    """
    from leafprep._tf import tensorflow

    tensorflow()
    import keras

    from . import layers  # noqa: F401  (registers leafprep's own layers, e.g. the softmax's Deskew)

    root = Path(folder)
    if not root.is_dir():
        raise LeafprepError(str(root), "no such run folder", "give the --out folder of 'leafprep train'")
    missing = [name for name in (MODEL_FILE, SETTINGS_FILE) if not (root / name).is_file()]
    if missing:
        raise LeafprepError(str(root), f"is not a leafprep run (no {' or '.join(missing)})", "give the --out folder of a finished 'leafprep train'")
    try:
        settings = json.loads((root / SETTINGS_FILE).read_text(encoding="utf-8"))
        if not isinstance(settings.get("labels"), list):
            raise KeyError("labels")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LeafprepError(str(root / SETTINGS_FILE), f"is damaged: {exc}") from None
    try:
        model = keras.saving.load_model(root / MODEL_FILE, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds for a bad file
        raise LeafprepError(str(root / MODEL_FILE), f"cannot be loaded: {type(exc).__name__}: {exc}") from None
    return Run(root, model, settings)
