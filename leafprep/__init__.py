"""leafprep: from photos of handwritten digits and leaves to MNIST-style training data.

The public API is imported lazily, so that ``import leafprep`` stays fast and
never imports TensorFlow::

    import leafprep
    digit = leafprep.normalize("photo.jpg")          # (28, 28) float32, ink bright on black
    mask = leafprep.segment("leaf.jpg", kind="leaf") # bool, the photo's height and width (kind="digit" by default)
    for d in leafprep.normalize_all("sheet.jpg"):    # every digit, in reading order
        print(d.box, d.image.shape)
    for leaf in leafprep.segment_all("scan.jpg"):    # every leaf of a scanner bed: box, mask (the box's size), area
        print(leaf.index, leaf.box, leaf.area)
    leaf = leafprep.describe("leaf.jpg")             # shape, margin, colour, texture: leaf["solidity"]
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ImageLoadError,
    ImageTooLargeError,
    LeafprepError,
    LeafprepWarning,
    NothingFoundError,
    ParameterError,
)

if TYPE_CHECKING:  # pragma: no cover
    from .description import DESCRIPTOR_NAMES, Descriptors, describe, describe_all, leaf_descriptors  # noqa: F401
    from .loading import DEFAULT_MAX_PIXELS, load_image  # noqa: F401
    from .normalization import Cutout, Digit, Steps, normalize, normalize_all, normalize_steps  # noqa: F401
    from .segmentation import Found, detect_kind, segment, segment_all  # noqa: F401

_LAZY = {
    "describe": "description",
    "describe_all": "description",
    "leaf_descriptors": "description",
    "Descriptors": "description",
    "DESCRIPTOR_NAMES": "description",
    "load_image": "loading",
    "DEFAULT_MAX_PIXELS": "loading",
    "normalize": "normalization",
    "normalize_all": "normalization",
    "normalize_steps": "normalization",
    "Cutout": "normalization",
    "Digit": "normalization",
    "Steps": "normalization",
    "detect_kind": "segmentation",
    "segment": "segmentation",
    "segment_all": "segmentation",
    "Found": "segmentation",
}

__all__ = [
    "__version__",
    "LeafprepError",
    "LeafprepWarning",
    "ImageLoadError",
    "ImageTooLargeError",
    "NothingFoundError",
    "ParameterError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'leafprep' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
