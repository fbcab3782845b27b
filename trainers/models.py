"""The model registry: each entry is a function ``(input_shape, classes) -> keras.Model`` (uncompiled).

>>> sorted(MODELS)
['convnet', 'convnet-bn', 'descriptors', 'fast', 'leaf', 'leaf-fused', 'softmax']

Two of them read a leaf's descriptors (:mod:`leafprep.description`, stored in
the records of a ``kind="leaf"`` build): ``descriptors`` reads only them,
``leaf-fused`` reads the image and them (:data:`DESCRIPTOR_MODELS`). Their
inputs are a dict, ``{"image": ..., "descriptors": ...}``.

Each model also has a training recipe (:data:`RECIPES`): the optimiser, the
starting learning rate and the batch size that ``leafprep train`` uses where
the caller does not choose them.

>>> RECIPES["softmax"]
Recipe(optimizer='sgd', learning_rate=0.3, batch_size=128)
>>> RECIPES["convnet"]
Recipe(optimizer='adam', learning_rate=0.001, batch_size=128)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leafprep._tf import tensorflow

__all__ = [
    "DESCRIPTOR_MODELS",
    "MODELS",
    "OPTIMIZERS",
    "RECIPES",
    "Recipe",
    "build_model",
    "convnet",
    "convnet_bn",
    "descriptor_mlp",
    "fit_discriminant",
    "fast",
    "image_view",
    "input_names",
    "leaf",
    "leaf_fused",
    "recipe",
    "softmax",
]


def _keras() -> Any:
    tensorflow()  # quietly
    import keras

    return keras


def softmax(input_shape: tuple[int, int, int], classes: int, *, deskew: bool = False) -> Any:
    """One dense layer on the flattened pixels: the beginner's network (MNIST: 93% to 95% deskewed, 91% to 92% not).

    The weights start at zero (and the recipe is plain SGD, :data:`RECIPES`): a
    weight changes only by the ink its pixel sees, so pixels that never see ink
    keep zero weight and each class's weights draw where its images have more
    ink than the others' (random initial weights would stay as noise there).

    ``deskew``: a :class:`trainers.layers.Deskew` layer (no weights) first
    shears each image upright, so that slanted and upright strokes of a class
    fall on the same pixels; :func:`trainers.train.train` chooses it for
    digits. Its weights then draw each class upright and sharper, and it
    scores higher (``python -m bench.train_mnist softmax``). Not for data
    whose slant is what tells the classes apart.
    """
    keras = _keras()
    from .layers import Deskew

    dense = keras.layers.Dense(classes, activation="softmax", kernel_initializer="zeros", name="weights")
    first = [Deskew(name="deskew")] if deskew else []
    return keras.Sequential([keras.Input(input_shape), *first, keras.layers.Flatten(), dense], name="softmax")


def convnet(input_shape: tuple[int, int, int], classes: int) -> Any:
    """The classic conv-net: conv 32 - pool - conv 64 - pool - dropout - dense (the Keras MNIST example)."""
    keras = _keras()
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(classes, activation="softmax", name="classes"),
        ],
        name="convnet",
    )


def _block(x: Any, filters: int, name: str) -> Any:
    layers = _keras().layers
    for k in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{k}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{k}")(x)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def convnet_bn(input_shape: tuple[int, int, int], classes: int) -> Any:
    """Batch normalisation and more filters: two blocks of two 3x3 convolutions (32, 64), dense 128, dropout.

    The best single digit model here (trained with the ``digits`` augmentation).
    """
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = _block(inputs, 32, "block1")
    x = _block(x, 64, "block2")
    x = layers.Flatten()(x)
    x = layers.Dense(128, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(name="dense_bn")(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="convnet-bn")


def fast(input_shape: tuple[int, int, int], classes: int) -> Any:
    """The classic conv-net with batch normalisation and a dense layer: a cheap step, and 99% on MNIST within two epochs.

    The fastest way to 99% on a CPU here (``python -m bench.train_mnist time``).
    """
    keras = _keras()
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, use_bias=False, name="conv1"),
            layers.BatchNormalization(momentum=0.9),  # statistics that settle within a hundred steps
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, use_bias=False, name="conv2"),
            layers.BatchNormalization(momentum=0.9),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, use_bias=False, name="dense"),
            layers.BatchNormalization(momentum=0.9),
            layers.Activation("relu"),
            layers.Dropout(0.3),
            layers.Dense(classes, activation="softmax", name="classes"),
        ],
        name="fast",
    )


def _leaf_trunk(x: Any) -> Any:
    """Five conv - batch norm - pool stages (16 to 128 filters), global pooling and dropout."""
    layers = _keras().layers
    for index, filters in enumerate((16, 32, 64, 96, 128), 1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{index}")(x)
        x = layers.Activation("relu", name=f"relu{index}")(x)
        if index < 5:
            x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = layers.GlobalAveragePooling2D(name="pooled")(x)
    return layers.Dropout(0.3, name="image_dropout")(x)


def leaf(input_shape: tuple[int, int, int], classes: int) -> Any:
    """For leaves at 64x64 to 128x128, grey or rgb: five conv - batch norm - pool stages (16 to 128 filters), global pooling.

    Small enough to train on a CPU in minutes (the Swedish leaves: ``python -m bench.train_leaves``).
    """
    keras = _keras()
    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(classes, activation="softmax", name="classes")(_leaf_trunk(inputs))
    return keras.Model(inputs, outputs, name="leaf")


#: Shrinkages of the pooled within-class covariance towards a multiple of the identity that :func:`fit_discriminant` chooses from.
SHRINKAGES = (0.01, 0.03, 0.1, 0.3, 0.5)
#: Temperatures of LDA's answer (its squared distances divided by them) that :func:`fit_discriminant` chooses from:
#: 1 (LDA's own posterior) to 256, by factors of the square root of 2.
TEMPERATURES = tuple(float(2.0 ** (k / 2)) for k in range(17))


def standardised(values: Any, scaling: dict[str, Any]) -> Any:
    """Descriptors as :class:`trainers.layers.Standardize` gives them to a model, in numpy: ``(N, D)`` float64."""
    import numpy as np

    values = np.asarray(values, np.float64)
    mean, std = np.asarray(scaling["mean"], np.float64), np.asarray(scaling["std"], np.float64)
    used = (std > 0) & ~np.isnan(values)
    scaled = (np.where(used, values, mean) - mean) / np.where(std > 0, std, 1.0)
    return np.clip(np.where(used, scaled, 0.0), -8.0, 8.0)


def _discriminant(z: Any, labels: Any, classes: int, shrinkage: float) -> tuple[Any, Any]:
    """(whitening matrix, class means in the whitened space) of standardised descriptors."""
    import numpy as np

    centred = z.copy()
    means = np.zeros((classes, z.shape[1]))
    for k in range(classes):
        members = labels == k
        if members.any():
            means[k] = z[members].mean(axis=0)
            centred[members] -= means[k]
    covariance = centred.T @ centred / max(1, len(z) - classes)
    covariance = (1 - shrinkage) * covariance + shrinkage * float(np.trace(covariance)) / len(covariance) * np.eye(len(covariance))
    variances, vectors = np.linalg.eigh(covariance)
    whiten = vectors / np.sqrt(np.maximum(variances, 1e-6 * max(float(variances.max()), 1e-12)))
    return whiten, means @ whiten


def _distances(whiten: Any, means: Any, z: Any) -> Any:
    """Squared distances ``(N, classes)`` of standardised descriptors ``z`` from each class's mean, whitened."""
    return (((z @ whiten)[:, None, :] - means[None]) ** 2).sum(axis=-1)


