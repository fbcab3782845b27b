"""Run the tutorials of docs/tutorials/ as they are written, so that they never rot.

A tutorial is Markdown. What runs, in order, in a fresh folder that has the
project's ``sample_data/`` and ``../shared/data/`` beside it, as a reader's
checkout has:

* ```` ```console ```` blocks: every line that starts with ``$ `` is a shell
  command (a trailing ``\\`` continues it); it must exit with 0. Other lines are
  what it printed, for the reader.
* ```` ```python ```` blocks: each is run as a script of its own and must exit with 0.
* ```` ```yaml file=NAME ```` (any language) blocks: their text is written to ``NAME``.

Comments steer the runs:

* ``<!-- quick: OLD => NEW -->``: in the quick run (the tests), ``OLD`` is
  replaced by ``NEW`` in every later command (fewer epochs, a few steps);
* ``<!-- picture: PATH => docs/images/NAME.png -->``: the full run copies the
  picture the tutorial made at ``PATH`` into ``docs/images/``, where the page shows it.

``python tests/tutorials.py docs/tutorials/02-mnist-from-scratch.md`` runs a
tutorial as written (full length) and refreshes its pictures; the tests run each
one quick (``tests/test_tutorials.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "docs" / "tutorials"

_FENCE = re.compile(r"^```(\w*)(.*)$")
_QUICK = re.compile(r"<!--\s*quick:\s*(.+?)\s*=>\s*(.*?)\s*-->")
_PICTURE = re.compile(r"<!--\s*picture:\s*(.+?)\s*=>\s*(.+?)\s*-->")


@dataclass
class Step:
    kind: str  # "shell", "python" or "file"
    text: str
    name: str = ""  # for "file"
    quick: list[tuple[str, str]] = field(default_factory=list)  # replacements in force at this step


def parse(path: Path) -> tuple[list[Step], list[tuple[str, str]]]:
    """The steps of a tutorial and its pictures ``(made at, shown from)``."""
    steps: list[Step] = []
    pictures: list[tuple[str, str]] = []
    quick: list[tuple[str, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        for old, new in _QUICK.findall(line):
            quick = [*quick, (old, new)]
        pictures += _PICTURE.findall(line)
        fence = _FENCE.match(line)
        if not fence:
            index += 1
            continue
        language, options = fence.group(1), fence.group(2)
        body = []
        index += 1
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        target = re.search(r"file=(\S+)", options)
        if target:
            steps.append(Step("file", "\n".join(body) + "\n", target.group(1)))
        elif language == "console":
            command = None
            for text in body:
                if command is None and not text.startswith("$ "):
                    continue  # what the command printed
                part = text[2:] if command is None else text
                command = (command or "") + part.removesuffix("\\")
                if not part.endswith("\\"):
                    steps.append(Step("shell", " ".join(command.split()), quick=quick))
                    command = None
        elif language == "python":
            steps.append(Step("python", "\n".join(body) + "\n", quick=quick))
    return steps, pictures


def sandbox(folder: Path) -> Path:
    """A working folder laid out like a checkout: ``sample_data/`` in it, ``../shared/data/`` beside it."""
    work = folder / "project"
    work.mkdir(parents=True)
    os.symlink(ROOT / "sample_data", work / "sample_data")
    shared = ROOT.parent / "shared"
    if shared.exists():
        os.symlink(shared, folder / "shared")
    return work


def run(path: Path, work: Path, *, quick: bool, timeout: float = 1800) -> None:
    """Run every step of the tutorial at ``path`` in ``work``; raise AssertionError at the first that fails."""
    steps, _ = parse(path)
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "COLUMNS": "120",
    }
    for number, step in enumerate(steps, 1):
        text = step.text
        if quick:
            for old, new in step.quick:
                text = text.replace(old, new)
        if step.kind == "file":
            (work / step.name).write_text(text, encoding="utf-8")
            continue
        if step.kind == "python":
            command = [sys.executable, "-c", text]
        else:
            command = ["bash", "-c", text]
        result = subprocess.run(command, cwd=work, env=environment, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            output = f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            raise AssertionError(f"{path.name}, step {number} ({step.kind}) exited {result.returncode}:\n{text}\n{output}")
        print(f"[{path.name} {number}/{len(steps)}] {text.splitlines()[0][:100]}", flush=True)
        if not quick:  # what the reader will see, to quote on the page
            for line in (result.stdout + result.stderr).strip().splitlines()[-12:]:
                print(f"    {line}", flush=True)


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(TUTORIALS.glob("*.md"))
    for path in paths:
        with tempfile.TemporaryDirectory() as scratch:
            work = sandbox(Path(scratch))
            run(path, work, quick=False)
            for made, shown in parse(path)[1]:
                shutil.copy(work / made, ROOT / shown)
                print(f"picture {made} -> {shown}")


if __name__ == "__main__":
    main()
