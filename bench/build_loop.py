"""``leafprep build`` on the Swedish leaves against a bare ``build_image_data``-style loop, as whole processes, in one run.

The loop is what a script written in an afternoon does (TensorFlow models'
``build_image_data.py``, brought to 64x64 grey pictures): a ``Pool(2)``
decodes each JPEG and resizes it, the parent writes ``tf.train.Example``
records into TFRecord shards. No segmentation, no hashing, no duplicate or
split bookkeeping, no manifest. ``leafprep build SWEDISH --kind leaf --size
64`` does all of those, and measures each leaf's descriptors, on the same 2
cores. Both run as fresh processes (``python -m ...``, imports included),
alternating, three times each; the best of each is compared.

Target (issue 27): ``leafprep build`` takes less time than the loop (ratio < 1).
Three builds are timed: ``--kind none`` (the loop's own job: each scan
resized as it is, plus everything else a build does), ``--kind leaf
--no-descriptors`` and ``--kind leaf`` (the default leaf build).

Measure it in an environment without scikit-learn (``.[dev]``, not ``.[bench]``):
Keras imports scikit-learn where it is installed, and ``import tensorflow``
imports Keras, so the loop would pay 0.6 s more than the build (which holds
Keras back).

Run:  python -m bench.build_loop      (about 3 minutes on 2 cores)
Writes bench/results/build_loop.json and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._mnist import DATA, ROOT

RESULTS = ROOT / "bench" / "results"
SWEDISH = DATA / "leaves" / "swedish"
SIZE = 64


def _picture(path: str) -> tuple[bytes, str]:
    """One JPEG decoded (whole), made grey and resized to SIZE x SIZE, as the loop's workers do."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA).tobytes(), path


def loop(source: Path, out: Path, shards: int = 2) -> None:
    """The baseline: Pool(2) decoding and resizing, the parent writing the examples."""
    from multiprocessing import get_context

    files = sorted(str(p) for p in source.glob("*/*.jpg"))
    labels = sorted({Path(f).parent.name for f in files})
    out.mkdir(parents=True, exist_ok=True)
    with get_context("fork").Pool(2) as pool:
        pictures = pool.imap(_picture, files, chunksize=16)
        import tensorflow as tf  # after the fork, as the build does

        writers = [tf.io.TFRecordWriter(str(out / f"train-{k:05d}-of-{shards:05d}.tfrecord")) for k in range(shards)]
        for n, (raw, path) in enumerate(pictures):
            label = Path(path).parent.name
            feature = {
                "image/raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw])),
                "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[SIZE])),
                "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[SIZE])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[labels.index(label)])),
                "label/name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
                "source": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
            }
            writers[n % shards].write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        for writer in writers:
            writer.close()


def timed_process(arguments: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(arguments, check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - start


#: What ``leafprep build`` is asked to do, from the same job as the loop's to everything a leaf build does.
VARIANTS = {
    "kind none (resized as they are, as the loop)": ["--kind", "none"],
    "kind leaf, no descriptors (segmented, cut out, upright)": ["--kind", "leaf", "--no-descriptors"],
    "kind leaf (and each leaf's 60 descriptors: the default)": ["--kind", "leaf"],
}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="leafprep-bench-"))
    leafprep = [sys.executable, "-m", "leafprep.cli", "build", str(SWEDISH), "--size", str(SIZE), "--split", "2/1", "--workers", "2"]
    baseline = [sys.executable, "-m", "bench.build_loop", "loop", str(SWEDISH)]
    times: dict[str, list[float]] = {"loop": [], **{name: [] for name in VARIANTS}}
    try:
        for run in range(3):
            times["loop"].append(timed_process([*baseline, str(work / f"loop{run}")]))
            for number, (name, arguments) in enumerate(VARIANTS.items()):
                times[name].append(timed_process([*leafprep, *arguments, "--out", str(work / f"build{number}-{run}")]))
            print(f"run {run}: " + ", ".join(f"{name.split(' (')[0]} {t[-1]:.2f} s" for name, t in times.items()), flush=True)
        meta = json.loads((work / "build0-0" / "dataset_info.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loop_s = min(times["loop"])
    results = {
        "inputs": meta["inputs"]["found"],
        "loop_seconds": loop_s,
        "builds": {name: {"seconds": min(t), "over_loop": min(t) / loop_s, "runs": t} for name, t in times.items() if name != "loop"},
        "loop_runs": times["loop"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "build_loop.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nSwedish leaves ({results['inputs']:,} scans) to 64x64 TFRecords on 2 cores, whole processes, best of 3")
    print("| leafprep build | seconds | bare loop (Pool(2) decode + resize, parent writes) | build / loop |")
    print("|---|---|---|---|")
    for name, r in results["builds"].items():
        print(f"| {name} | {r['seconds']:.2f} s | {loop_s:.2f} s | {r['over_loop']:.2f}x |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["loop"]:
        loop(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
