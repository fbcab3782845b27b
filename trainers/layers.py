"""Layers of leafprep's own that a saved model may hold (registered with Keras, so runs load in safe mode).

:class:`Deskew` shears each image upright inside the model, as
:func:`leafprep.geometry.deskew` does to one image: a slanted 7 and an upright
7 then fall on the same pixels, which is what a one-layer network (one weight
a pixel) needs most (LeCun et al. 1998: a linear classifier's MNIST error goes
from 12% to 8.4% with deskewed inputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leafprep._tf import tensorflow

tensorflow()  # quietly
import keras  # noqa: E402  (after TensorFlow's quiet import)

__all__ = ["Deskew", "Standardize"]


@keras.saving.register_keras_serializable(package="leafprep")
class Deskew(keras.layers.Layer):
    """Shear each image horizontally so that its main axis is vertical (second moments of its ink).

    For images ``(batch, H, W, C)`` with ink bright on dark (as ``leafprep
    build`` writes digits): the mixed and vertical central moments of the
    channel mean give the slant ``mu11 / mu02``; each row moves sideways by the
    slant times its height above the centre of mass, sampled linearly, with
    zero brought in at the sides. The centre-of-mass row stays where it is and
    an upright image is left as it is. It has no weights, runs inside the
    model (training, prediction, dreams alike) and passes gradients to its input.
    """

    def call(self, images: Any) -> Any:
        ops = keras.ops
        images = ops.convert_to_tensor(images)
        height, width = images.shape[1], images.shape[2]
        ink = ops.mean(images, axis=-1)  # (batch, H, W)
        rows = ops.reshape(ops.arange(height, dtype=ink.dtype), (1, height, 1))
        columns = ops.reshape(ops.arange(width, dtype=ink.dtype), (1, 1, width))
        total = ops.sum(ink, axis=(1, 2), keepdims=True)
        safe = ops.where(total > 0, total, ops.ones_like(total))
        centre_row = ops.sum(ink * rows, axis=(1, 2), keepdims=True) / safe
        centre_column = ops.sum(ink * columns, axis=(1, 2), keepdims=True) / safe
        mixed = ops.sum(ink * (rows - centre_row) * (columns - centre_column), axis=(1, 2), keepdims=True)
        vertical = ops.sum(ink * ops.square(rows - centre_row), axis=(1, 2), keepdims=True)
        flat = vertical <= 1e-6 * ops.maximum(total, ops.ones_like(total))  # no ink, or a single row of it
        slant = ops.where(flat, ops.zeros_like(vertical), mixed / ops.where(flat, ops.ones_like(vertical), vertical))
        source = columns + slant * (rows - centre_row)  # (batch, H, W): where each output pixel reads its row
        left = ops.floor(source)
        weight = ops.expand_dims(source - left, -1)
        channels_first = ops.transpose(images, (0, 3, 1, 2))  # (batch, C, H, W): gather along the last axis

        def tap(column: Any) -> Any:
            inside = ops.logical_and(column >= 0, column <= width - 1)
            index = ops.cast(ops.clip(column, 0, width - 1), "int32")
            index = ops.broadcast_to(ops.expand_dims(index, 1), ops.shape(channels_first))
            values = ops.transpose(ops.take_along_axis(channels_first, index, axis=3), (0, 2, 3, 1))
            return values * ops.cast(ops.expand_dims(inside, -1), values.dtype)

        return tap(left) * (1 - weight) + tap(left + 1) * weight

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="leafprep")
class Standardize(keras.layers.Layer):
    """Scale leaf descriptors by the training split's mean and spread, inside the model.

    ``(x - mean) / std``, clipped to [-8, 8] (a leaf far outside what training
    saw cannot swamp the rest); a descriptor that is unknown (NaN: a size in
    millimetres without a scale) or had no spread in training gives 0, the
    training mean. The mean and spread come from ``dataset_info.json`` and are
    saved with the model, so a run reads raw descriptors wherever it goes.
    """

    def __init__(self, mean: list[float], std: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.centre = tuple(float(v) for v in mean)
        self.spread = tuple(float(v) for v in std)

    def call(self, values: Any) -> Any:
        ops = keras.ops
        values = ops.convert_to_tensor(values, dtype="float32")
        mean = ops.convert_to_tensor(np.asarray(self.centre, np.float32))
        std = ops.convert_to_tensor(np.asarray(self.spread, np.float32))
        used = ops.logical_and(ops.greater(std, 0.0), ops.logical_not(ops.isnan(values)))
        scaled = (ops.where(used, values, mean) - mean) / ops.where(ops.greater(std, 0.0), std, 1.0)
        return ops.clip(ops.where(used, scaled, 0.0), -8.0, 8.0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": list(self.centre), "std": list(self.spread)}
