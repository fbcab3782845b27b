"""Augmentation of normalised images: presets for digits and leaves, custom pipelines, offline and in tf.data.

Offline (:func:`augment`, :func:`augment_batch`, ``leafprep augment``,
``leafprep build --augment N``) every pipeline is an albumentations 2
``Compose``: one of the presets below, or a pipeline saved with
albumentations' own serialisation (``A.save(pipeline, "my.yaml",
data_format="yaml")``) and loaded with :func:`load_pipeline`.

Online (``leafprep.records.load(..., augment="digits")``) the presets run as
Keras preprocessing layers on whole batches inside the tf.data graph: for the
transforms both libraries offer they are about five times faster than calling
albumentations image by image (``python -m bench.augment_speed``), and the
rest (stroke width, noise, multiplicative brightness) are three small layers
here. Custom pipelines run online through albumentations in parallel.

The presets (``size`` is the image side; distances scale with it):

``digits`` (never flips: a flipped 2 is not a 2)
    rotation +-12 degrees, shift +-5%, scale 0.9-1.1, shear +-6 degrees
    (p=0.6); elastic distortion as in Simard et al. (2003): uniform noise in
    [-1, 1] smoothed by a Gaussian of sigma 4 pixels at 28, times alpha 16
    pixels (p=0.3; Simard's alpha 34 costs a plain conv-net 10 points);
    strokes thicker or thinner by a 2x2 dilation or erosion at 28 (p=0.2);
    Gaussian blur, sigma 0.3-0.7 pixels at 28 (p=0.2); Gaussian noise, std
    2-5% of white (p=0.2). A plain MNIST conv-net (99.2% clean) reads the
    MNIST test digits through it at 98.0% offline and 97.4% online
    (``python -m bench.augment_quality``).
``leaves``
    any rotation, scale 0.85-1.05, shift +-4% (always); horizontal and vertical
    flips (p=0.5 each); slight perspective, 2-5% (p=0.3); then, unless the images
    are silhouettes, brightness times 0.85-1.15 (p=0.5) and gamma 0.8-1.2
    (p=0.5), and for rgb saturation 0.8-1.2 and hue +-0.03 (p=0.5). Every
    colour change keeps the black background black.

Every function keeps the shape, dtype and range of its input (uint8, or float
in [0, 1]) and is deterministic for a seed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LeafprepError, ParameterError

__all__ = ["PRESETS", "augment", "augment_batch", "keras_layers", "load_pipeline", "preset", "resolve", "save_pipeline", "tf_augmenter"]

#: Names of the built-in pipelines.
PRESETS = ("digits", "leaves")

Pipeline = Any  # an albumentations Compose (albumentations has no stub package)


def _check_preset(name: str, channels: int) -> None:
    if name not in PRESETS:
        raise ParameterError("preset", f"preset must be one of {set(PRESETS)} or a YAML/JSON pipeline file, got {name!r}")
    if channels not in (1, 3):
        raise ParameterError("channels", f"images must have 1 or 3 channels, got {channels}")


def preset(name: str, *, size: int = 28, channels: int = 1, gray: bool = True) -> Pipeline:
    """A built-in pipeline as an albumentations ``Compose`` (parameters in the module docstring).

    Parameters
    ----------
    name : {"digits", "leaves"}
    size : int, optional
        Side of the images in pixels; distances scale with it.
    channels : {1, 3}, optional
    gray : bool, optional
        For ``leaves`` with one channel: grey texture (brightness and gamma
        change it) or a silhouette (``False``: only geometry changes).

    Examples
    --------
    >>> [type(t).__name__ for t in preset("digits").transforms][:2]
    ['Affine', 'ElasticTransform']
    """
    import albumentations as A
    import cv2

    _check_preset(name, channels)
    k = size / 28.0
    black = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0}
    if name == "digits":
        width = max(2, round(2 * k))
        transforms = [
            A.Affine(rotate=(-12, 12), translate_percent=(-0.05, 0.05), scale=(0.9, 1.1), shear=(-6, 6), p=0.6, **black),
            A.ElasticTransform(alpha=16 * k, sigma=4 * k, noise_distribution="uniform", p=0.3, **black),
            A.OneOf([A.Morphological(scale=(width, width), operation="dilation"), A.Morphological(scale=(width, width), operation="erosion")], p=0.2),
            A.GaussianBlur(blur_limit=0, sigma_limit=(0.3 * k, 0.7 * k), p=0.2),
            A.GaussNoise(std_range=(0.02, 0.05), p=0.2),
        ]
    else:
        transforms = [
            A.Affine(rotate=(-180, 180), translate_percent=(-0.04, 0.04), scale=(0.85, 1.05), p=1.0, **black),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.Perspective(scale=(0.02, 0.05), p=0.3, **black),
        ]
        if channels == 3:
            transforms.append(A.ColorJitter(brightness=(0.85, 1.15), contrast=(1.0, 1.0), saturation=(0.8, 1.2), hue=(-0.03, 0.03), p=0.5))
        elif gray:
            transforms.append(A.MultiplicativeNoise(multiplier=(0.85, 1.15), per_channel=False, elementwise=False, p=0.5))
        if channels == 3 or gray:
            transforms.append(A.RandomGamma(gamma_limit=(80, 120), p=0.5))
    return A.Compose(transforms, seed=0)


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """Load an albumentations pipeline saved as YAML (``.yaml``, ``.yml``) or JSON (anything else).

    Raises
    ------
    LeafprepError
        Naming the file, when it is missing or is not an albumentations pipeline.
    """
    import albumentations as A

    file = Path(path)
    data_format = "yaml" if file.suffix.lower() in (".yaml", ".yml") else "json"
    if not file.is_file():
        raise LeafprepError(str(file), "no such pipeline file", f"give a preset ({', '.join(PRESETS)}) or a YAML/JSON file")
    try:
        pipeline = A.load(str(file), data_format=data_format)
    except Exception as exc:  # albumentations raises many kinds: the message is what matters
        raise LeafprepError(
            str(file), f"is not an albumentations pipeline ({type(exc).__name__}: {exc})", "write it with albumentations.save(pipeline, path)"
        ) from None
    if not isinstance(pipeline, A.BaseCompose):
        pipeline = A.Compose([pipeline])
    return pipeline


def save_pipeline(pipeline: Pipeline, path: str | os.PathLike[str]) -> None:
    """Save a pipeline as YAML or JSON (by extension) with albumentations' own serialisation."""
    import albumentations as A

    file = Path(path)
    A.save(pipeline, str(file), data_format="yaml" if file.suffix.lower() in (".yaml", ".yml") else "json")


