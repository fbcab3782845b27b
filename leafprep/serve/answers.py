"""An upload's answer: the photo decoded once, normalised as the run's data were, read by the network.

Uploads are bytes, never paths: nothing a request sends can name a file on
the server. Their decoding goes through :func:`leafprep.loading.load_image`'s
checks (the pixel limit is read from the header before a pixel is decoded).

A digit run reads a photo with several digits as a sheet (every digit with
its box, in reading order) and a photo with one digit exactly as
``leafprep predict`` does. A leaf run names every leaf of a photo of several
(a scanner bed), each with its box and its own answer, and the species most
likely over all of them.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import DOUBT, LeafprepError, NothingFoundError, ParameterError
from ..loading import _load
from . import pictures
from .runs import ServedRun

__all__ = ["FORMATS", "PICTURE_SIDE", "normalized", "predict", "warm_up"]

#: Longest side of the photo-sized step pictures sent back (the network's input is sent at its own size).
PICTURE_SIDE = 480

#: What ``POST /api/normalize`` writes.
FORMATS = ("png", "npy")


class _Upload(io.BytesIO):
    """The uploaded bytes as a file object whose name (the client's file name) appears in messages."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def _top(labels: list[str], probabilities: np.ndarray, k: int) -> list[dict[str, Any]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": labels[i], "probability": round(float(probabilities[i]), 6)} for i in order]


def _batch(image: np.ndarray) -> np.ndarray:
    return (image[:, :, None] if image.ndim == 2 else image).astype(np.float32)[None]


def predict(
    served: ServedRun, data: bytes, name: str, *, steps: bool = False, sheet: bool | None = None, top_k: int = 5, max_pixels: int
) -> dict[str, Any]:
    """The run's answer for an uploaded photo, as the JSON of ``POST /api/predict``.

    Parameters
    ----------
    served : ServedRun
    data : bytes
        The encoded image (JPEG, PNG, ...).
    name : str
        The client's name for it, used in messages only.
    steps : bool, optional
        Add the step pictures (photo, light-corrected, mask, crop, input), the
        attention map over the input and each sheet digit's input, as PNG data URLs.
    sheet : bool, optional
        ``None`` reads a photo with two or more digits (leaves) as a sheet;
        ``True`` always, ``False`` never (the main digit or the largest leaf only).
    top_k : int, optional
        Classes listed in ``top``.
    max_pixels : int
        Refuse images whose header declares more pixels.

    Returns
    -------
    answer : dict
        ``run``, ``kind``, ``label``, ``probability``, ``top`` (label and
        probability, most likely first), ``sheet``, ``number`` and ``digits``
        (each with ``box`` (x, y, width, height) in the upright photo,
        ``label``, ``probability`` and ``top``), ``leaves`` (the same for each
        leaf of a leaf sheet, with its ``notes``; then ``label``, ``probability``
        and ``top`` are over all of them: their probabilities averaged),
        ``image_size`` (width, height),
        ``warnings``, ``notes``, ``learned`` (what picture of the winning class
        ``GET /api/learned`` gives), ``seconds`` and, with ``steps``, ``steps``
        and ``attention``.

    Raises
    ------
    ImageLoadError, ImageTooLargeError
        The upload is not an image, is damaged, or declares too many pixels.
    NothingFoundError
        No digit (or leaf) stands out of the photo.
    """
    with _named(name):
        return _predict(served, data, name, steps=steps, sheet=sheet, top_k=top_k, max_pixels=max_pixels)


@contextmanager
def _named(name: str) -> Iterator[None]:
    """Errors about the decoded picture (``<array>``) name the upload instead."""
    try:
        yield
    except LeafprepError as error:
        if error.source != "<array>":
            raise
        raise type(error)(name, error.reason, error.hint) from None


def _predict(served: ServedRun, data: bytes, name: str, *, steps: bool, sheet: bool | None, top_k: int, max_pixels: int) -> dict[str, Any]:
    from ..normalization import decode_min_side, normalize_all, normalize_steps
    from ..segmentation.leaves import SEVERAL_LEAVES
    from ..settings import leaf_decode_side

    clock = _Clock()
    kind, size, mode = served.kind, served.size, served.facts["mode"]
    min_side = None if kind == "none" else leaf_decode_side(served.run.settings) if kind == "leaf" else decode_min_side(kind, size)
    loaded = _load(_Upload(data, name), max_pixels=max_pixels, min_side=min_side)
    rgb, (full_height, full_width) = loaded.rgb, loaded.full_shape
    clock.lap("decode")
    answer: dict[str, Any] = {"run": served.name, "kind": kind, "sheet": False, "number": None, "digits": [], "leaves": []}
    answer["image_size"] = [full_width, full_height]
    answer["warnings"], answer["notes"] = [], []
    stages = None
    digits = []
    if kind == "digit" and sheet is not False:
        digits = normalize_all(rgb, size=size)
        if not digits:
            raise NothingFoundError(name, "no digit found", "write darker or larger, on plain paper")
    if digits and (sheet or len(digits) >= 2):
        clock.lap("normalize")
        return _sheet(served, answer, rgb, digits, (full_height / rgb.shape[0], full_width / rgb.shape[1]), steps, top_k, clock)
    if kind == "none":
        from ..settings import as_is

        image = as_is(rgb, size, mode)
    elif digits and not steps:
        image = digits[0].image  # the photo's one digit: what normalize_steps would give, without finding it again
    else:
        stages = normalize_steps(rgb, kind, size, mode=None if kind == "digit" else mode)
        image = stages.result
        answer["notes" if kind == "digit" else "warnings"] = list(stages.notes)  # a leaf's notes are what it warned of
    if kind == "leaf" and (sheet or (sheet is None and stages is not None and any(SEVERAL_LEAVES in note for note in stages.notes))):
        clock.lap("normalize")
        return _leaves(served, answer, data, name, steps, top_k, max_pixels, clock)
    clock.lap("normalize")
    descriptors = None
    if served.facts.get("descriptors") and stages is not None:
        from ..description import describe_normalised

        descriptors = describe_normalised(stages, rgb, (full_height, full_width), name).values[None]
        clock.lap("describe")
    probabilities = served.probabilities(_batch(image), descriptors)[0]
    clock.lap("network")
    answer["top"] = _top(served.labels, probabilities, top_k)
    answer["label"], answer["probability"] = answer["top"][0]["label"], answer["top"][0]["probability"]
    answer["learned"] = _learned(served, answer["label"])
    if steps:
        answer["steps"] = _steps(stages, image, kind)
        winner = int(np.argmax(probabilities))
        if served.facts["attention"]:
            heat = served.attention(_batch(image)[0], winner, None if descriptors is None else descriptors[0])
            answer["attention"] = {"method": served.facts["attention"], "picture": pictures.data_url(pictures.heat_over(image, heat))}
        clock.lap("pictures")
    answer["seconds"] = clock.laps
    return answer


def _sheet(
    served: ServedRun,
    answer: dict[str, Any],
    rgb: np.ndarray,
    digits: list[Any],
    scale: tuple[float, float],
    steps: bool,
    top_k: int,
    clock: _Clock,
) -> dict[str, Any]:
    """Every digit of a sheet read in one batch; boxes in the upright photo's pixels."""
    images = np.concatenate([_batch(digit.image) for digit in digits])
    probabilities = served.probabilities(images)
    clock.lap("network")
    scale_y, scale_x = scale
    found = []
    for digit, image, p in zip(digits, images, probabilities, strict=True):
        x, y, w, h = digit.box
        top = _top(served.labels, p, top_k)
        entry = {
            "box": [round(x * scale_x), round(y * scale_y), round(w * scale_x), round(h * scale_y)],
            "label": top[0]["label"],
            "probability": top[0]["probability"],
            "top": top,
        }
        if steps:
            entry["input"] = pictures.data_url(image)
        found.append(entry)
    answer.update(sheet=True, digits=found, number="".join(entry["label"] for entry in found), top=found[0]["top"])
    answer["label"], answer["probability"] = found[0]["label"], found[0]["probability"]
    answer["learned"] = _learned(served, answer["label"])
    if steps:
        drawn = pictures.boxes(rgb, [(digit.box, entry["label"]) for digit, entry in zip(digits, found, strict=True)])
        answer["steps"] = {"photo": pictures.data_url(pictures.shrink(drawn, 2 * PICTURE_SIDE))}
        clock.lap("pictures")
    answer["seconds"] = clock.laps
    return answer


def _leaves(
    served: ServedRun, answer: dict[str, Any], data: bytes, name: str, steps: bool, top_k: int, max_pixels: int, clock: _Clock
) -> dict[str, Any]:
    """Every leaf of a photo of several, each named (one batch), as ``leafprep build --all`` cut them out; the
    species over all of them from their probabilities averaged."""
    from types import SimpleNamespace

    from trainers.predict import disagreement

    from ..description import leaf_batch
    from ..figures import outline_all
    from ..normalization import _full_box
    from ..segmentation import analyse_leaves
    from ..segmentation.multiple import leaf_notes

    found = analyse_leaves(_Upload(data, name), max_pixels=max_pixels, warn=False)  # decoded again, large enough for every leaf
    batch, descriptors = leaf_batch(found, served.size, served.facts["mode"] or "gray", descriptors=bool(served.facts.get("descriptors")))
    clock.lap("normalize")
    probabilities = served.probabilities(batch, descriptors)
    clock.lap("network")
    entries = []
    for index, (leaf, image, p) in enumerate(zip(found.leaves, batch, probabilities, strict=True)):
        top = _top(served.labels, p, top_k)
        entry = {"index": index, "box": list(_full_box(leaf.box, found.scale)), "label": top[0]["label"], "probability": top[0]["probability"]}
        entry.update(top=top, notes=list(leaf.notes))
        if steps:
            entry["input"] = pictures.data_url(image)
        entries.append(entry)
    answer.update(sheet=True, leaves=entries, top=_top(served.labels, probabilities.mean(axis=0), top_k))
    answer["label"], answer["probability"] = answer["top"][0]["label"], answer["top"][0]["probability"]
    differ = disagreement([entry["label"] for entry in entries])
    answer["warnings"] = leaf_notes(found.leaves, found.left_out) + ([differ] if differ else [])
    answer["learned"] = _learned(served, answer["label"])
    if steps:
        drawn = [SimpleNamespace(index=i, box=leaf.box, mask=leaf.mask, notes=leaf.notes) for i, leaf in enumerate(found.leaves)]
        answer["steps"] = {"photo": pictures.data_url(pictures.shrink(outline_all(found.photo, drawn), 2 * PICTURE_SIDE))}
        clock.lap("pictures")
    answer["seconds"] = clock.laps
    return answer


def _steps(stages: Any, image: np.ndarray, kind: str) -> dict[str, str]:
    """The step pictures as data URLs: photo (with the object's box or outline), light-corrected, mask, crop, input."""
    from ..figures import outline
    from ..geometry import bounding_box

    if stages is None:  # a run whose inputs are taken as they are
        return {"input": pictures.data_url(image)}
    if kind == "leaf":
        doubts = [note.removeprefix(DOUBT) for note in stages.notes if note.startswith(DOUBT)]
        photo = outline(stages.photo, stages.chosen, doubts=doubts)
    else:
        box = bounding_box(stages.chosen)
        photo = pictures.boxes(stages.photo, [(box, "")]) if box is not None else stages.photo
    found = 0.45 * stages.mask.astype(np.float32) + 0.55 * stages.chosen.astype(np.float32)  # the object bright, the rest grey
    side = PICTURE_SIDE
    return {
        "photo": pictures.data_url(pictures.shrink(photo, side)),
        "light": pictures.data_url(pictures.shrink(pictures.to_uint8(stages.evidence), side)),
        "mask": pictures.data_url(pictures.shrink(pictures.to_uint8(found), side)),
        "crop": pictures.data_url(pictures.shrink(pictures.to_uint8(stages.crop), side)),
        "input": pictures.data_url(image),
    }


def _learned(served: ServedRun, label: str) -> dict[str, str] | None:
    from urllib.parse import urlencode

    if not served.facts["learned"]:
        return None  # a model of descriptors alone: no picture of its input to draw

    return {"what": served.facts["learned"], "label": label, "url": "/api/learned?" + urlencode({"run": served.name, "label": label})}


def normalized(
    data: bytes, name: str, *, kind: str = "digit", size: int = 28, mode: str | None = None, file_format: str = "png", max_pixels: int
) -> tuple[bytes, list[str]]:
    """``POST /api/normalize``: the upload normalised as ``leafprep normalize`` would, as PNG or ``.npy`` bytes, and its notes.

    The ``.npy`` file holds float32 in [0, 1], written with ``allow_pickle=False``.
    """
    from ..normalization import normalize_steps

    if file_format not in FORMATS:
        raise ParameterError("format", f"format must be png or npy, got {file_format!r}")
    stages = normalize_steps(_Upload(data, name), kind, size, mode=mode, max_pixels=max_pixels)
    if file_format == "npy":
        buffer = io.BytesIO()
        np.save(buffer, stages.result.astype(np.float32), allow_pickle=False)
        return buffer.getvalue(), list(stages.notes)
    return pictures.png(stages.result), list(stages.notes)


def warm_up(served: ServedRun) -> None:
    """Answer a made-up photo with every picture, so that the first request does not pay for first calls (imports, traced functions)."""
    import warnings

    import cv2

    from ..errors import LeafprepWarning
    from ..loading import DEFAULT_MAX_PIXELS

    if served.kind == "leaf":
        from ..synthetic import leaf_photo

        photo, _ = leaf_photo("ovata", np.random.default_rng(0), side=240)
    else:
        photo = np.full((140, 140, 3), 255, np.uint8)
        cv2.polylines(photo, [np.array([[35, 35], [102, 35], [62, 112]], np.int32)], False, (20, 20, 20), 9, cv2.LINE_AA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeafprepWarning)
        try:
            predict(served, pictures.png(photo), "<warm-up>", steps=True, max_pixels=DEFAULT_MAX_PIXELS)
        except LeafprepError:  # a run whose photos this one is not like: its first real answer pays, that is all
            pass


class _Clock:
    """Seconds spent in each part of the work."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._last, 6)
        self._last = now
