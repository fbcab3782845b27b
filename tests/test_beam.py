"""``leafprep build --runner beam`` builds what the local build builds."""

from __future__ import annotations

import builtins
import shutil
from pathlib import Path

import pytest
from test_build import digit_folder  # noqa: F401 - a fixture
from typer.testing import CliRunner

from leafprep import LeafprepError
from leafprep.build import BuildOptions, build
from leafprep.cli import app


def test_beam_build_equals_the_local_build_byte_for_byte(digit_folder, tmp_path):  # noqa: F811
    """Same examples, splits, label map, manifest and dataset_info.json; here even the shards' bytes."""
    from leafprep.beam import build_with_beam
    from leafprep.records import verify

    (digit_folder / "2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    shutil.copy(next((digit_folder / "1").iterdir()), digit_folder / "1" / "copy.png")  # an exact duplicate
    options = BuildOptions(kind="digit", split=(0.6, 0.2, 0.2), augment=1, shard_mb=0.002)
    local = build(digit_folder, tmp_path / "local", options, workers=0)
    leftover = tmp_path / "beam" / ".tmp-beam"  # what an interrupted Beam run leaves: it must not leak in
    leftover.mkdir(parents=True)
    (tmp_path / "beam" / ".leafprep-dataset").write_text("leafprep dataset folder\n")
    (leftover / "facts-00003-of-00009.jsonl").write_text('[0, "0000", "bogus reason", null]\n')
    beam = build_with_beam(digit_folder, tmp_path / "beam", options, beam_options=["--direct_num_workers=2"])
    files = sorted(path.name for path in (tmp_path / "local").iterdir())
    assert files == sorted(path.name for path in (tmp_path / "beam").iterdir())
    assert sum(name.endswith(".tfrecord") for name in files) > 3  # several shards a split
    for name in files:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "beam" / name).read_bytes(), name
    assert [(i.source, i.status, i.split, i.shard) for i in local.items] == [(i.source, i.status, i.split, i.shard) for i in beam.items]
    assert local.count("rejected") == 1 and local.count("duplicate") == 1
    assert verify(tmp_path / "beam") == []


def test_cli_beam_runner_builds_a_dataset_and_checks_its_options(digit_folder, tmp_path):  # noqa: F811
    runner = CliRunner()
    wrong = runner.invoke(app, ["build", str(digit_folder), "--out", str(tmp_path / "x"), "--runner", "beam", "--beam-option", "runner"])
    assert wrong.exit_code == 2 and "KEY=VALUE" in wrong.output
    arguments = ["build", str(digit_folder), "--out", str(tmp_path / "ds"), "--runner", "beam", "--beam-option", "direct_num_workers=1"]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "Apache Beam (DirectRunner)" in result.output and (tmp_path / "ds" / "_COMPLETE").exists()


def test_without_beam_the_message_says_what_to_install(digit_folder, tmp_path, monkeypatch):  # noqa: F811
    from leafprep.beam import build_with_beam

    real_import = builtins.__import__

    def no_beam(name, *args, **kwargs):
        if name == "apache_beam" or name.startswith("apache_beam."):
            raise ImportError("No module named 'apache_beam'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_beam)
    with pytest.raises(LeafprepError, match=r"pip install 'leafprep\[beam\]'"):
        build_with_beam(digit_folder, tmp_path / "ds")
    assert not Path(tmp_path / "ds").exists()
