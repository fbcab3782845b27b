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
