"""Naming the species from a few real photos: leafprep's default recipe beside its peers, same photos, same splits, one run.

For each set and each draw, the same CSV of ``path,label,split`` is built
twice with ``leafprep build`` (``--kind leaf --size 64``, and ``--kind none``:
the photos plainly resized to 64x64), and then:

* ``leafprep train`` with its defaults (the recipe it chooses for a leaf
  dataset: :data:`trainers.train.LEAF_RECIPE`, the descriptor model);
* ``leaf-fused``: the conv-net fused with the descriptors (``--model
  leaf-fused``, its recipe :data:`trainers.train.FUSED_RECIPE`);
* ``leaf images``: the leaf conv-net on leafprep's images alone (``--model
  leaf``, the fused recipe's epochs, augmentation and early stopping);
* ``resized photos``: the same conv-net on the plainly resized photos;
* scikit-learn on the descriptors the build stored (training split's
  descriptors, NaN columns dropped, standardised): LDA, RBF-SVM (C=10) and a
  random forest (500 trees).

The sets (``../shared/data/leaves``):

* ``swedish``: the literature's protocol, 25 training and 50 test leaves a
  species, drawn at random (seeds 0..draws-1);
* ``uci_dev``: real phone photos on card, 10 species, stratified 5-fold
  (each fold one draw);
* ``flavia``: grey, 32 species, a stratified 2/1 split (seed 0).

Needs scikit-learn: pip install -e ".[bench]".
Run:  python -m bench.leaf_species [--sets swedish,uci_dev,flavia] [--draws N] [--peers all|cheap]
      python -m bench.leaf_species --cost     (the build's time with and without descriptors, 3 times each)
``cheap`` leaves out the three conv-nets (minutes each). Writes
bench/results/leaf_species.json and prints a Markdown table (mean test
accuracy over the draws, and seconds for build + train of the default).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench._mnist import CACHE, DATA, ROOT

RESULTS = ROOT / "bench" / "results" / "leaf_species.json"
WORK = CACHE / "leaf-species"
LEAVES = DATA / "leaves"
SETS = {"swedish": LEAVES / "swedish", "uci_dev": LEAVES / "uci_dev" / "images", "flavia": LEAVES / "flavia_gray256"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def photos(root: Path) -> list[tuple[Path, str]]:
    """(photo, species) of every photo of a set, in a fixed order."""
    return [
        (p, folder.name)
        for folder in sorted(q for q in root.iterdir() if q.is_dir())
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]


def draws(name: str, found: list[tuple[Path, str]], count: int) -> list[list[str]]:
    """The split of every photo ("train" or "test") for each draw of a set's protocol."""
    labels = np.array([label for _, label in found])
    out = []
    if name == "uci_dev":
        from sklearn.model_selection import StratifiedKFold

        for _, test in list(StratifiedKFold(5, shuffle=True, random_state=0).split(labels, labels))[:count]:
            split = np.full(len(labels), "train", object)
            split[test] = "test"
            out.append(split.tolist())
        return out
    for seed in range(count if name == "swedish" else 1):
        rng = np.random.default_rng(seed)
        split = np.full(len(labels), "test", object)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            take = 25 if name == "swedish" else round(len(members) * 2 / 3)
            split[rng.choice(members, take, replace=False)] = "train"
        out.append(split.tolist())
    return out


