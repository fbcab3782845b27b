"""``leafprep build --runner beam`` builds what the local build builds."""

from __future__ import annotations

import builtins
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leafprep import LeafprepError
from leafprep.build import BuildOptions, build
from leafprep.cli import app
from leafprep.records import verify

SAMPLE_LEAVES = Path(__file__).resolve().parent.parent / "sample_data" / "leaves"
LEAF_OPTIONS = BuildOptions(kind="leaf", size=32, split=(0.6, 0.2, 0.2), augment=2, shard_mb=0.005)


def two_species(folder: Path) -> Path:
    """Ten of the sample leaves (two species) in ``folder``."""
    for species in sorted(SAMPLE_LEAVES.iterdir())[:2]:
        shutil.copytree(species, folder / species.name)
    return folder


def test_cli_beam_runner_builds_a_dataset_and_checks_its_options(tmp_path):
    runner = CliRunner()
    source = two_species(tmp_path / "leaves")
    wrong = runner.invoke(app, ["build", str(source), "--out", str(tmp_path / "x"), "--runner", "beam", "--beam-option", "runner"])
    assert wrong.exit_code == 2 and "KEY=VALUE" in wrong.output
    options = ["--beam-option", "direct_num_workers=1", "--beam-option", "direct_running_mode=in_memory"]
    arguments = ["build", str(source), "--out", str(tmp_path / "ds"), "--kind", "leaf", "--size", "32", "--runner", "beam", *options]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "Apache Beam (FnApiRunner)" in result.output and (tmp_path / "ds" / "_COMPLETE").exists()


