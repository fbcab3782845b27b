"""The README's picture of the pipeline: photo, mask, normalised image, and what a trained net made of it.

Run:  python scripts/pipeline_figure.py [SOFTMAX_RUN] [LEAF_RUN]
      (defaults: bench/.cache/runs/softmax and bench/.cache/runs/leaf, which
      ``python -m bench.train_mnist`` and ``python -m bench.train_leaves`` write)
Writes docs/images/pipeline.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
DIGIT = DATA / "digit_photos" / "dcdl-mwu" / "7" / "seven.png"
LEAF = DATA / "leaves" / "swedish" / "02_Acer" / "l2nr001.jpg"


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import leafprep
    from trainers.predict import prepare
    from trainers.runs import load_run
    from trainers.visualize import saliency, weight_maps

    softmax_run = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / ".cache" / "runs" / "softmax"
    leaf_run = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "bench" / ".cache" / "runs" / "leaf"
    digits, leaves = load_run(softmax_run), load_run(leaf_run)

    photo = leafprep.load_image(DIGIT)
    mask = leafprep.segment(DIGIT, "digit")
    digit = leafprep.normalize(DIGIT)
    weights = weight_maps(digits.model)[digits.labels.index("7")]
    leaf_photo = leafprep.load_image(LEAF)
    leaf_mask = leafprep.segment(LEAF, "leaf")
    leaf_input = prepare(leaves, LEAF)
    heat = saliency(leaves.model, leaf_input)

    figure, axes = plt.subplots(2, 4, figsize=(11, 5.6))
    scale = float(np.percentile(np.abs(weights), 99.5))
    panels = [
        (photo, None, "a phone photo of a 7"),
        (mask, "gray", "the ink, found on the paper"),
        (digit, "gray", "28x28, MNIST's recipe"),
        (weights, "bwr_r", 'weights of the class "7"\n(one-layer net: blue = ink counts for 7)'),
        (leaf_photo, None, "a scanned maple leaf"),
        (leaf_mask, "gray", "the leaf, off its background"),
        (leaf_input, "gray" if leaf_input.shape[-1] == 1 else None, f"{leaf_input.shape[0]}x{leaf_input.shape[1]} input of the leaf model"),
        (heat, "magma", "where the leaf model looks\n(saliency)"),
    ]
    for axis, (image, cmap, title) in zip(axes.ravel(), panels, strict=True):
        if cmap == "bwr_r":
            axis.imshow(image, cmap=cmap, vmin=-scale, vmax=scale)
        else:
            axis.imshow(np.squeeze(image), cmap=cmap)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    for row, label in enumerate(("digit", "leaf")):
        axes[row, 0].text(-0.08, 0.5, label, transform=axes[row, 0].transAxes, rotation=90, va="center", ha="right", fontsize=11)
    figure.suptitle("photo  →  mask  →  normalised  →  what the network learned", fontsize=12)
    figure.tight_layout()
    figure.savefig(ROOT / "docs" / "images" / "pipeline.png", dpi=90)
    print("wrote docs/images/pipeline.png")


if __name__ == "__main__":
    main()
