#!/usr/bin/env bash
# The two quick-start commands of the README, and what CI runs.
#   bash scripts/dev.sh demo   set up .venv and run the main job on sample_data/ (it ends with the command that serves its run)
#   bash scripts/dev.sh test   set up .venv and run lint, types and the test suite
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
setup() {
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "$1"
}

case "${1:-}" in
demo)
    setup ".[serve]"
    rm -rf out/demo
    echo "== Normalising the sample photos in sample_data/digits (results in out/demo/digits, all at a glance in out/demo/contact-sheet.png)"
    .venv/bin/leafprep normalize sample_data/digits --out out/demo/digits --contact-sheet out/demo/contact-sheet.png
    echo "== One photo, every stage (out/demo/steps.png), and the result as the network sees it"
    .venv/bin/leafprep normalize sample_data/digits/7/photo-1.jpg --out out/demo/seven.png --steps out/demo/steps.png --preview
    echo "== Every digit of a sheet, in reading order (out/demo/sheet)"
    .venv/bin/leafprep normalize sample_data/sheets/sheet-0123456789.jpg --all --out out/demo/sheet
    echo "== Leaves: masks with outlines (out/demo/leaf-masks, out/demo/leaf-overlays)"
    .venv/bin/leafprep segment sample_data/leaves --kind leaf --out out/demo/leaf-masks --overlay out/demo/leaf-overlays
    echo "== Leaves: upright 64x64 grey leaves, all at a glance in out/demo/leaf-contact-sheet.png"
    .venv/bin/leafprep normalize sample_data/leaves --kind leaf --size 64 --orient --out out/demo/leaves \
        --contact-sheet out/demo/leaf-contact-sheet.png
    echo "== Leaves: a TFRecord dataset (out/demo/leaf-dataset), inspected and verified"
    .venv/bin/leafprep build sample_data/leaves --out out/demo/leaf-dataset --kind leaf --size 64 --split 60/20/20 --augment 2
    .venv/bin/leafprep inspect out/demo/leaf-dataset
    .venv/bin/leafprep verify out/demo/leaf-dataset
    echo "== Leaves: a small leaf model on them (the default recipe for leaves: the descriptor model; run folder out/demo/leaf-run)"
    .venv/bin/leafprep train out/demo/leaf-dataset --out out/demo/leaf-run
    echo "== Digits: real handwriting, 9,000 MNIST digits and 1,000 held back (sample_data/mnist), as a dataset, verified"
    .venv/bin/leafprep build sample_data/mnist --out out/demo/digit-dataset
    .venv/bin/leafprep verify out/demo/digit-dataset
    echo "== A fast conv-net trained on the 9,000 (run folder out/demo/run), then tested on the 1,000 it never saw"
    .venv/bin/leafprep train out/demo/digit-dataset --out out/demo/run --model fast --epochs 4 --patience 4
    .venv/bin/leafprep evaluate out/demo/run out/demo/digit-dataset --split test
    echo "== Photos it never trained on: the 20 sample photos (pictures in out/demo/predictions) and a sheet of ten digits"
    .venv/bin/leafprep predict out/demo/run sample_data/digits --top-k 2 --steps out/demo/predictions
    .venv/bin/leafprep predict out/demo/run sample_data/sheets/sheet-0123456789.jpg --all
    echo "== What it learned: its first-layer filters, and where it looks in a photo of a 7 (out/demo/*.png)"
    .venv/bin/leafprep visualize out/demo/run --what weights --out out/demo/weights.png
    .venv/bin/leafprep visualize out/demo/run --what gradcam --input sample_data/digits/7/photo-1.jpg --out out/demo/gradcam-7.png
    echo "== Try it live: draw a digit or give a photo of digits or leaves in your browser (http://127.0.0.1:8000/, Ctrl-C stops it):"
    echo ".venv/bin/leafprep serve out/demo/run out/demo/leaf-run"
    ;;
test)
    setup ".[dev]"
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    .venv/bin/python -m pytest
    ;;
*)
    echo "usage: bash scripts/dev.sh demo|test" >&2
    exit 2
    ;;
esac
