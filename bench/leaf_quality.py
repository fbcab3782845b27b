"""How precise is leaf segmentation on real photos, and do our synthetic photos tell the truth about it?

One run measures, real photos first, every method on the same files:

* ``../shared/data/leaves/uci_dev``: 111 real iPad photos of leaves on coloured
  card, IoU against the dataset authors' blade-only masks
  (``leafprep.segment(kind="leaf", petiole=False)``), and how well leafprep's
  doubtful-mask warnings pick out its masks below IoU 0.9;
* the realistic synthetic set (``bench.leaf_photos.realistic_set``): Swedish
  leaves recoloured and photographed as a phone would, with uneven light,
  shadows, grain and JPEG, exact masks: once on the real set's coloured cards
  (does it track the real photos?), once on every surface (paper, card, wood,
  cloth: what the real sets do not cover);
* beside leafprep, the peers (``bench.leaf_peers``): excess green + Otsu (raw
  2G-R-B, the one-line baseline, and on chromaticity), PlantCV's best recipe
  for coloured card, GrabCut from a rectangle 4% inside the border, and
  GrabCut started from leafprep's own mask; whether the synthetic sets rank
  the methods as the real photos do (Spearman's rank correlation of medians
  and of 10th percentiles);
* ``../shared/data/leaves/swedish_masks``: the 200 scans on white with pseudo
  ground truth;
* the old hard-background set (``hard_composite``: recoloured cut-outs on card,
  wood or black cloth with a ruler and a colour chart, even light), kept to show
  that it did not track the real photos;
* a contact sheet of every normalised Swedish image (1125), written to
  ``docs/images/swedish-contact-sheet.png``.

Run:  python -m bench.leaf_quality [--realistic 100] [--hard 100] [--no-sheet] [--no-grabcut-rect]
      python -m bench.leaf_quality --ceiling   (uci_dev's threshold ceiling only, about a minute)
(about 20 minutes on 2 cores, GrabCut from a rectangle most of it; PlantCV runs in
its own environment, made on first use). Writes bench/results/leaf_quality.json
and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

import leafprep
import leafprep.geometry
from bench._mnist import DATA, ROOT
from leafprep.errors import DOUBT
from leafprep.synthetic import _background

MASKS = DATA / "leaves" / "swedish_masks"
SWEDISH = DATA / "leaves" / "swedish"
RESULTS = ROOT / "bench" / "results"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def best_iou(found: list[Any], truth: np.ndarray) -> float:
    """The IoU with ``truth`` of the object of ``found`` (``segment_all``'s, box and mask) that fits it best (0 when none)."""
    best = 0.0
    for thing in found:
        x, y, w, h = thing.box
        mask = np.zeros(truth.shape, bool)
        mask[y : y + h, x : x + w] = thing.mask
        best = max(best, iou(mask, truth))
    return best


def pairs() -> list[tuple[np.ndarray, np.ndarray, str]]:
    rows = list(csv.DictReader(open(MASKS / "pairs.csv")))
    out = []
    for row in rows:
        rgb = cv2.cvtColor(cv2.imread(str(MASKS / row["image"])), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(MASKS / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        out.append((rgb, mask, row["image"]))
    return out


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask`` (all False when it is empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _otsu_largest(score: np.ndarray) -> np.ndarray:
    _, mask = cv2.threshold(score, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return largest_component(mask)


def excess_green_otsu(rgb: np.ndarray) -> np.ndarray:
    """Excess green on chromaticity (2g - r - b of r, g, b = R, G, B over their sum), Otsu, largest component."""
    image = rgb.astype(np.float32)
    total = image.sum(axis=2) + 1e-6
    r, g, b = (image[..., i] / total for i in range(3))
    return _otsu_largest(np.clip((2 * g - r - b + 1) * 127.5, 0, 255).astype(np.uint8))


def _excess_green(rgb: np.ndarray) -> np.ndarray:
    """2G - R - B on the raw values (float32, -510 to 510)."""
    image = rgb.astype(np.float32)
    return 2 * image[..., 1] - image[..., 0] - image[..., 2]


def excess_green_raw_otsu(rgb: np.ndarray) -> np.ndarray:
    """The one-line baseline: excess green 2G - R - B on the raw values, Otsu, largest component."""
    return _otsu_largest(np.clip((_excess_green(rgb) + 510) / 1020 * 255, 0, 255).astype(np.uint8))


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


def _leafprep(petiole: bool) -> Callable[[np.ndarray], tuple[np.ndarray, list[str]]]:
    def run(rgb: np.ndarray) -> tuple[np.ndarray, list[str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", leafprep.LeafprepWarning)
            try:
                mask = leafprep.segment(rgb, kind="leaf", petiole=petiole)
            except leafprep.NothingFoundError:
                mask = np.zeros(rgb.shape[:2], bool)
        return mask, [w.message.message for w in caught if isinstance(w.message, leafprep.LeafprepWarning)]

    return run


def _summary(scores: list[float], seconds: float) -> dict[str, Any]:
    values = np.asarray(scores, np.float64)
    return {
        "median_iou": float(np.median(values)),
        "p10_iou": float(np.percentile(values, 10)),
        "below_0_9": int((values < 0.9).sum()),
        "worst_iou": float(values.min()),
        "seconds_per_image": seconds,
    }


def compare(photos: list[np.ndarray], truths: list[np.ndarray], paths: list[Path] | None, *, petiole: bool, grabcut_rect: bool) -> dict[str, Any]:
    """Every method on the same photos: IoU figures, seconds per image, and leafprep's doubts."""
    from bench import leaf_peers

    methods: dict[str, dict[str, Any]] = {}

    def timed(name: str, masks_of: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
        start = time.perf_counter()
        masks = masks_of()
        seconds = (time.perf_counter() - start) / len(photos)
        methods[name] = _summary([iou(m, t) for m, t in zip(masks, truths)], seconds)
        return masks

    ours = _leafprep(petiole)
    found: list[list[str]] = []  # leafprep's warnings, photo by photo

    def leafprep_masks() -> list[np.ndarray]:
        masks = []
        for rgb in photos:
            mask, notes = ours(rgb)
            masks.append(mask)
            found.append(notes)
        return masks

    masks = timed("leafprep", leafprep_masks)
    doubtful = [any(note.startswith(DOUBT) for note in notes) for notes in found]
    scores = [iou(m, t) for m, t in zip(masks, truths)]
    bad = [score < 0.9 for score in scores]
    methods["leafprep"]["doubts"] = {
        "flagged": int(sum(doubtful)),
        "flagged_share": sum(doubtful) / len(photos),
        "below_0_9": int(sum(bad)),
        "below_0_9_flagged": int(sum(d and b for d, b in zip(doubtful, bad))),
    }
    timed("excess_green_raw", lambda: [excess_green_raw_otsu(rgb) for rgb in photos])
    timed("excess_green_chromaticity", lambda: [excess_green_otsu(rgb) for rgb in photos])
    if paths is not None:
        timed("plantcv", lambda: leaf_peers.plantcv_masks(paths))
    else:
        timed("plantcv", lambda: leaf_peers.plantcv_images(photos))
    if grabcut_rect:
        timed("grabcut_rect", lambda: [leaf_peers.grabcut_rect(rgb) for rgb in photos])
    timed("grabcut_from_leafprep", lambda: [leaf_peers.grabcut_from_mask(rgb, mask) if mask.any() else mask for rgb, mask in zip(photos, masks)])
    methods["grabcut_from_leafprep"]["seconds_per_image"] += methods["leafprep"]["seconds_per_image"]
    worst = np.argsort(scores)[:5]
    return {"images": len(photos), "methods": methods, "leafprep_worst": [[float(scores[i]), int(i)] for i in worst]}


def tracking(real: dict[str, Any], synthetic: dict[str, Any]) -> dict[str, float]:
    """Spearman's rank correlation between two sets' method medians and 10th percentiles (methods in both)."""
    from scipy.stats import spearmanr

    names = [name for name in real["methods"] if name in synthetic["methods"]]
    out = {}
    for figure in ("median_iou", "p10_iou"):
        rho = spearmanr([real["methods"][n][figure] for n in names], [synthetic["methods"][n][figure] for n in names]).statistic
        out[figure] = float(rho)
    return out


NAMES = {
    "leafprep": "leafprep",
    "excess_green_raw": "excess green 2G-R-B + Otsu",
    "excess_green_chromaticity": "excess green on chromaticity + Otsu",
    "plantcv": "PlantCV 4.11.3 (LAB a, blur, Otsu, fill, largest)",
    "grabcut_rect": "GrabCut from a rectangle 4% inside",
    "grabcut_from_leafprep": "GrabCut started from leafprep's mask",
}


def print_table(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title} ({result['images']} images)\n")
    print("| method | median IoU | 10th percentile | below 0.9 | worst | seconds / image |")
    print("|---|---|---|---|---|---|")
    for name, f in result["methods"].items():
        print(
            f"| {NAMES[name]} | {f['median_iou']:.3f} | {f['p10_iou']:.3f} | {f['below_0_9']} | {f['worst_iou']:.3f} | {f['seconds_per_image']:.3f} |"
        )
    d = result["methods"]["leafprep"]["doubts"]
    print(
        f"\nleafprep's doubtful-mask warnings: {d['flagged']} flagged ({d['flagged_share']:.1%}); "
        f"{d['below_0_9_flagged']} of the {d['below_0_9']} masks below 0.9 among them"
    )


def threshold_ceiling(photos: list[np.ndarray], truths: list[np.ndarray], *, near: int = 25) -> dict[str, Any]:
    """What one global threshold per photo could score at best, told the answer.

    For each photo and channel (excess green 2G-R-B, CIELAB a*), the best of 99
    thresholds (the channel's percentiles within ``near`` pixels of the true
    mask, either side) by IoU against the truth there: a ceiling for colour
    rules, set by the masks as much as by the photos.
    """
    out: dict[str, Any] = {}
    scores: dict[str, list[float]] = {"excess_green": [], "lab_a": []}
    for rgb, truth in zip(photos, truths):
        channels = {
            "excess_green": _excess_green(rgb),
            "lab_a": cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 1],
        }
        region = cv2.dilate(truth.astype(np.uint8), np.ones((2 * near + 1,) * 2, np.uint8)) > 0
        inside = truth[region]
        for name, channel in channels.items():
            values = channel[region]
            best = 0.0
            for level in np.percentile(values, np.arange(1, 100)):
                for guess in (values > level, values <= level):
                    best = max(best, iou(guess, inside))
            scores[name].append(best)
    for name, values in scores.items():
        out[name] = _summary(values, 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Leaf segmentation quality benchmark")
    parser.add_argument("--realistic", type=int, default=100, help="realistic synthetic photos")
    parser.add_argument("--hard", type=int, default=100, help="old hard-background composites")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-sheet", action="store_true", help="skip the contact sheet of every Swedish leaf")
    parser.add_argument("--no-grabcut-rect", action="store_true", help="skip GrabCut from a rectangle (several seconds a photo)")
    parser.add_argument("--ceiling", action="store_true", help="only measure uci_dev's threshold ceiling (threshold_ceiling) into the results")
    args = parser.parse_args()
    from bench.leaf_peers import uci_dev
    from bench.leaf_photos import realistic_set

    rect = not args.no_grabcut_rect
    results: dict[str, Any] = {"seed": args.seed}
    dev = uci_dev()
    paths = [path for path, _ in dev]
    photos = [cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for path in paths]
    if args.ceiling:
        saved = RESULTS / "leaf_quality.json"
        results = json.loads(saved.read_text()) if saved.exists() else results
        results.setdefault("uci_dev", {})["threshold_ceiling"] = ceiling = threshold_ceiling(photos, [truth for _, truth in dev])
        for name, f in ceiling.items():
            figures = f"median {f['median_iou']:.4f}, 10th percentile {f['p10_iou']:.4f}, below 0.9 {f['below_0_9']}"
            print(f"uci_dev, best threshold per photo on {name}: {figures}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(results, indent=2) + "\n")
        return
    results["uci_dev"] = compare(photos, [truth for _, truth in dev], paths, petiole=False, grabcut_rect=rect)
    results["uci_dev"]["leafprep_worst"] = [
        [score, str(paths[i].relative_to(paths[i].parents[2]))] for score, i in results["uci_dev"]["leafprep_worst"]
    ]
    print_table("uci_dev: real photos on coloured card, blade-only masks", results["uci_dev"])

    # The real photos' conditions (pink, magenta, salmon and grey card), to see whether the synthetic set tracks them...
    card = realistic_set(args.realistic, args.seed, ("pink card", "magenta card", "salmon card", "grey card"))
    results["realistic_card"] = compare([p for p, _, _ in card], [t for _, t, _ in card], None, petiole=True, grabcut_rect=rect)
    results["realistic_card"]["leafprep_worst"] = [[score, card[i][2]] for score, i in results["realistic_card"]["leafprep_worst"]]
    print_table("realistic synthetic photos on coloured card, as uci_dev", results["realistic_card"])
    # ...and every surface, for what the real sets do not cover (paper, wood, cloth, other cards).
    realistic = realistic_set(args.realistic, args.seed)
    results["realistic"] = compare([p for p, _, _ in realistic], [t for _, t, _ in realistic], None, petiole=True, grabcut_rect=rect)
    results["realistic"]["leafprep_worst"] = [[score, realistic[i][2]] for score, i in results["realistic"]["leafprep_worst"]]
    print_table("realistic synthetic photos", results["realistic"])

    data = pairs()
    rng = np.random.default_rng(args.seed)
    hard = [hard_composite(*data[index % len(data)][:2], rng) for index in range(args.hard)]
    results["old_hard"] = compare([p for p, _ in hard], [t for _, t in hard], None, petiole=True, grabcut_rect=False)
    print_table("old hard-background composites", results["old_hard"])
    results["tracking"] = {name: tracking(results["uci_dev"], results[name]) for name in ("realistic_card", "realistic", "old_hard")}
    print(f"\nrank correlation with uci_dev (medians, 10th percentiles): {results['tracking']}")

    run = _leafprep(True)
    start = time.perf_counter()
    scans = np.array([iou(run(rgb)[0], mask) for rgb, mask, _ in data])
    worst = [data[i][2] for i in np.argsort(scans)[:3]]
    results["swedish_masks"] = {
        "median_iou": float(np.median(scans)),
        "worst_iou": float(scans.min()),
        "worst": worst,
        "seconds_per_image": (time.perf_counter() - start) / len(data),
    }
    print(f"\nswedish_masks (200 scans on white): leafprep median {np.median(scans):.4f}, worst {scans.min():.4f} ({', '.join(worst)})")
    if not args.no_sheet:
        count, seconds = contact_sheet(ROOT / "docs" / "images" / "swedish-contact-sheet.png")
        results["contact_sheet"] = {"images": count, "seconds": seconds}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "leaf_quality.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
