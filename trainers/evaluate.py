"""``leafprep evaluate``: accuracy, per-class precision and recall, a confusion matrix and the worst mistakes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from leafprep.errors import LeafprepError

from .runs import load_run

__all__ = ["class_templates", "confusion_matrix", "evaluate", "weight_map_correlation"]


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    return np.bincount(truth * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def class_templates(images: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, H, W): each class's mean image minus the mean of all images (channels averaged).

    What a one-layer network's weights for a class would look like if they
    only said "more ink where this class has more ink than the others".

    >>> class_templates(np.array([[[0.0, 1.0]], [[1.0, 0.0]]]), np.array([0, 1]), 2).tolist()
    [[[-0.5, 0.5]], [[0.5, -0.5]]]
    """
    pixels = np.asarray(images, np.float64)
    if pixels.ndim == 4:
        pixels = pixels.mean(axis=-1)
    overall = pixels.mean(axis=0)
    return np.stack([pixels[labels == c].mean(axis=0) - overall for c in range(classes)])


def weight_map_correlation(maps: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Pearson's correlation of each class's weight map with its template, over the pixels: ``(classes,)``.

    ``maps`` from :func:`trainers.visualize.weight_maps` (a softmax model),
    ``templates`` from :func:`class_templates`; 1 means the map draws the
    class exactly as its mean image stands out from the rest. A constant map
    (e.g. all zero) scores 0.

    >>> weight_map_correlation(np.array([[[1.0, 3.0]], [[2.0, 0.0]]]), np.array([[[-1.0, 1.0]], [[-1.0, 1.0]]])).round(6).tolist()
    [1.0, -1.0]
    """
    a = np.asarray(maps, np.float64).reshape(len(maps), -1)
    b = np.asarray(templates, np.float64).reshape(len(templates), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide((a * b).sum(axis=1), norms, out=np.zeros(len(a)), where=norms > 0)


def evaluate(
    run: str | os.PathLike[str],
    data: str | os.PathLike[str],
    split: str = "test",
    *,
    out: str | os.PathLike[str] | None = None,
    worst: int = 24,
    skip_damaged: bool = False,
) -> dict[str, Any]:
    """Evaluate a run on a split of a dataset; write ``evaluation-SPLIT.json``, a confusion matrix and the worst mistakes.

    Parameters
    ----------
    run : path
        A run folder (:func:`trainers.train.train`).
    data : path
        A dataset folder built with the same labels.
    split : str, optional
    out : path, optional
        Folder for ``evaluation-SPLIT.json``, ``confusion-SPLIT.png`` and
        ``mistakes-SPLIT.png``; default: the run folder.
    worst : int, optional
        Mistakes on the contact sheet: the most confident wrong answers.
    skip_damaged : bool, optional
        Leave damaged records out (with a warning) instead of stopping with an
        error that names the file and the record.

    Returns
    -------
    report : dict
        ``accuracy``, ``examples``, ``per_class`` (precision, recall, support),
        ``confusion`` (rows: true class) and the written files.
    """
    from leafprep.records import info, load, reading

    loaded = load_run(run)
    meta = info(data)
    if meta["labels"] != loaded.labels:
        raise LeafprepError(
            str(data),
            f"has labels {meta['labels'][:5]}... but the run was trained on {loaded.labels[:5]}...",
            "evaluate on data built like the run's",
        )
    probabilities, truth, images = [], [], []
    with reading(data, (split,)):
        for batch, labels in load(data, split, batch_size=512, skip_damaged=skip_damaged, descriptors=loaded.reads_descriptors):
            pixels = (batch["image"] if isinstance(batch, dict) else batch).numpy()
            described = batch["descriptors"].numpy() if isinstance(batch, dict) else None
            probabilities.append(loaded.probabilities(pixels, described))
            truth.append(labels.numpy())
            images.append(np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8))
    p = np.concatenate(probabilities)
    y = np.concatenate(truth).astype(np.int64)
    pictures = np.concatenate(images)
    predicted = p.argmax(axis=1)
    classes = len(loaded.labels)
    matrix = confusion_matrix(y, predicted, classes)
    per_class = {}
    for index, name in enumerate(loaded.labels):
        hits, said, support = int(matrix[index, index]), int(matrix[:, index].sum()), int(matrix[index].sum())
        per_class[name] = {"precision": hits / said if said else 0.0, "recall": hits / support if support else 0.0, "support": support}
    folder = Path(out) if out is not None else loaded.folder
    folder.mkdir(parents=True, exist_ok=True)
    files = {"confusion": str(folder / f"confusion-{split}.png"), "mistakes": str(folder / f"mistakes-{split}.png")}
    _draw_confusion(matrix, loaded.labels, Path(files["confusion"]), f"{split}: accuracy {float((predicted == y).mean()):.4f}")
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-p[wrong, predicted[wrong]], kind="stable")][:worst]
    _draw_mistakes(pictures, y, predicted, p, wrong, loaded.labels, Path(files["mistakes"]))
    report = {
        "split": split,
        "examples": len(y),
        "accuracy": float((predicted == y).mean()),
        "per_class": per_class,
        "confusion": matrix.tolist(),
        "files": files,
    }
    (folder / f"evaluation-{split}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def _draw_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    side = max(4.0, 0.45 * len(labels) + 2.0)
    figure = Figure(figsize=(side, side))
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), [name[:14] for name in labels], rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), [name[:14] for name in labels], fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    top = matrix.max() or 1
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            axes.text(col, row, str(count), ha="center", va="center", fontsize=6, color="white" if count > top / 2 else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _draw_mistakes(
    pictures: np.ndarray, y: np.ndarray, predicted: np.ndarray, p: np.ndarray, wrong: np.ndarray, labels: list[str], path: Path
) -> None:
    from PIL import Image

    from leafprep.figures import contact_sheet

    entries: list[tuple[str, np.ndarray | None, np.ndarray]] = []
    for index in wrong:
        image = pictures[index]
        image = image[:, :, 0] if image.shape[2] == 1 else image
        entries.append((f"{labels[y[index]][:10]}>{labels[predicted[index]][:10]} {p[index, predicted[index]]:.2f}", None, image))
    sheet = contact_sheet(entries or [("no mistakes", None, np.zeros((8, 8), np.uint8))], tile=84, columns=6)
    Image.fromarray(sheet).save(path, format="PNG")
