"""How well does a plain MNIST conv-net read digits after leafprep.normalize?

One run measures, with the same Keras example conv-net trained on clean MNIST
(cached in bench/.cache after the first run, about 7 minutes on 2 cores):

* the 50 real phone photos in ../shared/data/digit_photos, after three recipes:
  naive (grey, resize to 28x28, invert), the common recipe (invert, Otsu, crop,
  20x20, centre of mass) and leafprep.normalize;
* a synthetic hard-photo set: MNIST test digits drawn by leafprep.synthetic
  (coloured and ruled paper, inks, pens, shadows, noise, blur, JPEG, chalk);
* a round trip: MNIST test digits drawn 8x larger as ink on white paper and
  normalised again: mean pixel correlation with the original and the accuracy
  lost.

Run:  python -m bench.digit_quality [--synthetic 1000] [--round-trip 1000]
Writes bench/results/digit_quality.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np

import leafprep
from bench._mnist import DATA, ROOT, mnist, predict, trained_convnet
from leafprep.geometry import center_by_mass, fit_to_box
from leafprep.loading import load_image
from leafprep.synthetic import ink_on_paper, random_photo

RESULTS = ROOT / "bench" / "results"


def naive(source) -> np.ndarray:
    """Greyscale, resize to 28x28, invert."""
    gray = cv2.cvtColor(load_image(source), cv2.COLOR_RGB2GRAY)
    return 1.0 - cv2.resize(gray, (28, 28), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def common_recipe(source) -> np.ndarray:
    """The usual tutorial recipe: invert, Otsu, crop to the ink, fit 20x20, centre of mass."""
    gray = cv2.cvtColor(load_image(source), cv2.COLOR_RGB2GRAY)
    _, binary = cv2.threshold(cv2.GaussianBlur(gray, (5, 5), 0), 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ys, xs = np.nonzero(binary)
    if ys.size == 0:
        return np.zeros((28, 28), np.float32)
    crop = binary[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255.0
    return center_by_mass(np.clip(fit_to_box(crop, 20), 0, 1), 28)


def leafprep_recipe(source) -> np.ndarray:
    try:
        return leafprep.normalize(source)
    except leafprep.LeafprepError:
        return np.zeros((28, 28), np.float32)


RECIPES = {"naive": naive, "common recipe": common_recipe, "leafprep.normalize": leafprep_recipe}


def accuracy(model, sources, labels) -> dict[str, float]:
    labels = np.asarray(labels)
    return {name: float((predict(model, np.stack([f(s) for s in sources])) == labels).mean()) for name, f in RECIPES.items()}


def real_photos(model) -> tuple[dict[str, float], list[str]]:
    photos = sorted((DATA / "digit_photos").glob("dcdl-*/*/*.png"))
    labels = [int(p.parent.name) for p in photos]
    scores = accuracy(model, photos, labels)
    predicted = predict(model, np.stack([leafprep_recipe(p) for p in photos]))
    wrong = [f"{p.relative_to(DATA / 'digit_photos')} read as {q}" for p, q, y in zip(photos, predicted, labels) if q != y]
    return scores, wrong


def synthetic(model, count: int, seed: int = 2026) -> dict[str, float]:
    images, labels = mnist("test")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=count, replace=False)
    photos = [random_photo(images[i], rng) for i in picks]
    return accuracy(model, photos, labels[picks])


def round_trip(model, count: int) -> dict[str, float]:
    images, labels = mnist("test")
    images, labels = images[:count], labels[:count]
    back = np.stack([leafprep_recipe(ink_on_paper(d, scale=8)) for d in images])
    correlations = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(back, images / 255.0)]
    original = float((predict(model, images / 255.0) == labels).mean())
    after = float((predict(model, back) == labels).mean())
    return {
        "mean_correlation": float(np.mean(correlations)),
        "accuracy_original": original,
        "accuracy_round_trip": after,
        "points_lost": 100 * (original - after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Digit normalisation quality benchmark")
    parser.add_argument("--synthetic", type=int, default=1000, help="synthetic hard photos to score")
    parser.add_argument("--round-trip", type=int, default=1000, help="MNIST digits for the round trip")
    args = parser.parse_args()

    start = time.perf_counter()
    model = trained_convnet()
    test_x, test_y = mnist("test")
    clean = float((predict(model, test_x / 255.0) == test_y).mean())
    photos, wrong = real_photos(model)
    hard = synthetic(model, args.synthetic)
    trip = round_trip(model, args.round_trip)
    results = {
        "model": "Keras example conv-net (conv32-pool-conv64-pool-dropout-dense), 12 epochs, batch 128, Adam",
        "clean_mnist_test_accuracy": clean,
        "digit_photos_50": photos,
        "digit_photos_mistakes": wrong,
        f"synthetic_hard_{args.synthetic}": hard,
        f"round_trip_{args.round_trip}": trip,
        "seconds": time.perf_counter() - start,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "digit_quality.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"clean MNIST test accuracy of the conv-net: {clean:.2%}\n")
    print(f"| recipe | digit_photos (50 real) | synthetic hard ({args.synthetic}) |")
    print("|---|---|---|")
    for name in RECIPES:
        print(f"| {name} | {photos[name]:.0%} | {hard[name]:.1%} |")
    print(
        f"\nround trip ({args.round_trip} MNIST test digits, 8x on paper): mean correlation {trip['mean_correlation']:.3f}, "
        f"accuracy {trip['accuracy_original']:.2%} -> {trip['accuracy_round_trip']:.2%} ({trip['points_lost']:.2f} points lost)"
    )
    if wrong:
        print("mistakes on digit_photos:", "; ".join(wrong), file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
