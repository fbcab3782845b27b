"""The docs never rot: the tutorials run as written, their pictures exist, the references match the code."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tutorials import TUTORIALS, parse, run, sandbox

from photos import ROOT, SHARED

NAMES = sorted(path.name for path in TUTORIALS.glob("*.md"))


def test_there_are_the_four_tutorials():
    assert [name[:3] for name in NAMES] == ["01-", "02-", "03-", "04-"]


@pytest.mark.parametrize("name", NAMES)
def test_every_tutorial_runs_as_written(name, tmp_path):
    """Every command and code block, in order, with fewer epochs (the page's 'quick' comments)."""
    if not SHARED.exists():
        pytest.skip("../shared/data is not here")
    run(TUTORIALS / name, sandbox(tmp_path), quick=True)


@pytest.mark.parametrize("name", NAMES)
def test_every_tutorial_picture_is_in_the_docs(name):
    text = (TUTORIALS / name).read_text(encoding="utf-8")
    for _, shown in parse(TUTORIALS / name)[1]:
        assert (ROOT / shown).is_file(), f"{shown}: run python tests/tutorials.py docs/tutorials/{name}"
        assert f"../images/{(ROOT / shown).name}" in text


def test_the_cli_and_api_references_match_the_code():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "reference.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
