"""Peer leaf-segmentation methods, scored on the same real photos in one run.

The methods a user could reach for instead of ``leafprep.segment(kind="leaf")``,
each a function from an RGB photo (uint8) to a boolean leaf mask:

* ``excess_green_otsu``: excess green (2g - r - b on chromaticity), Otsu, largest
  component (imported from :mod:`bench.leaf_quality`);
* ``grabcut_rect``: OpenCV GrabCut (5 iterations) started from a rectangle a few
  percent inside the border, largest component;
* ``grabcut_from_mask``: GrabCut started from a rough mask (sure leaf inside
  it, probable leaf and probable background in a band around its edge, sure
  background beyond); with leafprep's mask this is "GrabCut after leafprep", and
  the run below starts it from the excess-green mask;
* PlantCV 4.11.3 single-plant recipes (colour-space channel, global threshold,
  ``pcv.fill``, ``pcv.fill_holes``, optionally ``pcv.roi.filter(..., "largest")``),
  run in a separate environment, ``bench/.cache/plantcv-venv``, made on first use
  with ``pip``: PlantCV needs ``opencv-python``, which must not sit beside the
  project's ``opencv-python-headless``.  Every recipe of :data:`RECIPES` is
  measured; :data:`BEST_RECIPE`, the best on uci_dev, is the PlantCV row.

Measured on ``../shared/data/leaves/uci_dev`` (111 iPad photos of leaves on
pink or magenta card, with the dataset authors' blade-only masks): IoU against
the masks (median, 10th percentile, photos below 0.9) and seconds per image
(PlantCV's without the start of its interpreter).  leafprep itself is not in
this table: bench/leaf_quality.py puts it beside these functions.

Run:  python -m bench.leaf_peers [--fast]
About 15 minutes on 2 cores (GrabCut from a rectangle takes 4-7 s a photo), plus
the first install; ``--fast`` skips that and all recipes but the best (1 minute).
A full run writes bench/results/leaf_peers.json; every run prints Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from bench._mnist import CACHE, DATA, ROOT
from bench.leaf_quality import excess_green_otsu, iou, largest_component

__all__ = [
    "BEST_RECIPE",
    "RECIPES",
    "excess_green_otsu",
    "grabcut_from_mask",
    "grabcut_rect",
    "plantcv_images",
    "plantcv_masks",
    "plantcv_python",
    "plantcv_run",
    "uci_dev",
]

UCI_DEV = DATA / "leaves" / "uci_dev"
RESULTS = ROOT / "bench" / "results"
VENV = CACHE / "plantcv-venv"
PLANTCV = "plantcv==4.11.3"

#: PlantCV recipes: channel and threshold, then ``pcv.fill`` (objects under 200
#: pixels at 720x960, scaled with the image area) and ``pcv.fill_holes``.  A
#: name ending in ``+largest`` adds ``pcv.roi.filter(roi_type="largest")`` with
#: the whole frame as the region of interest (keep the largest object).
RECIPES: dict[str, str] = {
    "gray_otsu": "pcv.rgb2gray (LAB lightness), Otsu, dark object",
    "lab_a_otsu": "pcv.rgb2gray_lab a (green-magenta), Otsu, dark object",
    "lab_a_blur_otsu": "pcv.gaussian_blur 5x5, LAB a, Otsu, dark object",
    "lab_a_triangle": "LAB a, triangle threshold, dark object",
    "lab_b_otsu": "pcv.rgb2gray_lab b (blue-yellow), Otsu, light object",
    "hsv_h_otsu": "pcv.rgb2gray_hsv h, Otsu, dark object",
    "hsv_s_otsu": "pcv.rgb2gray_hsv s, Otsu, light object",
    "dual_ab": "pcv.threshold.dual_channels a-b, line b = a: yellower than magenta",
}
for _name in list(RECIPES):
    RECIPES[_name + "+largest"] = RECIPES[_name] + "; largest object"
del _name

#: The PlantCV recipe with the best median + 10th percentile on uci_dev (main() measures them all).
#: Measured: 0.976 / 0.948 / 2 below 0.9; lab_a_otsu+largest (no blur) is within 0.001 of it.
BEST_RECIPE = "lab_a_blur_otsu+largest"


# -- OpenCV GrabCut ------------------------------------------------------------------------------------


def _shrink(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, side / max(rgb.shape[:2]))
    if scale == 1.0:
        return np.ascontiguousarray(rgb), 1.0
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _grow(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == tuple(shape[:2]):
        return mask
    big = cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return big > 0.5


def grabcut_rect(rgb: np.ndarray, inset: float = 0.04, *, side: int = 512, iterations: int = 5, seed: int = 0) -> np.ndarray:
    """GrabCut started from a rectangle ``inset`` inside the border; the largest component.

    Parameters
    ----------
    rgb : (H, W, 3) ndarray of uint8
        RGB photo.
    inset : float, optional
        Margin of the starting rectangle on each side, as a fraction of the
        width and height: everything outside it is sure background.
    side : int, optional
        GrabCut runs on the photo shrunk to this long side; the mask is enlarged back.
    iterations : int, optional
        GrabCut iterations.
    seed : int, optional
        Seed of OpenCV's random generator (GrabCut's k-means start).

    Returns
    -------
    mask : (H, W) ndarray of bool
    """
    small, _ = _shrink(rgb, side)
    height, width = small.shape[:2]
    dx, dy = max(1, round(inset * width)), max(1, round(inset * height))
    rect = (dx, dy, width - 2 * dx, height - 2 * dy)
    labels = np.zeros((height, width), np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), labels, rect, background, foreground, iterations, cv2.GC_INIT_WITH_RECT)
    found = largest_component((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    return _grow(found, rgb.shape)


def grabcut_from_mask(rgb: np.ndarray, mask: np.ndarray, *, band: float = 0.02, side: int = 512, iterations: int = 5, seed: int = 0) -> np.ndarray:
    """GrabCut started from a rough mask; the largest component.

    Inside the mask, more than ``band`` from its edge, is sure leaf; the rest of
    the mask is probable leaf; a band of the same width outside it is probable
    background; beyond, sure background.  Started from leafprep's mask this is
    "GrabCut after leafprep".

    Parameters
    ----------
    rgb : (H, W, 3) ndarray of uint8
        RGB photo.
    mask : (H, W) ndarray of bool
        The rough leaf mask.
    band : float, optional
        Width of the uncertain bands, as a fraction of the long side.
    side : int, optional
        GrabCut runs on the photo shrunk to this long side; the mask is enlarged back.
    iterations : int, optional
        GrabCut iterations.
    seed : int, optional
        Seed of OpenCV's random generator.

    Returns
    -------
    mask : (H, W) ndarray of bool
        Empty when ``mask`` is.
    """
    if not mask.any():
        return np.zeros(rgb.shape[:2], bool)
    small, _ = _shrink(rgb, side)
    height, width = small.shape[:2]
    rough = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    radius = max(1, round(band * max(height, width)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    labels = np.full((height, width), cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(rough, kernel) > 0] = cv2.GC_PR_BGD
    labels[rough > 0] = cv2.GC_PR_FGD
    labels[cv2.erode(rough, kernel) > 0] = cv2.GC_FGD
    present = set(np.unique(labels).tolist())
    if not present & {cv2.GC_BGD, cv2.GC_PR_BGD} or not present & {cv2.GC_FGD, cv2.GC_PR_FGD}:
        return _grow(rough > 0, rgb.shape)  # GrabCut needs both classes
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), labels, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    found = largest_component((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    return _grow(found, rgb.shape)


# -- PlantCV, in its own environment -------------------------------------------------------------------

CHILD = r"""
import json, sys, time
from pathlib import Path
import cv2
import numpy as np
from plantcv import plantcv as pcv

