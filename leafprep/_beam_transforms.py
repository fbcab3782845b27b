"""The work the Beam build gives Beam's workers (imports Apache Beam: loaded only by :mod:`leafprep.beam`).

Each pipeline is one linear chain, and everything the launching process reads
back is written by these functions to files of their own under the build's
working folder, under temporary names renamed once whole. That is what every
runner executes the same way: Dataflow, Flink, Spark, the DirectRunner, and
Beam's DaskRunner, whose translation has no ``Read``, computes only the last
step of a graph and recomputes side inputs. Nothing here knows which runner
runs it.

A bundle a runner retries (its worker died) is done again: the first pass
then writes a second pair of files holding the same inputs, which the
launching process reads once (:func:`read_facts`); a shard is written again,
to the same name with the same bytes, and its writer drops an example met
twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from .beam import _join, _remote
from .build import VANISHED, BuildOptions, _process, first_pass_data, unspill
from .records import file_sha256, serialize_example, shard_name

#: A first-pass bundle's files in the working folder: ``<stem>.facts.jsonl`` names ``<stem>.pictures``.
FACTS, PICTURES = ".facts.jsonl", ".pictures"
#: The shard writers' facts (a JSON file a shard) and their temporary files, in the working folder.
SHARD_FACTS = "shards"
TEMPORARY = ".tmp-"  # what a file's name starts with until it is whole and renamed

#: One input of the first pass: (index, path or None, IDX pixels or None).
FirstTask = tuple[int, str | None, bytes | None]
#: One planned example: (index, pictures file, offset, length, kind, split, shard, position, label, label name, source, sha256).
ExampleTask = tuple[int, str, int, int, str, str, int, int, int, bytes, bytes, bytes]


def first_pass(task: FirstTask, options: BuildOptions) -> tuple[str, str, int | None, bytes | None, str, bytes | None]:
    """(sha256, reason, difference hash, normalised picture, warnings, IDX pixels) of one input."""
    from .build import _first_pass as local_first_pass

    _, path, pixels = task
    if pixels is not None:  # an IDX example: normalised while writing, as in the local build
        return hashlib.sha256(pixels).hexdigest(), "", None, None, "", pixels
    assert path is not None
    if not _remote(path):  # the local build's own reading (its messages for links, permissions...)
        sha, reason, dhash, picture, notes = local_first_pass((path, options))
        if reason == VANISHED:  # on a cluster, most likely a folder this worker does not see
            reason = f"no such file on the worker that read it ({socket.gethostname()}): it vanished, or the workers do not share its folder"
        return sha, reason, dhash, picture, notes, None
    try:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            data = handle.read()
    except Exception as exc:  # missing, unreadable: rejected, as locally
        return "", f"cannot be read: {exc}", None, None, "", None
    return (*first_pass_data(data, options, path), None)


class FirstPass(beam.DoFn):
    """Hash, decode once and normalise each input; a bundle's pictures and facts go to its own pair of files.

    The pictures file holds the normalised pictures (or IDX pixels) back to
    back; the facts file a JSON line an input: ``[index, sha256, reason,
    difference hash, warnings, descriptors, kind, offset, length]`` (kind
    ``"N"``: a normalised picture, ``"I"``: IDX pixels, ``""``: none). Both are
    written under temporary names and renamed when the bundle is done, the
    pictures first: a facts file is only ever seen whole, with its pictures.
    Nothing is emitted downstream.
    """

    def __init__(self, options: BuildOptions, work: str) -> None:
        self.options, self.work = options, work

    def start_bundle(self) -> None:
        self._stem = uuid.uuid4().hex
        self._pictures: Any = None
        self._offset = 0
        self._facts: list[str] = []

    def _temporary(self, suffix: str) -> str:
        return _join(self.work, f"{TEMPORARY}{self._stem}{suffix}")

    def process(self, task: FirstTask) -> Iterator[Any]:
        sha, reason, dhash, picture, notes, pixels = first_pass(task, self.options)
        descriptors = unspill(picture, self.options).descriptors if picture is not None and self.options.describes else None
        payload, kind = (picture, "N") if picture is not None else (pixels, "I") if pixels is not None else (b"", "")
        if payload:
            if self._pictures is None:
                self._pictures = FileSystems.create(self._temporary(PICTURES), compression_type="uncompressed")
            self._pictures.write(payload)
        # float32 values written as JSON doubles read back exactly; NaN as JSON's NaN.
        values = None if descriptors is None else descriptors.tolist()
        self._facts.append(json.dumps([task[0], sha, reason, dhash, notes, values, kind, self._offset, len(payload)]))
        self._offset += len(payload)
        return iter(())

    def finish_bundle(self) -> None:
        if not self._facts:
            return
        final = _join(self.work, self._stem)
        if self._pictures is not None:
            self._pictures.close()
            FileSystems.rename([self._temporary(PICTURES)], [final + PICTURES])
        _publish(final + FACTS, "".join(line + "\n" for line in self._facts), self._temporary(FACTS))
        self._facts = []


def read_facts(work: str) -> dict[int, tuple[list[Any], str]]:
    """Every input's facts from the first pass's files, by index, with the pictures file it points to.

    An input found in two files (a retried bundle) is taken once: both copies
    say the same, as the first pass is deterministic.
    """
    facts: dict[int, tuple[list[Any], str]] = {}
    for path, text in _texts(_join(work, "*" + FACTS)):
        for line in text.splitlines():
            if line.strip():
                fact = json.loads(line)
                facts.setdefault(int(fact[0]), (fact, path[: -len(FACTS)] + PICTURES))
    return facts


def _texts(pattern: str) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every file matching ``pattern`` on a Beam filesystem, in the order of their paths.

    Temporary files are passed over: Beam's ``*`` matches their leading dot, and
    a worker killed while writing one leaves it behind, empty or cut short.
    """
    matched = (m.path for result in FileSystems.match([pattern]) for m in result.metadata_list)
    for path in sorted(p for p in matched if not FileSystems.split(p)[1].startswith(TEMPORARY)):
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            yield path, handle.read().decode("utf-8")


