"""``leafprep visualize``: what a trained network learned.

Functions return arrays (for your own pictures) and matplotlib figures
(headless, Agg); :func:`save` writes PNG, SVG or PDF by the extension.

- :func:`weight_maps` / :func:`weights_figure`: a softmax model's weights, one
  map a class, on a diverging colour map centred at zero with one symmetric
  scale (blue: ink there makes the class likely; red: unlikely); for a conv-net,
  the first layer's filters.
- :func:`dream` / :func:`dream_figure`: class visualisation by activation
  maximisation, regularised by jitter, blur and total variation.
- :func:`saliency`, :func:`gradcam` / :func:`attention_figure`: where the net
  looked for an input, over the normalised input and over the photo.
- :func:`activations` / :func:`activations_figure`: every conv layer's feature maps.

All are deterministic for a seed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from leafprep.errors import ParameterError

__all__ = [
    "WHAT",
    "activations",
    "activations_figure",
    "attention_figure",
    "dream",
    "dream_figure",
    "dreams",
    "gradcam",
    "object_on_photo",
    "saliency",
    "save",
    "weight_maps",
    "weights_figure",
]

#: What ``leafprep visualize --what`` can draw.
WHAT = ("weights", "dream", "saliency", "gradcam", "activations")
#: A dream on a prior is kept once the network gives its class this probability.
DREAM_CONFIDENCE = 0.999
#: Weight of the latent code's prior, ``|z|^2 / 2``, against the class's log-probability. At 0.01 the pull
#: towards the average code held some classes short of sure (a faint "1", leaf species the net never
#: reached 0.999 for); 0.001 lets them get there (docs/benchmarks.md, issue 15).
PRIOR_WEIGHT = 0.001
#: Random starts searched for each dream on a prior; the best ones are kept.
DREAM_STARTS = 4


def _tf() -> Any:
    from leafprep._tf import tensorflow

    return tensorflow()


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save(figure: Any, path: str | os.PathLike[str]) -> None:
    """Write a figure as PNG, SVG or PDF (by the extension of ``path``)."""
    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix not in ("png", "svg", "pdf"):
        raise ParameterError("out", f"the picture must be .png, .svg or .pdf, got {path}")
    figure.savefig(path, dpi=120, bbox_inches="tight")


def _conv_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def weight_maps(model: Any) -> np.ndarray:
    """The weights as pictures.

    Returns
    -------
    maps : ndarray of float32
        For a model whose first weighted layer is a Dense layer on the
        flattened input (``softmax``): ``(classes, H, W)`` (channels averaged
        for rgb inputs). For a conv-net: the first convolution's filters,
        ``(filters, kh, kw)`` (input channels averaged).
    """
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = np.asarray(layer.kernel)  # (kh, kw, in, out)
            return np.moveaxis(kernel.mean(axis=2), -1, 0).astype(np.float32)
        if isinstance(layer, keras.layers.Dense):
            kernel = np.asarray(layer.kernel)  # (H*W*C, classes)
            height, width, channels = model.input_shape[1:]
            return np.moveaxis(kernel.reshape(height, width, channels, -1).mean(axis=2), -1, 0).astype(np.float32)
    raise ParameterError("model", "the model has no Dense or Conv2D layer to draw")


def _grid(count: int) -> tuple[int, int]:
    columns = min(count, 5 if count <= 10 else 8)
    return -(-count // columns), columns


def weights_figure(model: Any, labels: list[str]) -> Any:
    """One map a class (softmax) or a filter (conv-net) on one symmetric diverging scale, with a colour bar.

    The scale runs to the 99.5th percentile of the absolute weights (the rarer extremes show at full colour).
    """
    import keras

    maps = weight_maps(model)
    first = next(layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)))
    first_is_conv = isinstance(first, keras.layers.Conv2D)
    rows, columns = _grid(len(maps))
    figure = _figure(1.3 * columns + 1.2, 1.45 * rows + 0.6)
    axes = figure.subplots(rows, columns, squeeze=False)
    # One symmetric scale for all maps, at the 99.5th percentile of |w|: a few border pixels that
    # almost never see ink get extreme weights and would otherwise wash every map out.
    scale = float(np.percentile(np.abs(maps), 99.5)) or 1.0
    image = None
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(maps):
            image = ax.imshow(maps[index], cmap="RdBu", vmin=-scale, vmax=scale, interpolation="nearest")
            title = f"filter {index + 1}" if first_is_conv else labels[index]
            ax.set_title(title[:14], fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.8, label="weight (blue: evidence for, red: against)")
    figure.suptitle("first-layer filters" if first_is_conv else "what the network thinks each class looks like")
    return figure


def _blur(image: Any, sigma: float) -> Any:
    tf = _tf()
    radius = max(1, int(2 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    channels = int(image.shape[-1])
    kernel = tf.constant(np.tile((taps[:, None] * taps[None, :])[:, :, None, None], (1, 1, channels, 1)))
    return tf.nn.depthwise_conv2d(image, kernel, [1, 1, 1, 1], "SAME")


def dream(
    model: Any,
    class_index: int,
    *,
    prior: Any = None,
    steps: int | None = None,
    learning_rate: float | None = None,
    seed: int = 0,
    tv: float = 0.02,
    jitter: int = 2,
) -> np.ndarray:
    """An input the network takes for ``class_index``.

    With a ``prior`` (the decoder of :mod:`trainers.prior`), the dream is an
    image among those the decoder can draw, that is among images like the
    training data, that the network is sure of: Adam on the latent code ``z``
    from :data:`DREAM_STARTS` random starts, maximising ``min(log p(class),
    log DREAM_CONFIDENCE) - PRIOR_WEIGHT |z|^2 / 2`` (:data:`PRIOR_WEIGHT`; the
    second term is the code's standard normal prior: it keeps the dream a
    typical member of its class); a code
    is kept as soon as ``p(class)`` reaches :data:`DREAM_CONFIDENCE`, so that
    dreams from other starts stay different, and the best starts by that
    objective are the dreams. Without one, activation maximisation
    on the pixels: gradient ascent on ``log p(class)`` from faint noise, with
    a random shift (jitter) of up to ``jitter`` pixels at every step, a
    Gaussian blur every 10 steps (weaker as the dream settles), total
    variation weighted by ``tv``, and the image kept in [0, 1]. That shows
    what the network alone responds to.

    Parameters
    ----------
    model : keras.Model
        A model of :mod:`trainers.models` (ends in a softmax Dense layer).
    class_index : int
    prior : keras.Model, optional
        A decoder from a latent code to an image of the model's input shape.
    steps, learning_rate : optional
        Gradient steps and Adam's step size: 300 and 0.1 on a prior, 150 and 0.05 on pixels.
    seed : int, optional
        The starting code or noise (and the jitter): the same seed gives the same dream.
    tv, jitter : optional
        Regularisation of the pixel search (unused with a prior).

    Returns
    -------
    image : (H, W, C) ndarray of float32 in [0, 1]
    """
    if prior is not None:
        return dreams(model, class_index, 1, prior=prior, steps=steps, learning_rate=learning_rate, seed=seed)[0]
    tf = _tf()
    steps = 150 if steps is None else steps
    height, width, channels = model.input_shape[1:]
    rng = np.random.default_rng(seed)
    image = tf.Variable(rng.uniform(0.0, 0.1, (1, height, width, channels)).astype(np.float32))
    import keras

    optimizer = keras.optimizers.Adam(0.05 if learning_rate is None else learning_rate)
    shifts = rng.integers(-jitter, jitter + 1, size=(steps, 2))
    for step in range(steps):
        with tf.GradientTape() as tape:
            shifted = tf.roll(image, shift=[int(shifts[step, 0]), int(shifts[step, 1])], axis=[1, 2])
            log_probability = tf.nn.log_softmax(_logits(model, shifted))[0, class_index]  # stable where p underflows
            loss = -log_probability + tv * tf.reduce_mean(tf.image.total_variation(image)) / (height * width)
        gradient = tape.gradient(loss, image)
        optimizer.apply_gradients([(gradient, image)])
        if step % 10 == 9 and step < steps - 20:
            image.assign(_blur(image, 0.5 + 0.5 * (1 - step / steps)))
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
    return np.asarray(image[0].numpy(), np.float32)


def dreams(
    model: Any, class_index: int, count: int, *, prior: Any = None, steps: int | None = None, learning_rate: float | None = None, seed: int = 0
) -> np.ndarray:
    """``count`` dreams of one class (see :func:`dream`): (count, H, W, C) float32 in [0, 1].

    On a prior the codes are searched together, one batch; on pixels dream
    ``i`` uses seed ``seed + 1000 * i``. The same arguments give the same dreams.
    """
    if count < 1:
        raise ParameterError("per_class", f"must be at least 1, got {count}")
    if prior is None:
        return np.stack([dream(model, class_index, steps=steps, learning_rate=learning_rate, seed=seed + 1000 * i) for i in range(count)])
    tf = _tf()
    import keras

    expected, drawn = tuple(model.input_shape[1:]), tuple(prior.output_shape[1:])
    if expected != drawn:
        raise ParameterError("prior", f"draws {drawn} images but the network reads {expected}")
    latent = int(prior.input_shape[-1])
    # Several starts a dream: from some the search gets stuck where the network stays unsure.
    start = np.random.default_rng(seed).normal(0.0, 1.0, (DREAM_STARTS * count, latent)).astype(np.float32)
    code = tf.Variable(start)
    optimizer = keras.optimizers.Adam(0.1 if learning_rate is None else learning_rate)
    enough = float(np.log(DREAM_CONFIDENCE))

    def objective(log_probability: Any, codes: Any) -> Any:
        return tf.minimum(log_probability, enough) - 0.5 * PRIOR_WEIGHT * tf.reduce_sum(tf.square(codes), axis=1)

    @tf.function
    def step() -> Any:
        with tf.GradientTape() as tape:
            log_probability = tf.nn.log_softmax(_logits(model, prior(code, training=False)))[:, class_index]
            loss = -tf.reduce_sum(objective(log_probability, code))
        optimizer.apply_gradients([(tape.gradient(loss, code), code)])
        return log_probability

    # Each code is kept where the network first becomes sure enough of it: searched on, all codes
    # would end at the one most typical sure picture, and the dreams of a class would be the same.
    final, done = start.copy(), np.zeros(len(start), bool)
    for _ in range(300 if steps is None else steps):
        before = code.numpy()
        sure = (np.asarray(step()) >= enough) & ~done
        final[sure], done = before[sure], done | sure
    final[~done] = code.numpy()[~done]
    images = prior(tf.constant(final), training=False)
    scores = np.asarray(objective(tf.nn.log_softmax(_logits(model, images))[:, class_index], tf.constant(final)))
    best = np.sort(np.argsort(-scores, kind="stable")[:count])
    return np.clip(np.asarray(images, np.float32)[best], 0.0, 1.0)


def dream_figure(
    model: Any, labels: list[str], *, prior: Any = None, per_class: int = 1, seed: int = 0, steps: int | None = None
) -> tuple[Any, np.ndarray, np.ndarray]:
    """``per_class`` dreams of every class, and the net's probability for its own class: (figure, dreams, probabilities).

    ``dreams`` is (classes x per_class, H, W, C), class by class; one row of the figure a class when ``per_class`` > 1.
    """
    classes = len(labels)
    pictures = np.concatenate([dreams(model, index, per_class, prior=prior, steps=steps, seed=seed + index) for index in range(classes)])
    own = np.repeat(np.arange(classes), per_class)
    probabilities = np.asarray(model.predict(pictures, verbose=0))[np.arange(len(own)), own]
    if per_class == 1:
        rows, columns = _grid(classes)
    else:
        rows, columns = classes, per_class
    figure = _figure(1.3 * columns, 1.5 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(pictures):
            picture = pictures[index]
            ax.imshow(picture[:, :, 0] if picture.shape[2] == 1 else picture, cmap="viridis" if picture.shape[2] == 1 else None, vmin=0, vmax=1)
            ax.set_title(f"{labels[own[index]][:12]} {probabilities[index]:.2f}", fontsize=8)
    how = "among pictures like its training data" if prior is not None else "by activation maximisation, no prior"
    figure.suptitle(f"dreamt up {how}: what the network would call each class (its probability)")
    return figure, pictures, probabilities


def saliency(model: Any, image: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """|d p(class) / d pixel|, the largest over channels, scaled to [0, 1]: (H, W). Default class: the predicted one."""
    tf = _tf()
    batch = tf.constant(image[None].astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(batch)
        output = model(batch, training=False)[0]
        index = int(tf.argmax(output)) if class_index is None else class_index
        score = output[index]
    gradient = np.abs(np.asarray(tape.gradient(score, batch)[0])).max(axis=-1)
    return (gradient / (gradient.max() or 1.0)).astype(np.float32)


def gradcam(model: Any, image: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Grad-CAM on the last convolution, resized to the input and scaled to [0, 1]: (H, W)."""
    import cv2

    tf = _tf()
    convs = _conv_layers(model)
    if not convs:
        raise ParameterError("what", "gradcam needs a model with convolutions (this one has none): use saliency")
    batch = tf.constant(image[None].astype(np.float32))
    with tf.GradientTape() as tape:
        seen, output = _forward(model, batch)
        features = seen[convs[-1].name]
        index = int(tf.argmax(output[0])) if class_index is None else class_index
        score = output[0, index]
    gradient = tape.gradient(score, features)[0]
    weights = tf.reduce_mean(gradient, axis=(0, 1))
    cam = np.maximum(np.asarray(tf.reduce_sum(features[0] * weights, axis=-1)), 0.0)
    cam = cv2.resize(cam.astype(np.float32), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return (cam / (cam.max() or 1.0)).astype(np.float32)


def activations(model: Any, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The feature maps of every conv layer for one input: [(layer name, (h, w, filters))]."""

    convs = _conv_layers(model)
    if not convs:
        raise ParameterError("what", "the model has no convolutions: its activations are not pictures")
    seen, _ = _forward(model, _tf().constant(image[None].astype(np.float32)))
    return [(layer.name, np.asarray(seen[layer.name][0])) for layer in convs]


def _logits(model: Any, batch: Any) -> Any:
    """The scores before the final softmax (the models of :mod:`trainers.models` end in a softmax Dense layer)."""
    import keras

    last = model.layers[-1]
    if not (isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "") == "softmax"):
        raise ParameterError("model", "dreams need a model that ends in a softmax Dense layer")
    _, x = _forward(model, batch, model.layers[:-1])
    return keras.ops.matmul(x, last.kernel) + last.bias


def _forward(model: Any, batch: Any, layers: list[Any] | None = None) -> tuple[dict[str, Any], Any]:
    """Run a chain model (or its first ``layers``) layer by layer, in inference: every layer's output by name, and the last output.

    The models of :mod:`trainers.models` are chains; calling the layers in turn
    keeps every intermediate tensor on a gradient tape, which a probe model
    built from a loaded ``Sequential`` does not always do.
    """
    import keras

    seen: dict[str, Any] = {}
    x = batch
    for layer in model.layers if layers is None else layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        x = layer(x, training=False)
        seen[layer.name] = x
    return seen, x


def activations_figure(model: Any, image: np.ndarray, *, per_layer: int = 16) -> Any:
    """The first ``per_layer`` feature maps of each conv layer, one row a layer."""
    maps = activations(model, image)
    figure = _figure(1.1 * (per_layer + 1), 1.2 * len(maps) + 0.4)
    axes = figure.subplots(len(maps), per_layer + 1, squeeze=False)
    for row, (name, values) in enumerate(maps):
        axes[row, 0].imshow(image[:, :, 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_title(name[:12], fontsize=7)
        for col in range(per_layer):
            ax = axes[row, col + 1]
            if col < values.shape[-1]:
                ax.imshow(values[:, :, col], cmap="magma")
        for ax in axes[row]:
            ax.axis("off")
    figure.suptitle("feature maps of each conv layer (first column: the input)")
    return figure


def attention_figure(
    heat: np.ndarray, image: np.ndarray, photo: np.ndarray | None = None, box: tuple[int, int, int, int] | None = None, title: str = ""
) -> Any:
    """The heat map over the normalised input and, where given, over the photo (placed on the object's box)."""
    import cv2

    panels = 2 if photo is None else 3
    figure = _figure(3.2 * panels, 3.4)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    picture = image[:, :, 0] if image.shape[2] == 1 else image
    axes[0].imshow(picture, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("normalised input", fontsize=9)
    axes[1].imshow(picture, cmap="gray", vmin=0, vmax=1)
    axes[1].imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    axes[1].set_title(title or "where the net looked", fontsize=9)
    if photo is not None:
        overlay = np.zeros(photo.shape[:2], np.float32)
        x, y, w, h = box or (0, 0, photo.shape[1], photo.shape[0])
        content = _content_box(image)
        cx, cy, cw, ch = content
        patch = heat[cy : cy + ch, cx : cx + cw]
        overlay[y : y + h, x : x + w] = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR)
        axes[2].imshow(photo)
        axes[2].imshow(overlay, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[2].set_title("on the photo", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return figure


def object_on_photo(steps: Any) -> tuple[np.ndarray | None, tuple[int, int, int, int] | None]:
    """The upright photo of a normalisation's stages and the box of the object found in it (None, None without stages)."""
    from leafprep.geometry import bounding_box

    if steps is None:
        return None, None
    return steps.photo, bounding_box(steps.chosen)


def _content_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, w, h) of the object in a normalised image (its non-black pixels)."""
    values = image.max(axis=-1) if image.ndim == 3 else image
    rows, cols = np.flatnonzero(values.max(axis=1) > 0.05), np.flatnonzero(values.max(axis=0) > 0.05)
    if not rows.size:
        return 0, 0, values.shape[1], values.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
