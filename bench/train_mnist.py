"""The trainer on MNIST (built by ``leafprep build ../shared/data/mnist``) and on the real digit photos.

Parts (``python -m bench.train_mnist PART``; ``all`` runs them in turn):

* ``time``: wall-clock training time to 99.0% MNIST test accuracy (checked every
  100 batches, the checks not counted) of the Keras example conv-net (batch
  128, Adam at 1e-3, numpy arrays, as in the Keras example) and of leafprep's
  trainer with the ``fast`` model (batch 128, Adam at 3e-3 with a cosine decay,
  reading the TFRecords), in the same run. Target: at most half.
* ``softmax`` (10 epochs): target at least 92%;
* ``convnet`` (12 epochs): target at least 99.0%;
* ``best``: ``convnet-bn`` with online ``digits`` augmentation; target at least
  99.5%; then ``leafprep predict`` with it on the 50 photos of
  ``../shared/data/digit_photos``: target at least 98% correct.

Runs are kept in bench/.cache/runs/ (the best one feeds the visualiser gallery).
Writes bench/results/train_mnist.json (merged part by part).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench._mnist import CACHE, DATA, MNIST, ROOT, keras_example_convnet, mnist

RESULTS = ROOT / "bench" / "results" / "train_mnist.json"
DATASET = CACHE / "mnist-dataset"
RUNS = CACHE / "runs"
PHOTOS = DATA / "digit_photos"


def dataset() -> Path:
    from leafprep.build import BuildOptions, build
    from leafprep.records import info

    try:
        info(DATASET)
    except Exception:
        build(MNIST, DATASET, BuildOptions(kind="none"), overwrite=True)
    return DATASET


def _timer(target: float, every: int):
    import keras

    x, y = mnist("test")
    x = x[..., None].astype("float32") / 255.0

    class TimeToTarget(keras.callbacks.Callback):
        """Training seconds (checks excluded) until the test accuracy reaches ``target``; then stops."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds, self.reached, self.trace, self.batches = 0.0, None, [], 0

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if self.batches % every:
                return
            self.seconds += time.perf_counter() - self.start
            accuracy = float((np.argmax(self.model.predict(x, batch_size=1000, verbose=0), axis=1) == y).mean())
            self.trace.append((self.batches, round(self.seconds, 2), accuracy))
            if accuracy >= target and self.reached is None:
                self.reached = self.seconds
                self.model.stop_training = True
            self.start = time.perf_counter()

    return TimeToTarget()


def part_time() -> dict:
    import keras

    from trainers.train import train

    x, y = mnist("train")
    keras.utils.set_random_seed(0)
    model = keras_example_convnet(0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    theirs = _timer(0.99, 100)
    model.fit(x[..., None].astype("float32") / 255.0, y, batch_size=128, epochs=12, callbacks=[theirs], verbose=0)
    ours = _timer(0.99, 100)
    train(dataset(), RUNS / "fast", model="fast", epochs=3, batch_size=128, learning_rate=3e-3, callbacks=[ours], verbose=0, patience=4)
    return {
        "keras_example_seconds_to_99": theirs.reached,
        "keras_example_trace": theirs.trace,
        "leafprep_fast_seconds_to_99": ours.reached,
        "leafprep_fast_trace": ours.trace,
        "ratio": (ours.reached / theirs.reached) if ours.reached and theirs.reached else None,
    }


def _train(model: str, epochs: int, **kwargs) -> dict:
    from trainers.train import train

    metrics = train(dataset(), RUNS / model, model=model, epochs=epochs, verbose=2, **kwargs)
    return {"test_accuracy": metrics["test_accuracy"], "epochs_run": metrics["epochs_run"], "seconds": metrics["train_seconds"]}


def part_predict(run: Path) -> dict:
    from trainers.predict import predict

    photos = sorted(p for p in PHOTOS.glob("*/*/*") if p.parent.name.isdigit())
    found = predict(run, photos, top_k=1)
    correct = [p.label == Path(p.source).parent.name for p in found]
    return {
        "photos": len(photos),
        "correct": int(sum(correct)),
        "accuracy": float(np.mean(correct)),
        "wrong": [p.source for p, c in zip(found, correct) if not c],
    }


def main(part: str) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    parts = ["time", "softmax", "convnet", "best"] if part == "all" else [part]
    for name in parts:
        if name == "time":
            results["time_to_99"] = part_time()
        elif name == "softmax":
            results["softmax"] = _train("softmax", 10, learning_rate=3e-3)
        elif name == "convnet":
            results["convnet"] = _train("convnet", 12)
        elif name == "best":
            results["convnet-bn"] = _train("convnet-bn", 15, augment="digits", learning_rate=2e-3, patience=15)
            results["convnet-bn"]["digit_photos"] = part_predict(RUNS / "convnet-bn")
        else:
            raise SystemExit(f"unknown part {name!r}: time, softmax, convnet, best or all")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({name: results.get("time_to_99" if name == "time" else ("convnet-bn" if name == "best" else name))}, indent=1)[:1500])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")