def resolve(spec: str | os.PathLike[str] | Pipeline, *, size: int = 28, channels: int = 1, gray: bool = True) -> Pipeline:
    """A pipeline from a preset name, a YAML/JSON file or an albumentations ``Compose`` (returned as is)."""
    if isinstance(spec, str) and spec in PRESETS:
        return preset(spec, size=size, channels=channels, gray=gray)
    if isinstance(spec, (str, os.PathLike)):
        if isinstance(spec, str) and not Path(spec).suffix:
            _check_preset(spec, channels)  # a mistyped preset name: say so
        return load_pipeline(spec)
    return spec


def _apply(pipeline: Pipeline, image: np.ndarray) -> np.ndarray:
    """One augmented copy of ``image``, with its shape, dtype and range."""
    work = image.astype(np.float32) if image.dtype != np.uint8 else image
    out = np.asarray(pipeline(image=work)["image"])
    if out.shape != image.shape:
        if out.size == image.size:
            out = out.reshape(image.shape)
        else:
            raise ParameterError(
                "pipeline", f"the pipeline changed the image shape from {image.shape} to {out.shape}", "augmentation must keep the size: add a Resize"
            )
    if image.dtype == np.uint8:
        return np.clip(out, 0, 255).astype(np.uint8)
    return np.clip(out, 0.0, 1.0).astype(image.dtype)


def _validate(images: np.ndarray, per_image_ndim: tuple[int, ...]) -> None:
    if images.ndim not in per_image_ndim:
        raise ParameterError("image", f"expected {' or '.join(f'{n}-d' for n in per_image_ndim)} arrays, got shape {images.shape}")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise ParameterError("image", f"images must be uint8 or float in [0, 1], got {images.dtype}")
    if images.dtype != np.uint8 and images.size and not (np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0):
        raise ParameterError("image", "float images must be finite and in [0, 1]")


def _pipeline_for(spec: Any, image: np.ndarray) -> Pipeline:
    channels = image.shape[2] if image.ndim == 3 else 1
    return resolve(spec, size=max(image.shape[:2]), channels=channels)


def augment(image: np.ndarray, pipeline: str | os.PathLike[str] | Pipeline = "digits", *, n: int = 1, seed: int = 0) -> np.ndarray:
    """``n`` augmented copies of one normalised image.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray
        uint8, or float in [0, 1] (C is 1 or 3).
    pipeline : str, path or albumentations Compose, optional
        A preset name (``"digits"``, ``"leaves"``; sized to the image), a
        YAML/JSON pipeline file, or a ``Compose``.
    n : int, optional
    seed : int, optional
        The same image, pipeline and seed give the same copies.

    Returns
    -------
    copies : (n, M, N) or (n, M, N, C) ndarray
        Same dtype and range as ``image``.

    Examples
    --------
    >>> image = np.zeros((28, 28), np.float32); image[8:20, 12:16] = 1.0
    >>> copies = augment(image, "digits", n=3, seed=1)
    >>> copies.shape, copies.dtype, bool(copies.max() <= 1.0)
    ((3, 28, 28), dtype('float32'), True)
    >>> np.array_equal(copies, augment(image, "digits", n=3, seed=1))
    True
    """
    image = np.asarray(image)
    _validate(image, (2, 3))
    if n < 0:
        raise ParameterError("n", f"n must be at least 0, got {n}")
    compose = _pipeline_for(pipeline, image)
    compose.set_random_seed(seed)
    return np.stack([_apply(compose, image) for _ in range(n)]) if n else np.empty((0, *image.shape), image.dtype)


