"""``leafprep build --runner beam`` (or ``--runner dask``): the same build, scaled out on Apache Beam.

The build runs as two Beam pipelines around the decisions that need every
input at once:

1. **First pass** (Beam): each input is read through Beam's filesystems, hashed,
   decoded once, difference-hashed and normalised by the same function as in
   the local build (:func:`leafprep.build.first_pass_data`). Each bundle writes
   its normalised pictures and their facts (SHA-256, reason, hash, where the
   picture is) to a pair of files of its own under ``OUT/.tmp-beam/``.
2. **Plan** (the launching process): exact and near duplicates, the splits, the
   shard counts and the seeded order of writing, by the local build's own
   :func:`leafprep.build._plan`, from the facts alone.
3. **Write** (Beam): each planned picture is read back from its file, gets its
   augmented copies (training split) through the local build's
   :func:`leafprep.build._process` and is serialised; each shard is written by
   one worker, in the planned order, to a temporary name, then renamed.
4. ``labels.txt``, ``manifest.csv``, ``dataset_info.json`` and ``_COMPLETE``
   (last) are written as the local build writes them.

So the Beam build writes the same examples, in the same order, into the same
shards as the local build: the shards are byte for byte the same
(``tests/test_beam.py``), on every runner. Each pipeline is one linear chain
whose steps write their own files (:mod:`leafprep._beam_transforms`): Beam's
DaskRunner runs it as it is, and a bundle retried after a worker died neither
loses nor duplicates an example.

Runners: by default Beam's FnApiRunner on this machine (what the DirectRunner
runs when it does not first try to download the Prism runner), with a worker
process a core; ``--runner=DaskRunner`` (or ``dask``) on a Dask cluster
(``--dask_client_address=tcp://HOST:8786``; without one, a ``LocalCluster``
of a worker process a core, for this build); Dataflow, Flink and Spark with
Beam's own options, passed through unchanged (see docs/dataset.md). Inputs and
outputs are paths Beam's filesystems understand: local paths (shared by every
worker), and ``gs://`` or ``s3://`` with Beam's extras (``apache-beam[gcp]``,
``apache-beam[aws]``).
"""

from __future__ import annotations

import os
import posixpath
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from .build import (
    SPLITS,
    BuildOptions,
    BuildReport,
    Item,
    _checked,
    _finish,
    _plan,
    _prepare_output,
    _previous_splits,
    file_name_text,
    find_inputs,
)
from .errors import LeafprepError, ParameterError

__all__ = ["build_with_beam", "beam_available", "pipeline_arguments", "runner_name", "DASK_RUNNER", "LOCAL_RUNNER"]

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


# -- runners --------------------------------------------------------------------------------------

#: Beam's DaskRunner, which Beam's option parser knows only by its full name.
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
#: The local runner: what Beam's DirectRunner falls back to when the Prism runner cannot be downloaded,
#: chosen outright so that a build does not depend on the network.
LOCAL_RUNNER = "FnApiRunner"
_SHORT_NAMES = {"dask": DASK_RUNNER, "daskrunner": DASK_RUNNER, "local": LOCAL_RUNNER}


def _option(arguments: list[str], name: str) -> str | None:
    """The value of ``--name=VALUE`` or ``--name VALUE`` in a Beam command line (the last one given)."""
    value = None
    for position, argument in enumerate(arguments):
        if argument == f"--{name}" and position + 1 < len(arguments):
            value = arguments[position + 1]
        elif argument.startswith(f"--{name}="):
            value = argument.split("=", 1)[1]
    return value


