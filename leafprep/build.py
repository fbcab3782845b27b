"""``leafprep build``: from a folder of photos (or a CSV, or MNIST's IDX files) to TFRecord shards.

The output folder holds::

    train-00000-of-00002.tfrecord ...   shards (schema: :mod:`leafprep.records`)
    labels.txt                          class names, one a line, natural order
    dataset_info.json                   counts, shape, pixel mean/std, options, checksums
    manifest.csv                        one row per input: written, rejected (why) or duplicate; its warnings (doubtful mask)
    _COMPLETE                           written last

How it works, in order:

1. find the inputs (class folders, optionally under ``train/``, ``val/``,
   ``test/``; a CSV with ``path,label[,split][,group]``; IDX files) in natural
   order;
2. in worker processes, read every file once: hash its bytes (SHA-256), decode
   it (once), take a difference hash of the picture and normalise it; the
   normalised pictures go to a spill file in the output folder (memory stays
   flat), files that fail are rejected with the reason;
3. give each input a split: the one it came with, or, class by class, the
   split furthest below its share, dealing the inputs out in the order of a
   hash of ``(seed, group or content)`` (:func:`stratify`); a rebuild in the
   same folder keeps the splits of the previous build, so adding files moves
   nothing. Identical files (same SHA-256) land in the same
   split and only the first is written; near-identical pictures (256-bit
   difference hashes within 15 bits) form a group and share a split; near-duplicates that
   still cross splits (given splits, CSV groups) are reported;
4. order each split by another hash (a seeded shuffle), plan the shards, and
   write the pictures in that order (augmented copies of the training ones are
   made in the workers);
5. write each shard under a temporary name, then rename it; write the
   manifest, ``dataset_info.json`` and ``_COMPLETE`` last, and remove the
   spill file. An interrupted build leaves no ``_COMPLETE``; running it again
   rebuilds the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import multiprocessing
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .errors import DOUBT, LeafprepError, LeafprepWarning, ParameterError, printable
from .inputs import natural_key
from .records import COMPLETE_FILE, INFO_FILE, file_sha256, serialize_example, shard_name
from .settings import BuildOptions, as_is

__all__ = ["BuildOptions", "BuildReport", "Item", "build", "find_inputs", "assign_split", "parse_split", "stratify"]

SPLITS = ("train", "val", "test")
_MARKER = ".leafprep-dataset"
_IDX_PREFIXES = {"train": "train", "t10k": "test"}


@dataclass
class Item:
    """One input of a build."""

    source: str  # path relative to the input root (or IDX file#index)
    label: str
    path: Path | None = None  # the file, or None for IDX examples
    pixels: np.ndarray | None = None  # IDX examples
    split: str | None = None
    group: str | None = None
    sha256: str = ""
    status: str = ""
    reason: str = ""
    warnings: str = ""  # what leafprep warned of the input ("; "-joined): a doubtful mask, a leaf cut by the border
    shard: str = ""
    spilled: int = -1  # offset of the normalised picture in the build's spill file
    photo: str = ""  # --all: the photo this leaf was cut from (its source)
    number: int = -1  # --all: the leaf's number in the photo, in reading order
    box: tuple[int, int, int, int] | None = None  # --all: the leaf's box in the photo (x, y, width, height)


@dataclass
class BuildReport:
    """What a build did."""

    out: Path
    items: list[Item]
    info: dict[str, Any] = field(default_factory=dict)
    dealt: bool = True  # the build dealt the splits (False: the source gave every input its split)

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)

    def empty_splits(self) -> list[str]:
        """The splits the options give a share to that got no example (too few inputs a class for that share; with
        ``every``, too few photos: a photo's leaves share a split). Presplit sources (folders or a CSV column) give their
        own splits and none is missing."""
        if not self.dealt:
            return []
        asked = self.info.get("options", {}).get("split") or ()
        splits = self.info.get("splits", {})
        return [name for name, share in zip(SPLITS, asked, strict=False) if share > 0 and not splits.get(name, {}).get("examples")]


def natural_labels(names: set[str]) -> list[str]:
    """Class names in natural order: ``2`` before ``10``."""
    return sorted(names, key=natural_key)


def parse_split(text: str) -> tuple[float, float, float]:
    """``"80/10/10"`` (or ``"2/1"``: no validation split) as proportions.

    Examples
    --------
    >>> parse_split("80/10/10")
    (0.8, 0.1, 0.1)
    >>> parse_split("2/1")
    (0.6666666666666666, 0.0, 0.3333333333333333)
    """
    try:
        parts = [float(p) for p in re.split(r"[/:,]", text.strip()) if p]
    except ValueError:
        parts = []
    if len(parts) == 2:
        parts = [parts[0], 0.0, parts[1]]
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ParameterError("split", f"split must look like 80/10/10 or 2/1, got {text!r}")
    total = sum(parts)
    return parts[0] / total, parts[1] / total, parts[2] / total


def _unit_hash(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(key: str, proportions: tuple[float, float, float], seed: int) -> str:
    """The split of an input, from a hash of ``(seed, key)``: stable when inputs are added.

    Examples
    --------
    >>> assign_split("abc", (1.0, 0.0, 0.0), 0)
    'train'
    """
    u = _unit_hash("split", seed, key)
    if u < proportions[0]:
        return "train"
    if u < proportions[0] + proportions[1]:
        return "val"
    return "test"


def stratify(items: list[Item], proportions: tuple[float, float, float], seed: int, previous: dict[str, str] | None = None) -> None:
    """Give every item without a split one, class by class, in the given proportions.

    Within a class, the units (an item, or all items of a group) are ordered
    by a hash of ``(seed, group or content)`` and dealt out in that order to
    the split furthest below its share: the class gets the proportions as
    closely as whole units allow, deterministically. Items a previous build in
    the same folder placed (``previous``, by SHA-256) keep their split; new
    ones fill the shares around them, so adding files moves nothing.
    """
    previous = previous or {}
    by_class: dict[str, list[Item]] = {}
    for item in items:
        if item.split is None:
            if item.sha256 in previous:
                item.split = previous[item.sha256]
            by_class.setdefault(item.label, []).append(item)
    for members in by_class.values():
        taken = Counter(item.split for item in members if item.split)
        units: dict[str, list[Item]] = {}
        for item in members:
            if item.split is None:
                units.setdefault(item.group or item.sha256, []).append(item)
        total = len(members)
        for key in sorted(units, key=lambda k: _unit_hash("split", seed, k)):
            # The split furthest below its share of the class (ties: train, val, test).
            need = [proportions[i] * total - taken[name] for i, name in enumerate(SPLITS)]
            choice = SPLITS[int(np.argmax(need))] if max(need) > 0 else assign_split(key, proportions, seed)
            for item in units[key]:
                item.split = choice
            taken[choice] += len(units[key])


def _idx_items(folder: Path) -> list[Item]:
    from .idx import read_idx

    items = []
    for prefix, split in _IDX_PREFIXES.items():
        images = sorted(folder.glob(f"{prefix}-images*idx3-ubyte*"))
        labels = sorted(folder.glob(f"{prefix}-labels*idx1-ubyte*"))
        if not images or not labels:
            continue
        pixels, classes = read_idx(images[0]), read_idx(labels[0])
        if len(pixels) != len(classes):
            raise LeafprepError(str(images[0]), f"holds {len(pixels)} images but {labels[0].name} holds {len(classes)} labels")
        for index, (image, label) in enumerate(zip(pixels, classes, strict=True)):
            items.append(Item(f"{images[0].name}#{index:05d}", str(int(label)), pixels=image, split=split))
    return items


def _csv_items(path: Path) -> list[Item]:
    """Rows of a ``path,label[,split][,group]`` CSV (UTF-8, with or without Excel's byte-order mark).

    Paths are relative to the CSV's folder unless absolute; they may lead out of
    it (``..``): a CSV names the files it wants, and nothing is ever written
    next to them.
    """
    root = path.parent
    items = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "path" not in reader.fieldnames or "label" not in reader.fieldnames:
                raise LeafprepError(str(path), "a CSV input needs the columns path,label (and optionally split, group)")
            for row in reader:
                where = f"line {reader.line_num}"
                file, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
                if not file or not label:
                    raise LeafprepError(str(path), f"{where}: every row needs a path and a label", "fill in or delete the row")
                split = (row.get("split") or "").strip() or None
                if split is not None and split not in SPLITS:
                    raise LeafprepError(str(path), f"{where}: unknown split {split!r} for {file} (use train, val or test)")
                group = (row.get("group") or "").strip() or None
                items.append(Item(file_name_text(file), file_name_text(label), root / file, split=split, group=group))
    except UnicodeDecodeError as exc:
        raise LeafprepError(str(path), f"is not UTF-8 text (byte {exc.start:,})", "save the CSV as UTF-8") from None
    except csv.Error as exc:
        raise LeafprepError(str(path), f"is not a readable CSV file: {exc}") from None
    return items


def file_name_text(name: str) -> str:
    """A file or folder name as it is written into records, labels and the manifest: one line of UTF-8.

    Bytes that are not UTF-8 become ``\\xNN`` escapes and control characters
    (a newline in a name) Python escapes such as ``\\n``; every other name is
    kept as it is.

    >>> file_name_text("7/zahl sieben ñ.png")
    '7/zahl sieben ñ.png'
    >>> file_name_text(os.fsdecode(b"7/caf\\xe9.png")), file_name_text("line\\nbreak.png")
    ('7/caf\\\\xe9.png', 'line\\\\nbreak.png')
    """
    return printable(os.fsencode(name).decode("utf-8", "backslashreplace"))


def _folder_items(root: Path) -> list[Item]:
    presplit = [name for name in SPLITS if (root / name).is_dir()]
    bases = [(root / name, name) for name in presplit] if presplit else [(root, None)]
    items = []
    for base, split in bases:
        for folder in sorted((p for p in base.iterdir() if p.is_dir()), key=natural_key):
            # Every file, not only image names: what cannot be read is rejected and listed, never dropped.
            # Links to folders are listed too (and rejected): the walk does not follow them, so it cannot loop.
            found = (p for p in folder.rglob("*") if (p.is_symlink() or not p.is_dir()) and not p.name.startswith("."))
            for file in sorted(found, key=natural_key):
                items.append(Item(file_name_text(file.relative_to(root).as_posix()), file_name_text(folder.name), file, split=split))
    return items


def find_inputs(source: str | os.PathLike[str]) -> list[Item]:
    """Every input of a build, in natural order.

    Parameters
    ----------
    source : path
        A folder of class folders (optionally under ``train/``, ``val/``,
        ``test/``), a CSV file (``path,label[,split][,group]``, paths relative to
        the CSV's folder) or a folder holding MNIST IDX files.

    Returns
    -------
    items : list of Item
        Every file found, images or not (non-images are rejected later, not
        dropped).
    """
    root = Path(source)
    if root.is_file() and root.suffix.lower() == ".csv":
        return _csv_items(root)
    if not root.is_dir():
        raise LeafprepError(str(root), "is neither a folder nor a CSV file")
    idx = _idx_items(root)
    if idx:
        return idx
    items = _folder_items(root)
    if not items:
        raise LeafprepError(str(root), "holds no class folders with files", "put each class's images in a folder named after it")
    return items


# -- work done in the worker processes ------------------------------------------------------------


def _to_uint8(image: np.ndarray) -> np.ndarray:
    array = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return array if array.ndim == 3 else array[:, :, None]


@contextmanager
def _recorded() -> Iterator[list[str]]:
    """The messages of the LeafprepWarnings given meanwhile (in the list yielded, once done); other warnings are ignored."""
    import warnings

    said: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", LeafprepWarning)
        try:
            yield said
        finally:
            said.extend(dict.fromkeys(w.message.message for w in caught if isinstance(w.message, LeafprepWarning)))


def _normalise(
    rgb: np.ndarray, options: BuildOptions, name: str = "<array>", full_shape: tuple[int, int] | None = None
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """One decoded picture as the build writes it (float32 in [0, 1]), what leafprep warned of it ("; "-joined),
    and a leaf's descriptors (float32; None for other kinds), measured on the same mask in the same pass.

    ``full_shape``: the photo's size before a reduced decode, so that sizes are in the photo's own pixels.
    """
    descriptors = None
    with _recorded() as said:
        if options.kind == "none":
            image = as_is(rgb, options.size, options.mode)
        else:
            from .normalization import normalize_steps

            steps = normalize_steps(rgb, options.kind, options.size, mode=options.mode)
            image = steps.result
            if options.describes:
                from .description import describe_normalised

                descriptors = describe_normalised(steps, rgb, full_shape, name).values
    return image, "; ".join(said), descriptors


def _first_pass(task: tuple[str, BuildOptions]) -> tuple[str, str, int | None, bytes | None, str]:
    """Read, hash, decode (once) and normalise one file: (sha256, why rejected, difference hash, picture bytes, warnings).

    The picture is the normalised image as uint8 bytes, or None when the file
    is rejected (the reason says why); the warnings are what leafprep warned
    of the file (a doubtful mask, a leaf cut by the border), "; "-joined.
    """
    path, options = task
    data, error = _read_input(path)
    if error:
        return "", error, None, None, ""
    return first_pass_data(data, options, path)


#: Why an empty input is rejected (the local and the Beam build say it alike).
_EMPTY = "the file is empty (0 bytes)"
#: Why an input listed by the build is rejected when it is no longer there.
VANISHED = "no such file: it vanished after the build listed it"


def _read_input(path: str) -> tuple[bytes, str]:
    """An input file's bytes, or why it cannot be read (a file gone since the build listed it says so)."""
    from .loading import _read_bytes

    try:
        data = _read_bytes(Path(path), path)
    except LeafprepError as exc:
        vanished = exc.reason == "no such file" and not os.path.lexists(path)
        return b"", VANISHED if vanished else exc.reason
    return data, "" if data else _EMPTY


def first_pass_data(data: bytes, options: BuildOptions, name: str = "<bytes>") -> tuple[str, str, int | None, bytes | None, str]:
    """:func:`_first_pass` on a file's bytes (the Beam build reads them through Beam's filesystems).

    The picture bytes are the normalised image (uint8), followed for leaves by
    their descriptors (float32, :func:`spilled_size`).
    """
    import cv2

    from .loading import DEFAULT_MAX_PIXELS, _load

    if not data:
        return "", _EMPTY, None, None, ""  # as the local reader says it
    sha = hashlib.sha256(data).hexdigest()
    dhash = None
    try:
        with _recorded() as said:  # a JPEG decoded past damage is a warning of its own
            loaded = _load(data, max_pixels=DEFAULT_MAX_PIXELS, min_side=options.decode_side)
        rgb = loaded.rgb
        dhash = difference_hash(_small_gray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))
        image, notes, descriptors = _normalise(rgb, options, name, loaded.full_shape)
        notes = "; ".join([*said, *([notes] if notes else [])])
    except LeafprepError as exc:
        return sha, exc.reason, dhash, None, ""
    except Exception as exc:  # a bug on one input must not stop the build
        return sha, f"internal error {type(exc).__name__}: {exc}", dhash, None, ""
    picture = _to_uint8(image).tobytes()
    if descriptors is not None:
        picture += np.asarray(descriptors, "<f4").tobytes()
    return sha, "", dhash, picture, notes


def _first_pass_every(task: tuple[str, BuildOptions]) -> tuple[str, str, list[tuple[int, bytes | None, str, tuple[int, int, int, int], str]]]:
    """:func:`_first_pass` for a photo of several leaves: (sha256, why rejected, one (dhash, picture bytes, warnings, box,
    why rejected) a leaf, in reading order).

    The photo is read, hashed and decoded once; each leaf is normalised and
    described on the same working image (as :func:`leafprep.normalize_all`
    and :func:`leafprep.describe_all` do). What was left out of the photo
    (rectangles, specks) is said in the first leaf's warnings.
    """

    import cv2

    from .description import leaf_example
    from .loading import DEFAULT_MAX_PIXELS
    from .normalization import _full_box
    from .segmentation import analyse_leaves
    from .segmentation.multiple import leaf_notes

    path, options = task
    data, error = _read_input(path)
    if error:
        return "", error, []
    sha = hashlib.sha256(data).hexdigest()
    try:
        with _recorded() as said:
            found = analyse_leaves(data, max_pixels=DEFAULT_MAX_PIXELS, warn=False)
    except LeafprepError as exc:
        return sha, exc.reason, []
    except Exception as exc:  # a bug on one input must not stop the build
        return sha, f"internal error {type(exc).__name__}: {exc}", []
    photo_notes = [*said, *leaf_notes([], found.left_out)]
    leaves: list[tuple[int, bytes | None, str, tuple[int, int, int, int], str]] = []
    for index, leaf in enumerate(found.leaves):
        x, y, w, h = leaf.box
        box = _full_box(leaf.box, found.scale)
        notes = "; ".join((photo_notes if index == 0 else []) + leaf.notes)
        try:
            image, values = leaf_example(found, index, options.size, options.mode or "gray", descriptors=options.describes)
        except LeafprepError as exc:
            leaves.append((0, None, notes, box, exc.reason))
            continue
        picture = _to_uint8(image).tobytes() + (b"" if values is None else np.asarray(values, "<f4").tobytes())
        gray = cv2.cvtColor(np.ascontiguousarray(found.photo[y : y + h, x : x + w]), cv2.COLOR_RGB2GRAY)
        leaves.append((difference_hash(np.where(leaf.mask, gray, 255).astype(np.uint8)), picture, notes, box, ""))
    return sha, "", leaves


def _first_pass_leaves(
    items: list[Item], options: BuildOptions, workers: _Workers, spill: Path, progress: Callable[..., None] | None, meanwhile: Callable[[], object]
) -> tuple[list[Item], dict[int, int]]:
    """:func:`_first_pass_all` for photos of several leaves: every photo becomes one item a leaf.

    A leaf's ``source`` is the photo's and its number (``oak/bed.jpg#03``), its
    SHA-256 that of the photo's bytes and its number (so that a copy of the
    photo is a duplicate, leaf by leaf), and its group the photo (its leaves
    share a split). A photo without a leaf stays one item, rejected.
    """
    files = [(index, str(item.path)) for index, item in enumerate(items) if item.path is not None]
    expanded: list[Item] = []
    perceptual: dict[int, int] = {}
    with open(spill, "wb") as handle:
        results = workers.map(_first_pass_every, [(path, options) for _, path in files])
        meanwhile()
        for done, ((index, _), (sha, error, leaves)) in enumerate(zip(files, results, strict=True), 1):
            photo = items[index]
            photo.sha256 = sha
            if error:
                photo.status, photo.reason = "rejected", error
                expanded.append(photo)
            for number, (dhash, picture, notes, box, reason) in enumerate(leaves):
                leaf = Item(f"{photo.source}#{number:02d}", photo.label, photo.path, split=photo.split, group=photo.group or f"photo:{sha}")
                leaf.sha256 = hashlib.sha256(f"{sha}#{number}".encode()).hexdigest()
                leaf.warnings, leaf.photo, leaf.number, leaf.box = notes, photo.source, number, box
                if reason:
                    leaf.status, leaf.reason = "rejected", reason
                else:
                    perceptual[len(expanded)] = dhash
                    leaf.spilled = handle.tell()
                    handle.write(picture or b"")
                expanded.append(leaf)
            if progress and (done % 16 == 0 or done == len(files)):
                progress(done, len(files), "normalising")
    return expanded, perceptual


def spilled_size(options: BuildOptions) -> tuple[int, int]:
    """Bytes of a normalised picture in a spill file, and of the descriptors after it (0 for kinds without)."""
    from .description import DESCRIPTOR_NAMES

    return options.size * options.size * options.channels, 4 * len(DESCRIPTOR_NAMES) if options.describes else 0


def unspill(payload: bytes, options: BuildOptions) -> Normalised:
    """A spilled picture's bytes back as a :class:`Normalised` (image and descriptors)."""
    image_bytes, _ = spilled_size(options)
    image = np.frombuffer(payload[:image_bytes], np.uint8).reshape(options.size, options.size, options.channels)
    descriptors = np.frombuffer(payload[image_bytes:], "<f4").astype(np.float32) if options.describes else None
    return Normalised(image, descriptors)


def _small_gray(gray: np.ndarray, side: int = 96) -> np.ndarray:
    """Shrink by a whole factor (OpenCV's fast area path) while the short side stays at least ``side``."""
    import cv2

    factor = min(gray.shape) // side
    if factor < 2:
        return gray
    height, width = (gray.shape[0] // factor) * factor, (gray.shape[1] // factor) * factor
    return cv2.resize(gray[:height, :width], (width // factor, height // factor), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class _Spilled:
    """A normalised picture in the build's spill file."""

    path: str
    offset: int


@dataclass(frozen=True)
class Normalised:
    """A normalised picture already in memory (read back from a spill file or the Beam build's spill records)."""

    image: np.ndarray  # (size, size, channels) uint8
    descriptors: np.ndarray | None = None  # a leaf's, float32


_SPILL_FILES: dict[str, Any] = {}


def _read_spilled(spilled: _Spilled, options: BuildOptions) -> Normalised:
    handle = _SPILL_FILES.get(spilled.path)
    if handle is None:
        handle = _SPILL_FILES[spilled.path] = open(spilled.path, "rb")  # kept open for the build
    handle.seek(spilled.offset)
    return unspill(handle.read(sum(spilled_size(options))), options)


def _process(task: tuple[Any, BuildOptions, bool, str]) -> tuple[np.ndarray | None, str, list[np.ndarray], np.ndarray | None]:
    """The picture to write, its augmented copies and a leaf's descriptors: (image uint8 HxWxC or None, why rejected, copies, descriptors).

    Augmented copies keep the descriptors of their original (the leaf is the same leaf).
    """
    source, options, train, key = task
    augmenting = train and options.augment > 0
    descriptors = None
    if isinstance(source, (_Spilled, Normalised)):
        normalised = source if isinstance(source, Normalised) else _read_spilled(source, options)
        image8, descriptors = normalised.image, normalised.descriptors
        if not augmenting:
            return image8, "", [], descriptors
        image = image8[:, :, 0] if options.channels == 1 else image8
        image = image.astype(np.float32) / 255.0
    else:  # the pixels of an IDX file
        if options.kind == "none" and source.shape == (options.size,) * 2 and options.mode != "rgb" and not augmenting:
            return source[:, :, None], "", [], None  # at the right size already: nothing to do
        try:
            image, _, descriptors = _normalise(source, options)
        except LeafprepError as exc:
            return None, exc.reason, [], None
        except Exception as exc:  # a bug on one input must not stop the build
            return None, f"internal error {type(exc).__name__}: {exc}", [], None
    copies = _augment(image, options, int(key[:8], 16) ^ options.seed) if augmenting else []
    return _to_uint8(image), "", [_to_uint8(copy) for copy in copies], descriptors


_PIPELINES: dict[tuple[str, int, int, bool], Any] = {}


def _augment(image: np.ndarray, options: BuildOptions, seed: int) -> list[np.ndarray]:
    """``options.augment`` copies of one normalised image (float in [0, 1]), seeded by the example."""
    from .augmentation import augment, resolve

    key = (options.augmentation, options.size, options.channels, options.mode != "silhouette")
    pipeline = _PIPELINES.get(key)
    if pipeline is None:  # once a process: building a pipeline costs more than using it
        pipeline = _PIPELINES[key] = resolve(key[0], size=key[1], channels=key[2], gray=key[3])
    return list(augment(image, pipeline, n=options.augment, seed=seed))


# -- the build ------------------------------------------------------------------------------------


def _previous_splits(out: Path) -> dict[str, str]:
    """Splits a previous build in ``out`` gave (by SHA-256), so that a rebuild keeps them."""
    manifest = out / "manifest.csv"
    if not (out / _MARKER).exists() or not manifest.exists():
        return {}
    try:
        with open(manifest, newline="", encoding="utf-8") as handle:
            return {row["sha256"]: row["split"] for row in csv.DictReader(handle) if row.get("sha256") and row.get("split") in SPLITS}
    except (OSError, csv.Error, KeyError):
        return {}


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        ours = (out / _MARKER).exists()
        if not ours and not overwrite:
            raise LeafprepError(str(out), "is not empty and is not a leafprep dataset", "choose another --out, or pass --overwrite")
        for child in out.iterdir():
            if ours or overwrite:
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("leafprep dataset folder: 'leafprep build' may replace its contents\n")


def difference_hash(gray: np.ndarray, side: int = 16) -> int:
    """Difference hash (dHash) of a grey image: is each pixel brighter than its left neighbour, at ``side+1`` x ``side``.

    The picture is first cropped to what differs from its median grey by more
    than 16 levels. ``side * side`` bits (256 by default). Near-identical pictures
    (re-encoded, resized, slightly re-lit) get hashes a few bits apart; on the
    Swedish scans, different leaves of one species stay more than 16 of 256
    bits apart, where the common 64-bit hash puts hundreds of pairs within 3.
    """
    import cv2

    # Hash what stands out from the background, not the empty page around it.
    gray = gray if gray.dtype == np.uint8 else np.clip(gray, 0, 255).astype(np.uint8)
    counts = np.cumsum(np.bincount(gray.reshape(-1), minlength=256))
    median = int(np.searchsorted(counts, counts[-1] / 2))
    deviation = np.abs(gray.astype(np.int16) - median) > 16
    rows, cols = np.flatnonzero(deviation.any(axis=1)), np.flatnonzero(deviation.any(axis=0))
    if rows.size > 2 and cols.size > 2:
        gray = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    small = cv2.resize(gray, (side + 1, side), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _first_pass_all(
    items: list[Item], options: BuildOptions, workers: _Workers, spill: Path, progress: Callable[..., None] | None, meanwhile: Callable[[], object]
) -> dict[int, int]:
    """Hash, decode and normalise every file once, spilling the pictures to ``spill``; difference hashes by item index.

    IDX examples are only hashed here (their pixels are normalised while writing).
    ``meanwhile`` is called once the workers have their tasks (the build imports
    TensorFlow for writing then, rather than after them).
    """
    for item in items:
        if item.pixels is not None:
            item.sha256 = hashlib.sha256(np.ascontiguousarray(item.pixels).tobytes()).hexdigest()
    files = [(index, str(item.path)) for index, item in enumerate(items) if item.pixels is None and item.path is not None]
    perceptual: dict[int, int] = {}
    with open(spill, "wb") as handle:
        results = workers.map(_first_pass, [(path, options) for _, path in files])
        meanwhile()
        for done, ((index, _), (sha, error, dhash, picture, notes)) in enumerate(zip(files, results, strict=True), 1):
            item = items[index]
            item.sha256, item.warnings = sha, notes
            if error:
                item.status, item.reason = "rejected", error
            if dhash is not None:
                perceptual[index] = dhash
            if picture is not None:
                item.spilled = handle.tell()
                handle.write(picture)
            if progress and (done % 64 == 0 or done == len(files)):
                progress(done, len(files), "normalising")
    return perceptual


def near_duplicates(hashes: dict[int, int], max_bits: int = 15, max_bucket: int = 200) -> list[tuple[int, int]]:
    """Pairs of indices whose 256-bit difference hashes differ in at most ``max_bits`` bits.

    Sixteen 16-bit bands: two hashes within 15 bits agree on at least one
    band, so only hashes sharing a band are compared (buckets larger than
    ``max_bucket``, such as blank pages, are skipped).
    """
    pairs: set[tuple[int, int]] = set()
    for band in range(16):
        buckets: dict[int, list[int]] = {}
        for index, value in hashes.items():
            buckets.setdefault((value >> (16 * band)) & 0xFFFF, []).append(index)
        for members in buckets.values():
            if len(members) > max_bucket:
                continue
            for a_pos, a in enumerate(members):
                for b in members[a_pos + 1 :]:
                    if (hashes[a] ^ hashes[b]).bit_count() <= max_bits:
                        pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


def _groups_of(items: list[Item], pairs: list[tuple[int, int]]) -> dict[int, str]:
    """A group key for every item in a near-duplicate cluster: the smallest SHA-256 in it."""
    parent = {i: i for pair in pairs for i in pair}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(a)] = find(b)
    members: dict[int, list[int]] = {}
    for i in parent:
        members.setdefault(find(i), []).append(i)
    return {i: min(items[j].sha256 for j in group) for group in members.values() for i in group}


def build(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: BuildOptions | None = None,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> BuildReport:
    """Build a sharded TFRecord dataset from photos.

    Parameters
    ----------
    source : path
        See :func:`find_inputs`.
    out : path
        Output folder: created, or a previous leafprep dataset (replaced); any
        other non-empty folder is refused unless ``overwrite``.
    options : BuildOptions, optional
    workers : int, optional
        Worker processes (default: the machine's cores; 0 or 1: none).
    overwrite : bool, optional
    progress : callable, optional
        Called as ``progress(done, total, stage)`` every 64 inputs and at the
        end of each stage: ``"normalising"`` (reading, hashing, decoding and
        normalising every file, in worker processes) and ``"writing"``.

    Returns
    -------
    report : BuildReport
        Every input with its status (written, rejected with the reason, or
        duplicate), split and shard; ``report.info`` is ``dataset_info.json``.
    """
    options = _checked(options or BuildOptions())
    if options.every and options.kind != "leaf":
        raise ParameterError("every", f"every leaf of a photo (--all) needs kind='leaf', got kind={options.kind!r}")
    out = Path(out)
    items = find_inputs(source)
    previous = _previous_splits(out)
    _prepare_output(out, overwrite)
    if all(item.pixels is not None for item in items) and options.kind == "none":
        workers = 0  # IDX arrays need no decoding: worker processes would only add copying
    pool = _Workers(workers)
    spill = out / ".tmp-normalised"
    try:
        return _build(source, out, options, items, pool, progress, previous, spill)
    finally:
        pool.close()
        handle = _SPILL_FILES.pop(str(spill), None)
        if handle is not None:
            handle.close()
        spill.unlink(missing_ok=True)


def _checked(options: BuildOptions) -> BuildOptions:
    """``options``, once its kind and augmentation are known to be right (the local and the Beam build check them alike)."""
    if options.kind not in ("digit", "leaf", "auto", "none"):
        raise ParameterError("kind", f"kind must be one of {{'digit', 'leaf', 'auto', 'none'}}, got {options.kind!r}")
    if options.augment:
        from .augmentation import resolve

        resolve(options.augmentation, size=options.size, channels=options.channels)  # a wrong name or file: say so now
    return options


@dataclass
class _Plan:
    """What the first pass decided: labels, near-duplicates, splits, shards and the order of writing."""

    labels: list[str]
    label_index: dict[str, int]
    similar: list[tuple[int, int]]
    members: dict[str, list[Item]]  # split -> its examples, in the order they are written
    shard_counts: dict[str, int]
    ordered: list[tuple[str, int, Item]]  # (split, position in the split, item)
    dealt: bool = True  # some input had no split from the source: the build dealt them (BuildReport.dealt)

    def shard_of(self, split: str, position: int) -> int:
        return position * self.shard_counts[split] // len(self.members[split])


def _plan(items: list[Item], options: BuildOptions, previous: dict[str, str], perceptual: dict[int, int]) -> _Plan:
    """Near-duplicate groups, exact duplicates, splits, shard counts and the seeded order of writing.

    Everything here depends only on the items (labels, SHA-256, difference
    hashes), never on how the first pass ran: the local and the Beam build
    share it, so that both write the same examples into the same shards.
    """
    similar = near_duplicates(perceptual)
    clusters = _groups_of(items, similar)
    for index, key in clusters.items():
        if items[index].group is None:
            items[index].group = f"near-duplicates:{key}"
    labels = natural_labels({item.label for item in items})
    label_index = {name: i for i, name in enumerate(labels)}

    seen: dict[str, Item] = {}
    for item in items:
        if item.status:
            continue
        first = seen.get(item.sha256)
        if first is not None and item.pixels is None:
            item.status, item.reason = "duplicate", f"same bytes as {first.source}"
            continue
        seen.setdefault(item.sha256, item)
    dealt = any(item.split is None for item in items if item.status != "rejected")
    stratify([item for item in items if item.status != "rejected"], options.split, options.seed, previous)
    for item in items:
        if item.status == "duplicate":
            item.split = seen[item.sha256].split

    todo = [item for item in items if not item.status]
    per_example = options.size * options.size * options.channels + 160
    plans: dict[str, list[Item]] = {}
    order_key = options.seed.to_bytes(8, "big", signed=True)
    for split in SPLITS:
        members = [item for item in todo if item.split == split]
        members.sort(key=lambda item: hashlib.blake2b(f"{item.sha256}\x1f{item.source}".encode(), digest_size=8, key=order_key).digest())
        if members:
            plans[split] = members
    shard_counts = {}
    for split, members in plans.items():
        copies = 1 + (options.augment if split == "train" else 0)
        total_bytes = len(members) * copies * per_example
        shard_counts[split] = max(1, min(len(members), math.ceil(total_bytes / (options.shard_mb * 1e6))))

    ordered = [(split, k, item) for split, members in plans.items() for k, item in enumerate(members)]
    return _Plan(labels, label_index, similar, plans, shard_counts, ordered, dealt)


def _finish(
    write: Callable[[str, str], object],
    source: str | os.PathLike[str],
    options: BuildOptions,
    items: list[Item],
    plan: _Plan,
    counts: dict[str, Counter[str]],
    histogram: np.ndarray,
    shards: list[dict[str, Any]],
    descriptors: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """``dataset_info.json`` from what was written; write it, the labels and the manifest, and ``_COMPLETE`` last.

    ``descriptors``: those of the training split's leaves (not their augmented copies), in the order written.
    """
    labels, plans, similar = plan.labels, plan.members, plan.similar
    levels = np.arange(256) / 255.0
    pixels = int(histogram.sum())
    mean = float(histogram @ levels) / pixels if pixels else 0.0
    statuses = Counter(item.status for item in items)
    crossing = [[items[a].source, items[b].source, items[a].split, items[b].split] for a, b in similar if items[a].split != items[b].split]
    std = math.sqrt(max(float(histogram @ (levels * levels)) / pixels - mean * mean, 0.0)) if pixels else 0.0
    meta = {
        "leafprep_version": __version__,
        "source": str(source),
        "options": {
            "kind": options.kind,
            # What a photo must be normalised as to look like these images (MNIST's IDX files: digits).
            "photo_kind": options.kind if options.kind != "none" else ("digit" if all(item.pixels is not None for item in items) else "none"),
            "size": options.size,
            "mode": options.mode or "gray",
            "split": list(options.split),
            "seed": options.seed,
            "augment": options.augment,
            "augment_preset": options.augmentation if options.augment else None,
            "shard_mb": options.shard_mb,
            "descriptors": options.describes,
            "every": options.every,
            # The short side a leaf photo was decoded down to: predict and serve decode a photo the same way.
            "decode_min_side": options.decode_side if options.kind == "leaf" and not options.every else None,
        },
        "labels": labels,
        "image_shape": [options.size, options.size, options.channels],
        "splits": {split: {"examples": sum(counts[split].values()), "per_class": {name: counts[split][name] for name in labels}} for split in plans},
        "train_pixel_mean": mean,
        "train_pixel_std": std,
        "inputs": {
            "found": len(items),
            **{status: statuses[status] for status in ("written", "rejected", "duplicate")},
            "doubtful": sum(1 for item in items if item.status == "written" and DOUBT in item.warnings),
        },
        "near_duplicates": {"pairs": len(similar), "across_splits": crossing[:100], "across_splits_count": len(crossing)},
        "shards": shards,
    }
    if options.describes:
        from .description import DESCRIPTOR_NAMES
        from .settings import descriptor_scaling

        meta["descriptors"] = descriptor_scaling(np.stack(descriptors) if descriptors else np.zeros((0, len(DESCRIPTOR_NAMES))))
    write("labels.txt", "".join(f"{name}\n" for name in labels))
    table = io.StringIO(newline="")
    rows = csv.writer(table)
    every = ["photo", "leaf", "x", "y", "width", "height"] if options.every else []
    rows.writerow(["source", "label", "split", "status", "reason", "shard", "sha256", "warnings", *every])
    for item in items:
        row = [item.source, item.label, item.split or "", item.status, item.reason, item.shard, item.sha256, item.warnings]
        if options.every:
            row += [item.photo or item.source, *(("",) * 5 if item.box is None else (item.number, *item.box))]
        rows.writerow(row)
    write("manifest.csv", table.getvalue())
    write(INFO_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    write(COMPLETE_FILE, "complete\n")  # last: the dataset is whole
    return meta


def _build(
    source: str | os.PathLike[str],
    out: Path,
    options: BuildOptions,
    items: list[Item],
    workers: _Workers,
    progress: Callable[..., None] | None,
    previous: dict[str, str],
    spill: Path,
) -> BuildReport:
    from ._tf import tensorflow

    # TensorFlow (for writing) is imported while the workers, started before it, do the first pass.
    if options.every:
        items, perceptual = _first_pass_leaves(items, options, workers, spill, progress, tensorflow)
    else:
        perceptual = _first_pass_all(items, options, workers, spill, progress, tensorflow)
    plan = _plan(items, options, previous, perceptual)
    labels, label_index, plans, shard_counts, ordered = plan.labels, plan.label_index, plan.members, plan.shard_counts, plan.ordered
    tasks = [
        (item.pixels if item.pixels is not None else _Spilled(str(spill), item.spilled), options, split == "train", item.sha256)
        for split, _, item in ordered
    ]
    # Worker processes where there is work left (IDX pixels to normalise, copies to augment);
    # spilled pictures are only read back.
    busy = options.augment > 0 or any(item.pixels is not None for _, _, item in ordered)
    results = workers.map(_process, tasks) if busy else map(_process, tasks)
    tf = tensorflow()  # imported during the first pass, after the workers had started: no fork after TensorFlow

    shards: list[dict[str, Any]] = []
    counts: dict[str, Counter[str]] = {split: Counter() for split in plans}
    histogram = np.zeros(256, np.int64)  # of the train pixels, for their mean and std
    pending: list[np.ndarray] = []  # train pictures not yet counted in the histogram
    described: list[np.ndarray] = []  # the train leaves' descriptors
    names = {name: name.encode("utf-8") for name in labels}
    writer: Any = None
    current: tuple[str, int] | None = None

    def count_pending() -> None:
        nonlocal histogram
        if pending:
            histogram += np.bincount(np.concatenate([p.reshape(-1) for p in pending]), minlength=256)
            pending.clear()

    temp_path = final_path = Path()
    shard_examples = 0
    done = 0

    def close() -> None:
        nonlocal writer
        if writer is None or current is None:
            return
        writer.close()
        with open(temp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp_path, final_path)
        shards.append(
            {
                "file": final_path.name,
                "split": current[0],
                "examples": shard_examples,
                "bytes": final_path.stat().st_size,
                "sha256": file_sha256(final_path),
            }
        )
        writer = None

    try:
        for (split, k, item), (image, reason, copies, descriptors) in zip(ordered, results, strict=True):
            index = plan.shard_of(split, k)
            if current != (split, index):
                close()
                current = (split, index)
                final_path = out / shard_name(split, index, shard_counts[split])
                temp_path = out / f".tmp-{final_path.name}"
                writer = tf.io.TFRecordWriter(str(temp_path))
                shard_examples = 0
            if image is None:
                item.status, item.reason = "rejected", reason
            else:
                item.status, item.shard = "written", final_path.name
                source_bytes, sha_bytes = item.source.encode("utf-8"), item.sha256.encode("ascii")
                if split == "train" and descriptors is not None:
                    described.append(descriptors)
                for picture in (image, *copies):
                    writer.write(serialize_example(picture, label_index[item.label], names[item.label], source_bytes, sha_bytes, descriptors))
                    shard_examples += 1
                    counts[split][item.label] += 1
                    if split == "train":
                        pending.append(picture)
                if len(pending) >= 4096:
                    count_pending()
            done += 1
            if progress and (done % 64 == 0 or done == len(ordered)):
                progress(done, len(ordered), "writing")
    except BaseException:
        # Interrupted, out of space: leave no half-written shard behind (the
        # folder has no _COMPLETE; running the build again rebuilds it).
        if writer is not None:
            writer.close()
            temp_path.unlink(missing_ok=True)
        raise
    close()
    count_pending()

    meta = _finish(
        lambda name, text: (out / name).write_text(text, encoding="utf-8"), source, options, items, plan, counts, histogram, shards, described
    )
    return BuildReport(out, items, meta, plan.dealt)


class _Workers:
    """A pool of worker processes (or none), mapping functions in order, streamed."""

    def __init__(self, workers: int | None) -> None:
        self.count = (os.cpu_count() or 1) if workers is None else workers
        self.pool: Any = None
        if self.count > 1:
            # Forked workers inherit the imported modules and start at once. The build
            # starts them before it imports TensorFlow; the workers never use it.
            context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            self.pool = context.Pool(self.count, initializer=_ignore_interrupts)

    def map(self, function: Callable[[Any], Any], tasks: list[Any]) -> Iterator[Any]:
        if self.pool is None or len(tasks) < 2:
            return map(function, tasks)
        # Small chunks: the last ones keep every worker busy to the end.
        chunk = max(1, min(16, len(tasks) // (self.count * 32)))
        return self.pool.imap(function, tasks, chunksize=chunk)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the main process, which stops them: a worker that
    died of it could hold the task queue's lock and hang the pool."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