job = json.loads(Path(sys.argv[1]).read_text())
out = Path(job["out"])
pcv.params.debug = None

def threshold(recipe, bgr):
    if recipe == "gray_otsu":
        return pcv.threshold.otsu(gray_img=pcv.rgb2gray(rgb_img=bgr), object_type="dark")
    if recipe == "lab_a_otsu":
        return pcv.threshold.otsu(gray_img=pcv.rgb2gray_lab(rgb_img=bgr, channel="a"), object_type="dark")
    if recipe == "lab_a_blur_otsu":
        blurred = pcv.gaussian_blur(img=bgr, ksize=(5, 5))
        return pcv.threshold.otsu(gray_img=pcv.rgb2gray_lab(rgb_img=blurred, channel="a"), object_type="dark")
    if recipe == "lab_a_triangle":
        return pcv.threshold.triangle(gray_img=pcv.rgb2gray_lab(rgb_img=bgr, channel="a"), object_type="dark", xstep=1)
    if recipe == "lab_b_otsu":
        return pcv.threshold.otsu(gray_img=pcv.rgb2gray_lab(rgb_img=bgr, channel="b"), object_type="light")
    if recipe == "hsv_h_otsu":
        return pcv.threshold.otsu(gray_img=pcv.rgb2gray_hsv(rgb_img=bgr, channel="h"), object_type="dark")
    if recipe == "hsv_s_otsu":
        return pcv.threshold.otsu(gray_img=pcv.rgb2gray_hsv(rgb_img=bgr, channel="s"), object_type="light")
    if recipe == "dual_ab":
        return pcv.threshold.dual_channels(rgb_img=bgr, x_channel="a", y_channel="b", points=[(0, 0), (255, 255)], above=True)
    raise SystemExit(f"unknown recipe {recipe}")