def _temperature(distances: Any, labels: Any) -> float:
    """The :data:`TEMPERATURES` whose softmax of ``-distances / (2 T)`` gives held-out leaves the least log loss
    (the smallest among equals)."""
    import numpy as np

    losses = []
    for temperature in TEMPERATURES:
        logits = -distances / (2.0 * temperature)
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        losses.append(float(-log_p[np.arange(len(labels)), labels].mean()))
    return TEMPERATURES[int(np.argmin(losses))]


def fit_discriminant(values: Any, labels: Any, classes: int, scaling: dict[str, Any], shrinkage: float | None = None) -> dict[str, Any]:
    """Linear discriminant analysis in closed form, as the starting point of the descriptor models.

    On the standardised training descriptors: the pooled within-class
    covariance, shrunk towards the identity times its mean variance, a matrix
    that whitens it, and each class's mean in the whitened space. A
    nearest-mean classifier there is LDA. The shrinkage, unless given, is
    the one of :data:`SHRINKAGES` that names most training leaves right in a
    5-fold cross-validation on them (the smallest among equals): little for
    25 scans a species (Swedish: 0.01), much for 9 photos a species and 115
    descriptors (uci_dev: 0.1 to 0.5), where a plain LDA falls to 87-90%.

    LDA's own posterior, ``softmax(-d² / 2)``, is as sure of its wrong
    answers as of its right ones when the covariance comes from a few leaves
    a species (uci_dev, cross-validated: 0.998 on the wrong against 0.996 on
    the right). So the whitening is scaled by ``1 / sqrt(T)``, with the
    temperature ``T`` of :data:`TEMPERATURES` that gives the same
    cross-validation's held-out leaves the least log loss: the answer and
    the order of the classes stay, their probabilities mean what they say.

    Returns
    -------
    fitted : dict
        ``whiten`` (D, D) and ``class_means`` (classes, D), as lists, the ``shrinkage`` and the ``temperature`` used.
    """
    import numpy as np

    z = standardised(values, scaling)
    labels = np.asarray(labels, np.int64)
    fold = np.zeros(len(labels), np.int64)
    for k in range(classes):  # each class dealt over the folds in turn: deterministic and stratified
        members = np.flatnonzero(labels == k)
        fold[members] = np.arange(len(members)) % 5
    folds = int(fold.max(initial=0)) + 1  # fewer than 5 where no class has 5 leaves; 1 (nothing to hold out) with one a class
    right, held_out = [], []
    for candidate in SHRINKAGES if shrinkage is None else (shrinkage,):
        distances = np.zeros((len(labels), classes))  # each leaf's, from the folds it was not in
        for f in range(folds if folds > 1 else 0):
            training = fold != f
            whiten, means = _discriminant(z[training], labels[training], classes, candidate)
            distances[~training] = _distances(whiten, means, z[~training])
        right.append(int((distances.argmin(axis=1) == labels).sum()))
        held_out.append(distances)
    best = right.index(max(right))
    shrinkage = SHRINKAGES[best] if shrinkage is None else shrinkage
    temperature = _temperature(held_out[best], labels) if folds > 1 else 1.0
    whiten, means = _discriminant(z, labels, classes, shrinkage)
    whiten, means = whiten / np.sqrt(temperature), means / np.sqrt(temperature)
    return {"whiten": whiten.tolist(), "class_means": means.tolist(), "shrinkage": shrinkage, "temperature": temperature}


