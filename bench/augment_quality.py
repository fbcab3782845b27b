"""Do labels survive the ``digits`` preset? And pictures of both presets for the docs.

The Keras example conv-net (99.2% on clean MNIST test, cached by
``bench._mnist``) reads the 10,000 MNIST test digits passed through the
``digits`` preset, offline (albumentations, ``augment_batch``) and online
(Keras layers, ``records``' path). Target: at least 97% for each. Also checks
that the same seed gives the same images and another seed other images, and
draws ``docs/images/augment-digits.png`` and ``docs/images/augment-leaves.png``
(each row: an image, then 7 variants).

Run:  python -m bench.augment_quality      (under a minute once the model is cached)
Writes bench/results/augment_quality.json.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from bench._mnist import ROOT, mnist, predict, trained_convnet

RESULTS = ROOT / "bench" / "results"
IMAGES = ROOT / "docs" / "images"


def online(images: np.ndarray, preset: str, seed: int) -> np.ndarray:
    import tensorflow as tf

    from leafprep.augmentation import tf_augmenter

    change, parallel = tf_augmenter(preset, size=images.shape[1], channels=images.shape[3], seed=seed)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(256).enumerate().map(change, num_parallel_calls=tf.data.AUTOTUNE if parallel else None)
    return np.concatenate([batch.numpy() for batch in dataset])


def grid(rows: list[np.ndarray], path) -> None:
    import cv2

    from leafprep.figures import contact_sheet

    entries = [("", None, image[..., 0] if image.shape[-1] == 1 else image) for row in rows for image in row]
    cv2.imwrite(str(path), contact_sheet(entries, tile=64, columns=len(rows[0]))[:, :, ::-1])


def main() -> None:
    from leafprep.augmentation import augment, augment_batch

    model = trained_convnet()
    images, labels = mnist("test")
    x = images.astype(np.float32)[..., None] / 255.0
    offline = augment_batch(x, "digits", seed=0)
    keras = online(x, "digits", seed=0)
    results = {
        "clean_accuracy": float((predict(model, x[..., 0]) == labels).mean()),
        "offline_albumentations_accuracy": float((predict(model, offline[..., 0]) == labels).mean()),
        "online_keras_accuracy": float((predict(model, keras[..., 0]) == labels).mean()),
        "offline_mean_abs_change": float(np.abs(offline - x).mean()),
        "online_mean_abs_change": float(np.abs(keras - x).mean()),
        "offline_same_seed_same_images": bool(np.array_equal(offline[:500], augment_batch(x[:500], "digits", seed=0))),
        "offline_other_seed_other_images": not np.array_equal(offline[:500], augment_batch(x[:500], "digits", seed=1)),
        "online_same_seed_same_images": bool(np.array_equal(keras, online(x, "digits", seed=0))),
        "online_other_seed_other_images": not np.array_equal(keras, online(x, "digits", seed=1)),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "augment_quality.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")

    picks = [int(np.flatnonzero(labels == d)[0]) for d in (2, 3, 4, 7)]
    grid([np.concatenate([x[i : i + 1], augment(x[i], "digits", n=7, seed=i)]) for i in picks], IMAGES / "augment-digits.png")
    from leafprep.normalization import normalize

    leaves = sorted((ROOT / "sample_data" / "leaves").glob("*/*.jpg"))[::5][:4]
    rows = []
    for n, path in enumerate(leaves):
        leaf = normalize(path, "leaf", 64, mode="gray")[..., None]
        rows.append(np.concatenate([leaf[None], augment(leaf, "leaves", n=7, seed=n)]))
    grid(rows, IMAGES / "augment-leaves.png")


if __name__ == "__main__":
    main()
