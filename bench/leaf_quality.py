"""How precise is leaf segmentation, and does every Swedish leaf normalise well?

One run measures:

* ``../shared/data/leaves/swedish_masks``: IoU of ``leafprep.segment(kind="leaf")``
  against the 200 pseudo ground-truth masks (scans on white);
* a hard-background set with exact masks: leaf cut-outs from those scans,
  recoloured red, brown, yellow or kept green, rotated and pasted on coloured
  card (pink, magenta, blue, grey), wood or black cloth, with a cast shadow,
  specular highlights on the leaf, a ruler and a colour chart in frame, noise
  and JPEG; leafprep beside a plain "excess green + Otsu" baseline;
* a contact sheet of every normalised Swedish image (1125), written to
  ``docs/images/swedish-contact-sheet.png``.

Run:  python -m bench.leaf_quality [--hard 200] [--no-sheet]
Writes bench/results/leaf_quality.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings

import cv2
import numpy as np
from PIL import Image

import leafprep
import leafprep.geometry
from bench._mnist import DATA, ROOT
from leafprep.synthetic import _background

MASKS = DATA / "leaves" / "swedish_masks"
SWEDISH = DATA / "leaves" / "swedish"
RESULTS = ROOT / "bench" / "results"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def pairs() -> list[tuple[np.ndarray, np.ndarray, str]]:
    rows = list(csv.DictReader(open(MASKS / "pairs.csv")))
    out = []
    for row in rows:
        rgb = cv2.cvtColor(cv2.imread(str(MASKS / row["image"])), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(MASKS / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        out.append((rgb, mask, row["image"]))
    return out


def excess_green_otsu(rgb: np.ndarray) -> np.ndarray:
    """The common baseline: excess green (2g - r - b on chromaticity), Otsu, largest component."""
    image = rgb.astype(np.float32)
    total = image.sum(axis=2) + 1e-6
    r, g, b = (image[..., i] / total for i in range(3))
    exg = np.clip((2 * g - r - b + 1) * 127.5, 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(exg, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _recolour(rgb: np.ndarray, choice: str) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hue, sat, val = {"red": (2, 1.4, 1.3), "brown": (12, 1.0, 0.9), "yellow": (24, 1.6, 1.7), "green": (None, 1.0, 1.0)}[choice]
    if hue is not None:
        hsv[..., 0] = hue + (hsv[..., 0] - hsv[..., 0].mean()) * 0.3
    hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * val, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def _ruler(height: int, width: int) -> np.ndarray:
    ruler = np.full((height, width, 3), (238, 228, 150), np.uint8)
    for x in range(2, width, max(3, width // 40)):
        cv2.line(ruler, (x, 0), (x, height // 3 if x % 5 else height // 2), (20, 20, 20), 1)
    return ruler


def _chart(size: int, rng: np.random.Generator) -> np.ndarray:
    chart = np.zeros((size * 4 // 6, size, 3), np.uint8)
    cell = size // 6
    for row in range(4):
        for col in range(6):
            chart[row * cell + 1 : (row + 1) * cell - 1, col * cell + 1 : (col + 1) * cell - 1] = rng.integers(30, 240, 3)
    return chart


def hard_composite(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One leaf of a scan on a hard background, with its exact mask."""
    ys, xs = np.nonzero(mask)
    crop = rgb[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    leaf = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    crop = _recolour(crop, str(rng.choice(["red", "brown", "yellow", "green"])))
    angle = rng.uniform(0, 360)
    crop = leafprep.geometry.rotate(crop.astype(np.float32), angle)
    leaf = leafprep.geometry.rotate(leaf, angle)
    lh, lw = leaf.shape
    height, width = int(lh * 1.6) + 60, int(lw * 1.6) + 60
    kind = str(rng.choice(["card", "card", "wood", "black"]))
    if kind == "black":
        canvas = (
            np.full((height, width, 3), 22, np.float32) + cv2.GaussianBlur(rng.normal(0, 6, (height, width)).astype(np.float32), (0, 0), 2)[..., None]
        )
    elif kind == "card":
        colours = [(235, 140, 180), (190, 40, 140), (70, 100, 185), (150, 150, 152)]
        canvas = np.ones((height, width, 3), np.float32) * np.array(colours[rng.integers(len(colours))], np.float32)
    else:
        canvas = _background("wood", height, width, rng)
    top, left = int(rng.uniform(0.15, 0.3) * height), int(rng.uniform(0.1, 0.35) * width)
    top, left = min(top, height - lh - 2), min(left, width - lw - 2)
    truth = np.zeros((height, width), np.float32)
    truth[top : top + lh, left : left + lw] = leaf
    # A ruler along the bottom and a colour chart in a free corner, both clear of the leaf.
    ruler_h = max(12, height // 25)
    canvas[height - ruler_h - 4 : height - 4, 8 : width // 2] = _ruler(ruler_h, width // 2 - 8)
    chart = _chart(max(36, width // 6), rng)
    ch, cw = chart.shape[:2]
    corner = (4, width - cw - 4) if left + lw < width - cw - 8 else (4, 4)
    if not truth[corner[0] : corner[0] + ch, corner[1] : corner[1] + cw].any():
        canvas[corner[0] : corner[0] + ch, corner[1] : corner[1] + cw] = chart
    shadow = cv2.GaussianBlur(np.roll(truth, (int(rng.uniform(5, 15)), int(rng.uniform(-12, 12))), axis=(0, 1)), (0, 0), 5.0)
    canvas *= (1 - rng.uniform(0.2, 0.45) * shadow)[..., None]
    pasted = np.zeros_like(canvas)
    pasted[top : top + lh, left : left + lw] = crop
    canvas = canvas * (1 - truth[..., None]) + pasted * truth[..., None]
    for _ in range(int(rng.integers(0, 4))):  # specular highlights on the leaf
        cy, cx = np.argwhere(truth > 0.9)[rng.integers(int((truth > 0.9).sum()))]
        spot = np.zeros((height, width), np.float32)
        cv2.ellipse(spot, (int(cx), int(cy)), (int(rng.uniform(4, 12)), int(rng.uniform(2, 6))), rng.uniform(0, 180), 0, 360, 1.0, -1)
        spot = cv2.GaussianBlur(spot, (0, 0), 2.0) * truth
        canvas = canvas * (1 - 0.7 * spot[..., None]) + 250 * 0.7 * spot[..., None]
    canvas += rng.normal(0, 3, canvas.shape).astype(np.float32)
    photo = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), truth > 0.5


def contact_sheet(path) -> tuple[int, float]:
    files = sorted(SWEDISH.glob("*/*.jpg"))
    entries = []
    start = time.perf_counter()
    for file in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = leafprep.normalize(file, kind="leaf", size=48, orient=True)
        entries.append(("", None, image))
    seconds = time.perf_counter() - start
    from leafprep.figures import contact_sheet as sheet

    Image.fromarray(sheet(entries, tile=48, columns=45)[:, :, 0]).save(path, optimize=True)
    return len(files), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="Leaf segmentation quality benchmark")
    parser.add_argument("--hard", type=int, default=200, help="hard-background composites")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-sheet", action="store_true", help="skip the contact sheet of every Swedish leaf")
    args = parser.parse_args()

    warnings.simplefilter("ignore", leafprep.LeafprepWarning)
    data = pairs()
    scans = np.array([iou(leafprep.segment(rgb, kind="leaf"), mask) for rgb, mask, _ in data])
    worst = [data[i][2] for i in np.argsort(scans)[:3]]
    rng = np.random.default_rng(args.seed)
    ours, baseline, failures = [], [], 0
    for index in range(args.hard):
        rgb, mask, _ = data[index % len(data)]
        photo, truth = hard_composite(rgb, mask, rng)
        try:
            found = leafprep.segment(photo, kind="leaf")
        except leafprep.NothingFoundError:
            found, failures = np.zeros_like(truth), failures + 1
        ours.append(iou(found, truth))
        baseline.append(iou(excess_green_otsu(photo), truth))
    ours_a, base_a = np.array(ours), np.array(baseline)
    results = {
        "swedish_masks": {"median_iou": float(np.median(scans)), "worst_iou": float(scans.min()), "worst": worst},
        "hard_backgrounds": {
            "count": args.hard,
            "seed": args.seed,
            "leafprep": {"median_iou": float(np.median(ours_a)), "p10_iou": float(np.percentile(ours_a, 10)), "no_leaf_found": failures},
            "excess_green_otsu": {"median_iou": float(np.median(base_a)), "p10_iou": float(np.percentile(base_a, 10))},
        },
    }
    if not args.no_sheet:
        count, seconds = contact_sheet(ROOT / "docs" / "images" / "swedish-contact-sheet.png")
        results["contact_sheet"] = {"images": count, "seconds": seconds}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "leaf_quality.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| set | method | median IoU | 10th percentile / worst |")
    print("|---|---|---|---|")
    print(f"| swedish_masks (200 scans on white) | leafprep | {np.median(scans):.4f} | worst {scans.min():.4f} |")
    print(f"| hard backgrounds ({args.hard}) | leafprep | {np.median(ours_a):.4f} | p10 {np.percentile(ours_a, 10):.4f} |")
    print(f"| hard backgrounds ({args.hard}) | excess green + Otsu | {np.median(base_a):.4f} | p10 {np.percentile(base_a, 10):.4f} |")
    print(f"\nworst scans: {', '.join(worst)}; no leaf found on {failures} hard photos")


if __name__ == "__main__":
    main()
