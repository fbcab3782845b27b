"""The leaf model on the Swedish leaves: at least 97% test accuracy, trained on this CPU within 15 minutes.

``leafprep build ../shared/data/leaves/swedish --kind leaf --size 64 --split 2/1``
(stratified: 50 train and 25 test leaves a species, 3 duplicate scans listed),
then ``leafprep train --model leaf --augment leaves`` and ``leafprep evaluate``
(confusion matrix and worst mistakes kept for the docs).

Run:  python -m bench.train_leaves      (about 10 minutes on 2 cores)
Writes bench/results/train_leaves.json; the run stays in bench/.cache/runs/leaf.
"""

from __future__ import annotations

import json
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._mnist import CACHE, DATA, ROOT

RESULTS = ROOT / "bench" / "results" / "train_leaves.json"
DATASET = CACHE / "swedish-dataset"
RUN = CACHE / "runs" / "leaf"
IMAGES = ROOT / "docs" / "images"


def main() -> None:
    from leafprep.build import BuildOptions, build, parse_split
    from trainers.evaluate import evaluate
    from trainers.train import train

    start = time.perf_counter()
    report = build(DATA / "leaves" / "swedish", DATASET, BuildOptions(kind="leaf", size=64, split=parse_split("2/1")), overwrite=True)
    built = time.perf_counter() - start
    metrics = train(DATASET, RUN, model="leaf", epochs=230, batch_size=32, learning_rate=3e-3, augment="leaves", patience=230, verbose=2)
    evaluation = evaluate(RUN, DATASET, "test")
    IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copy(evaluation["files"]["confusion"], IMAGES / "swedish-confusion.png")
    shutil.copy(evaluation["files"]["mistakes"], IMAGES / "swedish-mistakes.png")
    results = {
        "build_seconds": built,
        "inputs": report.info["inputs"],
        "splits": {split: data["examples"] for split, data in report.info["splits"].items()},
        "train_seconds": metrics["train_seconds"],
        "epochs_run": metrics["epochs_run"],
        "test_accuracy": evaluation["accuracy"],
        "worst_classes": sorted(((v["recall"], k) for k, v in evaluation["per_class"].items()))[:3],
        "parameters": metrics["parameters"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