def _descriptor_branch(values: Any, scaling: dict[str, Any]) -> Any:
    """Standardised, then whitened by the training split's within-class covariance (a fixed layer: :func:`fit_discriminant`)."""
    import numpy as np

    from .layers import Standardize

    count = len(scaling["names"])
    x = Standardize(scaling["mean"], scaling["std"], name="standardize")(values)
    whiten = _keras().layers.Dense(count, use_bias=False, trainable=False, name="whiten")
    x = whiten(x)
    whiten.set_weights([np.asarray(scaling.get("whiten", np.eye(count)), np.float32)])
    return x


def _discriminant_head(features: Any, classes: int, scaling: dict[str, Any], others: int) -> Any:
    """The softmax head, started at LDA: logits ``-|z - mean_k|^2 / 2`` (up to a constant) for the whitened descriptors ``z``,
    and zero weight for the ``others`` features before them (the image branch's), which training then brings in."""
    import numpy as np

    count = len(scaling["names"])
    means = np.asarray(scaling.get("class_means", np.zeros((classes, count))), np.float32)
    head = _keras().layers.Dense(classes, activation="softmax", name="classes")
    outputs = head(features)
    kernel = np.concatenate([np.zeros((others, classes), np.float32), means.T])
    head.set_weights([kernel, -0.5 * (means**2).sum(axis=1)])
    return outputs


