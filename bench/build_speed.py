"""Speed and memory of ``leafprep build`` and ``leafprep.records.load``, as ratios in one run.

* MNIST (70,000 images) from IDX to TFRecords, against a minimal loop that
  writes the same examples (the same eight features) with
  ``tf.io.TFRecordWriter`` (target: at most 1.3x);
* Swedish leaves (1,125 JPEGs, ``--kind leaf --size 64``): 2 workers against 1
  (target: at least 1.7x faster), and the whole build against only decoding
  every image (target: at most 2x);
* reading the MNIST train split with ``records.load`` against a bare batched
  ``parse_example`` pipeline on the same shards (target: at least 0.9x the rate);
* peak memory of the MNIST build in a fresh process, TensorFlow included
  (target: at most 1.5 GB), and of a build of a third of it (flat).

Run:  python -m bench.build_speed      (about 3 minutes on 2 cores)
Writes bench/results/build_speed.json and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from bench._mnist import DATA, MNIST, ROOT, mnist

RESULTS = ROOT / "bench" / "results"
SWEDISH = DATA / "leaves" / "swedish"


def minimal_mnist(out: Path) -> None:
    """The baseline: the same examples, written the plain way."""
    import hashlib

    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = mnist(split)
        with tf.io.TFRecordWriter(str(out / f"{split}.tfrecord")) as writer:
            for index, (image, label) in enumerate(zip(images, labels, strict=True)):
                feature = {
                    "image/raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
                    "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[28])),
                    "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[28])),
                    "image/channels": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                    "label/name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(label).encode()])),
                    "source": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"{prefix}#{index:05d}".encode()])),
                    "source/sha256": tf.train.Feature(bytes_list=tf.train.BytesList(value=[hashlib.sha256(image.tobytes()).hexdigest().encode()])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def peak_memory_mb(code: str) -> float:
    """Peak resident memory of ``python -c code`` in a fresh process (MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024.0


def decode_all(files: list[Path]) -> None:
    import cv2

    for file in files:
        cv2.imdecode(np.frombuffer(file.read_bytes(), np.uint8), cv2.IMREAD_COLOR)


def reading_rates(folder: Path, repeats: int = 2) -> tuple[float, float]:
    import tensorflow as tf

    from leafprep.records import info, load

    meta = info(folder)
    files = [str(folder / s["file"]) for s in meta["shards"] if s["split"] == "train"]
    total = meta["splits"]["train"]["examples"]
    spec = {"image/raw": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def bare():
        def parse(batch):
            parsed = tf.io.parse_example(batch, spec)
            images = tf.reshape(tf.io.decode_raw(parsed["image/raw"], tf.uint8), [-1, 28, 28, 1])
            return tf.cast(images, tf.float32) / 255.0, parsed["label"]

        dataset = tf.data.TFRecordDataset(files).batch(256).map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
        for _ in dataset:
            pass

    def ours():
        for _ in load(folder, "train", batch_size=256):
            pass

    bare()
    ours()  # warm up both
    bare_s = min(timed(bare) for _ in range(repeats))
    ours_s = min(timed(ours) for _ in range(repeats))
    return total / bare_s, total / ours_s


def main() -> None:
    from leafprep.build import BuildOptions, build

    work = Path(tempfile.mkdtemp(prefix="leafprep-bench-"))
    try:
        minimal_mnist(work / "warm")  # imports and caches, out of the timings
        baseline = min(timed(minimal_mnist, work / f"minimal{i}") for i in range(2))
        ours = min(timed(build, MNIST, work / f"mnist{i}", BuildOptions(kind="none")) for i in range(2))
        bare_rate, our_rate = reading_rates(work / "mnist0")

        files = sorted(SWEDISH.glob("*/*.jpg"))
        decode = min(timed(decode_all, files) for _ in range(2))
        options = BuildOptions(kind="leaf", size=64, split=(2 / 3, 0.0, 1 / 3))
        # The best of two runs each: this machine is shared and noisy.
        one = min(timed(build, SWEDISH, work / "sw1", options, workers=1) for _ in range(2))
        two = min(timed(build, SWEDISH, work / "sw2", options, workers=2) for _ in range(2))
        same = all((work / "sw1" / f).read_bytes() == (work / "sw2" / f).read_bytes() for f in os.listdir(work / "sw1") if f.endswith(".tfrecord"))

        code = (
            "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='2'\n"
            "from leafprep.build import build, BuildOptions\n"
            f"build({str(MNIST)!r}, {str(work / 'mem')!r}, BuildOptions(kind='none'), overwrite=True)\n"
        )
        memory_full = peak_memory_mb(code)
        third = work / "third"
        images, labels = mnist("train")
        _write_idx(third, images[:20000], labels[:20000])
        code_third = code.replace(repr(str(MNIST)), repr(str(third)))
        memory_third = peak_memory_mb(code_third)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "mnist_minimal_s": baseline,
        "mnist_build_s": ours,
        "mnist_ratio": ours / baseline,
        "read_bare_per_s": bare_rate,
        "read_load_per_s": our_rate,
        "read_ratio": our_rate / bare_rate,
        "swedish_decode_s": decode,
        "swedish_build_1_worker_s": one,
        "swedish_build_2_workers_s": two,
        "swedish_speedup": one / two,
        "swedish_build_over_decode": two / decode,
        "swedish_shards_identical_1_vs_2_workers": same,
        "mnist_build_peak_mb": memory_full,
        "mnist_20k_build_peak_mb": memory_third,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "build_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| measure | baseline | leafprep | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| MNIST IDX -> TFRecords (70,000) | minimal writer {baseline:.1f} s | {ours:.1f} s | {ours / baseline:.2f}x | <= 1.3x |")
    print(f"| read MNIST train | bare parse_example {bare_rate:,.0f}/s | {our_rate:,.0f}/s | {our_rate / bare_rate:.2f}x | >= 0.9x |")
    print(f"| Swedish build, 2 workers vs 1 | 1 worker {one:.1f} s | 2 workers {two:.1f} s | {one / two:.2f}x faster | >= 1.7x |")
    print(f"| Swedish build vs decoding only | decode {decode:.1f} s | {two:.1f} s | {two / decode:.2f}x | <= 2x |")
    print(f"| peak memory, MNIST build | 20,000 images: {memory_third:.0f} MB | 70,000: {memory_full:.0f} MB | | <= 1.5 GB, flat |")
    print(f"\nshards identical with 1 and 2 workers: {same}")


def _write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    from leafprep.idx import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)


if __name__ == "__main__":
    main()
