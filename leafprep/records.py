"""TFRecord datasets: the Example schema, shard names, writing, reading and checking.

Schema of every ``tf.train.Example`` (all images are stored raw, so that a whole
batch is decoded at once with ``tf.io.decode_raw``):

===================  ======  ==================================================
feature              type    meaning
===================  ======  ==================================================
``image/raw``        bytes   uint8 pixels, row-major, ``height*width*channels``
``image/height``     int64   rows
``image/width``      int64   columns
``image/channels``   int64   1 (grey, silhouette) or 3 (rgb)
``label``            int64   index into ``labels.txt`` (natural sort order)
``label/name``       bytes   the class name, UTF-8
``source``           bytes   the input's path relative to the input root, UTF-8 (see ``build.file_name_text``)
``source/sha256``    bytes   hex SHA-256 of the source file's bytes
``descriptors``      float   leaves only: the leaf's descriptors, in the order of
                             ``dataset_info.json``'s ``descriptors.names``
                             (:mod:`leafprep.description`; NaN where unknown)
===================  ======  ==================================================

Shards are named ``{split}-{index:05d}-of-{count:05d}.tfrecord`` (as
tensorflow-datasets does); :func:`parse_shard_name` reads such a name back.
TensorFlow is imported only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LeafprepError

__all__ = [
    "INFO_FILE",
    "COMPLETE_FILE",
    "DatasetError",
    "serialize_example",
    "shard_name",
    "parse_shard_name",
    "info",
    "load",
    "verify",
    "iter_records",
    "scan_records",
    "Damage",
    "reading",
    "file_sha256",
]

INFO_FILE = "dataset_info.json"
#: Written last: a folder without it is not a finished dataset.
COMPLETE_FILE = "_COMPLETE"
_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")


class DatasetError(LeafprepError):
    """A dataset folder is missing, unfinished or damaged."""


def shard_name(split: str, index: int, count: int) -> str:
    """``train-00003-of-00008.tfrecord``.

    Examples
    --------
    >>> shard_name("train", 3, 8)
    'train-00003-of-00008.tfrecord'
    """
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """``(split, index, count)`` of a shard file name, or None.

    Examples
    --------
    >>> parse_shard_name("val-00001-of-00004.tfrecord")
    ('val', 1, 4)
    """
    match = _SHARD.match(name)
    if not match:
        return None
    return match["split"], int(match["index"]), int(match["count"])


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_TEMPLATES: dict[bool, Any] = {}


def serialize_example(image: np.ndarray, label: int, label_name: bytes, source: bytes, sha256: bytes, descriptors: np.ndarray | None = None) -> bytes:
    """Serialise one image and its labels (and a leaf's descriptors) as a ``tf.train.Example`` (see the schema above).

    One Example is built once and its values replaced for every record, which
    is several times faster than building a new message each time; the bytes
    are the same. Strings come encoded: the builder encodes each only once.
    """
    described = descriptors is not None
    template = _TEMPLATES.get(described)
    if template is None:
        from ._tf import tensorflow

        tf = tensorflow()

        template = tf.train.Example()
        for key in ("image/raw", "label/name", "source", "source/sha256"):
            template.features.feature[key].bytes_list.value.append(b"")
        for key in ("image/height", "image/width", "image/channels", "label"):
            template.features.feature[key].int64_list.value.append(0)
        if described:
            template.features.feature["descriptors"].float_list.value.append(0.0)
        _TEMPLATES[described] = template
    image = np.ascontiguousarray(image, dtype=np.uint8)
    feature = template.features.feature
    feature["image/raw"].bytes_list.value[0] = image.tobytes()
    feature["image/height"].int64_list.value[0] = image.shape[0]
    feature["image/width"].int64_list.value[0] = image.shape[1]
    feature["image/channels"].int64_list.value[0] = 1 if image.ndim == 2 else image.shape[2]
    feature["label"].int64_list.value[0] = label
    feature["label/name"].bytes_list.value[0] = label_name
    feature["source"].bytes_list.value[0] = source
    feature["source/sha256"].bytes_list.value[0] = sha256
    if described:
        values = feature["descriptors"].float_list.value
        del values[:]
        values.extend(np.asarray(descriptors, np.float32).tolist())
    return bytes(template.SerializeToString(deterministic=True))


def info(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``dataset_info.json`` of a finished dataset.

    Raises
    ------
    DatasetError
        The folder is not a dataset, or its build did not finish.
    """
    root = Path(folder)
    path = root / INFO_FILE
    if not path.exists():
        raise DatasetError(str(root), "is not a leafprep dataset (no dataset_info.json)", "build one with 'leafprep build'")
    if not (root / COMPLETE_FILE).exists():
        raise DatasetError(str(root), "the build did not finish", "run the same 'leafprep build' again to finish it")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _shards(folder: Path, split: str, meta: dict[str, Any]) -> list[Path]:
    names = [shard["file"] for shard in meta["shards"] if shard["split"] == split]
    if not names:
        raise DatasetError(str(folder), f"has no split {split!r}; it has {sorted(meta['splits'])}")
    return [folder / name for name in names]


def _feature_spec(descriptors: int = 0) -> dict[str, Any]:
    from ._tf import tensorflow

    tf = tensorflow()

    spec = {
        "image/raw": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }
    if descriptors:
        spec["descriptors"] = tf.io.FixedLenFeature([descriptors], tf.float32)
    return spec


def load(
    folder: str | os.PathLike[str],
    split: str = "train",
    *,
    batch_size: int = 128,
    shuffle: bool | int = False,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    augment: Any = None,
    skip_damaged: bool = False,
    descriptors: bool = False,
    images: bool = True,
    hold_out: float = 0.0,
    held: bool = False,
) -> Any:
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches from a dataset folder.

    Parameters
    ----------
    folder : path
        A folder written by ``leafprep build``.
    split : str, optional
        ``"train"``, ``"val"`` or ``"test"``.
    batch_size : int, optional
    shuffle : bool or int, optional
        Shuffle examples with a buffer of this size (``True``: 10,000); shards
        are interleaved in a seeded order.
    seed : int, optional
    repeat : bool, optional
    drop_remainder : bool, optional
    augment : str, path or albumentations Compose, optional
        Augment every batch online: a preset (``"digits"``, ``"leaves"``; run
        as Keras preprocessing layers in the graph), or a YAML/JSON
        albumentations pipeline or a ``Compose`` (run in parallel through
        albumentations). Deterministic for a seed; see
        :mod:`leafprep.augmentation`.
    skip_damaged : bool, optional
        Check every record of the split first and leave damaged ones out, with
        a :class:`~leafprep.LeafprepWarning` naming the file and the record.
        Without it a damaged record stops the reading with
        ``tf.errors.DataLossError``; :func:`reading` turns that into a
        :class:`DatasetError` that names the file and the record.
    descriptors : bool, optional
        Also give each leaf's descriptors (a dataset built with
        ``kind="leaf"``): the inputs are then a dict, ``{"image": images,
        "descriptors": (B, D) float32}``, as the two-input models of
        :mod:`trainers.models` take them.
    images : bool, optional
        With ``descriptors``, ``False`` gives ``{"descriptors": ...}`` alone.
    hold_out : float, optional
        Split the split in two by a hash of each example's source SHA-256:
        about this share of the sources (all copies of a source together) is
        held out. ``held`` chooses the part: ``False`` the rest (to train
        on), ``True`` the held-out part (to validate on, where the dataset
        has no ``val`` split).
    held : bool, optional

    Returns
    -------
    dataset : tf.data.Dataset
        Batches of float32 images ``(B, H, W, C)`` in [0, 1] (or the dict
        above) and int64 labels ``(B,)``, parsed a whole batch at a time.
    """
    from ._tf import tensorflow

    tf = tensorflow()

    root = Path(folder)
    meta = info(root)
    height, width, channels = meta["image_shape"]
    files = [str(path) for path in _shards(root, split, meta)]
    if skip_damaged:
        files = [_without_damage(path) for path in files]
    if shuffle:
        # Shards in a seeded order, read a few at a time, then an example buffer.
        # (A parallel interleave of such small records is slower on few cores.)
        dataset = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)), block_length=16)
        dataset = dataset.shuffle(10_000 if shuffle is True else int(shuffle), seed=seed, reshuffle_each_iteration=True)
    else:
        dataset = tf.data.TFRecordDataset(files)
    if hold_out:
        share = int(round(hold_out * 1000))
        sha_spec = {"source/sha256": tf.io.FixedLenFeature([], tf.string)}

        def keep(record: Any) -> Any:
            bucket = tf.strings.to_hash_bucket_fast(tf.io.parse_single_example(record, sha_spec)["source/sha256"], 1000)
            return bucket < share if held else bucket >= share

        dataset = dataset.filter(keep)
    records = dataset
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if not repeat and not skip_damaged:
        # The size is known from dataset_info.json (a part held out: counted once, reading only each
        # record's hash): Keras then shows totals and does not warn that the input "ran out of data".
        examples = int(meta["splits"][split]["examples"]) if not hold_out else int(records.reduce(0, lambda n, _: n + 1))
        batches = examples // batch_size if drop_remainder else -(-examples // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    count = 0
    if descriptors:
        if not meta.get("descriptors"):
            raise DatasetError(str(root), "holds no leaf descriptors", "build it with --kind leaf")
        count = len(meta["descriptors"]["names"])
    spec = _feature_spec(count)

    def parse(serialized: Any) -> tuple[Any, Any]:
        parsed = tf.io.parse_example(serialized, spec)
        pixels = tf.io.decode_raw(parsed["image/raw"], tf.uint8)
        images = tf.cast(tf.reshape(pixels, [-1, height, width, channels]), tf.float32) / 255.0
        if count:
            return {"image": images, "descriptors": parsed["descriptors"]}, parsed["label"]
        return images, parsed["label"]

    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        from .augmentation import tf_augmenter

        gray = meta.get("options", {}).get("mode") != "silhouette"
        change, parallel = tf_augmenter(augment, size=max(height, width), channels=channels, gray=gray, seed=seed)

        def augmented(index: Any, batch: Any) -> Any:
            inputs, labels = batch
            if count:
                return {**inputs, "image": change(index, inputs["image"])}, labels
            return change(index, inputs), labels

        dataset = dataset.enumerate().map(augmented, num_parallel_calls=tf.data.AUTOTUNE if parallel else None)
    if count and not images:
        dataset = dataset.map(lambda inputs, labels: ({"descriptors": inputs["descriptors"]}, labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class Damage:
    """A stretch of a TFRecord file that holds no readable record.

    Attributes
    ----------
    file : str
    record : int
        How many good records come before it in the file.
    offset : int
        Byte offset where the damage starts.
    resumed : int or None
        Byte offset of the next good record, or None when nothing after the
        damage could be read (a truncated file).
    detail : str
        TensorFlow's word for it (``corrupted record``, ``truncated record``).
    """

    file: str
    record: int
    offset: int
    resumed: int | None
    detail: str

    @property
    def reason(self) -> str:
        after = "the rest of the file is unreadable" if self.resumed is None else f"reading resumes at byte {self.resumed}"
        return f"record {self.record} (byte offset {self.offset}) is damaged ({self.detail}); {after}"

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


def scan_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes] | Damage]:
    """Every record of a TFRecord file as ``(offset, payload)``, and a :class:`Damage` for each damaged stretch.

    Both CRCs of every record are checked (by TensorFlow's record reader).
    After a damaged record the scan goes on at the next record that reads
    whole: where the damaged record's length field still points (a flipped
    byte in the payload), one typical record further on, or, failing both,
    the first later offset at which a record reads with both CRCs right.
    """
    from ._tf import tensorflow

    tf = tensorflow()
    from tensorflow.python.lib.io import _pywrap_record_io  # the reader behind tf.compat.v1.io.tf_record_iterator

    name = str(path)
    size = os.path.getsize(path)
    reader = _pywrap_record_io.RandomRecordReader(name)
    offset, number, typical = 0, 0, 0
    try:
        while offset < size:
            try:
                payload, following = reader.read(offset)
            except tf.errors.DataLossError as exc:
                detail = re.sub(r" at \d+.*", "", str(exc).splitlines()[0]).strip() or "corrupted record"
                resumed = _resync(reader, name, offset, typical, size, tf)
                yield Damage(name, number, offset, resumed, detail)
                if resumed is None:
                    return
                offset, number = resumed, number + 1
                continue
            except IndexError:  # past the end
                return
            yield offset, bytes(payload)
            typical = len(payload)
            offset = following
            number += 1
    finally:
        reader.close()


def _resync(reader: Any, name: str, offset: int, typical: int, size: int, tf: Any) -> int | None:
    """The offset of the first whole record after a damaged one at ``offset``, or None."""

    def reads(at: int) -> bool:
        try:
            reader.read(at)
            return True
        except (tf.errors.DataLossError, IndexError):
            return False

    with open(name, "rb") as handle:
        handle.seek(offset)
        data = np.frombuffer(handle.read(), np.uint8)
    likely = []
    if len(data) >= 8:
        likely.append(offset + 16 + int(data[:8].view("<u8")[0]))  # the length field survived
    if typical:
        likely.append(offset + 16 + typical)  # records of one dataset have one size
    for at in likely:
        if offset < at < size and reads(at):
            return at
    # Then every later offset whose length field fits in the file, checked by reading.
    for chunk in range(1, len(data) - 15, 1 << 20):
        starts = np.arange(chunk, min(chunk + (1 << 20), len(data) - 15))
        lengths = np.zeros(len(starts), np.uint64)
        for k in range(8):
            lengths |= data[starts + k].astype(np.uint64) << np.uint64(8 * k)
        fits = lengths <= (len(data) - 16 - starts).astype(np.uint64)
        for shift in starts[fits]:
            if reads(offset + int(shift)):
                return offset + int(shift)
    return None


def _without_damage(path: str) -> str:
    """``path``, or where it has damaged records, a temporary copy of its good records (removed at exit)."""
    import atexit
    import shutil
    import tempfile
    import warnings

    from ._tf import tensorflow
    from .errors import LeafprepWarning

    found = list(scan_records(path))
    damage = [harm for harm in found if isinstance(harm, Damage)]
    if not damage:
        return path
    for harm in damage:
        warnings.warn(LeafprepWarning(harm.file, harm.reason + "; skipped"), stacklevel=3)
    folder = tempfile.mkdtemp(prefix="leafprep-repaired-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = os.path.join(folder, os.path.basename(path))
    with tensorflow().io.TFRecordWriter(copy) as writer:
        for item in found:
            if not isinstance(item, Damage):
                writer.write(item[1])
    return copy


@contextlib.contextmanager
def reading(folder: str | os.PathLike[str], splits: tuple[str, ...] = ("train", "val", "test")) -> Iterator[None]:
    """Turn a ``tf.errors.DataLossError`` raised while reading a dataset into a :class:`DatasetError`.

    TensorFlow's own message gives a byte offset but no file; this one names
    the shard, the record and its offset (from a scan of the split's shards).
    Use it around the loop that reads, e.g. ``with reading(folder):
    model.fit(load(folder, "train"))``.
    """
    from ._tf import tensorflow

    tf = tensorflow()
    try:
        yield
    except tf.errors.DataLossError:
        root = Path(folder)
        meta = info(root)
        for split in splits:
            if split not in meta["splits"]:
                continue
            for path in _shards(root, split, meta):
                for item in scan_records(path):
                    if isinstance(item, Damage):
                        reason = item.reason
                        hint = f"'leafprep verify {root}' lists all damage; rebuild the dataset, or skip damaged records (--skip-damaged)"
                        raise DatasetError(item.file, reason, hint) from None
        raise


def iter_records(path: str | os.PathLike[str], *, skip_damaged: bool = False) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` of every record of a TFRecord file; both CRCs are checked.

    Parameters
    ----------
    path : path
    skip_damaged : bool, optional
        Skip damaged records (with a :class:`~leafprep.LeafprepWarning` naming
        the file, the record and where reading resumed) instead of raising.

    Raises
    ------
    DatasetError
        Naming the file, the record's number and its byte offset, at the first
        damaged record (unless ``skip_damaged``).
    """
    import warnings

    from .errors import LeafprepWarning

    for found in scan_records(path):
        if isinstance(found, Damage):
            if not skip_damaged:
                raise DatasetError(found.file, found.reason, "rebuild the dataset, or skip damaged records (--skip-damaged)")
            warnings.warn(LeafprepWarning(found.file, found.reason + "; skipped"), stacklevel=2)
            continue
        yield found


def verify(folder: str | os.PathLike[str]) -> list[str]:
    """Check every record of a dataset against its ``dataset_info.json``.

    Reads every shard, checks both CRCs of every record, the shard's SHA-256
    and its record count.

    Returns
    -------
    problems : list of str
        Empty when the dataset is sound; each problem names the file (and the
        record's byte offset).
    """
    root = Path(folder)
    try:
        meta = info(root)
    except DatasetError as exc:
        return [str(exc)]
    problems = []
    for shard in meta["shards"]:
        path = root / shard["file"]
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        if file_sha256(path) != shard["sha256"]:
            problems.append(f"{path}: SHA-256 differs from dataset_info.json")
        count, damage = 0, []
        for item in scan_records(path):
            if isinstance(item, Damage):
                damage.append(str(item))
            else:
                count += 1
        problems += damage
        if count != shard["examples"] and not damage:
            problems.append(f"{path}: {count} records, dataset_info.json says {shard['examples']}")
    return problems
