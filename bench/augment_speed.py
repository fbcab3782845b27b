"""Online augmentation speed: albumentations image by image against Keras preprocessing layers on batches.

Both run inside a ``tf.data`` pipeline over MNIST train images (28x28, float32,
batches of 256), the way ``leafprep.records.load(..., augment=...)`` runs them:

* ``affine``: what both libraries can do (rotation, shear, shift, scale):
  albumentations ``Affine`` in ``tf.numpy_function`` (parallel map) against
  Keras ``RandomRotation``, ``RandomShear``, ``RandomTranslation``,
  ``RandomZoom`` (one batched op each);
* ``digits``: the whole ``digits`` preset both ways (the albumentations
  pipeline of ``leafprep.augmentation.preset`` and the layers of
  ``keras_layers``);
* ``leaves``: the ``leaves`` preset at 64x64 both ways.

Rates are images a second with every core, and per core (divided by
``os.cpu_count()``); target: at least 5,000 augmented 28x28 images a second
per core online (the path ``records.load`` uses for presets).

Run:  python -m bench.augment_speed      (about a minute on 2 cores)
Writes bench/results/augment_speed.json and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from bench._mnist import ROOT, mnist

RESULTS = ROOT / "bench" / "results"


def rate(dataset, count: int, repeats: int = 3) -> float:
    for _ in dataset.take(2):
        pass  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in dataset:
            pass
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    import albumentations as A
    import cv2
    import keras
    import tensorflow as tf

    from leafprep._keras_layers import Warp
    from leafprep.augmentation import tf_augmenter

    images, _ = mnist("train")
    count = 16384
    digits = images[:count].astype(np.float32)[..., None] / 255.0
    leaves = np.stack([cv2.resize(d, (64, 64)) for d in digits[:4096, :, :, 0]])[..., None]

    def dataset(x):
        return tf.data.Dataset.from_tensor_slices(x).batch(256).enumerate()

    def keras_path(layers):
        def run(index, batch):
            for layer in layers:
                batch = layer(batch, training=True)
            return batch

        return run, False

    black = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0}
    affine_albu = A.Compose([A.Affine(rotate=(-12, 12), translate_percent=(-0.06, 0.06), scale=(0.9, 1.1), shear=(-8, 8), p=1.0, **black)], seed=0)
    fixed = {"fill_mode": "constant", "fill_value": 0.0}
    affine_keras = [
        keras.layers.RandomRotation(12 / 360, seed=1, **fixed),
        keras.layers.RandomShear(x_factor=0.14, y_factor=0.0, seed=2, **fixed),
        keras.layers.RandomTranslation(0.06, 0.06, seed=3, **fixed),
        keras.layers.RandomZoom((-0.1, 0.1), seed=4, **fixed),
    ]
    fused = [Warp(rotate=12, shear=8, scale=(0.9, 1.1), shift=0.06, alpha=0, probability=0, seed=5)]
    cases = {
        "affine": (digits, tf_augmenter(affine_albu, size=28, channels=1), keras_path(affine_keras)),
        "affine, one fused resampling": (digits, tf_augmenter(affine_albu, size=28, channels=1), keras_path(fused)),
        "digits": (digits, tf_augmenter(_albumentations_preset("digits", 28), size=28, channels=1), tf_augmenter("digits", size=28, channels=1)),
        "leaves 64x64": (
            leaves,
            tf_augmenter(_albumentations_preset("leaves", 64), size=64, channels=1),
            tf_augmenter("leaves", size=64, channels=1),
        ),
    }
    cores = os.cpu_count() or 1
    results: dict[str, dict[str, float]] = {}
    for name, (x, (albu, albu_parallel), (ker, ker_parallel)) in cases.items():
        par = tf.data.AUTOTUNE
        albu_rate = rate(dataset(x).map(albu, num_parallel_calls=par if albu_parallel else None).prefetch(2), len(x))
        keras_rate = rate(dataset(x).map(ker, num_parallel_calls=par if ker_parallel else None).prefetch(2), len(x))
        results[name] = {"albumentations_per_s": albu_rate, "keras_per_s": keras_rate, "keras_over_albumentations": keras_rate / albu_rate}
    del keras
    results["cores"] = {"count": cores}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "augment_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"| pipeline | albumentations, image by image (per core) | Keras layers, batched (per core) | Keras / albumentations |  ({cores} cores)")
    print("|---|---|---|---|")
    for name, r in results.items():
        if name == "cores":
            continue
        a, k = r["albumentations_per_s"], r["keras_per_s"]
        print(f"| {name} | {a:,.0f}/s ({a / cores:,.0f}) | {k:,.0f}/s ({k / cores:,.0f}) | {k / a:.1f}x |")


def _albumentations_preset(name: str, size: int):
    from leafprep.augmentation import preset

    return preset(name, size=size, channels=1)


if __name__ == "__main__":
    main()