def write_csv(path: Path, found: list[tuple[Path, str]], split: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for (photo, label), part in zip(found, split, strict=True):
            writer.writerow([str(photo), label, part])


def stored_descriptors(dataset: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(descriptors, labels) of a split's records."""
    from leafprep.records import load

    values, labels = [], []
    for inputs, y in load(dataset, split, batch_size=512, descriptors=True, images=False):
        values.append(inputs["descriptors"].numpy())
        labels.append(y.numpy())
    return np.concatenate(values), np.concatenate(labels)


def sklearn_peers(dataset: Path) -> dict[str, float]:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x_train, y_train = stored_descriptors(dataset, "train")
    x_test, y_test = stored_descriptors(dataset, "test")
    known = np.isfinite(x_train).all(axis=0) & np.isfinite(x_test).all(axis=0)
    x_train, x_test = x_train[:, known].astype(np.float64), x_test[:, known].astype(np.float64)
    models = {
        "sklearn LDA": make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()),
        "sklearn RBF-SVM": make_pipeline(StandardScaler(), SVC(C=10)),
        "sklearn random forest": RandomForestClassifier(500, random_state=0, n_jobs=1),
    }
    return {name: float(model.fit(x_train, y_train).score(x_test, y_test)) for name, model in models.items()}


def one_draw(name: str, found: list[tuple[Path, str]], split: list[str], draw: int, peers: str) -> dict[str, Any]:
    from leafprep.build import build
    from leafprep.settings import BuildOptions
    from trainers.train import FUSED_RECIPE, LEAF_RECIPE, train

    folder = WORK / f"{name}-{draw}"
    shutil.rmtree(folder, ignore_errors=True)
    write_csv(folder / "photos.csv", found, split)
    start = time.perf_counter()
    build(folder / "photos.csv", folder / "leaf", BuildOptions(kind="leaf", size=64, split=(1.0, 0.0, 0.0)), overwrite=True)
    built = time.perf_counter() - start
    metrics = train(folder / "leaf", folder / "run-default", verbose=0)
    result: dict[str, Any] = {
        "draw": draw,
        "train_examples": split.count("train"),
        "test_examples": split.count("test"),
        "build_seconds": built,
        "default_train_seconds": metrics["train_seconds"],
        "default_shrinkage": metrics["options"]["shrinkage"],
        "accuracy": {f"leafprep train (default: {LEAF_RECIPE.model})": metrics["test_accuracy"]},
    }
    result["accuracy"].update(sklearn_peers(folder / "leaf"))
    if peers == "all":
        fused = train(folder / "leaf", folder / "run-fused", model="leaf-fused", verbose=0)
        result["accuracy"]["leafprep leaf-fused (conv-net + descriptors)"] = fused["test_accuracy"]
        common = {
            "epochs": FUSED_RECIPE.epochs,
            "patience": FUSED_RECIPE.patience,
            "augment": FUSED_RECIPE.augment,
            "hold_out": FUSED_RECIPE.hold_out,
        }
        images = train(folder / "leaf", folder / "run-images", model="leaf", verbose=0, **common)
        result["accuracy"]["leaf conv-net, leafprep images"] = images["test_accuracy"]
        build(folder / "photos.csv", folder / "plain", BuildOptions(kind="none", size=64, split=(1.0, 0.0, 0.0)), overwrite=True)
        plain = train(folder / "plain", folder / "run-plain", model="leaf", verbose=0, **common)
        result["accuracy"]["leaf conv-net, resized photos"] = plain["test_accuracy"]
    print(name, draw, json.dumps(result["accuracy"]), f"build {built:.0f} s, default train {metrics['train_seconds']:.0f} s", flush=True)
    return result


def build_cost(repeats: int = 3) -> dict[str, Any]:
    """Seconds of ``leafprep build --kind leaf --size 64`` with and without descriptors, alternating, in one run (2 workers)."""
    from leafprep.build import build, parse_split
    from leafprep.settings import BuildOptions

    out: dict[str, Any] = {}
    for name in ("uci_dev", "swedish"):
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeats):
            for describes in (False, True):
                target = WORK / f"cost-{name}-{describes}"
                start = time.perf_counter()
                build(SETS[name], target, BuildOptions(kind="leaf", size=64, split=parse_split("2/1"), descriptors=describes), overwrite=True)
                times[describes].append(time.perf_counter() - start)
        best = {key: min(values) for key, values in times.items()}
        out[name] = {"without_seconds": best[False], "with_seconds": best[True], "ratio": best[True] / best[False]}
        print(f"{name}: build without descriptors {best[False]:.1f} s, with {best[True]:.1f} s: {best[True] / best[False]:.2f}x", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="swedish,uci_dev,flavia")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--peers", choices=("all", "cheap"), default="all")
    parser.add_argument("--cost", action="store_true", help="only the build's time with and without descriptors")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.cost:
        results["build_cost"] = build_cost()
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        return
    for name in args.sets.split(","):
        found = photos(SETS[name])
        runs = [one_draw(name, found, split, draw, args.peers) for draw, split in enumerate(draws(name, found, args.draws))]
        rows = sorted({row for run in runs for row in run["accuracy"]})
        results[name] = {
            "protocol": {"swedish": "25 train / 50 test a species, random draws", "uci_dev": "stratified 5-fold", "flavia": "stratified 2/1"}[name],
            "draws": len(runs),
            "mean_accuracy": {row: float(np.mean([run["accuracy"][row] for run in runs if row in run["accuracy"]])) for row in rows},
            "mean_build_plus_default_train_seconds": float(np.mean([run["build_seconds"] + run["default_train_seconds"] for run in runs])),
            "runs": runs,
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    sets = [name for name in results if name in SETS]
    print("| set | " + " | ".join(sets) + " |")
    rows = sorted({row for name in sets for row in results[name]["mean_accuracy"]}, key=lambda r: (not r.startswith("leafprep"), r))
    for row in rows:
        cells = [f"{results[name]['mean_accuracy'][row]:.2%}" if row in results[name]["mean_accuracy"] else "—" for name in sets]
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
