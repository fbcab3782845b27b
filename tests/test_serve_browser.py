"""``leafprep serve`` in a real headless Chromium (Debian's ``chromium``, driven by Playwright), over a real uvicorn server.

Skipped, with the reason, where /usr/bin/chromium or Playwright is missing
(``.ci/run`` installs both). Each test leaves a screenshot; with
``LEAFPREP_SCREENSHOTS=docs/images`` they are the pictures of docs/serve.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from serving import SAMPLES, served_in_thread

pytest.importorskip("fastapi", reason="leafprep serve's extra is not installed (pip install 'leafprep[serve]')")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 20_000  # milliseconds: the first dream and a cold browser take a few seconds on 2 cores


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not here (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(served):
    """The app on a free port of 127.0.0.1, served by uvicorn in a thread: its URL."""
    with served_in_thread(served) as url:
        yield url


@pytest.fixture
def page(browser, server, tmp_path):
    """A fresh page on the server; it fails the test on any script error or blocked resource (the content security policy)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    refused = "the server responded with a status of 4"  # the answer to a bad file: shown on the page, logged by Chromium
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" and refused not in message.text else None)
    tab.goto(server)
    expect(tab.locator("#run option")).to_have_count(3)
    yield tab
    context.close()
    assert not problems, problems


def screenshot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("LEAFPREP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"serve-{name}.png"), full_page=True)


def draw_seven(page) -> None:
    """A 7 with the mouse: a bar left to right, then the stem down to the left; the answer comes on the pen's lift."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    at = lambda x, y: (box["x"] + x * scale, box["y"] + y * scale)  # noqa: E731
    page.mouse.move(*at(70, 70))
    page.mouse.down()
    page.mouse.move(*at(205, 70), steps=12)
    page.mouse.move(*at(125, 225), steps=16)
    page.mouse.up()


def probability(page) -> float:
    text = page.locator("#answer-probability").inner_text()
    assert re.fullmatch(r"\d+(\.\d)?%", text), text
    return float(text[:-1]) / 100


def test_drawing_a_seven_with_the_mouse_shows_7_and_its_probability(page, tmp_path):
    from playwright.sync_api import expect

    expect(page.locator("#facts")).to_contain_text("test accuracy")
    draw_seven(page)
    expect(page.locator("#answer")).to_have_text("7")
    assert probability(page) > 0.5
    expect(page.locator("#top li")).to_have_count(5)
    expect(page.locator("#top li").first).to_contain_text("7")
    expect(page.locator("#attention-caption")).to_contain_text("Grad-CAM")
    expect(page.locator("#learned-caption")).to_contain_text("a dream of “7”")
    screenshot(page, "draw", tmp_path)
    page.click("#clear")
    expect(page.locator("#answer-box")).to_be_hidden()


def test_uploading_a_sample_photo_shows_the_steps(page, tmp_path):
    from playwright.sync_api import expect

    page.set_input_files("#file", str(SAMPLES / "digits" / "3" / "photo-1.jpg"))
    steps = page.locator("#steps figure")
    expect(steps).to_have_count(5)
    expect(steps.locator("figcaption")).to_have_text(["photo", "light corrected", "mask", "crop", "the network's input"])
    for image in steps.locator("img").all():
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("node => node.naturalWidth") > 0
    expect(page.locator("#answer")).to_have_text(re.compile(r"^\d$"))
    probability(page)
    expect(page.locator("#learned-caption")).to_contain_text("a dream of")
    screenshot(page, "photo", tmp_path)


def test_a_bad_file_shows_its_error_and_the_page_goes_on(page, tmp_path):
    from playwright.sync_api import expect

    page.set_input_files("#file", files=[{"name": "shopping.jpg", "mimeType": "image/jpeg", "buffer": b"shopping list: milk, eggs\n"}])
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_have_text("shopping.jpg: is not a recognised image file (expected JPEG, PNG, BMP, TIFF, WebP or GIF)")
    screenshot(page, "error", tmp_path)
    draw_seven(page)
    expect(page.locator("#answer")).to_have_text("7")
    expect(error).to_be_hidden()


def test_a_sheet_shows_every_digit_with_its_reading(page, tmp_path):
    from playwright.sync_api import expect

    page.set_input_files("#file", str(SAMPLES / "sheets" / "sheet-0123456789.jpg"))
    expect(page.locator("#digits figure")).to_have_count(10)
    expect(page.locator("#answer")).to_have_text(re.compile(r"^\d{10}$"))
    expect(page.locator("#steps figure")).to_have_count(1)
    expect(page.locator("#learned-caption")).to_contain_text("a dream of")
    screenshot(page, "sheet", tmp_path)


def test_a_leaf_run_shows_the_leaf_outlined_and_the_top_species(page, tmp_path):
    from playwright.sync_api import expect

    page.select_option("#run", "leaves")
    expect(page.locator("#draw-panel")).to_be_hidden()
    expect(page.locator("#facts")).to_contain_text("lanceolata, ovata, palmata, quercoides")
    page.set_input_files("#file", str(SAMPLES / "leaves" / "palmata" / "leaf-2.jpg"))
    expect(page.locator("#answer")).to_have_text(re.compile(r"^(lanceolata|ovata|palmata|quercoides)$"))
    expect(page.locator("#top li")).to_have_count(4)
    expect(page.locator("#steps figure")).to_have_count(5)
    expect(page.locator("#learned-caption")).to_contain_text("the weights of")
    screenshot(page, "leaf", tmp_path)


def test_a_photo_of_several_leaves_lists_every_leaf_numbered_with_its_species(page, tmp_path):
    import numpy as np
    from PIL import Image
    from playwright.sync_api import expect

    from leafprep.synthetic import leaf_bed

    photo, _ = leaf_bed(np.random.default_rng(8), leaves=5, side=1000)
    path = tmp_path / "bed.png"
    Image.fromarray(photo).save(path)
    page.select_option("#run", "leaves")
    page.set_input_files("#file", str(path))
    expect(page.locator("#digits figure")).to_have_count(5)
    expect(page.locator("#sheet-title")).to_have_text("Every leaf of the photo")
    expect(page.locator("#digits figcaption").first).to_have_text(re.compile(r"^00: (lanceolata|ovata|palmata|quercoides) \d+(\.\d)?%$"))
    expect(page.locator("#answer")).to_have_text(re.compile(r"^(lanceolata|ovata|palmata|quercoides)$"))
    expect(page.locator("#what")).to_contain_text("over 5 leaves")
    screenshot(page, "leaves", tmp_path)


def test_a_photo_dropped_or_pasted_on_the_page_is_read(page):
    from playwright.sync_api import expect
    from serving import drawn_seven

    from photos import encode

    give = """async ([kind, bytes]) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], "seven.png", { type: "image/png" }));
        const event = kind === "drop"
            ? new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true })
            : new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
        (kind === "drop" ? document.getElementById("drop") : document).dispatchEvent(event);
    }"""
    seven = list(encode(drawn_seven(), "PNG"))
    for kind in ("drop", "paste"):
        page.click("#clear")
        expect(page.locator("#answer-box")).to_be_hidden()
        page.evaluate(give, [kind, seven])
        expect(page.locator("#answer")).to_have_text("7")