def descriptor_mlp(input_shape: tuple[int, int, int], classes: int, *, descriptors: dict[str, Any]) -> Any:
    """A softmax on a leaf's descriptors alone, started at linear discriminant analysis and trained on from there.

    Standardised (:class:`trainers.layers.Standardize`), whitened by the
    training split's within-class covariance, then one dense softmax layer
    whose start is LDA's answer (:func:`fit_discriminant`).
    ``descriptors``: the ``descriptors`` entry of ``dataset_info.json`` (names,
    training mean and spread) with ``whiten`` and ``class_means`` from
    :func:`fit_discriminant` (:func:`trainers.train.train` adds them). Trains
    in seconds; it never looks at the image, so saliency, Grad-CAM and dreams
    do not apply to it.
    """
    keras = _keras()
    values = keras.Input((len(descriptors["names"]),), name="descriptors")
    outputs = _discriminant_head(_descriptor_branch(values, descriptors), classes, descriptors, 0)
    return keras.Model({"descriptors": values}, outputs, name="descriptors")


def leaf_fused(input_shape: tuple[int, int, int], classes: int, *, descriptors: dict[str, Any]) -> Any:
    """The leaf conv-net and the whitened descriptors side by side, one softmax over both (two inputs, one head).

    The head starts as :func:`descriptor_mlp`'s (LDA on the descriptors,
    nothing from the image) and training brings in what the conv-net sees.
    The head is linear in the two branches' features, so for one photo the
    descriptors' part is a fixed bias: :func:`image_view` turns the model into
    an image-only conv-net with that bias, which saliency, Grad-CAM and dreams
    read as they read the ``leaf`` model.
    """
    keras = _keras()
    image = keras.Input(input_shape, name="image")
    values = keras.Input((len(descriptors["names"]),), name="descriptors")
    pictured = _leaf_trunk(image)
    joined = keras.layers.Concatenate(name="joined")([pictured, _descriptor_branch(values, descriptors)])
    outputs = _discriminant_head(joined, classes, descriptors, int(pictured.shape[-1]))
    return keras.Model({"image": image, "descriptors": values}, outputs, name="leaf-fused")


def input_names(model: Any) -> tuple[str, ...]:
    """The names of a model's dict inputs (``("image", "descriptors")``, ``("descriptors",)``); ``()`` for a model of images alone."""
    try:
        inputs = model.input
    except (AttributeError, ValueError):  # a Sequential model loaded from a file is not "called" until it is used
        return ()
    return tuple(inputs) if isinstance(inputs, dict) else ()


def image_view(model: Any, descriptors: Any = None) -> Any:
    """The image-only model that ``model`` is for one leaf's descriptors: a one-input conv-net sharing its weights.

    For a ``leaf-fused`` model, the descriptor branch's share of the logits
    (for ``descriptors``, raw, ``(D,)``; None: the training mean, which
    standardises to zero) is folded into the head's bias; the result takes
    images alone and gives the same probabilities for them. Any other model
    that takes images is returned as it is.

    Raises
    ------
    ParameterError
        The model reads descriptors only (``descriptors``): it has no image to look at.
    """
    import numpy as np

    from leafprep.errors import ParameterError

    names = input_names(model)
    if not names:
        return model
    if "image" not in names:
        raise ParameterError(
            "model", "this run reads the leaf's descriptors, not its pixels: it has no picture of where it looked", "train leaf-fused or leaf"
        )
    keras = _keras()
    head = model.get_layer("classes")
    kernel, bias = head.get_weights()
    pooled = model.get_layer("image_dropout").output.shape[-1]
    branch = keras.Model(model.input["descriptors"], model.get_layer("whiten").output)
    if descriptors is None:
        descriptors = np.asarray(model.get_layer("standardize").centre, np.float32)
    features = np.asarray(branch(np.asarray(descriptors, np.float32).reshape(1, -1), training=False))[0]
    image = keras.Input(model.input["image"].shape[1:], name="image")
    x = image
    for index in range(1, 6):
        for name in (f"conv{index}", f"bn{index}", f"relu{index}", *((f"pool{index}",) if index < 5 else ())):
            x = model.get_layer(name)(x)
    x = model.get_layer("pooled")(x)
    dense = keras.layers.Dense(kernel.shape[1], activation="softmax", name="classes")
    outputs = dense(x)
    dense.set_weights([kernel[:pooled], bias + features @ kernel[pooled:]])
    return keras.Model(image, outputs, name="leaf-fused-image")


