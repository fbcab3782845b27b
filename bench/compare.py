"""leafprep beside the tools its users know, on the points they ask about, measured in one run.

* Keras ``image_dataset_from_directory`` (Keras 3, in the project's environment),
* tensorflow-datasets ``ImageFolder`` and PlantCV (in a separate environment,
  ``bench/.cache/compare-venv``, made by this script with ``pip``: PlantCV needs
  ``opencv-python``, which must not sit beside the project's
  ``opencv-python-headless``),
* TensorFlow's ``build_image_data.py`` does not run on TensorFlow 2 (it uses
  ``tf.placeholder``, ``tf.gfile`` and ``tf.python_io``); its behaviour is read
  from its source and cited in docs/comparison.md, not measured.

Measured:

1. a folder with the bad-input corpus (``tests/corpus.py``) beside good photos:
   what each tool does (crash, silent skip, list);
2. a photo with EXIF orientation 6: does the tool return it upright;
3. label order of class folders ``2`` and ``10``;
4. adding 10% more files: how many files already placed change split;
5. exact duplicates under other names: how many pairs end up across splits;
6. leaf masks (PlantCV's Otsu-on-LAB workflow against ``leafprep.segment``)
   on the 200 Swedish scans with pseudo ground truth and on 100 hard
   composites (recoloured leaves on card, wood or cloth; bench.leaf_quality).

Run:  python -m bench.compare      (about 5 minutes on 2 cores, plus the first install)
Writes bench/results/compare.json and prints the tables of docs/comparison.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bench._mnist import ROOT, mnist

RESULTS = ROOT / "bench" / "results"
VENV = ROOT / "bench" / ".cache" / "compare-venv"
FOREIGN = ["tensorflow==2.21.0", "tensorflow-datasets==4.9.10", "plantcv==4.11.3"]


def foreign_python() -> Path:
    """The separate environment's interpreter (made on first use)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *FOREIGN], check=True)
    return python


def digits(folder: Path, labels: dict[str, int], count: int, start: int = 0) -> list[Path]:
    """``count`` MNIST digits a class, drawn on paper, as PNGs in class folders named by ``labels``."""
    from leafprep.synthetic import ink_on_paper
    from tests.photos import encode

    images, truth = mnist("t10k")
    written = []
    for name, digit in labels.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for n, index in enumerate(np.flatnonzero(truth == digit)[start : start + count]):
            path = folder / name / f"{name}-{start + n:04d}.png"
            path.write_bytes(encode(ink_on_paper(images[index], scale=3), "PNG"))
            written.append(path)
    return written


def exif_pair(folder: Path) -> tuple[Path, Path]:
    """An upright photo and the same photo stored sideways with EXIF orientation 6."""
    from PIL import Image

    from tests.photos import encode, page_with_digit

    page = page_with_digit(size=(240, 160))
    (folder / "a").mkdir(parents=True)
    upright, turned = folder / "a" / "upright.jpg", folder / "a" / "turned.jpg"
    upright.write_bytes(encode(page, "JPEG", quality=95))
    exif = Image.Exif()
    exif[0x0112] = 6
    turned.write_bytes(encode(np.ascontiguousarray(np.rot90(page, 1)), "JPEG", quality=95, exif=exif.tobytes()))
    return upright, turned


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape[:2] != b.shape[:2]:
        return False
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1]) > 0.9


# -- Keras --------------------------------------------------------------------------------------------


def keras_split(folder: Path, seed: int = 1) -> tuple[set[str], set[str]]:
    import keras

    train, val = keras.utils.image_dataset_from_directory(
        folder, validation_split=0.2, subset="both", seed=seed, image_size=(28, 28), batch_size=None, verbose=False
    )
    return {os.path.relpath(p, folder) for p in train.file_paths}, {os.path.relpath(p, folder) for p in val.file_paths}


def keras_points(root: Path) -> dict:
    import keras

    found: dict = {}
    # 1. the corpus, with and without the file name that is not UTF-8
    for key, folder in (("corpus", root / "corpus"), ("corpus_utf8_names", root / "corpus-utf8")):
        try:
            dataset = keras.utils.image_dataset_from_directory(folder, image_size=(28, 28), batch_size=None, verbose=False)
            files = len(dataset.file_paths)
            try:
                count = sum(1 for _ in dataset)
                found[key] = f"yields {count} of {files} listed files without a word"
            except Exception as exc:  # what the user gets at training time
                found[key] = f"lists {files} files; iterating stops with {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        except Exception as exc:
            found[key] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    # 2. EXIF
    dataset = keras.utils.image_dataset_from_directory(root / "exif", image_size=(240, 160), batch_size=None, shuffle=False, verbose=False)
    pictures = {Path(p).name: image.numpy()[..., 0] for p, (image, _) in zip(dataset.file_paths, dataset, strict=True)}
    found["exif_upright"] = same_picture(pictures["upright.jpg"], pictures["turned.jpg"])
    # 3. label order
    found["label_order"] = keras.utils.image_dataset_from_directory(root / "order", batch_size=None, verbose=False).class_names
    # 4. stability when files are added
    train, val = keras_split(root / "grow")
    digits(root / "grow", {"2": 2, "10": 1}, 10, start=100)
    train2, _ = keras_split(root / "grow")
    old = train | val
    found["moved_when_10pc_added"] = len({p for p in old if (p in train) != (p in train2)}) / len(old)
    # 5. duplicates across splits
    train, val = keras_split(root / "dups")
    found["duplicate_pairs_across_splits"] = sum(1 for p in val if p.endswith("-copy.png") and p.replace("-copy", "") in train) + sum(
        1 for p in train if p.endswith("-copy.png") and p.replace("-copy", "") in val
    )
    found["test_split"] = "no: validation_split gives train and validation only"
    return found


