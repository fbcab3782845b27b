"""Turning command-line arguments (files, folders, globs) into a sorted list of inputs."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "Input", "expand_inputs", "natural_key"]

#: File name endings that folders are searched for (case-insensitive).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".mpo", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})


@dataclass(frozen=True)
class Input:
    """One input of a batch.

    Attributes
    ----------
    path : Path
        The file to read.
    relative : Path
        Where its outputs go under an output folder: the path below the folder
        argument it was found in, or just the file name.
    """

    path: Path
    relative: Path


def natural_key(path: Path | str) -> list[object]:
    import re

    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def expand_inputs(arguments: list[str]) -> tuple[list[Input], list[tuple[str, str]]]:
    """Expand files, folders (searched recursively for images) and glob patterns.

    Parameters
    ----------
    arguments : list of str
        As typed on the command line.

    Returns
    -------
    inputs : list of Input
        In argument order; the files of a folder or glob in natural order
        (``2.png`` before ``10.png``); each file once.
    problems : list of (str, str)
        Arguments that gave nothing, with the reason: a missing path, a glob
        that matches nothing, a folder without images; and links to folders
        inside a folder, which are not followed.
    """
    inputs: list[Input] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.absolute()
        if key not in seen:
            seen.add(key)
            inputs.append(Input(path, relative))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found, links = [], []
            for p in path.rglob("*"):
                if p.is_dir():
                    if p.is_symlink():
                        links.append(p)
                elif p.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(p)
            found.sort(key=natural_key)
            # The walk does not enter links to folders (they can loop): say so rather than skip them quietly.
            for link in sorted(links, key=natural_key):
                problems.append((str(link), "is a link to a folder, which leafprep does not follow (links can loop); pass the folder itself"))
            if not found:
                problems.append((argument, "the folder holds no image files (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")"))
            for p in found:
                add(p, p.relative_to(path))
        elif path.exists() or os.path.lexists(path):
            add(path, Path(path.name))
        elif glob.has_magic(argument):
            matches = sorted((Path(m) for m in glob.glob(argument, recursive=True)), key=natural_key)
            files = [m for m in matches if not m.is_dir()]
            if not files:
                problems.append((argument, "the pattern matches no file"))
            for m in files:
                add(m, Path(m.name))
        else:
            problems.append((argument, "no such file or folder"))
    return inputs, problems
