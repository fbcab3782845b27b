"""Speed of leafprep, as ratios against a baseline measured in the same run.

* normalising a 12-megapixel phone JPEG (4032x3024, about 3 MB) against
  ``cv2.imdecode`` decoding the same bytes at full size (target: at most 1.5x);
* segmenting and normalising a 700-pixel Swedish leaf scan against decoding
  it (target: at most 3x), and a 12-megapixel leaf photo against its full-size
  decode (target: at most 1.5x);
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
from bench._mnist import CACHE, DATA, ROOT, mnist
from leafprep.synthetic import leaf_photo, random_photo

SCAN = DATA / "leaves" / "swedish" / "01_Ulmus_carpinifolia" / "l1nr001.jpg"

RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
LEAFPREP = str(Path(PYTHON).with_name("leafprep"))


def _phone_jpeg(name: str, draw) -> bytes:
    """A 4032x3024 JPEG like a phone's, from a photo drawn at 1008 px, with sensor noise (cached)."""
    path = CACHE / name
    if path.exists():
        return path.read_bytes()
    rng = np.random.default_rng(12)
    photo = cv2.resize(draw(rng), (3024, 4032), interpolation=cv2.INTER_CUBIC)
    photo = np.clip(photo + rng.normal(0, 5, photo.shape), 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.tobytes())
    return encoded.tobytes()


def phone_jpeg() -> bytes:
    """A 12 MP photo of a handwritten digit on paper."""
    images, _ = mnist("test")
    return _phone_jpeg("phone_12mp.jpg", lambda rng: random_photo(images[3], rng, side=1008))


def leaf_jpeg() -> bytes:
    """A 12 MP photo of a leaf on card."""
    return _phone_jpeg("leaf_12mp.jpg", lambda rng: leaf_photo("ovata", rng, side=1008, background="card")[0])


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

    scan = SCAN.read_bytes()
    scan_buffer = np.frombuffer(scan, np.uint8)
    leafprep.normalize(scan, kind="leaf")
    scan_decode, scan_normalize = interleaved(
        lambda: cv2.imdecode(scan_buffer, cv2.IMREAD_COLOR), lambda: leafprep.normalize(scan, kind="leaf"), 5 * args.repeats
    )
    _, scan_normalize64 = interleaved(
        lambda: cv2.imdecode(scan_buffer, cv2.IMREAD_COLOR), lambda: leafprep.normalize(scan, kind="leaf", size=64), 5 * args.repeats
    )
    big_leaf = leaf_jpeg()
    big_buffer = np.frombuffer(big_leaf, np.uint8)
    leafprep.normalize(big_leaf, kind="leaf")
    leaf_decode, leaf_normalize = interleaved(
        lambda: cv2.imdecode(big_buffer, cv2.IMREAD_COLOR), lambda: leafprep.normalize(big_leaf, kind="leaf"), args.repeats
    )

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
        "scan_decode_s": scan_decode,
        "scan_normalize_s": scan_normalize,
        "scan_normalize_over_decode": scan_normalize / scan_decode,
        "scan_normalize64_over_decode": scan_normalize64 / scan_decode,
        "leaf_12mp_decode_s": leaf_decode,
        "leaf_12mp_normalize_s": leaf_normalize,
        "leaf_12mp_normalize_over_decode": leaf_normalize / leaf_decode,
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
    print(
        f"| segment + normalise a 700 px leaf scan ({SCAN.name}) | cv2.imdecode {scan_decode * 1e3:.1f} ms "
        f"| {scan_normalize * 1e3:.1f} ms (size 64: {scan_normalize64 * 1e3:.1f} ms) | {scan_normalize / scan_decode:.2f}x "
        f"(size 64: {scan_normalize64 / scan_decode:.2f}x) | <= 3x |"
    )
    print(
        f"| segment + normalise a 12 MP leaf photo | cv2.imdecode full size {leaf_decode * 1e3:.0f} ms "
        f"| {leaf_normalize * 1e3:.0f} ms | {leaf_normalize / leaf_decode:.2f}x | <= 1.5x |"
    )
    print(f"| `import leafprep` | `python -c pass` {bare:.2f} s | {imported:.2f} s | {imported / bare:.2f}x | <= 0.5 s |")
    print(f"| `leafprep --help` | `python -c pass` {bare:.2f} s | {helped:.2f} s | {helped / bare:.2f}x | <= 0.5 s |")
    print(f"\nTensorFlow imported by the CLI module: {results['cli_imports_tensorflow']}; OpenCV: {results['cli_imports_cv2']}")


if __name__ == "__main__":
    main()