# -- leafprep -----------------------------------------------------------------------------------------


def leafprep_points(root: Path) -> dict:
    import csv

    from leafprep import load_image
    from leafprep.build import BuildOptions, build, parse_split

    found: dict = {}
    for key, folder in (("corpus", "corpus"), ("corpus_utf8_names", "corpus-utf8")):
        report = build(root / folder, root / f"out-{folder}", BuildOptions(kind="digit"), workers=0)
        counts = report.info["inputs"]
        found[key] = f"{counts['written']} written, {counts['rejected']} rejected and listed with the reason, of {counts['found']} files"
    found["exif_upright"] = same_picture(
        load_image(root / "exif" / "a" / "upright.jpg")[..., 0], load_image(root / "exif" / "a" / "turned.jpg")[..., 0]
    )
    build(root / "order", root / "out-order", BuildOptions(kind="digit"), workers=0)
    found["label_order"] = (root / "out-order" / "labels.txt").read_text().split()
    options = BuildOptions(kind="digit", split=parse_split("80/20"))

    def splits(folder: Path) -> dict[str, str]:
        with open(folder / "manifest.csv", newline="") as handle:
            return {row["source"]: row["split"] for row in csv.DictReader(handle)}

    shutil.rmtree(root / "grow-lp", ignore_errors=True)
    shutil.copytree(root / "grow-base", root / "grow-lp")
    build(root / "grow-lp", root / "out-grow", options, workers=0)
    before = splits(root / "out-grow")
    digits(root / "grow-lp", {"2": 2, "10": 1}, 10, start=100)
    build(root / "grow-lp", root / "out-grow", options, workers=0)
    after = splits(root / "out-grow")
    found["moved_when_10pc_added"] = sum(before[s] != after[s] for s in before) / len(before)
    build(root / "dups", root / "out-dups", options, workers=0)
    placed = splits(root / "out-dups")
    found["duplicate_pairs_across_splits"] = sum(
        1 for s, split in placed.items() if s.endswith("-copy.png") and placed[s.replace("-copy", "")] != split
    )
    found["test_split"] = "yes: --split 80/10/10, or given train/ val/ test/ folders"
    return found


# -- tensorflow-datasets and PlantCV, in their own environment ---------------------------------------

CHILD = r"""
import json, os, sys
from pathlib import Path
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
root = Path(sys.argv[1])
found = {"tfds": {}, "plantcv": {}}
import numpy as np
import tensorflow_datasets as tfds

def image_folder(folder):
    builder = tfds.ImageFolder(str(folder))
    return builder, builder.as_dataset(split="train", shuffle_files=False)

for key, folder in (("corpus", "tfds-corpus"), ("corpus_utf8_names", "tfds-corpus-utf8")):
    try:
        builder, dataset = image_folder(root / folder)
        files = builder.info.splits["train"].num_examples
        try:
            count = sum(1 for _ in dataset)
            found["tfds"][key] = f"yields {count} of {files} listed files without a word"
        except Exception as exc:
            found["tfds"][key] = f"lists {files} files; iterating stops with {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    except Exception as exc:
        found["tfds"][key] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
builder, dataset = image_folder(root / "tfds-exif")
pictures = {Path(e["image/filename"].numpy().decode()).name: e["image"].numpy()[..., 0] for e in dataset}
a, b = pictures["upright.jpg"], pictures["turned.jpg"]
found["tfds"]["exif_upright"] = bool(a.shape == b.shape and np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1] > 0.9)
builder, _ = image_folder(root / "tfds-order")
found["tfds"]["label_order"] = builder.info.features["label"].names

from plantcv import plantcv as pcv
import cv2, time
masks = root / "plantcv-masks"
masks.mkdir(exist_ok=True)
start = time.perf_counter()
names = [line for line in (root / "plantcv-inputs.txt").read_text().splitlines() if line]
for name in names:
    image = cv2.imread(name)
    a = pcv.rgb2gray_lab(rgb_img=image, channel="a")
    mask = pcv.threshold.otsu(gray_img=a, object_type="dark")
    mask = pcv.fill(bin_img=mask, size=200)
    mask = pcv.fill_holes(bin_img=mask)
    cv2.imwrite(str(masks / (Path(name).stem + ".png")), mask)
found["plantcv"]["seconds_per_image"] = (time.perf_counter() - start) / len(names)
print(json.dumps(found))
"""


