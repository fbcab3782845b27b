"""Several leaves in one scan, every pixel real (issue 25): the Swedish scans tiled into beds.

``bench.leaf_beds`` pastes real leaves onto made surfaces. Here nothing is
made: each of the 200 Swedish scans of ``../shared/data/leaves/swedish_masks``
is laid whole (the leaf with its own scanner bed round it) beside 3 to 11
others, in one row or two, as a scanner bed of several leaves; the pixels and
the masks (petiole included) are the scans' own. Each leaf of a bed is scored
against its mask, beside ``leafprep.segment(kind="leaf")`` on its scan alone:
the same pixels, so the difference is what lying among other leaves costs.
What is not real is where one scan meets the next: each scan has its own
white, which one bed does not (a seam of a few grey levels).

Measured: whether ``len(segment_all(bed))`` is the number of scans; each leaf's
IoU (the found leaf that fits it best; a missed leaf 0) together and alone; how
many leaves are better or worse together by over 0.001.

Run:  python -m bench.leaf_tiles      (about a minute on 2 cores)
Writes bench/results/leaf_tiles.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from datetime import date
from typing import Any

import cv2
import numpy as np

import leafprep
from bench._mnist import ROOT
from bench.leaf_quality import best_iou, iou, pairs

RESULTS = ROOT / "bench" / "results" / "leaf_tiles.json"
ROW = 6  # at most this many scans a row; beds of more have two rows


def tile(scans: list[np.ndarray], masks: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The scans side by side (one row, or two for more than :data:`ROW`), and each one's mask on the bed.

    A scan shorter than its row is lengthened by its last row of pixels, a row
    narrower than the bed by its last column: no colour the scans do not have.
    """
    per_row = -(-len(scans) // 2) if len(scans) > ROW else len(scans)
    rows = [list(range(start, min(start + per_row, len(scans)))) for start in range(0, len(scans), per_row)]
    heights = [max(scans[k].shape[0] for k in row) for row in rows]
    width = max(sum(scans[k].shape[1] for k in row) for row in rows)
    bed = np.zeros((sum(heights), width, 3), np.uint8)
    truths: list[np.ndarray] = []
    y = 0
    for row, height in zip(rows, heights, strict=True):
        x = 0
        for k in row:
            scan = scans[k]
            h, w = scan.shape[:2]
            bed[y : y + height, x : x + w] = cv2.copyMakeBorder(scan, 0, height - h, 0, 0, cv2.BORDER_REPLICATE)
            truth = np.zeros(bed.shape[:2], bool)
            truth[y : y + h, x : x + w] = masks[k]
            truths.append(truth)
            x += w
        bed[y : y + height, x:] = bed[y : y + height, x - 1 : x]
        y += height
    return bed, truths


def figures(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {
        "median_iou": round(float(np.median(array)), 4),
        "p10_iou": round(float(np.percentile(array, 10)), 4),
        "min_iou": round(float(array.min()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="which scans lie together, and how many a bed")
    args = parser.parse_args()
    scans = pairs()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(scans))
    together: list[float] = []
    alone: list[float] = []
    beds = []
    start = time.perf_counter()
    position = 0
    while position < len(order):
        chosen = order[position : position + int(rng.integers(4, 13))]
        position += len(chosen)
        bed, truths = tile([scans[k][0] for k in chosen], [scans[k][1] for k in chosen])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", leafprep.LeafprepWarning)
            found = leafprep.segment_all(bed)
            lone = [iou(leafprep.segment(scans[k][0], kind="leaf"), scans[k][1]) for k in chosen]
        ours = [best_iou(found, truth) for truth in truths]
        together += ours
        alone += lone
        beds.append(
            {
                "scans": [scans[k][2] for k in chosen],
                "shape": list(bed.shape[:2]),
                "found": len(found),
                "together": [round(v, 4) for v in ours],
                "alone": [round(v, 4) for v in lone],
            }
        )
        size, median = f"{bed.shape[1]}x{bed.shape[0]}", f"{np.median(ours):.4f} (alone {np.median(lone):.4f})"
        print(f"bed {len(beds) - 1:2d}: {len(chosen):2d} scans, {size}, found {len(found):2d}, median {median}")
    difference = np.asarray(together) - np.asarray(alone)
    results: dict[str, Any] = {
        "command": "python -m bench.leaf_tiles" + (f" --seed {args.seed}" if args.seed else ""),
        "date": date.today().isoformat(),
        "seed": args.seed,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "beds": len(beds),
        "leaves": len(together),
        "count_accuracy": float(np.mean([bed["found"] == len(bed["scans"]) for bed in beds])),
        "together": figures(together),
        "alone": figures(alone),
        "better_together": int((difference > 0.001).sum()),
        "worse_together": int((difference < -0.001).sum()),
        "median_difference": round(float(np.median(difference)), 4),
        "seconds": round(time.perf_counter() - start, 1),
        "per_bed": beds,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n| {results['beds']} beds of the 200 Swedish scans, {results['leaves']} leaves | median IoU / 10th percentile / lowest |")
    print("|---|---|")
    for name, key in (("together: `segment_all` on the bed", "together"), ("each scan alone: `segment`", "alone")):
        f = results[key]
        print(f"| {name} | {f['median_iou']:.4f} / {f['p10_iou']:.4f} / {f['min_iou']:.4f} |")
    print(
        f"\ncount right {results['count_accuracy']:.0%}; leaves better together by over 0.001: {results['better_together']}, "
        f"worse: {results['worse_together']}; median difference {results['median_difference']:+.4f}; wrote {RESULTS}"
    )


if __name__ == "__main__":
    main()