def pipeline_arguments(beam_options: list[str] | None, workers: int | None = None) -> list[str]:
    """Beam's options with leafprep's defaults: the short runner names resolved, the local runner pinned.

    ``--runner=dask`` or ``--runner=DaskRunner`` becomes Beam's DaskRunner (its
    parser accepts only the full name); no runner means :data:`LOCAL_RUNNER`
    with ``workers`` worker processes (default: a core each). Options given
    are kept as they are.

    Examples
    --------
    >>> pipeline_arguments(["--runner=DaskRunner", "--dask_client_address=tcp://10.0.0.5:8786"])[0]
    '--runner=apache_beam.runners.dask.dask_runner.DaskRunner'
    >>> pipeline_arguments([])[:2]
    ['--runner=FnApiRunner', '--direct_running_mode=multi_processing']
    """
    arguments = list(beam_options or [])
    runner = _option(arguments, "runner")
    if runner is None:
        arguments = [f"--runner={LOCAL_RUNNER}", *arguments]
        if _option(arguments, "direct_running_mode") is None:
            arguments.insert(1, "--direct_running_mode=multi_processing")
        if _option(arguments, "direct_num_workers") is None:
            arguments.insert(2, f"--direct_num_workers={workers or os.cpu_count() or 1}")
        return arguments
    full = _SHORT_NAMES.get(runner.lower())
    if full is None:
        return arguments
    kept = [a for i, a in enumerate(arguments) if not (a == "--runner" or a.startswith("--runner=") or (i and arguments[i - 1] == "--runner"))]
    return [f"--runner={full}", *kept]


def runner_name(arguments: list[str]) -> str:
    """The runner of a Beam command line, as people call it (``DaskRunner``, ``DataflowRunner``...)."""
    return (_option(pipeline_arguments(arguments), "runner") or LOCAL_RUNNER).rsplit(".", 1)[-1]


def _is_dask(arguments: list[str]) -> bool:
    return _option(arguments, "runner") == DASK_RUNNER


@contextmanager
def _runner(arguments: list[str], inputs: int, workers: int | None = None) -> Iterator[list[str]]:
    """The Beam command line this build runs with, and what the runner needs around it.

    On Dask: without a scheduler (``--dask_client_address``,
    ``--dask_scheduler_file``), a ``LocalCluster`` of ``workers`` worker processes (default: a core each),
    closed after the build; without ``--dask_npartitions`` or
    ``--dask_partition_size``, four bundles a worker thread (at most one an
    input), so that a small source keeps every worker busy.
    """
    if not _is_dask(arguments):
        yield arguments
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise LeafprepError("--runner dask", "needs Dask's distributed scheduler, which is not installed", "pip install 'leafprep[dask]'") from None
    cluster = None
    if _option(arguments, "dask_client_address") is None and _option(arguments, "dask_scheduler_file") is None:
        count = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0")
        arguments = [*arguments, f"--dask_client_address={cluster.scheduler_address}"]
    try:
        if _option(arguments, "dask_npartitions") is None and _option(arguments, "dask_partition_size") is None:
            address, scheduler_file = _option(arguments, "dask_client_address"), _option(arguments, "dask_scheduler_file")
            try:
                with Client(address, scheduler_file=scheduler_file, timeout=10) as client:
                    threads = sum(client.nthreads().values())
            except OSError as exc:
                where = address or scheduler_file or ""
                raise LeafprepError(
                    where, f"no Dask scheduler answers there ({exc})", "start one with 'dask scheduler' and 'dask worker ADDRESS'"
                ) from None
            arguments = [*arguments, f"--dask_npartitions={max(1, min(inputs, 4 * max(threads, 1)))}"]
        yield arguments
    finally:
        if cluster is not None:
            cluster.close()


def _run(pipeline: Any) -> None:
    """Run a pipeline to its end; on failure, stop what is still running and raise the runner's error."""
    result = pipeline.run()
    try:
        if hasattr(result, "client") and hasattr(result, "futures"):  # Beam's DaskRunnerResult
            _wait_for_dask(result.futures)
        else:
            result.wait_until_finish()
    except BaseException:
        with suppress(Exception):
            result.cancel()
        raise
    finally:
        client = getattr(result, "client", None)  # the DaskRunner's connection to the scheduler
        if client is not None:
            with suppress(Exception):
                client.close()


def _wait_for_dask(futures: Any) -> None:
    """Wait for a DaskRunner's futures, then raise a worker's error if one failed.

    Not Beam's ``wait_until_finish``: it gathers every result with
    ``distributed.as_completed(..., with_results=True)``, which waits forever
    when the worker holding a result dies as it is fetched
    (dask/distributed#7331) -- the very case a cluster retries. The results
    are not needed (the pipeline's work is the files it wrote); the futures'
    states, which the scheduler keeps up to date through retries, are.
    """
    from distributed import futures_of

    pending = futures_of(futures)
    while not all(future.done() for future in pending):
        time.sleep(0.1)
    for future in pending:
        if future.status in ("error", "cancelled"):
            future.result()  # raises the worker's error (or CancelledError)