def leaf_inputs(root: Path) -> tuple[list[tuple[Path, np.ndarray]], list[tuple[Path, np.ndarray]]]:
    """The Swedish scans with their masks, and hard composites (written as PNG) with theirs."""
    import cv2

    from bench.leaf_quality import hard_composite, pairs

    folder = root / "leaves"
    folder.mkdir()
    scans, hard = [], []
    rng = np.random.default_rng(0)
    for n, (rgb, mask, _) in enumerate(pairs()):
        path = folder / f"scan-{n:03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        scans.append((path, mask))
        if n % 2 == 0:
            photo, truth = hard_composite(rgb, mask, rng)
            path = folder / f"hard-{n:03d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
            hard.append((path, truth))
    return scans, hard


def main() -> None:
    import time

    warnings.simplefilter("ignore")  # leafprep's warnings about single leaves (rulers, charts in frame)

    from bench.leaf_quality import iou
    from leafprep import segment
    from tests.corpus import make_corpus

    python = foreign_python()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        digits(root / "corpus", {"1": 1}, 20)
        for case in make_corpus(root / "corpus" / "2"):
            if not case.is_file:
                shutil.rmtree(case.path)
        digits(root / "corpus", {"2": 2}, 20)
        shutil.copytree(root / "corpus", root / "tfds-corpus" / "train", symlinks=True)
        shutil.copytree(root / "corpus", root / "corpus-utf8", symlinks=True)
        for path in (root / "corpus-utf8" / "2").iterdir():
            if not os.fsencode(path.name).decode("utf-8", "replace") == path.name:
                path.unlink()
        shutil.copytree(root / "corpus-utf8", root / "tfds-corpus-utf8" / "train", symlinks=True)
        exif_pair(root / "exif")
        shutil.copytree(root / "exif", root / "tfds-exif" / "train")
        digits(root / "order", {"2": 2, "10": 1}, 5)
        shutil.copytree(root / "order", root / "tfds-order" / "train")
        digits(root / "grow-base", {"2": 2, "10": 1}, 100)
        shutil.copytree(root / "grow-base", root / "grow")
        for path in digits(root / "dups", {"2": 2, "10": 1}, 100):
            if path.stem.endswith(("0", "5")):
                shutil.copy(path, path.with_name(path.stem + "-copy.png"))
        scans, hard = leaf_inputs(root)
        (root / "plantcv-inputs.txt").write_text("\n".join(str(path) for path, _ in scans + hard) + "\n")
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
        child = subprocess.run([str(python), "-c", CHILD, str(root)], capture_output=True, text=True, env=environment, check=False)
        if child.returncode != 0:
            raise SystemExit(child.stderr[-3000:])
        foreign = json.loads(child.stdout.strip().splitlines()[-1])
        results: dict = {"keras": keras_points(root), "leafprep": leafprep_points(root), "tfds": foreign["tfds"]}
        import cv2

        def masks_iou(items: list[tuple[Path, np.ndarray]], ours: bool) -> list[float]:
            scores = []
            for path, truth in items:
                if ours:
                    try:
                        mask = segment(path, "leaf")
                    except Exception:
                        mask = np.zeros_like(truth, bool)
                else:
                    mask = cv2.imread(str(root / "plantcv-masks" / (path.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 0
                scores.append(iou(mask, truth))
            return scores

        start = time.perf_counter()
        ours_scans, ours_hard = masks_iou(scans, True), masks_iou(hard, True)
        ours_seconds = (time.perf_counter() - start) / (len(scans) + len(hard))
        theirs_scans, theirs_hard = masks_iou(scans, False), masks_iou(hard, False)
        results["leaf_masks"] = {
            "images": {"swedish_scans": len(scans), "hard_composites": len(hard)},
            "leafprep": {
                "median_iou_scans": float(np.median(ours_scans)),
                "median_iou_hard": float(np.median(ours_hard)),
                "p10_iou_hard": float(np.percentile(ours_hard, 10)),
                "seconds_per_image": ours_seconds,
            },
            "plantcv": {
                "median_iou_scans": float(np.median(theirs_scans)),
                "median_iou_hard": float(np.median(theirs_hard)),
                "p10_iou_hard": float(np.percentile(theirs_hard, 10)),
                "seconds_per_image": foreign["plantcv"]["seconds_per_image"],
            },
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
