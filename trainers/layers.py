"""Layers of leafprep's own that a saved model may hold (registered with Keras, so runs load in safe mode).

:class:`Deskew` shears each image upright inside the model, as
:func:`leafprep.geometry.deskew` does to one image: a slanted 7 and an upright
7 then fall on the same pixels, which is what a one-layer network (one weight
a pixel) needs most (LeCun et al. 1998: a linear classifier's MNIST error goes
from 12% to 8.4% with deskewed inputs).
"""

from __future__ import annotations

from typing import Any

from leafprep._tf import tensorflow

tensorflow()  # quietly
import keras  # noqa: E402  (after TensorFlow's quiet import)

__all__ = ["Deskew"]


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
