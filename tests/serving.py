"""Small trained runs for the tests of ``leafprep serve``, made in seconds from data the tests draw themselves.

No shared data set is needed: the digits are OpenCV's Hershey fonts, turned,
sheared, thickened and normalised MNIST-style; the leaves are sample_data/'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC,
)


def font_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One digit in a random Hershey font, pen, slant and turn, normalised like MNIST: (28, 28) uint8, bright on black."""
    from leafprep.geometry import box_size_for, center_by_mass, crop_to_content, fit_to_box

    canvas = np.zeros((120, 120), np.uint8)
    font = _FONTS[rng.integers(len(_FONTS))]
    scale = 3.0 if font == cv2.FONT_HERSHEY_PLAIN else 2.2
    cv2.putText(canvas, str(digit), (35, 90), font, scale, 255, int(rng.integers(3, 9)), cv2.LINE_AA)
    shear, angle = rng.uniform(-0.25, 0.25), rng.uniform(-12, 12)
    turn = cv2.getRotationMatrix2D((60, 60), angle, rng.uniform(0.8, 1.1))
    turn[0, 1] += shear
    canvas = cv2.warpAffine(canvas, turn, (120, 120), flags=cv2.INTER_LINEAR)
    content = crop_to_content(canvas.astype(np.float32) / 255.0, 0.02)
    fitted = np.clip(fit_to_box(content, box_size_for(28)), 0.0, 1.0)
    image = center_by_mass(fitted, 28)
    return np.clip(np.rint(image / max(float(image.max()), 1e-6) * 255), 0, 255).astype(np.uint8)


def font_digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` digits, the classes in turn: (images (count, 28, 28) uint8, labels (count,) uint8)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.uint8) % 10
    return np.stack([font_digit(int(label), rng) for label in labels]), labels


def drawn_seven(side: int = 280) -> np.ndarray:
    """A 7 as a person draws it on the page's pad: a bar and a slanted stem, dark on white (RGB uint8)."""
    pad = np.full((side, side, 3), 255, np.uint8)
    points = (np.array([[70, 70], [205, 70], [125, 225]]) * side / 280).astype(np.int32)
    cv2.polylines(pad, [points], False, (17, 17, 17), max(2, side // 15), cv2.LINE_AA)
    return pad


def make_runs(root: Path) -> dict[str, Path]:
    """A conv-net and a softmax net for digits, and a softmax net for sample_data/'s leaves: their run folders."""
    from leafprep.build import BuildOptions, build
    from leafprep.idx import write_idx
    from trainers.train import train

    images, labels = font_digits(1500)
    idx = root / "idx"
    idx.mkdir(parents=True)
    write_idx(idx / "train-images-idx3-ubyte.gz", images[:1300])
    write_idx(idx / "train-labels-idx1-ubyte.gz", labels[:1300])
    write_idx(idx / "t10k-images-idx3-ubyte.gz", images[1300:])
    write_idx(idx / "t10k-labels-idx1-ubyte.gz", labels[1300:])
    build(idx, root / "digits", BuildOptions(kind="none"), workers=0)
    train(root / "digits", root / "convnet", model="convnet", epochs=4, batch_size=32, learning_rate=0.003, verbose=0)
    train(root / "digits", root / "softmax", model="softmax", epochs=3, batch_size=32, learning_rate=0.01, optimizer="adam", verbose=0)
    build(SAMPLES / "leaves", root / "leaf-data", BuildOptions(kind="leaf", size=32, split=(1.0, 0.0, 0.0)), workers=0)
    train(root / "leaf-data", root / "leaves", model="softmax", epochs=20, batch_size=8, learning_rate=0.01, optimizer="adam", patience=20, verbose=0)
    return {name: root / name for name in ("convnet", "softmax", "leaves")}


@contextmanager
def served_in_thread(served) -> Iterator[str]:
    """``leafprep serve``'s app over ``served`` runs on a free port of 127.0.0.1, served by uvicorn in a thread: its URL."""
    import threading
    import time

    import uvicorn

    from leafprep.serve.app import Limits, create_app, listen

    sock = listen("127.0.0.1", 0)
    app = create_app(served, Limits(dream_steps=30), allowed_hosts=["127.0.0.1"])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
