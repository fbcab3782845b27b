"""Cut the bundled slice of real handwriting out of the canonical MNIST files.

9,000 training digits (900 of each class) from MNIST's training set and 1,000
held-back test digits (100 of each class) from its test set, each class's
digits chosen by a seeded draw and kept in MNIST's own order, written as
gzipped IDX files (no timestamp: the same bytes every run)::

    python sample_data/mnist/make_slice.py      # reads ../shared/data/mnist, rewrites sample_data/mnist/*.gz

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, licensed
CC BY-SA 3.0 (README.md beside this script).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from leafprep.idx import read_idx, write_idx

HERE = Path(__file__).resolve().parent
DEFAULT_MNIST = HERE.parent.parent.parent / "shared" / "data" / "mnist"
PER_CLASS = {"train": 900, "t10k": 100}


def cut(images: np.ndarray, labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indexes of ``per_class`` digits of each class, drawn with ``seed``, in the files' own order."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == digit), per_class, replace=False) for digit in range(10)]
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST, help="folder with MNIST's four *-ubyte.gz files")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    for part, per_class in PER_CLASS.items():
        images = read_idx(args.mnist / f"{part}-images-idx3-ubyte.gz")
        labels = read_idx(args.mnist / f"{part}-labels-idx1-ubyte.gz")
        keep = cut(images, labels, per_class, args.seed)
        write_idx(args.out / f"{part}-images-idx3-ubyte.gz", images[keep])
        write_idx(args.out / f"{part}-labels-idx1-ubyte.gz", labels[keep])
        print(f"{part}: {len(keep)} digits, {np.bincount(labels[keep], minlength=10).tolist()} a class")


if __name__ == "__main__":
    main()
