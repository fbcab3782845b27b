"""The demo's network reads real handwriting: digits drawn with the mouse on ``leafprep serve``'s page, as people write them.

A conv-net is trained the way ``bash scripts/dev.sh demo`` trains it (the
``fast`` model on the bundled slice of MNIST, ``sample_data/mnist``), served by
uvicorn and driven in a real headless Chromium. Each digit is drawn in two
styles (a closed and an open 4, a 7 with and without a bar, a 1 with and
without a flag, ...), stroke by stroke, with the mouse.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from serving import SAMPLES, served_in_thread

pytest.importorskip("fastapi", reason="leafprep serve's extra is not installed (pip install 'leafprep[serve]')")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CHROMIUM = Path("/usr/bin/chromium")
SLICE = SAMPLES / "mnist"


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, points: int = 18) -> list[tuple[float, float]]:
    """Points along an ellipse from ``start`` to ``end`` degrees (0 is to the right, 90 down: screen coordinates)."""
    return [
        (cx + rx * math.cos(math.radians(start + (end - start) * k / points)), cy + ry * math.sin(math.radians(start + (end - start) * k / points)))
        for k in range(points + 1)
    ]


# Each digit twice, as strokes of points on the 280x280 pad (x right, y down); the pen lifts between strokes.
DIGITS: dict[str, list[list[list[tuple[float, float]]]]] = {
    "0": [[arc(140, 140, 55, 85, -100, 260)], [arc(145, 140, 40, 90, -80, 290)]],
    "1": [[[(145, 50), (140, 230)]], [[(105, 90), (150, 50), (145, 230)], [(110, 230), (180, 230)]]],
    "2": [
        [[*arc(140, 105, 55, 50, 200, 360), (185, 130), (85, 230), (200, 228)]],
        [[*arc(135, 100, 50, 45, 190, 380), (90, 225), *arc(105, 215, 15, 12, 180, 360), (200, 230)]],
    ],
    "3": [
        [[*arc(135, 95, 50, 42, 200, 450), *arc(135, 180, 55, 48, 270, 520)]],
        [[(85, 55), (190, 55), (130, 125), *arc(135, 175, 55, 52, 280, 510)]],
    ],
    "4": [
        [[(160, 45), (80, 170), (200, 170)], [(165, 100), (165, 235)]],  # closed: the first stroke runs up to the stem
        [[(95, 45), (90, 150), (195, 150)], [(170, 60), (170, 235)]],  # open: an L, then the stem
    ],
    "5": [
        [[(100, 55), (95, 130), *arc(135, 170, 55, 50, 225, 500)], [(100, 55), (190, 55)]],
        [[(185, 50), (105, 50), (100, 125), *arc(140, 170, 50, 52, 235, 495)]],
    ],
    "6": [
        [[(180, 45), (130, 85), (95, 140), *arc(140, 175, 46, 50, 180, 540)]],
        [[(160, 45), (105, 130), *arc(140, 180, 48, 48, 200, 560)]],
    ],
    "7": [[[(80, 60), (200, 60), (115, 230)]], [[(80, 60), (200, 60), (115, 230)], [(120, 145), (185, 145)]]],
    "8": [
        [[*arc(140, 95, 42, 42, 90, 450), *arc(140, 180, 50, 45, -90, 270)]],
        [[*arc(140, 92, 40, 40, 0, 360), *arc(140, 180, 48, 48, -90, 270)]],
    ],
    "9": [
        [[*arc(135, 100, 45, 45, 0, 360), (180, 100), (170, 235)]],
        [[*arc(140, 95, 45, 40, 10, 370), *arc(105, 95, 80, 140, 0, 80)]],
    ],
}


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory) -> Path:
    """A run trained as the demo trains it: the ``fast`` conv-net on the 9,000 digits of sample_data/mnist."""
    from leafprep.build import BuildOptions, build
    from trainers.train import train

    root = tmp_path_factory.mktemp("handwriting")
    build(SLICE, root / "data", BuildOptions(kind="none", size=28, split=(0.9, 0.0, 0.1)), workers=0)
    train(root / "data", root / "run", model="fast", epochs=4, patience=4, verbose=0)
    return root / "run"


@pytest.fixture(scope="module")
def page(digit_run):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not here (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
    from leafprep.serve.runs import load_runs

    with served_in_thread(load_runs([digit_run])) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        sync_api.expect.set_options(timeout=20_000)
        tab.goto(url)
        yield tab
        browser.close()


def draw(page, strokes: list[list[tuple[float, float]]]) -> str:
    """Draw ``strokes`` on a cleared pad with the mouse; the page's answer once the last stroke is read."""
    from playwright.sync_api import expect

    page.click("#clear")
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * scale, box["y"] + stroke[0][1] * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        # The page reads the pad on every lift of the pen; the next stroke waits for that answer, as a person's would.
        with page.expect_response(lambda response: "/api/predict" in response.url):
            page.mouse.up()
        expect(page.locator("#status")).to_have_text(re.compile(r"^read in"))
    return page.locator("#answer").inner_text()


def test_digits_drawn_with_the_mouse_as_people_write_them_are_read_by_the_demos_network(page, tmp_path):
    import os

    shots = Path(os.environ.get("LEAFPREP_SCREENSHOTS") or tmp_path)
    read = {}
    for digit, styles in DIGITS.items():
        for style, strokes in enumerate(styles):
            read[f"{digit} ({style + 1})"] = draw(page, strokes)
            if (digit, style) in {("4", 1), ("7", 1), ("9", 0)}:  # an open 4, a 7 with a bar, a 9: docs/serve.md shows them
                page.screenshot(path=str(shots / f"serve-drawn-{digit}-{style + 1}.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 760})
    wrong = {drawn: answer for drawn, answer in read.items() if answer != drawn[0]}
    assert len(read) == 20 and len(wrong) <= 2, f"read wrong: {wrong}"


def test_the_sample_photos_it_never_trained_on_and_a_sheet_are_read_by_the_demos_network(digit_run):
    from trainers.predict import predict, predict_sheet

    photos = sorted((SAMPLES / "digits").rglob("*.jpg"))
    answers = predict(digit_run, photos)
    right = sum(answer.label == photo.parent.name for answer, photo in zip(answers, photos, strict=True))
    assert len(photos) == 20 and right >= 18, [(photo.name, photo.parent.name, answer.label) for answer, photo in zip(answers, photos)]
    number, _ = predict_sheet(digit_run, SAMPLES / "sheets" / "sheet-0123456789.jpg")
    assert sum(a == b for a, b in zip(number, "0123456789")) >= 9, number
