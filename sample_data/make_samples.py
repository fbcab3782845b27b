"""Make the bundled sample photos: synthetic photos of handwritten digits and leaves.

The digits are MNIST test digits (from ../shared/data/mnist, or --mnist) drawn as
ink on paper by :mod:`leafprep.synthetic`: coloured and ruled paper, several
inks and pens, uneven light, hard shadows, noise, blur and JPEG.  The leaves are
drawn procedurally (outline with lobes and teeth, petiole, veins, colour and
texture) on card, wood or a scanner-white background with a cast shadow: no
shared leaf data set is used.  The output is deterministic for a seed::

    python sample_data/make_samples.py     # rewrites sample_data/digits/, sheets/ and leaves/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from leafprep.idx import read_idx
from leafprep.synthetic import LEAF_SPECIES, leaf_photo, random_photo, sheet_photo

HERE = Path(__file__).resolve().parent
DEFAULT_MNIST = HERE.parent.parent / "shared" / "data" / "mnist"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST, help="folder with t10k-*-ubyte.gz")
    parser.add_argument("--out", type=Path, default=HERE / "digits", help="output folder")
    parser.add_argument("--per-digit", type=int, default=2)
    parser.add_argument("--per-species", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    images = read_idx(args.mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(args.mnist / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(args.seed)
    for label in range(10):
        folder = args.out / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        picks = np.flatnonzero(labels == label)[: args.per_digit]
        for number, index in enumerate(picks):
            photo = random_photo(images[index], rng, side=400)
            Image.fromarray(photo).save(folder / f"photo-{number + 1}.jpg", quality=88)
    # One sheet: the digits 0-9 in two rows of five, to read with --all.
    firsts = [images[np.flatnonzero(labels == d)[5]] for d in range(10)]
    sheet = sheet_photo([firsts[:5], firsts[5:]], rng)
    sheet_dir = HERE / "sheets"
    sheet_dir.mkdir(exist_ok=True)
    Image.fromarray(sheet).save(sheet_dir / "sheet-0123456789.jpg", quality=88)
    leaves = HERE / "leaves"
    for species in LEAF_SPECIES:
        (leaves / species).mkdir(parents=True, exist_ok=True)
        for number in range(args.per_species):
            photo, _ = leaf_photo(species, rng, side=360)
            Image.fromarray(photo).save(leaves / species / f"leaf-{number + 1}.jpg", quality=88)
    print(f"wrote 10 x {args.per_digit} digit photos to {args.out}, one sheet to {sheet_dir}")
    print(f"wrote {len(LEAF_SPECIES)} x {args.per_species} leaf photos to {leaves}")


if __name__ == "__main__":
    main()
