"""A picture prior for dreams: a small generative model trained on a run's own records.

Activation maximisation alone finds whatever input excites the network most:
for a digit net that is a texture of strokes, not a digit. Searching instead
the latent space of a generative model of the training images keeps every
candidate on the data's own manifold, so a dream is *the training-like image
the network is most sure of* (:func:`trainers.visualize.dream`).

Two kinds (:data:`KINDS`), both small on purpose (two to four strided
convolutions each way and a short code):

``vae``
    A variational autoencoder (16-number code): about 2.5 minutes on MNIST on
    a 2-core CPU. Its pictures are blurred averages: on MNIST a thin "1"
    comes out with a grey square across its middle, and on a few hundred
    pictures it collapses to one average picture whatever its code (the 747
    Swedish training leaves: variety 0.004).
``ae`` (the default, ``auto``)
    A deterministic autoencoder (32-number code, a small L2 penalty on the
    code) followed by a Gaussian fitted to the codes of the training images:
    the decoder reads a standard normal code, maps it through the Gaussian's
    mean and Cholesky factor, and draws. Without a KL term it cannot
    collapse, and its pictures are sharp: on MNIST (about 2 minutes) and on
    the Swedish leaves its dreams are read as their class by a separately
    trained net at least as often as the VAE's (docs/benchmarks.md).

Either way only the decoder is needed for dreams, and it reads a code ``z``
with a standard normal prior; it is cached in the run folder::

    dream-prior.keras   the decoder: latent code (latent,) -> image (H, W, C) in [0, 1]
    dream-prior.json    its kind, what it was trained on, for how long, and its final loss

The decoder is a plain Keras model of built-in layers: it loads in safe mode.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from leafprep.errors import LeafprepError

from .runs import Run

__all__ = [
    "KINDS",
    "LATENT",
    "MIN_VARIETY",
    "PRIOR_FILE",
    "PRIOR_INFO",
    "DEFAULT_KIND",
    "decoder_for",
    "load_prior",
    "prior_images",
    "train_prior",
    "variety",
]

PRIOR_FILE = "dream-prior.keras"
PRIOR_INFO = "dream-prior.json"
#: Kinds of prior :func:`train_prior` trains.
KINDS = ("vae", "ae")
#: Length of the latent code, by kind.
LATENT = {"vae": 16, "ae": 32}
#: The kind ``auto`` trains.
DEFAULT_KIND = "ae"
# Weight of the autoencoder's code penalty, mean |code|^2 against the summed reconstruction loss.
_CODE_PENALTY = 1.0
# Training length in pixels seen (batches x batch size x pixels): 6 MNIST epochs for the VAE, 4 for the
# autoencoder (its dreams were as good after 4 as after 6, in 110 s instead of 168 s); fewer passes for larger images.
_PIXEL_BUDGET = {"vae": 6 * 60_000 * 28 * 28, "ae": 4 * 60_000 * 28 * 28}
_BATCH = {"vae": 128, "ae": 64}
_MIN_STEPS = {"vae": 200, "ae": 2000}
#: Below this :func:`variety` a prior draws one picture whatever its code: ``visualize`` warns.
MIN_VARIETY = 0.03


def _stages(size: int) -> int:
    """Stride-2 stages each way: the code's picture is about 7 pixels across."""
    return max(1, min(4, round(math.log2(max(size, 8) / 7))))


