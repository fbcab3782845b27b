"""Speed of leafprep, as ratios against a baseline measured in the same run.

* normalising a 12-megapixel phone JPEG (4032x3024, about 3 MB) against
  ``cv2.imdecode`` decoding the same bytes at full size (target: at most 1.5x);
* ``import leafprep`` and ``leafprep --help`` in a fresh interpreter, against
  a bare ``python -c pass`` (target: at most 0.5 s, TensorFlow not imported).

The machine is shared and noisy: every figure is the median of several runs,
and the two sides of each ratio are interleaved.

Run:  python -m bench.speed [--repeats 9]
Writes bench/results/speed.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import leafprep
from bench._mnist import CACHE, ROOT, mnist
from leafprep.synthetic import random_photo

RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
LEAFPREP = str(Path(PYTHON).with_name("leafprep"))


def phone_jpeg() -> bytes:
    """A 4032x3024 JPEG like a phone's: a digit on paper with sensor noise (cached)."""
    path = CACHE / "phone_12mp.jpg"
    if path.exists():
        return path.read_bytes()
    images, _ = mnist("test")
    rng = np.random.default_rng(12)
    photo = random_photo(images[3], rng, side=1008)
    photo = cv2.resize(photo, (3024, 4032), interpolation=cv2.INTER_CUBIC)
    photo = np.clip(photo + rng.normal(0, 5, photo.shape), 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.tobytes())
    return encoded.tobytes()


def interleaved(first, second, repeats: int) -> tuple[float, float]:
    """Median seconds of two callables, run alternately."""
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        first()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        second()
        b.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="leafprep speed benchmark")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    data = phone_jpeg()
    buffer = np.frombuffer(data, np.uint8)
    leafprep.normalize(data)  # warm up imports and caches
    decode, normalize = interleaved(lambda: cv2.imdecode(buffer, cv2.IMREAD_COLOR), lambda: leafprep.normalize(data), args.repeats)

    bare, imported = interleaved(lambda: run([PYTHON, "-c", "pass"]), lambda: run([PYTHON, "-c", "import leafprep"]), args.repeats)
    _, helped = interleaved(lambda: run([PYTHON, "-c", "pass"]), lambda: run([LEAFPREP, "--help"]), args.repeats)
    modules = subprocess.run(
        [PYTHON, "-c", "import sys, leafprep.cli; print(int('tensorflow' in sys.modules), int('cv2' in sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    results = {
        "jpeg_bytes": len(data),
        "decode_full_s": decode,
        "normalize_s": normalize,
        "normalize_over_decode": normalize / decode,
        "python_bare_s": bare,
        "import_leafprep_s": imported,
        "leafprep_help_s": helped,
        "cli_imports_tensorflow": modules[0] == "1",
        "cli_imports_cv2": modules[1] == "1",
        "repeats": args.repeats,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| measure | baseline | leafprep | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| normalise a 12 MP JPEG ({len(data) / 1e6:.1f} MB) | cv2.imdecode full size {decode * 1e3:.0f} ms "
        f"| {normalize * 1e3:.0f} ms | {normalize / decode:.2f}x | <= 1.5x |"
    )
    print(f"| `import leafprep` | `python -c pass` {bare:.2f} s | {imported:.2f} s | {imported / bare:.2f}x | <= 0.5 s |")
    print(f"| `leafprep --help` | `python -c pass` {bare:.2f} s | {helped:.2f} s | {helped / bare:.2f}x | <= 0.5 s |")
    print(f"\nTensorFlow imported by the CLI module: {results['cli_imports_tensorflow']}; OpenCV: {results['cli_imports_cv2']}")


if __name__ == "__main__":
    main()