def _publish(path: str, text: str, temporary: str) -> None:
    """Write ``text`` to ``path`` whole: to ``temporary`` first, then renamed (a reader never sees half of it)."""
    with FileSystems.create(temporary, compression_type="uncompressed") as handle:
        handle.write(text.encode("utf-8"))
    FileSystems.rename([temporary], [path])


class Examples(beam.DoFn):
    """A planned example -> ((split, shard), (position, index, reason, serialised examples, pixel histogram of train pictures)).

    The picture is read from the first pass's file at its offset; a training
    picture gets its augmented copies (the local build's :func:`leafprep.build._process`).
    """

    def __init__(self, options: BuildOptions, idx_shape: tuple[int, ...]) -> None:
        self.options, self.idx_shape = options, idx_shape

    def start_bundle(self) -> None:
        self._open: dict[str, Any] = {}

    def process(self, task: ExampleTask) -> Iterator[Any]:
        index, pictures, offset, length, kind, split, shard, position, label, name, source_bytes, sha = task
        handle = self._open.get(pictures)
        if handle is None:
            handle = self._open[pictures] = FileSystems.open(pictures, compression_type="uncompressed")
        handle.seek(offset)
        payload = handle.read(length)
        source: Any = unspill(payload, self.options) if kind == "N" else np.frombuffer(payload, np.uint8).reshape(self.idx_shape)
        image, reason, copies, descriptors = _process((source, self.options, split == "train", sha.decode("ascii")))
        if image is None:
            yield (split, shard), (position, index, reason, [], None)
            return
        pictures_out = (image, *copies)
        examples = [serialize_example(picture, label, name, source_bytes, sha, descriptors) for picture in pictures_out]
        histogram = np.bincount(np.concatenate([p.reshape(-1) for p in pictures_out]), minlength=256) if split == "train" else None
        yield (split, shard), (position, index, "", examples, histogram)

    def finish_bundle(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open = {}


def write_shard(
    keyed: tuple[tuple[str, int], Iterable[tuple[int, int, str, list[bytes], np.ndarray | None]]], out: str, work: str, counts: dict[str, int]
) -> Iterator[Any]:
    """Write one shard in the planned order, then its facts as ``<work>/shards/<shard>.json``; emits nothing.

    Both are written under temporary names in the working folder and renamed:
    a shard written twice (a retried bundle) is replaced by the same bytes. An
    example met twice is written once.
    """
    (split, shard), members = keyed
    name = shard_name(split, shard, counts[split])
    facts_folder = _join(work, SHARD_FACTS)
    temporary = _join(facts_folder, f"{TEMPORARY}{uuid.uuid4().hex}-{name}")
    written, rejected, histogram, examples, seen = [], [], np.zeros(256, np.int64), 0, set()
    with _ShardWriter(temporary) as writer:
        for _, index, reason, serialised, pixels in sorted(members, key=lambda member: member[0]):
            if index in seen:
                continue
            seen.add(index)
            if reason:
                rejected.append([index, reason])
                continue
            written.append(index)
            for example in serialised:
                writer.write(example)
                examples += 1
            if pixels is not None:
                histogram += pixels
    FileSystems.rename([temporary], [_join(out, name)])
    fact = {
        "file": name,
        "split": split,
        "shard": shard,
        "examples": examples,
        "bytes": writer.size,
        "sha256": writer.sha256,
        "written": written,
        "rejected": rejected,
        "histogram": histogram.tolist(),
    }
    _publish(_join(facts_folder, f"{name}.json"), json.dumps(fact), _join(facts_folder, f"{TEMPORARY}{uuid.uuid4().hex}-{name}.json"))
    return iter(())


def read_shard_facts(work: str) -> list[dict[str, Any]]:
    """The shard writers' facts, one a shard."""
    return [json.loads(text) for _, text in _texts(_join(_join(work, SHARD_FACTS), "*.json"))]


class _ShardWriter:
    """TFRecord framing (TensorFlow's writer) onto any Beam filesystem: written locally, then copied where it belongs.

    Once closed, ``sha256`` and ``size`` are the file's, taken from the local copy.
    """

    def __init__(self, path: str) -> None:
        import tensorflow as tf

        self._path = path
        self._local = path if not _remote(path) else str(Path(os.environ.get("TMPDIR", "/tmp")) / f"leafprep-{uuid.uuid4().hex}.tfrecord")
        if not _remote(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self._writer = tf.io.TFRecordWriter(self._local)

    def write(self, record: bytes) -> None:
        self._writer.write(record)

    def __enter__(self) -> _ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()
        self.sha256, self.size = file_sha256(self._local), os.path.getsize(self._local)
        if self._local == self._path:
            return
        with FileSystems.create(self._path, compression_type="uncompressed") as handle, open(self._local, "rb") as source:
            while chunk := source.read(1 << 20):
                handle.write(chunk)
        Path(self._local).unlink(missing_ok=True)