def segment(recipe, bgr):
    base, _, largest = recipe.partition("+")
    height, width = bgr.shape[:2]
    mask = threshold(base, bgr)
    mask = pcv.fill(bin_img=mask, size=max(20, round(200 * height * width / (720 * 960))))
    mask = pcv.fill_holes(bin_img=mask)
    if largest:
        if not mask.any():
            return mask
        roi = pcv.roi.rectangle(img=bgr, x=0, y=0, h=height, w=width)
        mask = pcv.roi.filter(mask=mask, roi=roi, roi_type="largest")
    return mask

seconds = {}
for recipe in job["recipes"]:
    folder = out / recipe
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for index, name in enumerate(job["inputs"]):
        bgr = cv2.imread(name, cv2.IMREAD_COLOR)
        try:
            mask = segment(recipe, bgr)
        except (RuntimeError, ValueError):  # pcv.fatal_error raises RuntimeError
            mask = np.zeros(bgr.shape[:2], np.uint8)
        cv2.imwrite(str(folder / f"{index:05d}.png"), mask)
    seconds[recipe] = (time.perf_counter() - start) / max(1, len(job["inputs"]))
print(json.dumps(seconds))
"""


def plantcv_python() -> Path:
    """The interpreter of the PlantCV environment, ``bench/.cache/plantcv-venv`` (made on first use).

    Returns
    -------
    python : pathlib.Path
    """
    python = VENV / "bin" / "python"
    if not python.exists():
        VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PLANTCV], check=True)
    return python


def plantcv_run(paths: Sequence[Path], recipes: Sequence[str]) -> dict[str, tuple[list[np.ndarray], float]]:
    """Run PlantCV ``recipes`` over image files in one child process.

    Parameters
    ----------
    paths : sequence of pathlib.Path
        Images OpenCV can read (JPEG, PNG).
    recipes : sequence of str
        Names from :data:`RECIPES`.

    Returns
    -------
    results : dict
        For each recipe, the masks (bool, one per path, in order) and the seconds
        per image inside the child (reading the file included, starting Python not).
    """
    unknown = [recipe for recipe in recipes if recipe not in RECIPES]
    if unknown:
        raise ValueError(f"unknown PlantCV recipes: {unknown}")
    python = plantcv_python()
    with tempfile.TemporaryDirectory(prefix="leaf-peers-") as scratch:
        job = Path(scratch) / "job.json"
        job.write_text(json.dumps({"recipes": list(recipes), "inputs": [str(Path(p).resolve()) for p in paths], "out": scratch}))
        environment = {**os.environ, "PYTHONPATH": "", "MPLBACKEND": "Agg"}
        child = subprocess.run([str(python), "-c", CHILD, str(job)], capture_output=True, text=True, env=environment, check=False)
        if child.returncode != 0:
            raise RuntimeError(f"PlantCV child failed:\n{child.stderr[-3000:]}")
        seconds = json.loads(child.stdout.strip().splitlines()[-1])
        results = {}
        for recipe in recipes:
            masks = [cv2.imread(str(Path(scratch) / recipe / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0 for i in range(len(paths))]
            results[recipe] = (masks, float(seconds[recipe]))
    return results


def plantcv_masks(paths: Sequence[Path], recipe: str = BEST_RECIPE) -> list[np.ndarray]:
    """PlantCV's masks of image files, by one recipe of :data:`RECIPES`.

    Parameters
    ----------
    paths : sequence of pathlib.Path
        Images OpenCV can read.
    recipe : str, optional
        Name in :data:`RECIPES`; the best on uci_dev by default.

    Returns
    -------
    masks : list of (H, W) ndarray of bool
    """
    return plantcv_run(paths, [recipe])[recipe][0]


def plantcv_images(images: Sequence[np.ndarray], recipe: str = BEST_RECIPE) -> list[np.ndarray]:
    """PlantCV's masks of in-memory RGB photos (written to a temporary folder as PNG first).

    Parameters
    ----------
    images : sequence of (H, W, 3) ndarray of uint8
        RGB photos.
    recipe : str, optional
        Name in :data:`RECIPES`.

    Returns
    -------
    masks : list of (H, W) ndarray of bool
    """
    with tempfile.TemporaryDirectory(prefix="leaf-peers-png-") as scratch:
        paths = []
        for index, rgb in enumerate(images):
            path = Path(scratch) / f"{index:05d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            paths.append(path)
        return plantcv_masks(paths, recipe)


# -- scoring -------------------------------------------------------------------------------------------


def uci_dev() -> list[tuple[Path, np.ndarray]]:
    """The uci_dev photos (paths) with their blade-only masks (bool), in labels.csv order."""
    with open(UCI_DEV / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [(UCI_DEV / row["image"], cv2.imread(str(UCI_DEV / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127) for row in rows]


def _summary(scores: Sequence[float], seconds: float) -> dict[str, float | int]:
    values = np.asarray(scores, np.float64)
    return {
        "median_iou": round(float(np.median(values)), 4),
        "p10_iou": round(float(np.percentile(values, 10)), 4),
        "below_0_9": int((values < 0.9).sum()),
        "worst_iou": round(float(values.min()), 4),
        "seconds_per_image": round(seconds, 4),
    }


def _timed(method: Callable[[np.ndarray], np.ndarray], photos: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float]:
    start = time.perf_counter()
    masks = [method(rgb) for rgb in photos]
    return masks, (time.perf_counter() - start) / max(1, len(photos))


def main() -> None:
    parser = argparse.ArgumentParser(description="Peer leaf-segmentation methods on uci_dev")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), help="PlantCV recipes to measure (all by default)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (0: all)")
    parser.add_argument("--fast", action="store_true", help="skip GrabCut from a rectangle (7 s a photo) and all recipes but the best; print only")
    args = parser.parse_args()
    if args.fast:
        args.recipes = [BEST_RECIPE]

    data = uci_dev()
    if args.limit:
        data = data[: args.limit]
    paths = [path for path, _ in data]
    truths = [truth for _, truth in data]
    photos = [cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for path in paths]

    methods: dict[str, dict[str, float | int]] = {}
    names = {
        "excess_green_otsu": "excess green + Otsu",
        "grabcut_rect": "GrabCut from a rectangle 4% inside",
        "grabcut_from_exg": "GrabCut from the excess-green mask",
    }
    exg, seconds = _timed(excess_green_otsu, photos)
    methods["excess_green_otsu"] = _summary([iou(m, t) for m, t in zip(exg, truths)], seconds)
    if not args.fast:
        masks, seconds = _timed(grabcut_rect, photos)
        methods["grabcut_rect"] = _summary([iou(m, t) for m, t in zip(masks, truths)], seconds)
    start = time.perf_counter()
    masks = [grabcut_from_mask(rgb, rough) for rgb, rough in zip(photos, exg)]
    seconds = (time.perf_counter() - start) / len(photos) + methods["excess_green_otsu"]["seconds_per_image"]
    methods["grabcut_from_exg"] = _summary([iou(m, t) for m, t in zip(masks, truths)], seconds)

    recipes: dict[str, dict[str, float | int]] = {}
    for recipe, (found, seconds) in plantcv_run(paths, args.recipes).items():
        recipes[recipe] = _summary([iou(m, t) for m, t in zip(found, truths)], seconds)
    best = max(recipes, key=lambda r: (recipes[r]["median_iou"] + recipes[r]["p10_iou"], -recipes[r]["below_0_9"]))
    methods["plantcv"] = {"recipe": best, **recipes[best]}  # type: ignore[dict-item]
    names["plantcv"] = f"PlantCV 4.11.3 ({best})"

    results = {
        "set": "uci_dev",
        "images": len(photos),
        "truth": "the dataset authors' blade-only masks (petiole excluded)",
        "methods": methods,
        "plantcv_recipes": {name: {"steps": RECIPES[name], **figures} for name, figures in recipes.items()},
        "plantcv_best": best,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    if not (args.fast or args.limit or args.recipes != list(RECIPES)):
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "leaf_peers.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"uci_dev, {len(photos)} photos, IoU against the blade-only masks\n")
    print("| method | median IoU | 10th percentile | below 0.9 | seconds / image |")
    print("|---|---|---|---|---|")
    for key, figures in methods.items():
        print(
            f"| {names[key]} | {figures['median_iou']:.3f} | {figures['p10_iou']:.3f} | {figures['below_0_9']} | {figures['seconds_per_image']:.3f} |"
        )
    print("\nPlantCV recipes (fill small objects and holes after each)\n")
    print("| recipe | steps | median IoU | 10th percentile | below 0.9 | seconds / image |")
    print("|---|---|---|---|---|---|")
    for name, figures in recipes.items():
        print(
            f"| {name} | {RECIPES[name]} | {figures['median_iou']:.3f} | {figures['p10_iou']:.3f} | {figures['below_0_9']} "
            f"| {figures['seconds_per_image']:.3f} |"
        )
    if best != BEST_RECIPE:
        print(f"\nnote: the best recipe here is {best}, BEST_RECIPE in the code is {BEST_RECIPE}")


if __name__ == "__main__":
    main()
