"""``leafprep train``: from a dataset folder to a run folder with the best model."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leafprep.errors import LeafprepError, ParameterError

from .runs import MODEL_FILE, SETTINGS_FILE

__all__ = ["DIGIT_RECIPE", "FUSED_RECIPE", "LEAF_RECIPE", "TrainingRecipe", "default_recipe", "train"]


@dataclass(frozen=True)
class TrainingRecipe:
    """What ``leafprep train`` does where the caller chooses nothing: the model, epochs, augmentation, early stopping.

    ``hold_out``: where the dataset has no ``val`` split, this share of the
    training sources is held out to validate on and choose the best epoch.
    """

    model: str
    epochs: int
    augment: str | None
    patience: int
    hold_out: float = 0.0

    def describe(self) -> str:
        augment = f"'{self.augment}' augmentation" if self.augment else "no augmentation"
        held = f", {self.hold_out:.0%} of the training leaves held out to validate on where there is no val split" if self.hold_out else ""
        if self.patience >= self.epochs:
            return f"model {self.model}, {self.epochs} epochs, {augment}, no early stopping{held}"
        return f"model {self.model}, at most {self.epochs} epochs, {augment}, early stopping after {self.patience} epochs without progress{held}"


#: Digits (and anything not a leaf): today's conv-net recipe.
DIGIT_RECIPE = TrainingRecipe("convnet", 10, None, 3)
#: Leaves with descriptors (``leafprep build --kind leaf``): the descriptor model, started at LDA (at its
#: cross-validated temperature), 60 epochs on all the training leaves (seconds). It names more species than
#: scikit-learn's LDA, RBF-SVM and random forest on the same descriptors on every leaf set measured, and than the
#: fused conv-net on all but Flavia (two leaves of 637 behind it there, in a twentieth of the time; docs/training.md,
#: ``python -m bench.leaf_species``). No part is held out: its start is closed-form and its choices (the shrinkage,
#: the temperature) are cross-validated, and holding out 15% cost a point on uci_dev.
LEAF_RECIPE = TrainingRecipe("descriptors", 60, None, 60, 0.0)
#: ``--model leaf-fused`` with nothing else chosen: the conv-net and the descriptors, the ``leaves`` augmentation, and
#: 15% of the training leaves held out to stop on where the dataset has no val split.
FUSED_RECIPE = TrainingRecipe("leaf-fused", 80, "leaves", 20, 0.15)


def default_recipe(meta: dict[str, Any], model: str | None = None) -> TrainingRecipe:
    """The recipe for a dataset, from its kind and size (its ``dataset_info.json``), or for ``model`` where one is chosen.

    A leaf dataset with descriptors gets :data:`LEAF_RECIPE`; everything
    else :data:`DIGIT_RECIPE`. A chosen ``leaf-fused`` or ``descriptors``
    model gets its own recipe's epochs, augmentation and early stopping;
    any other chosen model those of :data:`DIGIT_RECIPE`.
    """
    if model is not None:
        return {"leaf-fused": FUSED_RECIPE, "descriptors": LEAF_RECIPE}.get(model, DIGIT_RECIPE)
    options = meta.get("options", {})
    kind = options.get("photo_kind") or options.get("kind")
    if kind == "leaf" and meta.get("descriptors"):
        return LEAF_RECIPE
    return DIGIT_RECIPE


def train(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str | None = None,
    augment: Any = None,
    seed: int = 0,
    patience: int | None = None,
    max_steps: int | None = None,
    verbose: int = 1,
    callbacks: list[Any] | None = None,
    skip_damaged: bool = False,
    deskew: bool | None = None,
    hold_out: float | None = None,
) -> dict[str, Any]:
    """Train a model of the registry on a ``leafprep build`` dataset and write a run folder.

    Parameters
    ----------
    data : path
        A dataset folder written by ``leafprep build`` (a ``train`` split, and
        ``val`` to validate on and choose the best epoch; without it the
        training loss decides).
    out : path
        The run folder (created; an existing run there is replaced).
    model : str, optional
        ``softmax``, ``convnet``, ``fast``, ``convnet-bn``, ``leaf``,
        ``descriptors`` or ``leaf-fused`` (:mod:`trainers.models`). Left out,
        with ``epochs``, ``patience`` and ``augment``, it comes from the
        dataset (:func:`default_recipe`): the descriptor model for a leaf
        dataset, the conv-net for digits; a chosen ``descriptors`` or
        ``leaf-fused`` model gets its own recipe.
    epochs : int, optional
        At most this many; early stopping ends sooner after ``patience``
        epochs without improvement and restores the best weights.
    batch_size, learning_rate, optimizer : optional
        ``optimizer`` is ``"adam"`` or ``"sgd"`` (plain, without momentum);
        the learning rate decays along a cosine to zero over the epochs.
        Each left out comes from the model's recipe
        (:data:`trainers.models.RECIPES`): plain SGD at 0.3, batch 128, for
        ``softmax`` (its weights then stay pictures of the classes); Adam at
        1e-3, batch 128, for the others.
    augment : str or path, optional
        Online augmentation of the training batches (``"digits"``,
        ``"leaves"`` or a pipeline file; :mod:`leafprep.augmentation`);
        ``"none"``: none, where the recipe would augment.
    seed : int, optional
        Seeds Keras (weights, dropout), the shuffle and the augmentation.
    max_steps : int, optional
        Batches an epoch at most (short runs in tests).
    verbose : int, optional
        Keras' progress display: 0 silent, 1 a progress bar, 2 a line an epoch.
    callbacks : list of keras.callbacks.Callback, optional
        More callbacks for ``fit`` (the benchmarks stop at a target accuracy).
    skip_damaged : bool, optional
        Leave damaged records out (with a warning naming them) instead of
        stopping with a :class:`~leafprep.records.DatasetError` that names the
        file and the record.
    deskew : bool, optional
        ``softmax`` only: shear each image upright inside the model before its
        weights (:class:`trainers.layers.Deskew`). Left out: yes for digits
        (93% instead of 91.6% after one epoch on MNIST, and weights that draw
        each class upright), no for leaves and other kinds.
    hold_out : float, optional
        Where the dataset has no ``val`` split: this share of the training
        sources is held out to validate on and choose the best epoch (by its
        loss). Default: the recipe's where the model is left out, else none.

    Returns
    -------
    metrics : dict
        What ``metrics.json`` holds: accuracies on val and test (where the
        dataset has them), epochs run, the best epoch, seconds, options.
    """
    from leafprep._tf import tensorflow
    from leafprep.records import info, load, reading

    tensorflow()
    import keras

    from leafprep.settings import run_settings

    from .models import DESCRIPTOR_MODELS, OPTIMIZERS, build_model, recipe

    meta = info(data)
    chosen = model is None
    plan = default_recipe(meta, model)
    model = plan.model if model is None else model
    epochs = plan.epochs if epochs is None else epochs
    patience = plan.patience if patience is None else patience
    augment = (plan.augment if chosen or model in DESCRIPTOR_MODELS else None) if augment is None else (None if augment == "none" else augment)
    if verbose and chosen:
        print(f"Recipe for this {meta.get('options', {}).get('photo_kind', 'digit')} dataset: {plan.describe()}", flush=True)
    default = recipe(model)
    batch_size = default.batch_size if batch_size is None else batch_size
    learning_rate = default.learning_rate if learning_rate is None else learning_rate
    optimizer = default.optimizer if optimizer is None else optimizer
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise ParameterError("epochs", "epochs and batch_size must be at least 1 and learning_rate positive")
    if optimizer not in OPTIMIZERS:
        raise ParameterError("optimizer", f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    if "train" not in meta["splits"]:
        raise LeafprepError(str(data), "has no train split", "build it with a train share, e.g. --split 80/10/10")
    shape = tuple(meta["image_shape"])
    labels = meta["labels"]
    settings = run_settings(meta, str(Path(data).resolve()))
    if deskew is None:
        deskew = model == "softmax" and settings["kind"] == "digit"
    keras.utils.set_random_seed(seed)
    if hold_out is None:
        hold_out = plan.hold_out
    hold_out = hold_out if "val" not in meta["splits"] else 0.0
    descriptors = meta.get("descriptors")
    if model in DESCRIPTOR_MODELS and descriptors:
        descriptors = {**descriptors, **_discriminant(data, descriptors, len(labels), hold_out)}
        if verbose:
            print(
                f"Descriptors: LDA start, within-class covariance shrunk by {descriptors['shrinkage']}, distances divided by a "
                f"temperature of {descriptors['temperature']:.3g} (both chosen by 5-fold cross-validation)",
                flush=True,
            )
    # Refuses a model that does not fit before the run is touched.
    network = build_model(model, shape, len(labels), deskew=deskew, descriptors=descriptors)
    reads = {"descriptors": model in DESCRIPTOR_MODELS, "images": model != "descriptors"}
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)
    for stale in (MODEL_FILE, "metrics.json", "history.csv"):
        (run / stale).unlink(missing_ok=True)
    (run / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    examples = round(meta["splits"]["train"]["examples"] * (1.0 - hold_out))
    steps = math.ceil(examples / batch_size) if max_steps is None else min(max_steps, math.ceil(examples / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps * epochs))
    step = keras.optimizers.Adam(schedule) if optimizer == "adam" else keras.optimizers.SGD(schedule)
    network.compile(optimizer=step, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Repeated, with a fixed number of batches an epoch: Keras then keeps one iterator (and the shuffle
    # and augmentation go on from epoch to epoch) and does not warn about running out of data.
    training = load(
        data,
        "train",
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        augment=augment,
        repeat=True,
        skip_damaged=skip_damaged,
        hold_out=hold_out,
        **reads,
    )
    if "val" in meta["splits"]:
        validation = load(data, "val", batch_size=512, skip_damaged=skip_damaged, **reads)
    elif hold_out:
        validation = load(data, "train", batch_size=512, skip_damaged=skip_damaged, hold_out=hold_out, held=True, **reads)
    else:
        validation = None
    # A small held-out part reaches 100% accuracy early and stays there: its loss still tells the epochs apart.
    monitor, mode = ("val_loss", "min") if hold_out else ("val_accuracy", "max") if validation is not None else ("loss", "min")
    callbacks = [
        *(callbacks or []),
        keras.callbacks.ModelCheckpoint(run / MODEL_FILE, monitor=monitor, mode=mode, save_best_only=True),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True),
        keras.callbacks.CSVLogger(str(run / "history.csv")),
        keras.callbacks.TensorBoard(log_dir=str(run / "logs"), histogram_freq=0, write_graph=False),
    ]
    start = time.perf_counter()
    with reading(data):
        history = network.fit(
            training, epochs=epochs, steps_per_epoch=steps, validation_data=validation, callbacks=callbacks, verbose=verbose, shuffle=False
        )
    seconds = time.perf_counter() - start
    scores = history.history[monitor]
    best = int(max(range(len(scores)), key=lambda i: scores[i]) if mode == "max" else min(range(len(scores)), key=lambda i: scores[i]))
    metrics: dict[str, Any] = {
        "model": model,
        "epochs_run": len(scores),
        "best_epoch": best + 1,
        "train_seconds": seconds,
        "parameters": int(network.count_params()),
        "options": {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "optimizer": optimizer,
            "augment": str(augment) if augment else None,
            "seed": seed,
            "deskew": deskew,
            "patience": patience,
            "hold_out": hold_out,
            "recipe": "default" if chosen else "chosen",
            "shrinkage": descriptors.get("shrinkage") if model in DESCRIPTOR_MODELS and descriptors else None,
            "temperature": descriptors.get("temperature") if model in DESCRIPTOR_MODELS and descriptors else None,
        },
    }
    for split in ("val", "test"):
        if split in meta["splits"]:
            with reading(data, (split,)):
                _, accuracy = network.evaluate(load(data, split, batch_size=512, skip_damaged=skip_damaged, **reads), verbose=0)
            metrics[f"{split}_accuracy"] = float(accuracy)
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def _discriminant(data: str | os.PathLike[str], scaling: dict[str, Any], classes: int, hold_out: float) -> dict[str, Any]:
    """:func:`trainers.models.fit_discriminant` on the descriptors of the examples the model trains on."""
    import numpy as np

    from leafprep.records import load

    from .models import fit_discriminant

    values, labels = [], []
    for inputs, y in load(data, "train", batch_size=1024, descriptors=True, images=False, hold_out=hold_out):
        values.append(inputs["descriptors"].numpy())
        labels.append(y.numpy())
    return fit_discriminant(np.concatenate(values), np.concatenate(labels), classes, scaling)