def _networks(shape: tuple[int, int, int], latent: int) -> tuple[Any, Any]:
    """Encoder (image -> mean and log variance of the code) and decoder (code -> image)."""
    import keras

    layers = keras.layers
    height, width, channels = shape
    stages = _stages(max(height, width))
    widths = [32 * 2**i for i in range(stages)]
    image = keras.Input(shape)
    x = image
    for filters in widths:
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    encoder = keras.Model(image, [layers.Dense(latent, name="mean")(x), layers.Dense(latent, name="log_variance")(x)], name="encoder")

    side_h, side_w = -(-height // 2**stages), -(-width // 2**stages)
    code = keras.Input((latent,))
    y = layers.Dense(128, activation="relu")(code)
    y = layers.Dense(side_h * side_w * widths[-1], activation="relu")(y)
    y = layers.Reshape((side_h, side_w, widths[-1]))(y)
    for filters in reversed(widths):
        y = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(y)
    y = layers.Conv2D(channels, 3, padding="same", activation="sigmoid")(y)
    if (side_h * 2**stages, side_w * 2**stages) != (height, width):
        y = layers.Cropping2D(((0, side_h * 2**stages - height), (0, side_w * 2**stages - width)))(y)
    decoder = keras.Model(code, y, name="decoder")
    return encoder, decoder


def prior_images(run: Run) -> np.ndarray:
    """The training images of ``run``'s dataset, (N, H, W, C) float32 in [0, 1].

    Raises
    ------
    LeafprepError
        The dataset the run was trained on is gone: says how to dream without a prior.
    """
    from leafprep.records import load, reading

    dataset = Path(str(run.settings.get("dataset", "")))
    if not (dataset / "dataset_info.json").is_file():
        raise LeafprepError(
            str(run.folder),
            f"its dream prior is learnt from the run's training records, and they are gone ({dataset} has no dataset_info.json)",
            "rebuild the dataset there with 'leafprep build', or dream without a prior: --prior none",
        )
    with reading(dataset, ("train",)):
        batches = [np.asarray(images, np.float32) for images, _ in load(dataset, "train", batch_size=1024)]
    return np.concatenate(batches)


def _known_kind(kind: str) -> str:
    """``kind`` itself when it is one of :data:`KINDS` or ``auto``; else a ValueError that lists them."""
    if kind != "auto" and kind not in KINDS:
        raise ValueError(f"unknown prior kind {kind!r}: one of {', '.join(KINDS)} or auto")
    return kind


def train_prior(
    images: np.ndarray,
    *,
    kind: str = "auto",
    latent: int | None = None,
    seed: int = 0,
    steps: int | None = None,
    verbose: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Train a prior of ``kind`` on ``images`` and return its decoder and what it did.

    Parameters
    ----------
    images : (N, H, W, C) ndarray of float in [0, 1]
    kind : {"vae", "ae", "auto"}, optional
        A variational autoencoder, or a deterministic one whose codes are then fitted by a Gaussian
        (see the module); ``auto``: :data:`DEFAULT_KIND`.
    latent : int, optional
        Length of the latent code (default :data:`LATENT` of the kind).
    seed : int, optional
        Seeds the weights, the batches and the codes' noise: the same images and seed give the same decoder.
    steps : int, optional
        Batches to train on (128 images for the VAE, 64 for the autoencoder); by default as many as
        6 (VAE) or 4 (autoencoder) passes over 60,000 MNIST digits take in pixels, and at least 200 (VAE)
        or 2,000 (autoencoder).

    Returns
    -------
    decoder : keras.Model
        Latent code ``(latent,)``, standard normal, to image ``(H, W, C)`` in [0, 1].
    info : dict
        ``kind``, ``latent``, ``steps``, ``seconds``, ``loss`` (the last 100 batches' mean loss per image:
        reconstruction plus KL for the VAE, plus the code penalty for the autoencoder), ``variety`` (:func:`variety`).
    """
    from leafprep._tf import tensorflow

    tf = tensorflow()
    import keras

    images = np.ascontiguousarray(images, np.float32)
    count = len(images)
    kind = DEFAULT_KIND if kind == "auto" else _known_kind(kind)
    latent = LATENT[kind] if latent is None else latent
    shape = tuple(int(side) for side in images.shape[1:])
    batch_size = _BATCH[kind]
    if steps is None:  # a few hundred pictures take many passes: at least _MIN_STEPS batches
        steps = max(_MIN_STEPS[kind], _PIXEL_BUDGET[kind] // (batch_size * int(np.prod(shape))))
    keras.utils.set_random_seed(seed)
    encoder, decoder = _networks(shape, latent)  # type: ignore[arg-type]
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps, alpha=0.05))
    weights = encoder.trainable_variables + decoder.trainable_variables
    if kind == "ae":  # the log variance head is not used
        weights = [weight for weight in weights if "log_variance" not in weight.path]
    generator = tf.random.Generator.from_seed(seed)
    variational = kind == "vae"

    @tf.function(reduce_retracing=True)
    def step(batch: Any) -> Any:
        with tf.GradientTape() as tape:
            mean, log_variance = encoder(batch, training=True)
            code = mean + tf.exp(0.5 * log_variance) * generator.normal(tf.shape(mean)) if variational else mean
            rebuilt = tf.clip_by_value(decoder(code, training=True), 1e-6, 1 - 1e-6)
            reconstruction = -tf.reduce_sum(batch * tf.math.log(rebuilt) + (1 - batch) * tf.math.log(1 - rebuilt), axis=[1, 2, 3])
            if variational:
                penalty = -0.5 * tf.reduce_sum(1 + log_variance - tf.square(mean) - tf.exp(log_variance), axis=1)
            else:  # keeps the codes near the origin, where the Gaussian fitted to them lies
                penalty = _CODE_PENALTY * tf.reduce_sum(tf.square(mean), axis=1)
            loss = tf.reduce_mean(reconstruction + penalty)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    order = np.random.default_rng(seed)
    losses = []
    start = time.perf_counter()
    indices = np.empty(0, np.int64)
    for number in range(steps):
        if len(indices) < batch_size:
            indices = np.concatenate([indices, order.permutation(count)])
        batch, indices = indices[:batch_size], indices[batch_size:]
        losses.append(float(step(tf.constant(images[batch]))))
        if verbose and number % 500 == 0:
            print(f"dream prior ({kind}): step {number}/{steps}, loss {losses[-1]:.1f}", flush=True)
    if not variational:
        decoder = _gaussian_decoder(encoder, decoder, images, latent)
    info = {"kind": kind, "latent": latent, "steps": steps, "images": count, "image_shape": list(shape), "seed": seed}
    info |= {"seconds": round(time.perf_counter() - start, 1), "loss": round(float(np.mean(losses[-100:])), 2)}
    info["variety"] = round(variety(decoder), 4)
    return decoder, info


def _gaussian_decoder(encoder: Any, decoder: Any, images: np.ndarray, latent: int) -> Any:
    """The autoencoder's decoder behind a Gaussian fitted to the training images' codes: a standard normal code in.

    The code ``z`` becomes ``mean + L z`` (``L L^T`` the codes' covariance): a fixed Dense layer.
    """
    import keras

    codes = np.concatenate([np.asarray(encoder(images[i : i + 256], training=False)[0]) for i in range(0, len(images), 256)]).astype(np.float64)
    covariance = np.cov(codes, rowvar=False) + 1e-6 * np.eye(latent)
    factor = np.linalg.cholesky(covariance)
    code = keras.Input((latent,))
    affine = keras.layers.Dense(latent, name="code_gaussian")
    gaussian = keras.Model(code, decoder(affine(code)), name="decoder")
    affine.set_weights([factor.T.astype(np.float32), codes.mean(axis=0).astype(np.float32)])
    return gaussian


def variety(decoder: Any, count: int = 64) -> float:
    """How much the decoder's pictures differ: the mean over pixels of their standard deviation across ``count`` random codes.

    A prior that has learnt its data draws different pictures for different
    codes (the MNIST VAE: about 0.12, the digits themselves 0.19; the
    autoencoder of the 747 Swedish training leaves about 0.05, the leaves
    0.057); one that draws the same average picture whatever the code (the
    VAE of those leaves: 0.004) scores near 0, and dreams on it say nothing:
    see :data:`MIN_VARIETY`.
    """
    codes = np.random.default_rng(0).normal(0.0, 1.0, (count, int(decoder.input_shape[-1]))).astype(np.float32)
    return float(np.asarray(decoder(codes, training=False)).std(axis=0).mean())


def load_prior(folder: str | Path, shape: tuple[int, ...] | None = None) -> Any | None:
    """The decoder cached in a run folder, or None when there is none, it is damaged, or it draws pictures of another ``shape`` (H, W, C)."""
    import keras

    path = Path(folder) / PRIOR_FILE
    if not path.is_file():
        return None
    try:
        decoder = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception:  # a damaged cache is trained again
        return None
    return decoder if shape is None or tuple(decoder.output_shape[1:]) == tuple(shape) else None


def _cached_kind(folder: Path) -> str:
    """The kind of the prior cached in ``folder`` ("" where its record is unreadable)."""
    try:
        info = json.loads((folder / PRIOR_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(info.get("kind", "vae"))  # priors before 'ae' were VAEs


def decoder_for(run: Run, *, kind: str = "auto", seed: int = 0, verbose: bool = False) -> Any:
    """The run's dream prior of ``kind`` (``vae``, ``ae`` or ``auto``): loaded from the run folder, or trained on its records and cached there.

    A cached prior of another kind than the one asked for (for ``auto``: than :data:`DEFAULT_KIND`) is
    trained again and replaced; where the records are gone, ``auto`` uses whatever prior is cached.
    """
    wanted = DEFAULT_KIND if _known_kind(kind) == "auto" else kind
    decoder = load_prior(run.folder, tuple(run.settings.get("image_shape") or run.model.input_shape[1:]))
    if decoder is not None and _cached_kind(run.folder) in ("", wanted):
        return decoder
    try:
        images = prior_images(run)
    except LeafprepError:
        if decoder is not None and kind == "auto":
            return decoder
        raise
    if verbose:
        what = "a VAE" if wanted == "vae" else "an autoencoder and a Gaussian on its codes"
        print(f"dream prior: training {what} on {len(images)} training images (cached in {run.folder / PRIOR_FILE})", flush=True)
    decoder, info = train_prior(images, kind=wanted, seed=seed, verbose=verbose)
    info["dataset"] = str(run.settings.get("dataset"))
    decoder.save(run.folder / PRIOR_FILE)
    (run.folder / PRIOR_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return decoder
