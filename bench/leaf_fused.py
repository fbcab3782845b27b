"""The fused leaf model (conv-net + descriptors) with grey and with colour images, and test-time augmentation (issue 24).

On the same photos and splits as ``bench.leaf_species`` (uci_dev's 5 folds,
Swedish's 25 / 50 draws; Flavia is grey, so only grey there): each split is
built with ``leafprep build --kind leaf --size 64`` as grey and as rgb
images, and ``leafprep train --model leaf-fused`` trains on each with its
recipe (80 epochs, ``leaves`` augmentation, 15% held out to stop on). Each
run's test leaves are read as they are and, for test-time augmentation, as
the mean of the probabilities over the eight turns and flips of the image
(the ``leaves`` augmentation trains on any turn and both flips; the
descriptors stay the same). The default descriptor model never sees the
image, so test-time augmentation cannot change its answers.

Run:  python -m bench.leaf_fused [--sets uci_dev,swedish,flavia] [--draws 5]   (about 10 minutes on 2 cores)
Writes bench/results/leaf_fused.json and prints a Markdown table.
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

from bench._mnist import ROOT
from bench.leaf_species import SETS, WORK, draws, photos, write_csv

RESULTS = ROOT / "bench" / "results" / "leaf_fused.json"


def turns_and_flips(images: np.ndarray) -> list[np.ndarray]:
    """The eight images of the dihedral group: four quarter turns, each as it is and mirrored (``(N, H, W, C)``)."""
    out = []
    for k in range(4):
        turned = np.rot90(images, k, axes=(1, 2))
        out += [turned, turned[:, :, ::-1]]
    return [np.ascontiguousarray(image) for image in out]


def fused_accuracy(run_folder: Path, dataset: Path) -> tuple[float, float]:
    """Test accuracy of a run read plainly and with test-time augmentation (mean probabilities over :func:`turns_and_flips`)."""
    from leafprep.records import load
    from trainers.runs import load_run

    model = load_run(run_folder).model
    plain = averaged = total = 0
    for inputs, labels in load(dataset, "test", batch_size=256, descriptors=True):
        images, values, truth = inputs["image"].numpy(), inputs["descriptors"].numpy(), labels.numpy()
        views = [np.asarray(model.predict_on_batch({"image": view, "descriptors": values})) for view in turns_and_flips(images)]
        plain += int((views[0].argmax(1) == truth).sum())
        averaged += int((np.mean(views, axis=0).argmax(1) == truth).sum())
        total += len(truth)
    return plain / total, averaged / total


def one_split(name: str, found: list[tuple[Path, str]], split: list[str], draw: int, modes: tuple[str, ...]) -> dict[str, Any]:
    from leafprep.build import build
    from leafprep.settings import BuildOptions
    from trainers.train import train

    folder = WORK / f"fused-{name}-{draw}"
    shutil.rmtree(folder, ignore_errors=True)
    write_csv(folder / "photos.csv", found, split)
    out: dict[str, Any] = {"draw": draw}
    for mode in modes:
        dataset, run = folder / mode, folder / f"run-{mode}"
        build(folder / "photos.csv", dataset, BuildOptions(kind="leaf", size=64, mode=mode, split=(1.0, 0.0, 0.0)), overwrite=True)
        start = time.perf_counter()
        metrics = train(dataset, run, model="leaf-fused", verbose=0)
        plain, averaged = fused_accuracy(run, dataset)
        out[mode] = {"accuracy": plain, "tta_accuracy": averaged, "train_seconds": time.perf_counter() - start, "epochs": metrics["epochs_run"]}
        print(f"{name} {draw} {mode}: fused {plain:.4f}, with test-time augmentation {averaged:.4f} ({metrics['epochs_run']} epochs)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="uci_dev,swedish,flavia")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "command": "python -m bench.leaf_fused"}
    for name in args.sets.split(","):
        found = photos(SETS[name])
        modes = ("gray",) if name == "flavia" else ("gray", "rgb")
        runs = [one_split(name, found, split, draw, modes) for draw, split in enumerate(draws(name, found, args.draws))]
        results[name] = {
            "runs": runs,
            "mean": {
                mode: {key: float(np.mean([r[mode][key] for r in runs])) for key in ("accuracy", "tta_accuracy", "train_seconds")} for mode in modes
            },
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| `--model leaf-fused` | " + " | ".join(name for name in results if name in SETS) + " |")
    print("|---|" + "---|" * sum(name in SETS for name in results))
    for mode in ("gray", "rgb"):
        for key, label in (("accuracy", mode), ("tta_accuracy", f"{mode}, test-time augmentation")):
            cells = [f"{results[name]['mean'][mode][key]:.2%}" if mode in results[name]["mean"] else "—" for name in results if name in SETS]
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