# -- the build ------------------------------------------------------------------------------------


def build_with_beam(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: BuildOptions | None = None,
    *,
    beam_options: list[str] | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BuildReport:
    """:func:`leafprep.build.build` as Apache Beam pipelines; the same dataset, byte for byte.

    Parameters
    ----------
    source, out : str or path
        As for :func:`leafprep.build.build`; on a Beam filesystem too
        (``gs://bucket/photos``, ``s3://...``, with Beam's extras for them).
        Every worker must see them at the same paths.
    options : BuildOptions, optional
    beam_options : list of str, optional
        Beam's pipeline options as on a command line, e.g.
        ``["--runner=DaskRunner", "--dask_client_address=tcp://10.0.0.5:8786"]``
        or ``["--runner=DataflowRunner", "--project=P", "--region=R",
        "--temp_location=gs://B/tmp"]`` (see :func:`pipeline_arguments`);
        default: :data:`LOCAL_RUNNER` on this machine, a worker process a core.
    overwrite : bool, optional
    workers : int, optional
        Worker processes on this machine, where the build starts them: Beam's
        local runner, or a Dask ``LocalCluster`` when no scheduler is given
        (default: a core each).
    progress : callable, optional
        Called as ``progress(done, total, stage)`` when each stage starts and
        ends: ``"normalising"`` (the first pass, over the inputs) and
        ``"writing"`` (over the planned examples).

    Returns
    -------
    report : BuildReport

    Raises
    ------
    LeafprepError
        Apache Beam (or, for Dask, ``distributed``) is not installed
        (``pip install 'leafprep[beam]'``, ``'leafprep[dask]'``); the runner
        failed (its own error, then what was left in ``out``); or as
        :func:`leafprep.build.build`.
    """
    beam = _beam()
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from . import _beam_transforms as work_of

    options = _checked(options or BuildOptions())
    if options.every:
        raise ParameterError("every", "every leaf of a photo (every=True, --all) is built by leafprep.build.build only, not on Beam")
    source_text, out_text = os.fspath(source), os.fspath(out)
    if _remote(source_text):
        items, locations = _remote_items(source_text)
    else:
        items = find_inputs(source_text)
        # Absolute: the workers (on a cluster, on other machines) do not share the launcher's working directory.
        locations = [os.path.abspath(item.path) if item.path is not None else "" for item in items]
    previous = {} if _remote(out_text) else _previous_splits(Path(out_text))
    if not _remote(out_text):
        _prepare_output(Path(out_text), overwrite)
    where = out_text if _remote(out_text) else os.path.abspath(out_text)  # where the workers write
    work = _join(where, _WORK)
    arguments = pipeline_arguments(beam_options, workers)
    idx_shape = next((item.pixels.shape for item in items if item.pixels is not None), (0,))
    tasks = [
        (index, locations[index] or None, np.ascontiguousarray(item.pixels).tobytes() if item.pixels is not None else None)
        for index, item in enumerate(items)
    ]
    problem = _clear(work)  # what an interrupted run left: its facts must not mix with this run's
    if problem:
        raise LeafprepError(work, f"cannot remove what an earlier build left there ({problem})", "delete it, then run the build again")
    try:
        with _runner(arguments, len(tasks), workers) as arguments:
            pipeline_options = PipelineOptions(arguments)

            # 1. The first pass, on Beam's workers: each bundle writes its own files.
            say = progress or (lambda done, total, stage: None)
            pipeline = beam.Pipeline(options=pipeline_options)
            _ = pipeline | "inputs" >> beam.Create(tasks) | "first pass" >> beam.ParDo(work_of.FirstPass(options, work))
            say(0, len(tasks), "normalising")
            _run(pipeline)
            say(len(tasks), len(tasks), "normalising")
            facts = work_of.read_facts(work)
            missing = [items[index].source for index in range(len(items)) if index not in facts]
            if missing:
                raise RuntimeError(f"the first pass returned nothing for {len(missing)} of {len(items)} inputs, e.g. {missing[0]}")
            perceptual: dict[int, int] = {}
            described: dict[int, np.ndarray] = {}
            for index, (fact, _) in facts.items():
                _, sha, reason, dhash, notes, descriptors = fact[:6]
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
            planned = []
            for split, k, item in plan.ordered:
                index = where_by_index[id(item)]
                fact, pictures = facts[index]
                kind, offset, length = fact[6:9]
                planned.append(
                    (
                        index,
                        pictures,
                        offset,
                        length,
                        kind,
                        split,
                        plan.shard_of(split, k),
                        k,
                        plan.label_index[item.label],
                        item.label.encode("utf-8"),
                        item.source.encode("utf-8"),
                        item.sha256.encode("ascii"),
                    )
                )

            # 3. Examples and shards, on Beam's workers.
            pipeline = beam.Pipeline(options=pipeline_options)
            _ = (
                pipeline
                | "planned" >> beam.Create(planned)
                | "examples" >> beam.ParDo(work_of.Examples(options, idx_shape))
                | "by shard" >> beam.GroupByKey()
                | "write shards" >> beam.FlatMap(work_of.write_shard, where, work, plan.shard_counts)
            )
            say(0, len(planned), "writing")
            _run(pipeline)
            say(len(planned), len(planned), "writing")
        shards, counts, histogram = [], {split: Counter[str]() for split in plan.members}, np.zeros(256, np.int64)
        shard_facts = sorted(work_of.read_shard_facts(work), key=lambda f: (SPLITS.index(f["split"]), f["shard"]))
        expected = sum(plan.shard_counts.values())
        if len(shard_facts) != expected:
            raise RuntimeError(f"{len(shard_facts)} of {expected} shards were written")
        for shard in shard_facts:
            for index in shard["written"]:
                item = items[index]
                item.status, item.shard = "written", shard["file"]
                counts[shard["split"]][item.label] += 1 + (options.augment if shard["split"] == "train" else 0)
            for index, reason in shard["rejected"]:
                items[index].status, items[index].reason = "rejected", reason
            histogram += np.asarray(shard["histogram"], np.int64)
            shards.append({key: shard[key] for key in ("file", "split", "examples", "bytes", "sha256")})

        # 4. The metadata, _COMPLETE last.
        def write(name: str, text: str) -> None:
            with FileSystems.create(_join(out_text, name), compression_type="uncompressed") as handle:
                handle.write(text.encode("utf-8"))

        train = [
            described[where_by_index[id(item)]]
            for split, _, item in plan.ordered
            if split == "train" and item.status == "written" and where_by_index[id(item)] in described
        ]
        meta = _finish(write, source_text, options, items, plan, counts, histogram, shards, train)
    except (LeafprepError, KeyboardInterrupt):
        _clear(work)
        raise
    except Exception as exc:
        left = _left_behind(out_text, work)
        raise LeafprepError(out_text, f"the Beam build failed on {runner_name(arguments)}: {_runner_error(exc)}", left) from exc
    _clear(work)
    return BuildReport(Path(out_text), items, meta, plan.dealt)


def _runner_error(exc: BaseException) -> str:
    """The runner's own error: its type and message (the last 25 lines of a long one, which end with the cause)."""
    lines = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return "\n".join(lines if len(lines) <= 25 else ["...", *lines[-25:]])


def _left_behind(out: str, work: str) -> str:
    """Remove the working folder and say what the failed build left in ``out``."""
    from apache_beam.io.filesystems import FileSystems

    problem = _clear(work)
    shards = [m.path for result in FileSystems.match([_join(out, "*.tfrecord")]) for m in result.metadata_list]
    said = f"{out} is not a dataset: it has no _COMPLETE" + (f" and holds {len(shards)} shard file(s) of this run" if shards else "")
    if problem:
        said += f"; its working folder {work} could not be removed ({problem}): delete it"
    return said + "; run the same build again to replace it"


def _clear(work: str) -> str:
    """Remove the build's working folder and everything in it; what stood in the way ("" when nothing did)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        if not _remote(work):
            if FileSystems.exists(work):
                FileSystems.delete([work])  # a folder: removed with everything in it
        elif FileSystems.match([_join(work, "**")])[0].metadata_list:
            FileSystems.delete([work.rstrip("/") + "/"])  # a bucket "folder": every object under it
    except Exception as exc:  # reported by the caller, never raised over the build's own error
        return f"{type(exc).__name__}: {exc}"
    return ""
