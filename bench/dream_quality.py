"""Do dreams look like the data? Issue 15's targets for ``leafprep visualize --what dream``.

For the MNIST ``softmax`` (1 epoch, the defaults), ``convnet`` and ``fast``
(3 epochs each) runs, trained by leafprep on ``leafprep build
../shared/data/mnist`` (cached in bench/.cache/runs/dream-*):

* **PC residual**: the share of a dream's deviation from the mean training
  image that the 40 leading principal components of the MNIST training images
  cannot explain, ``|r| / |x - mean|``. Real test digits: median 0.450, 95th
  percentile 0.585 (printed below from the same data); uniform noise 0.92.
  Target: every dream at most the real digits' 95th percentile.
* **Independent reading**: the Keras MNIST example conv-net, trained
  separately on the IDX arrays (bench/_mnist.py, never dreamed from), reads
  each dream; target: its own class with probability at least 0.9.
* **Time**: training the prior (target at most 3 minutes, cached in the run
  folder) and dreaming one class (target at most 10 s).

The same measures for ``--prior none`` (activation maximisation on the pixels)
in the same run, as the baseline.

Leaves (``--leaves``): the Swedish leaf model (bench/train_leaves.py's recipe,
shorter) and a second leaf network trained separately (another seed, the
``convnet-bn`` model); target: the second reads the first's dreams as their
own species for at least 13 of 15 species. Every prior is the one ``auto``
trains: the autoencoder with a Gaussian on its codes (``trainers.prior``).

Run:  python -m bench.dream_quality [--per-class 3] [--leaves] [--no-pixels] [--seed 0]
Writes bench/results/dream_quality.json and docs/images/dreams-*.png; with
another ``--seed`` (the dreams' starting codes; the networks stay the same)
the figures go under ``mnist-seedN`` / ``leaves-seedN`` and no pictures are drawn.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench._mnist import CACHE, DATA, ROOT, mnist, trained_convnet

RESULTS = ROOT / "bench" / "results" / "dream_quality.json"
IMAGES = ROOT / "docs" / "images"
RUNS = CACHE / "runs"
MNIST_RUNS = {"softmax": 1, "convnet": 3, "fast": 3}


def principal_components(images: np.ndarray, count: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the ``count`` leading principal axes of flattened images."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, axes = np.linalg.svd(flat - mean, full_matrices=False)
    return mean, axes[:count]


def pc_residual(images: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """|x - mean - projection| / |x - mean| for each image: what the components cannot explain."""
    centred = images.reshape(len(images), -1).astype(np.float64) - mean
    rest = centred - (centred @ axes.T) @ axes
    return np.linalg.norm(rest, axis=1) / np.maximum(np.linalg.norm(centred, axis=1), 1e-9)


def _mnist_run(model: str, epochs: int) -> Path:
    from bench.train_mnist import dataset
    from trainers.train import train

    run = RUNS / f"dream-{model}"
    if not (run / "metrics.json").is_file():
        train(dataset(), run, model=model, epochs=epochs, verbose=2, patience=epochs)
    return run


def _dreams(run_folder: Path, prior: bool, per_class: int, seed: int) -> tuple[np.ndarray, list[float], dict[str, Any]]:
    from trainers.prior import DEFAULT_KIND, PRIOR_FILE, PRIOR_INFO, _cached_kind, decoder_for
    from trainers.runs import load_run
    from trainers.visualize import dreams

    def kind(folder: Path) -> str | None:
        return _cached_kind(folder) if (folder / PRIOR_FILE).is_file() else None

    run = load_run(run_folder)
    facts: dict[str, Any] = {}
    decoder = None
    if prior:
        if kind(run_folder) != DEFAULT_KIND:  # the runs on one dataset share its prior: trained once, timed once
            for other in RUNS.glob("dream-*"):
                same = json.loads((other / "preprocessing.json").read_text())["dataset"] == run.settings["dataset"]
                if same and kind(other) == DEFAULT_KIND:
                    for name in (PRIOR_FILE, PRIOR_INFO):
                        shutil.copy(other / name, run_folder / name)
                    break
        decoder = decoder_for(run, verbose=True)
        facts["prior"] = json.loads((run_folder / PRIOR_INFO).read_text())
    seconds, pictures = [], []
    for index in range(len(run.labels)):
        start = time.perf_counter()
        pictures.append(dreams(run.model, index, per_class, prior=decoder, seed=seed + index))
        seconds.append(time.perf_counter() - start)
    return np.concatenate(pictures), seconds, facts


def _figure(pictures: np.ndarray, labels: list[str], per_class: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    classes = len(labels)
    figure = Figure(figsize=(1.0 * classes, 1.0 * per_class + 0.5))
    axes = figure.subplots(per_class, classes, squeeze=False)
    for index, picture in enumerate(pictures):
        ax = axes[index % per_class, index // per_class]
        ax.imshow(picture[:, :, 0] if picture.shape[2] == 1 else picture, cmap="gray_r" if picture.shape[2] == 1 else None, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if index % per_class == 0:
            ax.set_title(labels[index // per_class][:10], fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=100, bbox_inches="tight")


def part_mnist(per_class: int, seed: int, models: list[str], pixels: bool = True, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    train_images, _ = mnist("train")
    test_images, _ = mnist("test")
    mean, axes = principal_components(train_images / 255.0)
    real = pc_residual(test_images / 255.0, mean, axes)
    noise = pc_residual(np.random.default_rng(0).uniform(0, 1, (1000, 784)), mean, axes)
    limit = float(np.percentile(real, 95))
    judge = trained_convnet()
    result: dict[str, Any] = {
        "real_test_digits": {"median": round(float(np.median(real)), 4), "p95": round(limit, 4)},
        "uniform_noise_median": round(float(np.median(noise)), 4),
        "per_class": per_class,
        "runs": dict((previous or {}).get("runs", {})),
    }
    for model in models:
        epochs = MNIST_RUNS[model]
        run = _mnist_run(model, epochs)
        metrics = json.loads((run / "metrics.json").read_text())
        entry: dict[str, Any] = {"test_accuracy": round(metrics["test_accuracy"], 4), "epochs": epochs}
        kept = (previous or {}).get("runs", {}).get(model, {})
        if not pixels and "none" in kept:  # the pixel dreams do not depend on the prior: kept
            entry["none"] = kept["none"]
        for prior in (True, False) if pixels else (True,):
            pictures, seconds, facts = _dreams(run, prior, per_class, seed)
            own = np.repeat(np.arange(10), per_class)
            residual = pc_residual(pictures[..., 0], mean, axes)
            read = np.asarray(judge.predict(pictures, verbose=0))[np.arange(len(own)), own]
            worst_class_residual = [float(residual[own == c].max()) for c in range(10)]
            worst_class_read = [float(read[own == c].min()) for c in range(10)]
            key = "prior" if prior else "none"
            entry[key] = {
                "residual_median": round(float(np.median(residual)), 4),
                "residual_max": round(float(residual.max()), 4),
                "classes_within_real_p95": int(sum(r <= limit for r in worst_class_residual)),
                "independent_probability_min": round(float(read.min()), 4),
                "independent_probability_median": round(float(np.median(read)), 4),
                "classes_read_at_0_9": int(sum(p >= 0.9 for p in worst_class_read)),
                "seconds_per_class_max": round(max(seconds), 2),
                "seconds_per_class_median": round(float(np.median(seconds)), 2),
                **facts,
            }
            if seed == 0:
                IMAGES.mkdir(parents=True, exist_ok=True)
                how = f"on the {facts['prior'].get('kind', 'vae')} prior" if prior else "no prior (pixels)"
                _figure(pictures, [str(c) for c in range(10)], per_class, IMAGES / f"dreams-{model}-{key}.png", f"{model}: dreams {how}")
            print(model, key, json.dumps(entry[key]), flush=True)
        result["runs"][model] = entry
    return result


def part_leaves(per_class: int, seed: int, pixels: bool = True, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    from leafprep.build import BuildOptions, build, parse_split
    from leafprep.records import info
    from trainers.runs import load_run
    from trainers.train import train

    dataset = CACHE / "swedish-dataset"
    try:
        info(dataset)
    except Exception:
        build(DATA / "leaves" / "swedish", dataset, BuildOptions(kind="leaf", size=64, split=parse_split("2/1")), overwrite=True)
    dreamed, judge = RUNS / "dream-leaf", RUNS / "dream-leaf-judge"
    for run, model, run_seed in ((dreamed, "leaf", 0), (judge, "convnet-bn", 1)):
        if not (run / "metrics.json").is_file():
            train(dataset, run, model=model, epochs=80, batch_size=32, learning_rate=3e-3, augment="leaves", patience=80, verbose=2, seed=run_seed)
    labels = load_run(dreamed).labels
    reader = load_run(judge)
    result: dict[str, Any] = {
        "accuracy": {
            name: round(json.loads((run / "metrics.json").read_text())["test_accuracy"], 4) for name, run in (("dreamed", dreamed), ("judge", judge))
        }
    }
    if not pixels and previous and "none" in previous:  # the pixel dreams do not depend on the prior: kept
        result["none"] = previous["none"]
    for prior in (True, False) if pixels else (True,):
        pictures, seconds, facts = _dreams(dreamed, prior, per_class, seed)
        own = np.repeat(np.arange(len(labels)), per_class)
        read = np.asarray(reader.model.predict(pictures, verbose=0))
        species_read = [int((read[own == c].argmax(axis=1) == c).mean() >= 0.5) for c in range(len(labels))]
        key = "prior" if prior else "none"  # the kind 'auto' picks for 747 leaves: facts["prior"]["kind"]
        result[key] = {
            "species_read_as_own": int(sum(species_read)),
            "species": [label for label, read_as_own in zip(labels, species_read, strict=True) if read_as_own],
            "of": len(labels),
            "own_probability_median": round(float(np.median(read[np.arange(len(own)), own])), 4),
            "seconds_per_class_max": round(max(seconds), 2),
            **facts,
        }
        if seed == 0:
            how = f"on the {facts['prior']['kind']} prior" if prior else "no prior (pixels)"
            _figure(pictures, labels, per_class, IMAGES / f"dreams-leaf-{key}.png", f"Swedish leaf model: dreams {how}")
        print("leaf", key, json.dumps(result[key]), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leaves", action="store_true", help="also the Swedish leaf model (about 15 minutes more)")
    parser.add_argument("--no-mnist", action="store_true")
    parser.add_argument("--no-pixels", action="store_true", help="skip the --prior none dreams (keeps their previous figures)")
    parser.add_argument("--runs", nargs="+", default=list(MNIST_RUNS), choices=list(MNIST_RUNS), help="MNIST runs to dream from (others keep theirs)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    suffix = "" if args.seed == 0 else f"-seed{args.seed}"
    if not args.no_mnist:
        results["mnist" + suffix] = part_mnist(args.per_class, args.seed, args.runs, not args.no_pixels, results.get("mnist" + suffix))
    if args.leaves:
        results["leaves" + suffix] = part_leaves(args.per_class, args.seed, not args.no_pixels, results.get("leaves" + suffix))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