def augment_batch(images: np.ndarray, pipeline: str | os.PathLike[str] | Pipeline = "digits", *, seed: int = 0) -> np.ndarray:
    """One augmented copy of every image of a batch ``(B, M, N)`` or ``(B, M, N, C)``; deterministic for a seed.

    Examples
    --------
    >>> batch = np.zeros((4, 28, 28, 1), np.uint8)
    >>> augment_batch(batch, "digits", seed=3).shape
    (4, 28, 28, 1)
    """
    images = np.asarray(images)
    _validate(images, (3, 4))
    if not len(images):
        return images.copy()
    compose = _pipeline_for(pipeline, images[0])
    compose.set_random_seed(seed)
    return np.stack([_apply(compose, image) for image in images])


# -- online: Keras preprocessing layers in the tf.data graph -------------------------------------


def keras_layers(name: str, *, size: int = 28, channels: int = 1, gray: bool = True, seed: int = 0) -> list[Any]:
    """The preset ``name`` as Keras preprocessing layers for float batches ``(B, H, W, C)`` in [0, 1].

    The same transforms and ranges as :func:`preset`: Keras' own layers where
    they are fast and right (flips, perspective, saturation, hue), and small
    layers of :mod:`leafprep._keras_layers` for the rest (one fused affine +
    elastic resampling, stroke width, blur, noise, brightness), each batched.
    Deterministic for a seed when the layers are called in order (a
    sequential ``Dataset.map``).
    """
    _check_preset(name, channels)
    import keras

    from ._keras_layers import Blur, Multiply, Noise, StrokeWidth, Warp

    k = size / 28.0
    seeds = iter(range(seed * 100 + 1, seed * 100 + 100))
    if name == "digits":
        return [
            Warp(
                rotate=12, shear=6, scale=(0.9, 1.1), shift=0.05, alpha=16 * k, sigma=4 * k, probability=0.3, affine_probability=0.6, seed=next(seeds)
            ),
            StrokeWidth(width=max(2, round(2 * k)), probability=0.2, seed=next(seeds)),
            Blur(sigma=(0.3 * k, 0.7 * k), probability=0.2, seed=next(seeds)),
            Noise(std=(0.02, 0.05), probability=0.2, seed=next(seeds)),
        ]
    layers = [
        Warp(rotate=180, shear=0, scale=(0.85, 1.05), shift=0.04, alpha=0, probability=0, seed=next(seeds)),
        keras.layers.RandomFlip("horizontal_and_vertical", seed=next(seeds)),
        keras.layers.RandomPerspective(factor=(0.3, 0.3), scale=0.1, seed=next(seeds)),
    ]
    if channels == 3:
        layers += [
            Multiply(low=0.85, high=1.15, probability=0.5, seed=next(seeds)),
            keras.layers.RandomSaturation((0.4, 0.6), value_range=(0, 1), seed=next(seeds)),
            keras.layers.RandomHue(0.03, value_range=(0, 1), seed=next(seeds)),
        ]
    elif gray:
        layers.append(Multiply(low=0.85, high=1.15, probability=0.5, seed=next(seeds)))
    return layers


_LOCAL = threading.local()


def tf_augmenter(
    spec: str | os.PathLike[str] | Pipeline, *, size: int, channels: int, gray: bool = True, seed: int = 0
) -> tuple[Callable[[Any, Any], Any], bool]:
    """A function ``(batch_index, images) -> images`` for ``tf.data``, and whether it may run in parallel.

    Presets run as Keras layers (:func:`keras_layers`): one batched graph op
    a transform, deterministic when mapped in order (``parallel`` is False;
    the ops themselves use every core). Pipelines from files (or a
    ``Compose``) run through albumentations in ``tf.numpy_function``, image by
    image, seeded by ``(seed, batch_index)``: deterministic in parallel.
    """
    from ._tf import tensorflow

    tf = tensorflow()
    if isinstance(spec, str) and spec in PRESETS:
        layers = keras_layers(spec, size=size, channels=channels, gray=gray, seed=seed)

        def with_keras(index: Any, images: Any) -> Any:
            for layer in layers:
                images = layer(images, training=True)
            return tf.clip_by_value(images, 0.0, 1.0)

        return with_keras, False
    compose = resolve(spec, size=size, channels=channels, gray=gray)
    key = id(compose)

    def run(index: np.ndarray, images: np.ndarray) -> np.ndarray:
        cache = getattr(_LOCAL, "pipelines", None)
        if cache is None:
            cache = _LOCAL.pipelines = {}
        if key not in cache:  # one copy a thread: a Compose holds its random state
            import copy

            cache[key] = copy.deepcopy(compose)
        pipeline = cache[key]
        pipeline.set_random_seed(int(np.uint32(seed * 1_000_003 + int(index))))
        return np.stack([_apply(pipeline, image) for image in images]) if len(images) else images

    def with_albumentations(index: Any, images: Any) -> Any:
        out = tf.numpy_function(run, [index, images], tf.float32, stateful=False)
        return tf.ensure_shape(out, images.shape)

    return with_albumentations, True
