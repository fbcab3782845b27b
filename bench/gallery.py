"""The visualiser gallery in docs/images/: an MNIST softmax, an MNIST conv-net and the Swedish leaf model.

Needs the runs of ``python -m bench.train_mnist`` and ``python -m bench.train_leaves``
(bench/.cache/runs/). For each run: its weights (or first-layer filters), a dream for
every class (checked: the net reads each dream as its class with probability >= 0.9),
saliency and Grad-CAM for a real photo, and the conv nets' feature maps.

Run:  python -m bench.gallery      (a few minutes)
Writes docs/images/gallery-*.png and bench/results/gallery.json.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._mnist import CACHE, DATA, ROOT

IMAGES = ROOT / "docs" / "images"
RESULTS = ROOT / "bench" / "results" / "gallery.json"
DIGIT_PHOTO = DATA / "digit_photos" / "dcdl-kkulkarni" / "7" / "seven.png"
LEAF_PHOTO = DATA / "leaves" / "swedish" / "04_Quercus" / "l4nr003.jpg"


def main() -> None:
    from trainers import visualize as draw
    from trainers.predict import prepare_steps
    from trainers.runs import load_run

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # a run skipped keeps its figures
    for name, photo in (("softmax", DIGIT_PHOTO), ("convnet", DIGIT_PHOTO), ("leaf", LEAF_PHOTO)):
        folder = CACHE / "runs" / name
        if not (folder / "model.keras").exists():
            print(f"skipping {name}: no run in {folder}")
            continue
        run = load_run(folder)
        draw.save(draw.weights_figure(run.model, run.labels), IMAGES / f"gallery-{name}-weights.png")
        figure, _, probabilities = draw.dream_figure(run.model, run.labels, seed=0, steps=200)
        draw.save(figure, IMAGES / f"gallery-{name}-dreams.png")
        image, stages = prepare_steps(run, photo)
        picture, box = draw.object_on_photo(stages)
        guess = run.labels[int(run.model.predict(image[None], verbose=0)[0].argmax())]
        draw.save(
            draw.attention_figure(draw.saliency(run.model, image), image, picture, box, f"saliency: {guess}"), IMAGES / f"gallery-{name}-saliency.png"
        )
        if name != "softmax":
            draw.save(
                draw.attention_figure(draw.gradcam(run.model, image), image, picture, box, f"Grad-CAM: {guess}"),
                IMAGES / f"gallery-{name}-gradcam.png",
            )
            draw.save(draw.activations_figure(run.model, image), IMAGES / f"gallery-{name}-activations.png")
        results[name] = {
            "dream_probability_min": float(probabilities.min()),
            "dream_probability_mean": float(probabilities.mean()),
            "photo": guess,
        }
        print(name, results[name])
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
