"""Small Keras layers the online presets need and Keras lacks (imports Keras: load lazily).

Each works on float batches ``(B, H, W, C)`` in [0, 1], draws one random
decision an image from its own seed generator, and is the identity outside
training.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


class _PerImage(keras.layers.Layer):
    def __init__(self, probability: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probability = probability
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def _chosen(self, images: Any) -> Any:
        """A (B, 1, 1, 1) float mask: 1 for the images this layer changes."""
        draw = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), seed=self.generator)
        return ops.cast(draw < self.probability, images.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "probability": self.probability, "seed": self.seed}


class StrokeWidth(_PerImage):
    """Thicker or thinner strokes: a ``width`` x ``width`` dilation or erosion, half and half.

    Maximum (or minimum) over the ``width**2`` shifted copies of the image:
    cheaper on a CPU than ``ops.max_pool`` with stride 1.
    """

    def __init__(self, width: int = 2, probability: float = 0.3, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(probability, seed, **kwargs)
        self.width = width

    def call(self, images: Any, training: bool = True) -> Any:
        if not training:
            return images
        height, width = int(images.shape[1]), int(images.shape[2])
        before = (self.width - 1) // 2
        after = self.width - 1 - before
        padded = ops.pad(images, ((0, 0), (before, after), (before, after), (0, 0)))
        shifts = [padded[:, dy : dy + height, dx : dx + width, :] for dy in range(self.width) for dx in range(self.width)]
        thicker, thinner = shifts[0], shifts[0]
        for shifted in shifts[1:]:
            thicker, thinner = ops.maximum(thicker, shifted), ops.minimum(thinner, shifted)
        chosen = self._chosen(images)
        dilate = ops.cast(keras.random.uniform(ops.shape(chosen), seed=self.generator) < 0.5, images.dtype)
        changed = dilate * thicker + (1.0 - dilate) * thinner
        return chosen * changed + (1.0 - chosen) * images

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}


class Blur(_PerImage):
    """Gaussian blur with a sigma (pixels) drawn from ``sigma`` for each changed image, as two matrix products."""

    def __init__(self, sigma: tuple[float, float] = (0.3, 0.7), probability: float = 0.2, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(probability, seed, **kwargs)
        self.sigma = tuple(sigma)

    def call(self, images: Any, training: bool = True) -> Any:
        if not training:
            return images
        chosen = self._chosen(images)
        sigma = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), self.sigma[0], self.sigma[1], seed=self.generator)
        planes = ops.transpose(images, (0, 3, 1, 2))  # (B, C, H, W)
        rows = _gaussian_matrices(int(images.shape[1]), sigma)
        cols = _gaussian_matrices(int(images.shape[2]), sigma)
        blurred = ops.transpose(ops.matmul(ops.matmul(rows, planes), ops.transpose(cols, (0, 1, 3, 2))), (0, 2, 3, 1))
        return chosen * blurred + (1.0 - chosen) * images

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sigma": list(self.sigma)}


def _gaussian_matrices(side: int, sigma: Any) -> Any:
    """(B, 1, side, side) blurring matrices for per-image ``sigma`` (B, 1, 1, 1), rows normalised."""
    offsets = ops.cast(ops.arange(side)[:, None] - ops.arange(side)[None, :], "float32")
    weights = ops.exp(-0.5 * ops.square(offsets[None, None] / sigma))
    return weights / ops.sum(weights, axis=-1, keepdims=True)


class Noise(_PerImage):
    """Gaussian noise with a standard deviation drawn from ``std`` for each changed image, clipped to [0, 1]."""

    def __init__(self, std: tuple[float, float] = (0.02, 0.05), probability: float = 0.2, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(probability, seed, **kwargs)
        self.std = tuple(std)

    def call(self, images: Any, training: bool = True) -> Any:
        if not training:
            return images
        chosen = self._chosen(images)
        scale = keras.random.uniform(ops.shape(chosen), self.std[0], self.std[1], seed=self.generator)
        noise = keras.random.normal(ops.shape(images), seed=self.generator) * scale * chosen
        return ops.clip(images + noise, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "std": list(self.std)}


class Multiply(_PerImage):
    """Brightness times a factor in ``[low, high]``: black stays black."""

    def __init__(self, low: float = 0.85, high: float = 1.15, probability: float = 0.5, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(probability, seed, **kwargs)
        self.low, self.high = low, high

    def call(self, images: Any, training: bool = True) -> Any:
        if not training:
            return images
        chosen = self._chosen(images)
        factor = keras.random.uniform(ops.shape(chosen), self.low, self.high, seed=self.generator)
        return ops.clip(images * (chosen * factor + (1.0 - chosen)), 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "low": self.low, "high": self.high}


class Warp(_PerImage):
    """Rotation, shear, scale and shift about the centre, then an elastic distortion, in one resampling.

    Each image gets, with ``affine_probability``, its own affine transform (angles in degrees drawn from
    ``[-rotate, rotate]`` and ``[-shear, shear]``, a scale from ``scale``, a
    shift of up to ``shift`` times the side) and, with ``probability``, the
    elastic distortion of Simard et al. (2003): uniform noise in [-1, 1] a
    pixel and axis, smoothed by a Gaussian of ``sigma`` pixels, times
    ``alpha`` pixels. One bilinear sampling for both (black outside).

    Keras has the affine parts as four layers (one resampling each; fused here
    they cost a quarter), and its ``RandomElasticTransform`` draws one
    displacement for both axes and, in a ``tf.data`` pipeline (unknown batch
    size), warps only the first image of a batch and copies it over the others
    (Keras 3.15).
    """

    def __init__(
        self,
        rotate: float = 12.0,
        shear: float = 8.0,
        scale: tuple[float, float] = (0.9, 1.1),
        shift: float = 0.06,
        alpha: float = 34.0,
        sigma: float = 4.0,
        probability: float = 0.5,
        affine_probability: float = 1.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(probability, seed, **kwargs)
        self.rotate, self.shear, self.scale, self.shift = rotate, shear, tuple(scale), shift
        self.alpha, self.sigma, self.affine_probability = alpha, sigma, affine_probability

    def call(self, images: Any, training: bool = True) -> Any:
        if not training:
            return images
        import math

        batch = ops.shape(images)[0]
        height, width = int(images.shape[1]), int(images.shape[2])

        def draw(low: float, high: float) -> Any:
            return keras.random.uniform((batch, 1, 1), low, high, seed=self.generator)

        on = ops.cast(draw(0.0, 1.0) < self.affine_probability, "float32")  # which images get the affine part
        angle = draw(-self.rotate, self.rotate) * (math.pi / 180.0) * on
        slant = ops.tan(draw(-self.shear, self.shear) * (math.pi / 180.0)) * on
        zoom = 1.0 + (draw(*self.scale) - 1.0) * on
        ty, tx = draw(-self.shift, self.shift) * height * on, draw(-self.shift, self.shift) * width * on
        cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
        if not (self.alpha > 0 and self.probability > 0):  # affine only: one ImageProjectiveTransform, faster
            return _affine(images, angle, slant, zoom, ty, tx, cy, cx)
        v = ops.cast(ops.arange(height), "float32")[None, :, None] - cy - ty
        u = ops.cast(ops.arange(width), "float32")[None, None, :] - cx - tx
        cos, sin = ops.cos(angle), ops.sin(angle)
        u1, v1 = cos * u + sin * v, cos * v - sin * u  # undo the rotation
        rows, cols = v1 / zoom + cy, (u1 - slant * v1) / zoom + cx  # undo the shear and the scale
        if self.alpha > 0 and self.probability > 0:
            noise = keras.random.uniform((batch, 2, height, width), -1.0, 1.0, seed=self.generator)
            smooth_rows, smooth_cols = _gaussian_matrix(height, self.sigma), _gaussian_matrix(width, self.sigma)
            field = ops.matmul(ops.matmul(smooth_rows, noise), ops.transpose(smooth_cols))
            field = field * (self.alpha * self._chosen(images))
            rows, cols = rows + field[:, 0], cols + field[:, 1]
        return _bilinear_sample(images, rows, cols)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rotate": self.rotate,
            "shear": self.shear,
            "scale": list(self.scale),
            "shift": self.shift,
            "alpha": self.alpha,
            "sigma": self.sigma,
            "affine_probability": self.affine_probability,
        }


def _affine(images: Any, angle: Any, slant: Any, zoom: Any, ty: Any, tx: Any, cy: float, cx: float) -> Any:
    """The transform of :class:`Warp` without the elastic part, as ``ops.image.affine_transform`` (per-image (B, 1, 1) parameters)."""
    cos, sin = ops.cos(angle), ops.sin(angle)
    a0, a1 = (cos + slant * sin) / zoom, (sin - slant * cos) / zoom
    b0, b1 = -sin / zoom, cos / zoom
    a2 = cx - a0 * (cx + tx) - a1 * (cy + ty)
    b2 = cy - b0 * (cx + tx) - b1 * (cy + ty)
    zero = ops.zeros_like(a0)
    transform = ops.reshape(ops.concatenate([a0, a1, a2, b0, b1, b2, zero, zero], axis=-1), (-1, 8))
    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant", fill_value=0.0)


def _bilinear_sample(images: Any, rows: Any, cols: Any) -> Any:
    """Sample ``images`` (B, H, W, C) at the (B, H, W) source coordinates ``rows``, ``cols``; black outside."""
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    top, left = ops.floor(rows), ops.floor(cols)
    flat = ops.reshape(images, (-1, channels))
    base = ops.arange(batch)[:, None, None] * (height * width)
    result = ops.zeros_like(images)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        r, c = top + dy, left + dx
        weight = (1.0 - ops.abs(rows - r)) * (1.0 - ops.abs(cols - c))
        inside = ops.cast((r >= 0) & (r <= ops.cast(height - 1, r.dtype)) & (c >= 0) & (c <= ops.cast(width - 1, c.dtype)), images.dtype)
        r = ops.clip(ops.cast(r, "int32"), 0, height - 1)
        c = ops.clip(ops.cast(c, "int32"), 0, width - 1)
        values = ops.take(flat, ops.reshape(base + r * width + c, (-1,)), axis=0)
        result = result + ops.reshape(values, shape) * (weight * inside)[..., None]
    return result


def _gaussian_matrix(side: int, sigma: float) -> Any:
    """(side, side) matrix that blurs a vector with a Gaussian of ``sigma``, zero outside."""
    import numpy as np

    offsets = np.arange(side)[:, None] - np.arange(side)[None, :]
    radius = np.arange(-int(3 * sigma), int(3 * sigma) + 1)
    total = np.exp(-0.5 * (radius / sigma) ** 2).sum()
    matrix = np.where(np.abs(offsets) <= 3 * sigma, np.exp(-0.5 * (offsets / sigma) ** 2), 0.0) / total
    return ops.convert_to_tensor(matrix.astype("float32"))