def test_without_beam_the_message_says_what_to_install(tmp_path, monkeypatch):
    from leafprep.beam import build_with_beam

    real_import = builtins.__import__

    def no_beam(name, *args, **kwargs):
        if name == "apache_beam" or name.startswith("apache_beam."):
            raise ImportError("No module named 'apache_beam'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_beam)
    with pytest.raises(LeafprepError, match=r"pip install 'leafprep\[beam\]'"):
        build_with_beam(SAMPLE_LEAVES, tmp_path / "ds")
    assert not Path(tmp_path / "ds").exists()


def test_without_dask_the_message_says_what_to_install(tmp_path, monkeypatch):
    from leafprep.beam import build_with_beam

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(LeafprepError, match=r"pip install 'leafprep\[dask\]'"):
        build_with_beam(SAMPLE_LEAVES, tmp_path / "ds", beam_options=["--runner=dask"])
    assert not (tmp_path / "ds" / ".tmp-beam").exists()


# -- Beam on Dask -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    """A Dask cluster of two worker processes on this machine (as ``dask scheduler`` and two ``dask worker``)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture
def leaf_folder(tmp_path) -> Path:
    """The 20 sample leaves, one of them twice and a broken file beside them."""
    root = tmp_path / "leaves"
    shutil.copytree(SAMPLE_LEAVES, root)
    first = sorted((root / "ovata").iterdir())[0]
    shutil.copy(first, root / "ovata" / "again.jpg")
    (root / "palmata" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG after all")
    return root


def same_files(a: Path, b: Path) -> list[str]:
    """The names whose bytes differ (or that only one folder has)."""
    names = {p.name for p in a.iterdir()} | {p.name for p in b.iterdir()}
    return sorted(n for n in names if not ((a / n).exists() and (b / n).exists() and (a / n).read_bytes() == (b / n).read_bytes()))


def test_local_runner_beam_and_dask_build_the_same_bytes_on_every_worker(leaf_folder, tmp_path, dask_cluster):
    from distributed import Client, get_task_stream

    from leafprep.beam import build_with_beam

    local = build(leaf_folder, tmp_path / "local", LEAF_OPTIONS, workers=0)
    leftover = tmp_path / "beam" / ".tmp-beam"  # what an interrupted Beam run leaves: it must not leak in
    leftover.mkdir(parents=True)
    (tmp_path / "beam" / ".leafprep-dataset").write_text("leafprep dataset folder\n")
    (leftover / "0123.facts.jsonl").write_text('[0, "0000", "bogus reason", null, "", null, "", 0, 0]\n')
    stages = []  # Beam's local runner in this process (its worker processes would import TensorFlow anew: 12 s more)
    beam_options = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    build_with_beam(leaf_folder, tmp_path / "beam", LEAF_OPTIONS, beam_options=beam_options, progress=lambda *said: stages.append(said))
    with Client(dask_cluster.scheduler_address) as client, get_task_stream(client) as tasks:
        dask = build_with_beam(
            leaf_folder,
            tmp_path / "dask",
            LEAF_OPTIONS,
            beam_options=["--runner=DaskRunner", f"--dask_client_address={dask_cluster.scheduler_address}"],
        )
    assert local.count("rejected") == 1 and local.count("duplicate") == 1 and local.count("written") == 20
    assert stages == [(0, 22, "normalising"), (22, 22, "normalising"), (0, 20, "writing"), (20, 20, "writing")]
    assert sum(p.suffix == ".tfrecord" for p in (tmp_path / "local").iterdir()) > 3
    assert same_files(tmp_path / "local", tmp_path / "beam") == []
    assert same_files(tmp_path / "local", tmp_path / "dask") == []
    assert verify(tmp_path / "dask") == []
    assert [(i.source, i.status, i.split, i.shard) for i in local.items] == [(i.source, i.status, i.split, i.shard) for i in dask.items]
    assert len({task["worker"] for task in tasks.data}) == 2  # a source of 22 files kept both workers busy


def kill_worker(folder: str, when: str, flag: str):
    """A Dask worker plugin: the first worker to start a task once ``when`` exists in ``folder`` is killed (SIGKILL) mid-task.

    Defined here, in a function, so that Dask sends the class itself to the workers (they cannot import tests).
    """
    from distributed import WorkerPlugin

    class KillWorker(WorkerPlugin):
        name = f"kill-when-{when}"

        def transition(self, key, start, finish, **kwargs) -> None:
            import os
            import signal
            import threading
            from pathlib import Path

            if finish != "executing" or not list(Path(folder).glob(when)):
                return
            try:
                with open(flag, "x") as handle:  # once in the whole cluster
                    handle.write(str(os.getpid()))
            except FileExistsError:
                return
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()

    return KillWorker()


def test_a_worker_killed_in_each_pass_neither_loses_nor_duplicates_an_example(leaf_folder, tmp_path, dask_cluster, monkeypatch):
    """Also, as on a cluster where ``dask worker`` runs wherever it was started: the workers run in another
    folder than the launcher, whose relative paths must still reach them."""
    import os
    import time

    from distributed import Client

    from leafprep.beam import build_with_beam

    monkeypatch.chdir(tmp_path)
    build("leaves", "local", LEAF_OPTIONS, workers=0)  # dataset_info.json says "leaves", as given
    out = tmp_path / "dask"
    kills = [
        kill_worker(str(out / ".tmp-beam"), "*.facts.jsonl", str(tmp_path / "killed-in-first-pass")),  # a bundle of the first pass is done
        kill_worker(str(out), "*.tfrecord", str(tmp_path / "killed-while-writing")),  # a shard is written
    ]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with Client(dask_cluster.scheduler_address) as client:
        home = next(iter(client.run(os.getcwd).values()))
        client.run(os.chdir, str(elsewhere))  # the nannies start new workers in their own folder
        for plugin in kills:
            client.register_plugin(plugin)
        try:
            report = build_with_beam(
                "leaves", "dask", LEAF_OPTIONS, beam_options=["--runner=dask", f"--dask_client_address={dask_cluster.scheduler_address}"]
            )
        finally:
            # A kill fires 50 ms after its task starts, so it can land as the build ends: wait until every killed
            # worker is gone and its nanny's new one is up before speaking to the workers again.
            flags = [tmp_path / name for name in ("killed-in-first-pass", "killed-while-writing")]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                alive = set(client.run(os.getpid, on_error="ignore").values())
                if len(alive) == 2 and not alive & {int(flag.read_text()) for flag in flags if flag.exists()}:
                    break
                time.sleep(0.2)
            for plugin in kills:
                client.unregister_worker_plugin(plugin.name)
            client.run(os.chdir, home)
        after = set(client.run(os.getpid).values())
    killed = {int(flag.read_text()) for flag in flags}
    assert len(killed) == 2 and not killed & after  # two workers died, one in each pass; their nannies started new ones
    assert same_files(tmp_path / "local", out) == [] and list(elsewhere.iterdir()) == []
    assert report.count("written") == 20 and not (out / ".tmp-beam").exists()


def unfetchable():
    """A task whose result stays on its worker: the client cannot load it (as when that worker dies as it is fetched).

    Made in a function, so that Dask sends it to the workers by value (they cannot import tests).
    """

    def refuse():
        raise ConnectionError("the worker holding this result is gone")

    class Unfetchable:
        def __reduce__(self):
            return refuse, ()

    def task():
        return Unfetchable()

    return task


def test_a_dask_build_waits_for_its_tasks_not_for_their_results(dask_cluster):
    """Beam's own wait fetches every result and, when a fetch fails, waits forever (dask/distributed#7331)."""
    from distributed import Client

    from leafprep.beam import _wait_for_dask

    with Client(dask_cluster.scheduler_address) as client:
        done = client.submit(unfetchable(), pure=False)
        with pytest.raises(ConnectionError):
            done.result(timeout=60)  # fetching it fails ...
        _wait_for_dask([done])  # ... waiting for it does not
        failed = client.submit(lambda: 1 / 0, pure=False)
        with pytest.raises(ZeroDivisionError):
            _wait_for_dask([done, failed])


def test_facts_of_a_retried_bundle_are_read_once(tmp_path):
    from leafprep._beam_transforms import FACTS, read_facts

    line = '[{index}, "ab", "", 7, "", null, "N", {offset}, 4]\n'
    (tmp_path / f"a{FACTS}").write_text(line.format(index=0, offset=0) + line.format(index=1, offset=4))
    (tmp_path / f"b{FACTS}").write_text(line.format(index=1, offset=0))  # bundle a's second input, done again
    facts = read_facts(str(tmp_path))
    assert sorted(facts) == [0, 1]
    assert facts[1][1].endswith("a.pictures") and facts[1][0][7] == 4


def test_a_half_written_file_left_by_a_killed_worker_is_not_read(tmp_path):
    """Beam's ``*`` matches a leading dot: a worker killed while it wrote a temporary file must not break the build."""
    from leafprep._beam_transforms import FACTS, SHARD_FACTS, TEMPORARY, read_facts, read_shard_facts

    (tmp_path / f"a{FACTS}").write_text('[0, "ab", "", 7, "", null, "N", 0, 4]\n')
    (tmp_path / f"{TEMPORARY}b{FACTS}").write_text('[1, "ab", "", 7')  # cut short
    shards = tmp_path / SHARD_FACTS
    shards.mkdir()
    (shards / "train-00000-of-00001.json").write_text('{"file": "train-00000-of-00001.tfrecord"}')
    (shards / f"{TEMPORARY}1234-train-00000-of-00001.json").write_text("")  # created, never written
    assert sorted(read_facts(str(tmp_path))) == [0]
    assert read_shard_facts(str(tmp_path)) == [{"file": "train-00000-of-00001.tfrecord"}]


def test_a_failed_beam_build_shows_the_runners_error_and_what_it_left(tmp_path, monkeypatch):
    import leafprep._beam_transforms as transforms
    from leafprep.beam import build_with_beam

    def broken(task, options):
        raise ValueError("the disk of worker 3 is on fire")

    monkeypatch.setattr(transforms, "first_pass", broken)
    out = tmp_path / "ds"
    leftover = out / ".tmp-beam" / "beam-temp-facts-0123"  # what an older Beam sink left: a folder in the working folder
    leftover.mkdir(parents=True)
    (leftover / "part").write_text("x")
    (out / ".leafprep-dataset").write_text("leafprep dataset folder\n")
    with pytest.raises(LeafprepError) as caught:
        build_with_beam(SAMPLE_LEAVES, out, LEAF_OPTIONS, beam_options=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    message = str(caught.value)
    assert "ValueError: the disk of worker 3 is on fire" in message and "FnApiRunner" in message
    assert "no _COMPLETE" in message and "run the same build again" in message
    assert not (out / ".tmp-beam").exists() and not (out / "_COMPLETE").exists()


def test_runner_names_are_resolved_and_the_local_runner_is_pinned():
    from leafprep.beam import DASK_RUNNER, LOCAL_RUNNER, pipeline_arguments, runner_name

    assert pipeline_arguments(["--runner", "dask", "--dask_npartitions=3"]) == [f"--runner={DASK_RUNNER}", "--dask_npartitions=3"]
    local = pipeline_arguments(["--direct_num_workers=2"])
    assert local[0] == f"--runner={LOCAL_RUNNER}" and local.count("--direct_num_workers=2") == 1 and len(local) == 3
    assert pipeline_arguments(["--runner=DataflowRunner", "--project=p"]) == ["--runner=DataflowRunner", "--project=p"]
    assert runner_name(["--runner=DaskRunner"]) == "DaskRunner" and runner_name([]) == "FnApiRunner"


def test_cli_dask_runner_starts_a_local_cluster_and_builds(tmp_path):
    pytest.importorskip("distributed")
    source = two_species(tmp_path / "leaves")
    result = CliRunner().invoke(
        app, ["build", str(source), "--out", str(tmp_path / "ds"), "--kind", "leaf", "--size", "32", "--runner", "dask", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "Apache Beam (DaskRunner)" in result.output and (tmp_path / "ds" / "_COMPLETE").exists()
    wrong = CliRunner().invoke(app, ["build", str(SAMPLE_LEAVES), "--out", str(tmp_path / "x"), "--dask-address", "tcp://127.0.0.1:1"])
    assert wrong.exit_code == 2 and "--runner dask" in wrong.output


def test_leafprep_its_cli_and_the_local_build_import_neither_beam_nor_dask():
    import subprocess
    import sys

    code = (
        "import sys, leafprep, leafprep.cli, leafprep.build, leafprep.beam\n"
        "print(sorted(m for m in ('apache_beam', 'dask', 'distributed') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_beam_build_on_the_local_runner_prints_no_runner_chatter(tmp_path):
    import subprocess
    import sys

    source = two_species(tmp_path / "leaves")
    command = [sys.executable, "-m", "leafprep.cli", "build", str(source), "--out", str(tmp_path / "ds"), "--kind", "leaf", "--size", "32"]
    done = subprocess.run([*command, "--runner", "beam", "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    # Beam's worker processes once printed dozens of INFO lines and "apitools not found" warnings a build.
    assert "building on Apache Beam (FnApiRunner)" in said and "dataset in" in said
    assert not [line for line in said.splitlines() if line.startswith(("INFO:", "WARNING:", "DEBUG:"))], said
