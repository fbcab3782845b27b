"""The preprocessing settings that travel from a build into a run, and from a run to every photo it reads.

:class:`BuildOptions` says what ``leafprep build`` made of each photo.
``dataset_info.json`` records them; :func:`run_settings` turns that record into
the ``preprocessing.json`` of a run, which ``leafprep predict``, ``evaluate``
and ``serve`` read so that a photo is prepared exactly as the training data
were: the same kind, size and mode, and for leaves the same descriptors
(their names, and the training split's mean and spread, which the model's own
first layer applies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BuildOptions", "as_is", "descriptor_scaling", "leaf_decode_side", "run_settings"]


@dataclass(frozen=True)
class BuildOptions:
    """What each image becomes, and how the dataset is cut.

    Attributes
    ----------
    kind : {"digit", "leaf", "auto", "none"}
        How to normalise (``"none"``: the images are already normalised and
        are only resized to ``size``). Leaves also get their descriptors
        (:mod:`leafprep.description`), stored in every record.
    size : int
    mode : {"gray", "silhouette", "rgb"} or None
    split : tuple of float
        Train, validation and test proportions (sum 1).
    seed : int
    augment : int
        Augmented copies of each training example.
    augment_preset : str or None
        The pipeline for them: a preset of :mod:`leafprep.augmentation`
        (``"digits"``, ``"leaves"``) or a YAML/JSON albumentations pipeline
        file. Default: ``"leaves"`` for ``kind="leaf"``, else ``"digits"``.
    shard_mb : float
        Target size of a shard in megabytes.
    descriptors : bool
        Leaves: measure each leaf's descriptors and store them in its
        records (``kind="leaf"`` only; the default).
    every : bool
        Leaves: every leaf of a photo becomes an example (a scanner bed of
        several leaves, :func:`leafprep.segment_all`); the leaves of one
        photo stay in one split. Default: one leaf a photo.
    """

    kind: str = "digit"
    size: int = 28
    mode: str | None = None
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    augment: int = 0
    shard_mb: float = 64.0
    augment_preset: str | None = None
    descriptors: bool = True
    every: bool = False

    @property
    def augmentation(self) -> str:
        """The augmentation pipeline used: ``augment_preset`` or the default for ``kind``."""
        return self.augment_preset or ("leaves" if self.kind == "leaf" else "digits")

    @property
    def channels(self) -> int:
        return 3 if self.mode == "rgb" else 1

    @property
    def describes(self) -> bool:
        """Whether every record holds the leaf's descriptors (``kind="leaf"``)."""
        return self.kind == "leaf" and self.descriptors

    @property
    def decode_side(self) -> int:
        """The short side a photo is decoded down to (:func:`leafprep.normalization.decode_min_side`): smaller for
        leaves without descriptors, which need no detail beyond the working image."""
        from .normalization import decode_min_side

        return decode_min_side(self.kind, self.size, descriptors=self.describes)


def as_is(source: Any, size: int, mode: str | None) -> np.ndarray:
    """``kind="none"``: an image already normalised elsewhere, only resized (and converted): float32 in [0, 1].

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`leafprep.load_image` accepts.
    size : int
    mode : {"gray", "silhouette", "rgb"} or None

    Returns
    -------
    image : (size, size) or (size, size, 3) ndarray of float32
    """
    import cv2

    from .loading import load_image

    if isinstance(source, np.ndarray) and source.ndim == 2 and source.shape == (size, size) and mode != "rgb":
        return source.astype(np.float32) / 255.0  # MNIST's own pixels: nothing to do
    rgb = load_image(source)
    image = rgb if mode == "rgb" else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image.astype(np.float32) / 255.0


def descriptor_scaling(values: np.ndarray) -> dict[str, Any]:
    """The names, mean and spread of descriptors (rows: leaves), as ``dataset_info.json`` keeps them.

    NaN (a size in millimetres where the scale was unknown) is left out of
    the mean and spread; a descriptor that is never known gets mean 0 and
    spread 0, and a model ignores a descriptor whose spread is 0.

    >>> from leafprep.description import DESCRIPTOR_NAMES
    >>> values = np.zeros((2, len(DESCRIPTOR_NAMES)))
    >>> values[:, 0], values[:, 4] = (1.0, 3.0), np.nan
    >>> scaling = descriptor_scaling(values)
    >>> scaling["mean"][0], scaling["std"][0], scaling["mean"][4], scaling["std"][4]
    (2.0, 1.0, 0.0, 0.0)
    """
    from .description import DESCRIPTOR_NAMES

    values = np.asarray(values, np.float64).reshape(-1, len(DESCRIPTOR_NAMES))
    known = np.isfinite(values)
    count = known.sum(axis=0)
    filled = np.where(known, values, 0.0)
    mean = np.divide(filled.sum(axis=0), count, out=np.zeros(values.shape[1]), where=count > 0)
    spread = np.sqrt(np.divide((np.where(known, values - mean, 0.0) ** 2).sum(axis=0), count, out=np.zeros(values.shape[1]), where=count > 0))
    return {"names": list(DESCRIPTOR_NAMES), "mean": [float(v) for v in mean], "std": [float(v) for v in spread], "train_leaves": int(len(values))}


def run_settings(meta: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The ``preprocessing.json`` of a run trained on a dataset whose ``dataset_info.json`` is ``meta``."""
    options = meta.get("options", {})
    shape = meta["image_shape"]
    settings = {
        "kind": options.get("photo_kind") or options.get("kind", "digit"),
        "size": options.get("size", shape[0]),
        "mode": options.get("mode", "gray"),
        "labels": meta["labels"],
        "image_shape": list(shape),
        "dataset": dataset,
        "train_pixel_mean": meta.get("train_pixel_mean"),
        "train_pixel_std": meta.get("train_pixel_std"),
    }
    if meta.get("descriptors"):
        settings["descriptors"] = meta["descriptors"]
    if options.get("decode_min_side"):
        settings["decode_min_side"] = options["decode_min_side"]
    return settings


def leaf_decode_side(settings: dict[str, Any]) -> int:
    """The short side a run's leaf photos are decoded down to, as its build decoded them.

    Runs of datasets built before the build recorded it (``decode_min_side``
    in ``dataset_info.json``) were decoded as a build with descriptors decodes.
    """
    from .normalization import decode_min_side

    return int(settings.get("decode_min_side") or decode_min_side("leaf", int(settings["size"])))