MODELS: dict[str, Callable[..., Any]] = {
    "softmax": softmax,
    "convnet": convnet,
    "fast": fast,
    "convnet-bn": convnet_bn,
    "leaf": leaf,
    "descriptors": descriptor_mlp,
    "leaf-fused": leaf_fused,
}

#: The models that read a leaf's descriptors (and need a dataset built with ``kind="leaf"``).
DESCRIPTOR_MODELS = ("descriptors", "leaf-fused")


OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class Recipe:
    """How a model of the registry trains by default: ``optimizer`` (``adam`` or ``sgd``, plain, without
    momentum) from ``learning_rate`` along a cosine to zero, ``batch_size`` images a step."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 128


# The softmax with Adam learns border pixels that see ink once in a while as fast as the middle (Adam
# scales each weight's step by its own gradient history): its maps are framed by strong weights and the
# digits are faint. Plain SGD moves a weight in proportion to its pixel's ink, so the maps stay
# pictures of the classes; a smaller rate keeps them closer to the class means, a larger one fits
# better. At 0.3 the deskewed digit softmax gets 93.3% after one epoch with maps that correlate 0.79
# with the class means (python -m bench.train_mnist softmax: the measurements).
RECIPES: dict[str, Recipe] = {
    "softmax": Recipe("sgd", 0.3, 128),
    "convnet": Recipe(),
    "fast": Recipe(),
    "convnet-bn": Recipe(),
    "leaf": Recipe(),
    "descriptors": Recipe("adam", 3e-3, 32),
    "leaf-fused": Recipe("adam", 3e-3, 32),
}


def _known(name: str) -> None:
    from leafprep.errors import ParameterError

    if name not in MODELS:
        raise ParameterError("model", f"model must be one of {sorted(MODELS)}, got {name!r}")


def recipe(name: str) -> Recipe:
    """The training recipe of the registry's model ``name``."""
    _known(name)
    return RECIPES[name]


def build_model(
    name: str, input_shape: tuple[int, int, int], classes: int, *, deskew: bool = False, descriptors: dict[str, Any] | None = None
) -> Any:
    """The registry's model ``name`` for images of ``input_shape`` (H, W, C) and ``classes`` classes.

    ``deskew`` (``softmax`` only): shear each image upright first (:func:`softmax`).
    ``descriptors`` (the models of :data:`DESCRIPTOR_MODELS`): the
    ``descriptors`` entry of the dataset's ``dataset_info.json``.
    """
    from leafprep.errors import ParameterError

    _known(name)
    if name in DESCRIPTOR_MODELS:
        if not descriptors:
            raise ParameterError("model", f"the {name} model reads leaf descriptors, and this dataset has none", "build it with --kind leaf")
        if name == "leaf-fused" and min(input_shape[:2]) < 32:
            raise ParameterError(
                "model", f"the leaf-fused model needs images of at least 32x32, got {input_shape[0]}x{input_shape[1]}", "build with --size 64"
            )
        return (
            descriptor_mlp(input_shape, classes, descriptors=descriptors)
            if name == "descriptors"
            else leaf_fused(input_shape, classes, descriptors=descriptors)
        )
    if name == "leaf" and min(input_shape[:2]) < 32:
        raise ParameterError("model", f"the leaf model needs images of at least 32x32, got {input_shape[0]}x{input_shape[1]}", "use convnet")
    if deskew:
        if name != "softmax":
            raise ParameterError("deskew", f"deskewing inside the model is for the softmax only, not {name}", "leave deskew out")
        return softmax(input_shape, classes, deskew=True)
    return MODELS[name](input_shape, classes)
