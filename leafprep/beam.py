"""``leafprep build --runner beam``: the same build, scaled out on Apache Beam.

The build runs as two Beam pipelines around the decisions that need every
input at once:

1. **First pass** (Beam): each input is read through Beam's filesystems, hashed,
   decoded once, difference-hashed and normalised by the same function as in
   the local build (:func:`leafprep.build.first_pass_data`). The normalised
   pictures go to spill records, the small facts (SHA-256, reason, hash) to
   text files under ``OUT/.tmp-beam/``.
2. **Plan** (the launching process): exact and near duplicates, the splits, the
   shard counts and the seeded order of writing, by the local build's own
   :func:`leafprep.build._plan`, from the facts alone.
3. **Write** (Beam): each picture gets its augmented copies (training split)
   through the local build's :func:`leafprep.build._process`, is serialised, and
   each shard is written by one worker, in the planned order, to a temporary
   name, then renamed.
4. ``labels.txt``, ``manifest.csv``, ``dataset_info.json`` and ``_COMPLETE``
   (last) are written as the local build writes them.

So the Beam build writes the same examples, in the same order, into the same
shards as the local build: the shards are byte for byte the same
(``tests/test_beam.py``). Inputs and outputs are paths Beam's filesystems
understand: local paths, and ``gs://`` or ``s3://`` with Beam's extras
(``apache-beam[gcp]``, ``apache-beam[aws]``). Other runners (Dataflow, Flink,
Spark) are chosen with Beam's own pipeline options (``--runner``, ``--project``,
...), passed through unchanged; see docs/dataset.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .build import (
    SPLITS,
    BuildOptions,
    BuildReport,
    Item,
    _finish,
    _plan,
    _prepare_output,
    _previous_splits,
    _process,
    file_name_text,
    find_inputs,
    first_pass_data,
    unspill,
)
from .errors import LeafprepError, ParameterError
from .records import file_sha256, serialize_example, shard_name

__all__ = ["build_with_beam", "beam_available"]

_WORK = ".tmp-beam"


def beam_available() -> bool:
    """Whether Apache Beam can be imported (``pip install 'leafprep[beam]'``)."""
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        return False
    return True


def _beam() -> Any:
    try:
        import apache_beam as beam
    except ImportError:
        raise LeafprepError(
            "--runner beam", "needs Apache Beam, which is not installed", "pip install 'leafprep[beam]' (apache-beam[tfrecord])"
        ) from None
    return beam


def _remote(path: str) -> bool:
    return "://" in path


def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if _remote(folder) else os.path.join(folder, name)


def _remote_items(source: str) -> tuple[list[Item], list[str]]:
    """The inputs of a folder of class folders (or of ``train/ val/ test/``) on a Beam filesystem."""
    from apache_beam.io.filesystems import FileSystems

    from .inputs import natural_key

    root = source.rstrip("/")
    found = [metadata.path for result in FileSystems.match([f"{root}/**"]) for metadata in result.metadata_list]
    items, locations = [], []
    for path in sorted(found, key=natural_key):
        parts = path[len(root) + 1 :].split("/")
        if len(parts) < 2 or parts[-1].startswith("."):
            continue
        split = parts[0] if parts[0] in SPLITS and len(parts) >= 3 else None
        label = parts[1] if split else parts[0]
        items.append(Item(file_name_text("/".join(parts)), file_name_text(label), None, split=split))
        locations.append(path)
    if not items:
        raise LeafprepError(source, "holds no class folders with files", "put each class's images in a folder named after it")
    return items, locations


# -- work done by Beam's workers ------------------------------------------------------------------


def _first_pass(
    task: tuple[int, str | None, bytes | None], options: BuildOptions
) -> tuple[int, str, str, int | None, bytes | None, str, bytes | None]:
    """(index, sha256, reason, difference hash, normalised picture, warnings, IDX pixels) of one input."""
    from .build import _first_pass as local_first_pass

    index, path, pixels = task
    if pixels is not None:  # an IDX example: normalised while writing, as in the local build
        return index, hashlib.sha256(pixels).hexdigest(), "", None, None, "", pixels
    assert path is not None
    if not _remote(path):  # the local build's own reading (its messages for links, permissions...)
        return (index, *local_first_pass((path, options)), None)
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            data = handle.read()
    except Exception as exc:  # missing, unreadable: rejected, as locally
        return index, "", f"cannot be read: {exc}", None, None, "", None
    return (index, *first_pass_data(data, options), None)


def _example(
    record: bytes, plan: dict[int, tuple[str, int, int, int, bytes, bytes, bytes]], options: BuildOptions, idx_shape: tuple[int, ...]
) -> Iterator[Any]:
    """A spilled picture -> ((split, shard), (position, index, reason, serialised examples, pixel histogram of train pictures))."""
    index = int.from_bytes(record[:8], "big")
    if index not in plan:
        return
    split, shard, position, label, name, source_bytes, sha = plan[index]
    kind, payload = record[8:9], record[9:]
    source: Any
    if kind == b"N":
        source = unspill(payload, options)
    else:
        source = np.frombuffer(payload, np.uint8).reshape(idx_shape)
    image, reason, copies, descriptors = _process((source, options, split == "train", sha.decode("ascii")))
    if image is None:
        yield (split, shard), (position, index, reason, [], None)
        return
    pictures = (image, *copies)
    examples = [serialize_example(picture, label, name, source_bytes, sha, descriptors) for picture in pictures]
    histogram = np.bincount(np.concatenate([p.reshape(-1) for p in pictures]), minlength=256) if split == "train" else None
    yield (split, shard), (position, index, "", examples, histogram)


def _write_shard(
    keyed: tuple[tuple[str, int], Iterable[tuple[int, int, str, list[bytes], np.ndarray | None]]], out: str, counts: dict[str, int]
) -> str:
    """Write one shard in the planned order (temporary name, then renamed); its facts as a JSON line."""
    import tensorflow as tf
    from apache_beam.io.filesystems import FileSystems

    (split, shard), members = keyed
    name = shard_name(split, shard, counts[split])
    final, temporary = _join(out, name), _join(out, f".tmp-{name}")
    written, rejected, histogram, examples = [], [], np.zeros(256, np.int64), 0
    with tf.io.TFRecordWriter(temporary) if not _remote(out) else _RemoteWriter(temporary) as writer:
        for _, index, reason, serialised, pixels in sorted(members, key=lambda member: member[0]):
            if reason:
                rejected.append([index, reason])
                continue
            written.append(index)
            for example in serialised:
                writer.write(example)
                examples += 1
            if pixels is not None:
                histogram += pixels
    FileSystems.rename([temporary], [final])
    digest = file_sha256(final) if not _remote(out) else _remote_sha256(final)
    length = os.path.getsize(final) if not _remote(out) else FileSystems.match([final])[0].metadata_list[0].size_in_bytes
    return json.dumps(
        {
            "file": name,
            "split": split,
            "shard": shard,
            "examples": examples,
            "bytes": length,
            "sha256": digest,
            "written": written,
            "rejected": rejected,
            "histogram": histogram.tolist(),
        }
    )


class _RemoteWriter:
    """TFRecord framing onto a Beam filesystem (gs://, s3://): TensorFlow's writer only knows its own filesystems."""

    def __init__(self, path: str) -> None:
        import tensorflow as tf
        from apache_beam.io.filesystems import FileSystems

        self._handle = FileSystems.create(path)
        self._local = Path(os.environ.get("TMPDIR", "/tmp")) / f"leafprep-{os.getpid()}-{abs(hash(path))}.tfrecord"
        self._writer = tf.io.TFRecordWriter(str(self._local))

    def write(self, record: bytes) -> None:
        self._writer.write(record)

    def __enter__(self) -> _RemoteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()
        with open(self._local, "rb") as source:
            while chunk := source.read(1 << 20):
                self._handle.write(chunk)
        self._handle.close()
        self._local.unlink(missing_ok=True)


def _remote_sha256(path: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    digest = hashlib.sha256()
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- the build ------------------------------------------------------------------------------------


def build_with_beam(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: BuildOptions | None = None,
    *,
    beam_options: list[str] | None = None,
    overwrite: bool = False,
) -> BuildReport:
    """:func:`leafprep.build.build` as Apache Beam pipelines; the same dataset, byte for byte.

    Parameters
    ----------
    source, out : str or path
        As for :func:`leafprep.build.build`; on a Beam filesystem too
        (``gs://bucket/photos``, ``s3://...``, with Beam's extras for them).
    options : BuildOptions, optional
    beam_options : list of str, optional
        Beam's pipeline options as on a command line, e.g.
        ``["--runner=DataflowRunner", "--project=P", "--region=R",
        "--temp_location=gs://B/tmp"]``; default: the DirectRunner on this
        machine, with as many workers as cores.
    overwrite : bool, optional

    Returns
    -------
    report : BuildReport

    Raises
    ------
    LeafprepError
        Apache Beam is not installed (``pip install 'leafprep[beam]'``), or as
        :func:`leafprep.build.build`.
    """
    beam = _beam()
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    options = options or BuildOptions()
    if options.kind not in ("digit", "leaf", "auto", "none"):
        raise ParameterError("kind", f"kind must be one of {{'digit', 'leaf', 'auto', 'none'}}, got {options.kind!r}")
    if options.every:
        raise ParameterError("every", "every leaf of a photo (--all) is built by the local runner only: drop --runner beam")
    source_text, out_text = os.fspath(source), os.fspath(out)
    if _remote(source_text):
        items, locations = _remote_items(source_text)
    else:
        items = find_inputs(source_text)
        locations = [str(item.path) if item.path is not None else "" for item in items]
    previous = {} if _remote(out_text) else _previous_splits(Path(out_text))
    if not _remote(out_text):
        _prepare_output(Path(out_text), overwrite)
    work = _join(out_text, _WORK)
    arguments = list(beam_options or [])
    if not any(a.startswith("--runner") for a in arguments):
        arguments += ["--runner=DirectRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={os.cpu_count() or 1}"]
    pipeline_options = PipelineOptions(arguments)
    idx_shape = next((item.pixels.shape for item in items if item.pixels is not None), (0,))
    _clear(work)  # what an interrupted run left: its facts must not mix with this run's
    try:
        tasks = []
        for index, item in enumerate(items):
            pixels = np.ascontiguousarray(item.pixels).tobytes() if item.pixels is not None else None
            tasks.append((index, locations[index] or None, pixels))

        # 1. The first pass, on Beam's workers.
        with beam.Pipeline(options=pipeline_options) as pipeline:
            first = pipeline | "inputs" >> beam.Create(tasks) | "first pass" >> beam.Map(_first_pass, options)
            _ = (
                first
                | "facts" >> beam.Map(_facts_line, options)
                | "write facts" >> beam.io.WriteToText(_join(work, "facts"), file_name_suffix=".jsonl")
            )
            _ = (
                first
                | "pictures" >> beam.FlatMap(_spill_record)
                | "write pictures" >> beam.io.WriteToTFRecord(_join(work, "pictures"), file_name_suffix=".tfrecord")
            )
        perceptual: dict[int, int] = {}
        described: dict[int, np.ndarray] = {}
        for line in _read_lines(_join(work, "facts-*")):
            index, sha, reason, dhash, notes, descriptors = json.loads(line)
            if descriptors is not None:
                described[index] = np.asarray(descriptors, np.float32)
            items[index].sha256, items[index].warnings = sha, notes
            if reason:
                items[index].status, items[index].reason = "rejected", reason
            if dhash is not None:
                perceptual[index] = dhash

        # 2. The plan: the local build's own.
        plan = _plan(items, options, previous, perceptual)
        where_by_index = {id(item): i for i, item in enumerate(items)}
        assignment = {
            where_by_index[id(item)]: (
                split,
                plan.shard_of(split, k),
                k,
                plan.label_index[item.label],
                item.label.encode("utf-8"),
                item.source.encode("utf-8"),
                item.sha256.encode("ascii"),
            )
            for split, k, item in plan.ordered
        }

        # 3. Examples and shards, on Beam's workers.
        with beam.Pipeline(options=pipeline_options) as pipeline:
            _ = (
                pipeline
                | "read pictures" >> beam.io.ReadFromTFRecord(_join(work, "pictures-*"))
                | "examples" >> beam.FlatMap(_example, assignment, options, idx_shape)
                | "by shard" >> beam.GroupByKey()
                | "write shards" >> beam.Map(_write_shard, out_text, plan.shard_counts)
                | "write shard facts" >> beam.io.WriteToText(_join(work, "shards"), file_name_suffix=".jsonl")
            )
        shards, counts, histogram = [], {split: Counter[str]() for split in plan.members}, np.zeros(256, np.int64)
        facts = sorted((json.loads(line) for line in _read_lines(_join(work, "shards-*"))), key=lambda f: (SPLITS.index(f["split"]), f["shard"]))
        for fact in facts:
            for index in fact["written"]:
                item = items[index]
                item.status, item.shard = "written", fact["file"]
                counts[fact["split"]][item.label] += 1 + (options.augment if fact["split"] == "train" else 0)
            for index, reason in fact["rejected"]:
                items[index].status, items[index].reason = "rejected", reason
            histogram += np.asarray(fact["histogram"], np.int64)
            shards.append({key: fact[key] for key in ("file", "split", "examples", "bytes", "sha256")})

        # 4. The metadata, _COMPLETE last.
        def write(name: str, text: str) -> None:
            with FileSystems.create(_join(out_text, name)) as handle:
                handle.write(text.encode("utf-8"))

        train = [
            described[where_by_index[id(item)]]
            for split, _, item in plan.ordered
            if split == "train" and item.status == "written" and where_by_index[id(item)] in described
        ]
        meta = _finish(write, source_text, options, items, plan, counts, histogram, shards, train)
    finally:
        _clear(work)
    return BuildReport(Path(out_text), items, meta)


def _clear(work: str) -> None:
    """Remove the build's working folder and everything in it."""
    from apache_beam.io.filesystems import FileSystems

    matches = FileSystems.match([_join(work, "*")])[0].metadata_list if _exists(work) else []
    if matches:
        FileSystems.delete([m.path for m in matches])
    if not _remote(work) and os.path.isdir(work):
        os.rmdir(work)


def _facts_line(result: tuple[int, str, str, int | None, bytes | None, str, bytes | None], options: BuildOptions) -> str:
    """What the plan needs of one input, as a JSON line: index, SHA-256, reason, difference hash, warnings, a leaf's descriptors."""
    index, sha, reason, dhash, picture, notes, _ = result
    descriptors = unspill(picture, options).descriptors if picture is not None and options.describes else None
    # float32 values written as JSON doubles read back exactly; NaN as JSON's NaN.
    return json.dumps([index, sha, reason, dhash, notes, None if descriptors is None else descriptors.tolist()])


def _spill_record(result: tuple[int, str, str, int | None, bytes | None, str, bytes | None]) -> Iterator[bytes]:
    index, _, _, _, picture, _, pixels = result
    if picture is not None:
        yield index.to_bytes(8, "big") + b"N" + picture
    elif pixels is not None:
        yield index.to_bytes(8, "big") + b"I" + pixels


def _exists(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    return bool(FileSystems.exists(path))


def _read_lines(pattern: str) -> Iterator[str]:
    from apache_beam.io.filesystems import FileSystems

    for result in FileSystems.match([pattern]):
        for metadata in sorted(result.metadata_list, key=lambda m: m.path):
            with FileSystems.open(metadata.path, compression_type="uncompressed") as handle:
                for line in handle.read().decode("utf-8").splitlines():
                    if line.strip():
                        yield line
