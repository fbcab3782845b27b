"""The ``leafprep`` command: a thin face over the Python API.

Exit codes (every command):

* 0 -- every input was processed;
* 1 -- at least one input failed (each is listed with the reason; the others
  were processed);
* 2 -- the command line itself is wrong (unknown option, bad value, no input);
* 130 -- interrupted with Ctrl-C.

Heavy libraries (OpenCV, scikit-image, matplotlib, TensorFlow) are imported
inside the commands that need them, so ``leafprep --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ._version import __version__
from .errors import DOUBT, LEFT_OUT, LeafprepError, LeafprepWarning, printable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .inputs import Input

app = typer.Typer(
    name="leafprep",
    help="Turn photos of handwritten digits and leaves into clean MNIST-style training data.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_PICTURE_SUFFIXES = (".png", ".svg", ".pdf")
#: The side of a leaf image when --size is not given (normalize, build): the leaf recipe's (docs/training.md).
LEAF_SIZE = 64
#: ... and of a digit's (MNIST's).
DIGIT_SIZE = 28


def _default_side(kind: str) -> int:
    """The side of a ``kind`` image when --size is not given."""
    return LEAF_SIZE if kind == "leaf" else DIGIT_SIZE


class Kind(StrEnum):
    """What the photos show."""

    digit = "digit"
    leaf = "leaf"
    auto = "auto"


class Mode(StrEnum):
    """How a leaf is drawn."""

    gray = "gray"
    silhouette = "silhouette"
    rgb = "rgb"


def _version(value: bool) -> None:
    if value:
        out_console.print(f"leafprep {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Turn photos of handwritten digits and leaves into clean MNIST-style training data."""


def _say(label: str, message: str) -> None:
    """``label: message`` on stderr, the label in red; the message (file names...) is never read as markup."""
    err_console.print(f"[red]{label}:[/red] {escape(message)}", highlight=False)


def _inputs(count: int) -> str:
    """'is 1 input' or 'are N inputs', for messages."""
    return "is 1 input" if count == 1 else f"are {count} inputs"


def _usage_error(message: str) -> typer.Exit:
    _say("error", message)
    return typer.Exit(EXIT_USAGE)


@dataclass
class Batch:
    """Counts and failures of one command over many inputs."""

    total: int = 0
    done: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, source: str, reason: str) -> None:
        self.failures.append((source, reason))

    def report(self, verb: str) -> int:
        """Print the summary and return the exit code."""
        if self.warnings:
            err_console.print(f"[yellow]{len(self.warnings)} warning(s):[/yellow]")
            for source, message in self.warnings:
                err_console.print(f"  {printable(source)}: {message}", markup=False, highlight=False)
        if not self.failures:
            err_console.print(f"{verb} {self.done} of {self.total} input(s).")
            return EXIT_OK
        err_console.print(f"[red]{len(self.failures)} input(s) failed:[/red]")
        for source, reason in self.failures:
            err_console.print(f"  {printable(source)}: {reason}", markup=False, highlight=False)
        err_console.print(f"{verb} {self.done} of {self.total} input(s); [red]{len(self.failures)} failed[/red].")
        return EXIT_FAILED


@contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr for batches; a no-op for a single input."""
    if total <= 1:
        yield lambda _name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("working", total=total)
        yield lambda name: progress.update(task, advance=1, description=name[-40:])


@contextmanager
def _fails_cleanly() -> Iterator[None]:
    """A :class:`LeafprepError` becomes its message on stderr and exit code 1 (no traceback)."""
    try:
        yield
    except LeafprepError as exc:
        _say("error", str(exc))
        raise typer.Exit(EXIT_FAILED) from None


@contextmanager
def _warnings_shown() -> Iterator[None]:
    """Print each :class:`LeafprepWarning` as it happens, as one yellow line (not Python's warning format)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", LeafprepWarning)
        default = warnings.showwarning

        def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(message, LeafprepWarning):
                err_console.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False)
            else:
                default(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def _run(batch: Batch, inputs: list[Input], work: Callable[[Input], None]) -> None:
    """Apply ``work`` to each input; a failing input is recorded and the batch goes on; Ctrl-C exits 130."""
    try:
        _run_each(batch, inputs, work)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _run_each(batch: Batch, inputs: list[Input], work: Callable[[Input], None]) -> None:
    with _progress(len(inputs)) as advance:
        for item in inputs:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", LeafprepWarning)
                    work(item)
                batch.warnings += [(str(item.path), w.message.message) for w in caught if isinstance(w.message, LeafprepWarning)]
                batch.done += 1
            except LeafprepError as exc:
                batch.fail(str(item.path), exc.reason + (f" ({exc.hint})" if exc.hint else ""))
            except OSError as exc:
                batch.fail(str(item.path), f"cannot write the output: {exc.strerror or exc}")
            except MemoryError:
                batch.fail(str(item.path), "out of memory (lower --max-pixels or free memory)")
            except Exception as exc:  # a bug must not lose the rest of the batch
                batch.fail(str(item.path), f"internal error {type(exc).__name__}: {exc} (please report it)")
            advance(str(item.path))


def _collect(photos: list[str], batch: Batch) -> list[Input]:
    from .inputs import expand_inputs

    inputs, problems = expand_inputs(photos)
    for argument, reason in problems:
        batch.fail(argument, reason)
    batch.total = len(inputs) + len(problems)
    return inputs


class _Outputs:
    """Decides where each result is written: one named file, or a folder mirroring the inputs."""

    def __init__(self, out: Path, suffix: str, single_file: bool) -> None:
        self.out, self.suffix, self.single_file = out, suffix, single_file
        self.taken: dict[Path, Path] = {}  # each output, and the input it is of

    def path(self, item: Input, index: int | None = None) -> Path:
        """Where ``item``'s result (its object ``index``) goes; two inputs that would share a name (``a.jpg`` and
        ``a.png``) get ``a.png`` and ``a_2.png``, and the second is said."""
        if self.single_file:
            return self.out
        relative = item.relative.with_suffix("")
        if index is not None:
            relative = relative.with_name(f"{relative.name}-{index:02d}")
        wanted = candidate = self.out / relative.with_suffix(self.suffix)
        number = 2
        while candidate in self.taken:
            candidate = self.out / relative.with_name(f"{relative.name}_{number}").with_suffix(self.suffix)
            number += 1
        if candidate != wanted and self.taken[wanted] != item.path:
            other = printable(str(self.taken[wanted]))
            err_console.print(
                f"{printable(str(item.path))}: written as {printable(str(candidate))} ({wanted.name} is {other}'s)", markup=False, highlight=False
            )
        self.taken[candidate] = item.path
        return candidate


def _say_found(item: Input, count: int, kind: str) -> None:
    """One line a photo for --all: how many objects were found (what was left out comes as a warning)."""
    noun = {"leaf": ("leaf", "leaves"), "digit": ("digit", "digits")}[kind][count != 1]
    err_console.print(f"{printable(str(item.path))}: {count} {noun}", markup=False, highlight=False)


def write_image(path: Path, image: np.ndarray) -> None:
    """Write a [0, 1] float image (grey or RGB) as 8-bit PNG, or as float32 ``.npy`` when ``path`` ends so."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".npy":
        np.save(path, image.astype(np.float32), allow_pickle=False)
        return
    from PIL import Image

    Image.fromarray(np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)).save(path, format="PNG")


@app.command()
def normalize(
    photos: Annotated[list[str], typer.Argument(help="Photos, folders (searched recursively) or glob patterns.", show_default=False)],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output file (.png or .npy, one input only) or folder. Default: ./normalized/"),
    ] = None,
    size: Annotated[
        Optional[int],
        typer.Option(
            min=8,
            max=1024,
            help=f"Side of the output image in pixels (the object fills size*20/28); default {LEAF_SIZE} for --kind leaf, as build's, "
            f"else {DIGIT_SIZE}.",
        ),
    ] = None,
    kind: Annotated[Kind, typer.Option(help="What the photos show; auto decides per photo and says what it chose.")] = Kind.digit,
    mode: Annotated[
        Optional[Mode], typer.Option(help="Leaves: gray texture bright on black (default), the silhouette, or rgb colours on black.")
    ] = None,
    margin: Annotated[
        Optional[float], typer.Option(min=0.0, max=0.49, help="Empty border on each side, as a fraction of --size (default 4/28).")
    ] = None,
    orient: Annotated[bool, typer.Option(help="Leaves: turn the main axis upright, petiole down.")] = False,
    fill_holes: Annotated[bool, typer.Option(help="Leaves: fill every hole in the blade.")] = False,
    petiole: Annotated[bool, typer.Option(help="Leaves: keep the petiole (--no-petiole cuts it off).")] = True,
    all_digits: Annotated[
        bool,
        typer.Option("--all", help="Write every object: each digit of a sheet, each leaf of a scanner bed, in reading order (NAME-00, NAME-01...)."),
    ] = False,
    deskew: Annotated[bool, typer.Option(help="Shear each digit upright before fitting it.")] = False,
    file_format: Annotated[str, typer.Option("--format", help="File type written into an output folder: png or npy.")] = "png",
    preview: Annotated[bool, typer.Option(help="Print each result as a block-character picture.")] = False,
    steps: Annotated[Optional[Path], typer.Option(help="Write a picture of every stage: a .png/.svg/.pdf file (one input) or a folder.")] = None,
    contact_sheet: Annotated[
        Optional[Path],
        typer.Option(
            "--contact-sheet", help="Write one PNG with every photo beside its result (with --all: each object, its piece of the photo beside it)."
        ),
    ] = None,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images that declare more pixels than this.")] = 150_000_000,
) -> None:
    """Normalise photos of handwritten digits or leaves into MNIST-style images.

    Each digit (or leaf) is found on its background, fitted into a 20x20 box
    (for --size 28) with its centre of mass at the centre, bright on black,
    like MNIST.
    """
    if file_format not in ("png", "npy"):
        raise _usage_error(f"--format must be png or npy, got {file_format!r}")
    size = size if size is not None else _default_side(kind.value)
    batch = Batch()
    inputs = _collect(photos, batch)
    if batch.total == 0:
        raise _usage_error("no input given")
    out = out if out is not None else Path("normalized")
    single_file = out.suffix.lower() in (".png", ".npy")
    if single_file and (len(inputs) > 1 or all_digits):
        raise _usage_error(f"--out {out} names one file, but there {_inputs(len(inputs))}{' and --all' if all_digits else ''}: give a folder")
    if steps is not None and all_digits:
        raise _usage_error("--steps shows one object per photo and cannot be combined with --all")
    if all_digits and kind == Kind.auto:
        raise _usage_error("--all needs to know what to look for: use it with --kind digit or --kind leaf")
    if kind == Kind.digit and mode not in (None, Mode.gray):
        raise _usage_error("--mode is for leaves: digits are always gray")
    options = {
        "mode": mode.value if mode else None,
        "margin": margin,
        "deskew": deskew,
        "orient": orient,
        "fill_holes": fill_holes,
        "petiole": petiole,
        "max_pixels": max_pixels,
    }
    outputs = _Outputs(out, "." + (out.suffix.lower().lstrip(".") if single_file else file_format), single_file)
    steps_single = steps is not None and steps.suffix.lower() in _PICTURE_SUFFIXES and len(inputs) == 1
    steps_outputs = _Outputs(steps, ".png", steps_single) if steps is not None else None

    from . import normalization

    sheet_entries: list[tuple[str, np.ndarray | None, np.ndarray]] = []

    def show(name: str, image: np.ndarray) -> None:
        if preview:
            from .figures import text_preview

            out_console.print(f"[bold]{escape(printable(name))}[/bold]")
            out_console.print(text_preview(image), markup=False)

    def work(item: Input) -> None:
        if all_digits:
            found = normalization.normalize_all(item.path, kind.value, size, **options)  # type: ignore[arg-type]
            photo = None
            if contact_sheet is not None and found:  # each object's own piece of the photo beside it (a second decode)
                from .figures import thumbnail
                from .loading import load_image

                photo = load_image(item.path, max_pixels=max_pixels)
            for index, cutout in enumerate(found):
                write_image(outputs.path(item, index), cutout.image)
                x, y, w, h = cutout.box
                show(f"{item.path} #{index:02d}: box x={x} y={y} w={w} h={h}", cutout.image)
                if photo is not None:
                    pad = max(2, round(0.05 * max(w, h)))
                    piece = photo[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad]
                    sheet_entries.append((f"{item.relative.stem} #{index:02d}", thumbnail(piece, 112), cutout.image))
            _say_found(item, len(found), kind.value)
            return
        result = normalization.normalize_steps(item.path, kind.value, size, **options)  # type: ignore[arg-type]
        if kind == Kind.auto:
            err_console.print(f"{printable(str(item.path))}: {result.notes[0]}", markup=False, highlight=False)
        write_image(outputs.path(item), result.result)
        show(str(item.path), result.result)
        if contact_sheet is not None:
            from .figures import thumbnail

            sheet_entries.append((str(item.relative), thumbnail(result.photo, 112), result.result))
        if steps_outputs is not None:
            from .figures import save_steps

            target = steps_outputs.path(item)
            target.parent.mkdir(parents=True, exist_ok=True)
            save_steps(result, target, title=str(item.path))

    _run(batch, inputs, work)
    if contact_sheet is not None and sheet_entries:
        from PIL import Image

        from .figures import contact_sheet as make_sheet

        contact_sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_sheet(sheet_entries)).save(contact_sheet)
        err_console.print(f"Contact sheet in {escape(str(contact_sheet))}")
    code = batch.report("Normalised")
    if batch.done:
        err_console.print(f"Results in {escape(str(out))}")
    raise typer.Exit(code)


@app.command()
def segment(
    photos: Annotated[list[str], typer.Argument(help="Photos, folders (searched recursively) or glob patterns.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Mask file (.png, one input only) or folder. Default: ./masks/")] = None,
    kind: Annotated[Kind, typer.Option(help="What to find; auto decides per photo and says what it chose.")] = Kind.leaf,
    overlay: Annotated[
        Optional[Path], typer.Option(help="Also write the photo with the mask's outline: a .png file (one input) or a folder.")
    ] = None,
    fill_holes: Annotated[bool, typer.Option(help="Leaves: fill every hole in the blade.")] = False,
    petiole: Annotated[bool, typer.Option(help="Leaves: keep the petiole (--no-petiole cuts it off).")] = True,
    every: Annotated[
        bool,
        typer.Option("--all", help="A mask for every object: each leaf of a scanner bed, each digit of a sheet (NAME-00, NAME-01...)."),
    ] = False,
    px_per_mm: Annotated[
        Optional[float], typer.Option(min=1e-6, help="--all: pixels per millimetre, for areas in mm² (default: the file's own resolution).")
    ] = None,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images that declare more pixels than this.")] = 150_000_000,
) -> None:
    """Write the mask of the leaf (or digit) in each photo: white object on black, the photo's size.

    With --all, one mask a leaf (or digit), in reading order, and a line for each on standard output:
    its number, box and area (in mm² where the scale is known).
    """
    batch = Batch()
    inputs = _collect(photos, batch)
    if batch.total == 0:
        raise _usage_error("no input given")
    out = out if out is not None else Path("masks")
    single_file = out.suffix.lower() == ".png"
    if single_file and (len(inputs) > 1 or every):
        raise _usage_error(f"--out {out} names one file, but there {_inputs(len(inputs))}{' and --all' if every else ''}: give a folder")
    if every and kind == Kind.auto:
        raise _usage_error("--all needs to know what to look for: use it with --kind leaf or --kind digit")
    outputs = _Outputs(out, ".png", single_file)
    overlay_single = overlay is not None and overlay.suffix.lower() == ".png" and len(inputs) == 1
    overlays = _Outputs(overlay, ".png", overlay_single) if overlay is not None else None

    import numpy as np
    from PIL import Image

    from . import segmentation
    from .loading import load_image

    def work_all(item: Input) -> None:
        from .loading import _load, file_facts

        loaded = _load(item.path, max_pixels=max_pixels, min_side=None) if overlays is not None else None
        found = segmentation.segment_all(
            item.path if loaded is None else loaded.rgb, kind.value, fill_holes=fill_holes, petiole=petiole, max_pixels=max_pixels
        )
        (height, width), resolution = (loaded.rgb.shape[:2], loaded.px_per_mm) if loaded is not None else file_facts(item.path)
        scale = px_per_mm or resolution
        for each in found:
            mask = np.zeros((height, width), np.uint8)
            x, y, w, h = each.box
            mask[y : y + h, x : x + w][each.mask] = 255
            target = outputs.path(item, each.index)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(target, format="PNG")
            size = f"{each.area:,.0f} px" + (f" = {each.area_mm2(scale):,.1f} mm²" if scale else "")
            out_console.print(
                f"{printable(str(item.path))} #{each.index:02d}: box x={x} y={y} w={w} h={h}, area {size}", markup=False, highlight=False
            )
        _say_found(item, len(found), kind.value)
        if overlays is not None and loaded is not None:
            from .figures import outline_all

            picture = overlays.path(item)
            picture.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(outline_all(loaded.rgb, found)).save(picture, format="PNG")

    def work(item: Input) -> None:
        if every:
            work_all(item)
            return
        # Decode once when the photo itself is needed again (to choose the kind, to draw on it).
        photo = load_image(item.path, max_pixels=max_pixels) if kind == Kind.auto or overlays is not None else None
        chosen = kind.value
        if photo is not None and kind == Kind.auto:
            chosen = segmentation.detect_kind(photo)
            err_console.print(f"{printable(str(item.path))}: kind=auto chose {chosen}", markup=False, highlight=False)
        source = item.path if photo is None else photo
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LeafprepWarning)
            mask = segmentation.segment(source, chosen, fill_holes=fill_holes, petiole=petiole, max_pixels=max_pixels)
        notes = [w.message for w in caught if isinstance(w.message, LeafprepWarning)]
        for note in notes:  # on to the batch, which lists them
            warnings.warn(note, stacklevel=1)
        target = outputs.path(item)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype("uint8") * 255).save(target, format="PNG")
        if overlays is not None and photo is not None:
            from .figures import outline

            picture = overlays.path(item)
            picture.parent.mkdir(parents=True, exist_ok=True)
            doubts = [note.message.removeprefix(DOUBT) for note in notes if note.message.startswith(DOUBT)]
            Image.fromarray(outline(photo, mask, doubts=doubts)).save(picture, format="PNG")

    _run(batch, inputs, work)
    code = batch.report("Segmented")
    if batch.done:
        err_console.print(f"Masks in {escape(str(out))}")
    raise typer.Exit(code)


@app.command()
def describe(
    photos: Annotated[list[str], typer.Argument(help="Leaf photos, folders (searched recursively) or glob patterns.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file: one row a photo, or a leaf with --all (source, label, then every descriptor).")],
    px_per_mm: Annotated[
        Optional[float],
        typer.Option(
            min=1e-6, help="Pixels of the full photo per millimetre, for the sizes in mm (else the file's own resolution, else they are empty)."
        ),
    ] = None,
    fill_holes: Annotated[bool, typer.Option(help="Fill every hole in the blade.")] = False,
    petiole: Annotated[bool, typer.Option(help="Keep the petiole (--no-petiole cuts it off).")] = True,
    every: Annotated[
        bool, typer.Option("--all", help="Measure every leaf of a photo (a scanner bed): one row a leaf, with its number and box.")
    ] = False,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images that declare more pixels than this.")] = 150_000_000,
) -> None:
    """Measure the leaf of each photo: size, shape, outline, margin, colour and texture, one CSV row a photo.

    The label of a row is the first folder below the folder argument (leaves/Acer/1.jpg: Acer),
    so the CSV reads straight into pandas and scikit-learn. Photos that fail are listed, not written.
    Sizes in mm come from --px-per-mm, else from the file's own resolution (a scan's DPI), else they are empty.
    With --all, each row also has the leaf's number in reading order and its box (leaf, x, y, width, height).
    """
    import csv

    from .description import DESCRIPTOR_NAMES, describe_all
    from .description import describe as measure

    batch = Batch()
    inputs = _collect(photos, batch)
    if batch.total == 0:
        raise _usage_error("no input given")
    rows: list[list[str]] = []

    def cells(values: Any) -> list[str]:
        return ["" if value != value else repr(float(value)) for value in values]

    def work(item: Input) -> None:
        label = item.relative.parts[0] if len(item.relative.parts) > 1 else ""
        if every:
            leaves = describe_all(item.path, px_per_mm=px_per_mm, fill_holes=fill_holes, petiole=petiole, max_pixels=max_pixels)
            rows.extend([str(item.path), label, str(index), *map(str, box), *cells(found.values)] for index, (box, found) in enumerate(leaves))
            _say_found(item, len(leaves), "leaf")
            return
        values = measure(item.path, px_per_mm=px_per_mm, fill_holes=fill_holes, petiole=petiole, max_pixels=max_pixels).values
        rows.append([str(item.path), label, *cells(values)])

    _run(batch, inputs, work)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "label", *(("leaf", "x", "y", "width", "height") if every else ()), *DESCRIPTOR_NAMES])
        writer.writerows(rows)
    code = batch.report("Described")
    err_console.print(f"{len(rows)} row(s) of {len(DESCRIPTOR_NAMES)} descriptors in {escape(str(out))}")
    raise typer.Exit(code)


@app.command()
def augment(
    images: Annotated[list[str], typer.Argument(help="Normalised images (PNG...), folders (searched recursively) or globs.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the copies (NAME-01.png ...), mirroring the inputs.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Augmented copies of each image.")] = 5,
    preset: Annotated[str, typer.Option(help="digits, leaves, or a YAML/JSON albumentations pipeline file.")] = "digits",
    seed: Annotated[int, typer.Option(help="Seed: the same inputs and seed give the same copies.")] = 0,
    preview: Annotated[Optional[Path], typer.Option(help="Draw each image (up to 12) beside its copies in one PNG.")] = None,
) -> None:
    """Write augmented copies of normalised images, or preview them as a grid."""
    batch = Batch()
    inputs = _collect(images, batch)
    if batch.total == 0:
        raise _usage_error("no input given")
    if out is None and preview is None:
        raise _usage_error("give --out DIR for the copies, --preview FILE.png for a grid, or both")
    import zlib

    from PIL import Image

    from .augmentation import augment as make_copies
    from .loading import load_image

    outputs = _Outputs(out, ".png", False) if out is not None else None
    rows: list[list[tuple[str, None, Any]]] = []

    def work(item: Input) -> None:
        rgb = load_image(item.path)
        grey = bool((rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all())
        image = rgb[:, :, 0] if grey else rgb
        copies = make_copies(image, preset, n=n, seed=seed ^ zlib.crc32(item.relative.as_posix().encode("utf-8")))
        if outputs is not None:
            for index, copy in enumerate(copies, 1):
                target = outputs.path(item, index)
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(copy).save(target, format="PNG")
        if preview is not None and len(rows) < 12:
            rows.append([(item.path.name if k == 0 else "", None, picture) for k, picture in enumerate([image, *copies])])

    _run(batch, inputs, work)
    if preview is not None and rows:
        from .figures import contact_sheet

        preview.parent.mkdir(parents=True, exist_ok=True)
        sheet = contact_sheet([entry for row in rows for entry in row], tile=64, columns=n + 1)
        Image.fromarray(sheet).save(preview, format="PNG")
        err_console.print(f"Preview in {escape(str(preview))}")
    code = batch.report("Augmented")
    if batch.done and out is not None:
        err_console.print(f"{batch.done * n} copies in {escape(str(out))}")
    raise typer.Exit(code)


class BuildKind(StrEnum):
    """How each image is normalised for a dataset."""

    digit = "digit"
    leaf = "leaf"
    auto = "auto"
    none = "none"


class Runner(StrEnum):
    local = "local"
    beam = "beam"
    dask = "dask"


@app.command()
def build(
    source: Annotated[
        str, typer.Argument(help="A folder of class folders (optionally under train/ val/ test/), a CSV, or MNIST IDX files.", metavar="SOURCE")
    ],
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder for the shards, labels, manifest and dataset_info.json.")],
    kind: Annotated[
        Optional[BuildKind],
        typer.Option(help="How to normalise: digit, leaf, auto, or none (already normalised). Default: none for IDX, else digit."),
    ] = None,
    size: Annotated[
        Optional[int], typer.Option(min=8, max=1024, help=f"Side of every image in pixels (default: {LEAF_SIZE} for leaves, else {DIGIT_SIZE}).")
    ] = None,
    mode: Annotated[Optional[Mode], typer.Option(help="Leaves: gray (default), silhouette or rgb.")] = None,
    split: Annotated[str, typer.Option(help="Train/validation/test proportions, e.g. 80/10/10 or 2/1 (no validation).")] = "80/10/10",
    seed: Annotated[int, typer.Option(help="Seed of the split and the order of examples.")] = 0,
    augment: Annotated[int, typer.Option(min=0, help="Augmented copies of each training example.")] = 0,
    augment_preset: Annotated[
        Optional[str], typer.Option(help="Pipeline for --augment: digits, leaves or a YAML/JSON albumentations file. Default: by --kind.")
    ] = None,
    shard_mb: Annotated[float, typer.Option(min=0.01, help="Target size of a shard in megabytes.")] = 64.0,
    descriptors: Annotated[bool, typer.Option(help="Leaves: store each leaf's descriptors in its records (--no-descriptors: images only).")] = True,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Leaves: every leaf of a photo becomes an example (scanner beds); a photo's leaves share a split. Local runner only."
        ),
    ] = False,
    workers: Annotated[
        Optional[int],
        typer.Option(
            min=0, help="Worker processes (default: the cores; 0 or 1: none, all in this process); with --runner beam or dask, those started here."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the contents of a non-empty folder that is not a leafprep dataset.")] = False,
    runner: Annotated[
        Runner,
        typer.Option(help="local (worker processes), beam (Apache Beam: leafprep's beam extra) or dask (Beam on a Dask cluster: the dask extra)."),
    ] = Runner.local,
    beam_option: Annotated[
        Optional[list[str]],
        typer.Option(help="A Beam pipeline option KEY=VALUE, repeatable (runner=DataflowRunner, project=..., temp_location=gs://...)."),
    ] = None,
    dask_address: Annotated[
        Optional[str],
        typer.Option(help="--runner dask: the Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster, a worker a core)."),
    ] = None,
) -> None:
    """Build train/validation/test TFRecord shards from a folder of photos, a CSV or MNIST's IDX files.

    Every input is listed in manifest.csv: written, rejected (with the reason) or duplicate,
    with what leafprep warned of it (a doubtful mask, a leaf cut by the border).
    With --kind leaf every record also holds the leaf's descriptors (shape, margin,
    colour, texture: see 'leafprep describe'), measured on the same mask.
    With --runner beam the same dataset (byte for byte) is built by Apache Beam:
    on this machine by Beam's local runner, or on Dataflow, Flink or Spark
    with --beam-option runner=... and that runner's options; SOURCE and --out
    may then be gs:// or s3:// paths. --runner dask runs the Beam build on a
    Dask cluster (--dask-address), whose workers all see SOURCE and --out.
    """
    from . import build as builder
    from .errors import LeafprepError as Error

    try:
        proportions = builder.parse_split(split)
        chosen = kind.value if kind else ("none" if _is_idx(Path(source)) else "digit")
        side = size if size is not None else _default_side(chosen)
        options = builder.BuildOptions(
            chosen, side, mode.value if mode else None, proportions, seed, augment, shard_mb, augment_preset, descriptors, every
        )
        if dask_address and runner != Runner.dask:
            raise _usage_error("--dask-address goes with --runner dask")
        if every and runner != Runner.local:
            raise _usage_error(f"--all (every leaf of a photo) is built by the local runner only: leave out --runner {runner.value}")
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("finding inputs", total=None, rate="")

            def progress(done: int, total: int, stage: str) -> None:
                if bar.tasks[0].description != stage:
                    bar.reset(task, description=stage)
                speed = bar.tasks[0].speed
                bar.update(task, completed=done, total=total, rate=f"{speed:.0f}/s" if speed else "")

            if runner == Runner.local:
                report = builder.build(source, out, options, workers=workers, overwrite=overwrite, progress=progress)
            else:
                beam_arguments = list(beam_option or [])
                if runner == Runner.dask:
                    beam_arguments = ["runner=DaskRunner", *beam_arguments] + ([f"dask_client_address={dask_address}"] if dask_address else [])
                report = _build_on_beam(source, out, options, beam_arguments, overwrite, workers, progress)
    except Error as exc:
        _say("error", str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    except OSError as exc:  # a full disk, a folder that cannot be written
        where = exc.filename or out
        _say("error", f"cannot write {printable(str(where))}: {exc.strerror or exc}; the dataset is incomplete (no _COMPLETE)")
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]: the dataset is incomplete; run the same command again to finish it")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _print_build_summary(report)
    rejected = [item for item in report.items if item.status == "rejected"]
    raise typer.Exit(EXIT_FAILED if rejected else EXIT_OK)


def _not_about_harness_folders(record: Any) -> bool:
    return "semi_persistent_directory" not in record.getMessage()


def _build_on_beam(
    source: str, out: str, options: Any, beam_options: list[str], overwrite: bool, workers: int | None, progress: Callable[[int, int, str], None]
) -> Any:
    """``build --runner beam``: Beam's options as --KEY=VALUE; its own logging kept to warnings."""
    import logging

    from .beam import build_with_beam, runner_name

    arguments = []
    for option in beam_options:
        key, equals, value = option.partition("=")
        if not equals or not key.strip():
            raise _usage_error(f"--beam-option must look like KEY=VALUE, got {option!r}")
        arguments.append(f"--{key.strip().lstrip('-')}={value}")
    if not any(a.startswith("--default_sdk_harness_log_level") for a in arguments):
        arguments.append("--default_sdk_harness_log_level=WARNING")
    runner = runner_name(arguments)
    if runner == "DaskRunner":
        with contextlib.suppress(ImportError):  # said by the build; imported first, as importing sets its loggers' levels
            import distributed  # noqa: F401
    for name in ("apache_beam", "distributed"):  # their progress chatter; warnings (a worker lost) still show
        logging.getLogger(name).setLevel(logging.WARNING)
    # Each of the local runner's worker processes warns that it has no folder for user-registered schemas and
    # logical types (leafprep registers none), and the runner passes each warning on.
    relay = logging.getLogger("apache_beam.runners.portability.local_job_service")
    relay.addFilter(_not_about_harness_folders)  # the same function each time: added once
    err_console.print(f"building on Apache Beam ({runner})", highlight=False)
    return build_with_beam(source, out, options, beam_options=arguments, overwrite=overwrite, workers=workers, progress=progress)


def _is_idx(source: Path) -> bool:
    return source.is_dir() and any(source.glob("*-idx3-ubyte*"))


def _class_table(meta: dict[str, Any], title: str) -> Any:
    """Examples per class (rows) and split (columns), with totals."""
    from rich.table import Table

    table = Table("class", *meta["splits"], title=title, title_justify="left", show_footer=True)
    table.columns[0].footer = "total"
    for column, data in zip(table.columns[1:], meta["splits"].values(), strict=True):
        column.footer = str(data["examples"])
    for name in meta["labels"]:
        table.add_row(name, *(str(data["per_class"][name]) for data in meta["splits"].values()))
    return table


def _options_text(options: dict[str, Any]) -> str:
    """A dataset's build options as a line: 'kind leaf, size 64, split 0.67/0/0.33, ...' (unset ones left out)."""
    parts = []
    for name, value in options.items():
        if value is None:
            continue
        if name == "split":
            value = "/".join(f"{v:.2g}" for v in value)
        parts.append(f"{name} {value}")
    return ", ".join(parts)


def _print_build_summary(report: Any) -> None:
    meta = report.info
    err_console.print(_class_table(meta, f"dataset in {report.out}"))
    found = meta["inputs"]
    counts = f"{found['written']} written + {found['rejected']} rejected + {found['duplicate']} duplicate"
    if meta["options"].get("every"):  # an input is a leaf, or a whole photo where none could be had
        photos = {item.photo or item.source for item in report.items}
        whole = sum(1 for item in report.items if item.status == "rejected" and item.number < 0)
        inputs = f"leaves of {len(photos)} photo{'' if len(photos) == 1 else 's'}: {counts}" + (
            f" (of the rejected, {whole} a whole photo: unreadable, or no leaf found in it)" if whole else ""
        )
    else:
        inputs = f"inputs: {found['found']} found = {counts}"
    err_console.print(f"{inputs}; {len(meta['shards'])} shard(s); image {'x'.join(map(str, meta['image_shape']))}")
    for item in report.items:
        if item.status == "rejected":
            err_console.print(f"  rejected {printable(item.source)}: {item.reason}", markup=False, highlight=False)
    for name in report.empty_splits():
        few = "photos (a photo's leaves share a split)" if meta["options"].get("every") else "inputs"
        err_console.print(f"[yellow]the {name} split is empty[/yellow]: too few {few} a class for its share; add more or change --split")
    # What --all left out of a photo (specks, rectangles, fragments) is said once for all the photos; the warnings
    # that ask for a look at an input are listed one by one.
    left_out = sum(1 for item in report.items if item.status == "written" and LEFT_OUT in item.warnings)
    if left_out:
        err_console.print(f"{left_out} photo(s) with specks, rectangles or fragments left out as not leaves (the 'warnings' column of manifest.csv)")
    warned = [(item, [w for w in item.warnings.split("; ") if w and not w.startswith(LEFT_OUT)]) for item in report.items if item.status == "written"]
    warned = [(item, notes) for item, notes in warned if notes]
    if warned:
        doubtful = found.get("doubtful", 0)
        err_console.print(
            f"[yellow]{len(warned)} written input(s) with warnings, {doubtful} of them with a doubtful mask[/yellow] "
            "(check them: the 'warnings' column of manifest.csv lists each)"
        )
        for item, notes in warned:
            err_console.print(f"  warning {printable(item.source)}: {'; '.join(notes)}", markup=False, highlight=False)


@app.command()
def verify(folder: Annotated[Path, typer.Argument(help="A dataset folder written by 'leafprep build'.")]) -> None:
    """Read every record of a dataset and check CRCs, checksums and counts against dataset_info.json."""
    from .records import verify as check

    problems = check(folder)
    if problems:
        for problem in problems:
            _say("problem", problem)
        raise typer.Exit(EXIT_FAILED)
    out_console.print(f"{escape(str(folder))}: every shard and record checks out")


@app.command()
def inspect(
    folder: Annotated[Path, typer.Argument(help="A dataset folder written by 'leafprep build'.")],
    sheet: Annotated[Optional[Path], typer.Option(help="Contact sheet PNG with samples of every class. Default: FOLDER/inspect.png")] = None,
    per_class: Annotated[int, typer.Option(min=1, help="Samples of each class on the sheet.")] = 8,
) -> None:
    """Print a summary of a dataset and draw samples of every class and a class histogram."""
    from .records import info, iter_records

    with _fails_cleanly():
        meta = info(folder)
    out_console.print(_class_table(meta, f"{folder}: {'x'.join(map(str, meta['image_shape']))}, {len(meta['labels'])} classes"))
    out_console.print(
        f"train pixel mean {meta['train_pixel_mean']:.4f}, std {meta['train_pixel_std']:.4f}; built with {_options_text(meta['options'])}",
        markup=False,
        highlight=False,
    )

    import numpy as np

    from ._tf import tensorflow

    tf = tensorflow()

    samples: dict[str, list[np.ndarray]] = {name: [] for name in meta["labels"]}
    height, width, channels = meta["image_shape"]
    spec = {"image/raw": tf.io.FixedLenFeature([], tf.string), "label/name": tf.io.FixedLenFeature([], tf.string)}
    for shard in meta["shards"]:
        for _, payload in iter_records(folder / shard["file"]):
            parsed = tf.io.parse_single_example(payload, spec)
            name = parsed["label/name"].numpy().decode("utf-8")
            if len(samples[name]) < per_class:
                pixels = np.frombuffer(parsed["image/raw"].numpy(), np.uint8).reshape(height, width, channels)
                samples[name].append(pixels[:, :, 0] if channels == 1 else pixels)
        if all(len(v) >= per_class for v in samples.values()):
            break
    from PIL import Image

    from .figures import class_sheet

    target = sheet or folder / "inspect.png"
    counts = {name: sum(data["per_class"][name] for data in meta["splits"].values()) for name in meta["labels"]}
    Image.fromarray(class_sheet(samples, counts)).save(target)
    out_console.print(f"samples and class histogram in {escape(str(target))}")


class ModelName(StrEnum):
    """Models of the bundled trainer (trainers.models)."""

    softmax = "softmax"
    convnet = "convnet"
    fast = "fast"
    convnet_bn = "convnet-bn"
    leaf = "leaf"
    descriptors = "descriptors"
    leaf_fused = "leaf-fused"


class SplitName(StrEnum):
    """The parts of a dataset."""

    train = "train"
    val = "val"
    test = "test"


class OptimizerName(StrEnum):
    """Optimisers of the bundled trainer (trainers.models.OPTIMIZERS)."""

    adam = "adam"
    sgd = "sgd"


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="A dataset folder written by 'leafprep build'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: model.keras, preprocessing.json, metrics.json, history.csv, logs/.")],
    model: Annotated[
        Optional[ModelName],
        typer.Option(
            help="Which network (default: from the dataset: descriptors for leaves with descriptors, convnet for the rest; the recipe is printed)."
        ),
    ] = None,
    epochs: Annotated[
        Optional[int], typer.Option(min=1, help="At most this many epochs; early stopping may end sooner (default: the recipe's; 10 for digits).")
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option(min=1, help="Images a step (default: the model's; 32 for descriptors and leaf-fused, 128 for the others).")
    ] = None,
    learning_rate: Annotated[
        Optional[float],
        typer.Option(
            min=1e-7,
            help="The starting rate, taken to zero by a cosine (default: 0.3 for softmax, 3e-3 for descriptors and leaf-fused, 1e-3 for the rest).",
        ),
    ] = None,
    optimizer: Annotated[
        Optional[OptimizerName], typer.Option(help="adam, or plain sgd (default: the model's; sgd for softmax, adam for the others).")
    ] = None,
    augment: Annotated[
        Optional[str], typer.Option(help="Online augmentation: digits, leaves, a YAML/JSON pipeline, or none (default: the recipe's).")
    ] = None,
    patience: Annotated[
        Optional[int], typer.Option(min=1, help="Epochs without improvement before stopping (default: the recipe's; 3 for digits).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the weights' start, dropout, the shuffle and the augmentation: same seed, same run.")] = 0,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="Batches an epoch at most (quick trials).")] = None,
    skip_damaged: Annotated[bool, typer.Option(help="Leave damaged records out (each named in a warning) instead of stopping.")] = False,
    deskew: Annotated[
        Optional[bool],
        typer.Option("--deskew/--no-deskew", help="softmax only: shear each image upright inside the model (default: for digits)."),
    ] = None,
) -> None:
    """Train a network on a dataset; keep the best checkpoint and the preprocessing settings in a run folder."""
    from trainers.train import train as fit

    try:
        with _fails_cleanly(), _warnings_shown():
            metrics = fit(
                data,
                out,
                model=model.value if model else None,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                optimizer=optimizer.value if optimizer else None,
                augment=augment,
                seed=seed,
                patience=patience,
                max_steps=max_steps,
                verbose=2,
                skip_damaged=skip_damaged,
                deskew=deskew,
            )
    except KeyboardInterrupt:
        err_console.print(f"[red]interrupted[/red]: the best model so far is in {escape(str(out))}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    scores = ", ".join(f"{k.split('_')[0]} accuracy {v:.4f}" for k, v in metrics.items() if k.endswith("_accuracy"))
    err_console.print(
        f"{metrics['model']}: {metrics['epochs_run']} epochs in {metrics['train_seconds']:.0f} s; {scores or 'no val or test split'}; run in {out}"
    )


@app.command()
def evaluate(
    run_folder: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder written by 'leafprep train'.")],
    data: Annotated[Path, typer.Argument(help="A dataset folder built like the run's.")],
    split: Annotated[SplitName, typer.Option(help="train, val or test.")] = SplitName.test,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the report and pictures (default: the run folder).")] = None,
    skip_damaged: Annotated[bool, typer.Option(help="Leave damaged records out (each named in a warning) instead of stopping.")] = False,
) -> None:
    """Accuracy, per-class precision and recall, a confusion-matrix PNG and a contact sheet of the worst mistakes."""
    from rich.table import Table

    from trainers.evaluate import evaluate as check

    with _fails_cleanly(), _warnings_shown():
        report = check(run_folder, data, split.value, out=out, skip_damaged=skip_damaged)
    table = Table("class", "precision", "recall", "examples", title=f"{split.value}: accuracy {report['accuracy']:.4f} on {report['examples']}")
    for name, row in report["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", str(row["support"]))
    out_console.print(table)
    err_console.print(f"confusion matrix in {escape(report['files']['confusion'])}, worst mistakes in {escape(report['files']['mistakes'])}")


def _ranked(top: list[tuple[str, float]]) -> str:
    """Classes and their probabilities, most likely first: 'oak 0.912, ash 0.051'."""
    return ", ".join(f"{label} {probability:.3f}" for label, probability in top)


@app.command()
def predict(
    run_folder: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder written by 'leafprep train'.")],
    photos: Annotated[list[str], typer.Argument(help="Photos, folders (searched recursively) or globs.", show_default=False)],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes to print for each photo.")] = 3,
    all_digits: Annotated[
        bool, typer.Option("--all", help="Read every digit of a sheet and print the number; name every leaf of a photo of several.")
    ] = False,
    steps: Annotated[Optional[Path], typer.Option(help="Picture of photo, input and probabilities: a .png (one photo) or a folder.")] = None,
) -> None:
    """Normalise each photo with the run's own settings and print its most likely classes."""
    from trainers.predict import predict as answer
    from trainers.predict import predict_leaves, predict_sheet, save_steps
    from trainers.runs import load_run

    with _fails_cleanly():
        loaded = load_run(run_folder)
    batch = Batch()
    inputs = _collect(photos, batch)
    if batch.total == 0:
        raise _usage_error("no input given")
    if all_digits and steps is not None:
        raise _usage_error("--steps shows one object per photo and cannot be combined with --all")
    pictures = _Outputs(steps, ".png", steps.suffix.lower() == ".png" and len(inputs) == 1) if steps is not None else None

    def work(item: Input) -> None:
        if all_digits and loaded.settings["kind"] == "leaf":
            overall, leaves = predict_leaves(loaded, item.path, top_k=top_k)
            ranked = _ranked(overall)
            over = f"{len(leaves)} lea{'f' if len(leaves) == 1 else 'ves'}"
            out_console.print(f"{printable(str(item.path))}: {overall[0][0]}  ({ranked}; over {over})", markup=False, highlight=False)
            for n, leaf in enumerate(leaves):
                out_console.print(f"  leaf {n:02d}: {leaf.label}  ({_ranked(leaf.top)})", markup=False, highlight=False)
            return
        if all_digits:
            number, found = predict_sheet(loaded, item.path, top_k=top_k)
            digits = ", ".join(f"{p.label} {p.top[0][1]:.2f}" for p in found)
            out_console.print(f"{printable(str(item.path))}: {number}  ({digits})", markup=False, highlight=False)
            return
        prediction = answer(loaded, [item.path], top_k=top_k)[0]
        ranked = _ranked(prediction.top)
        out_console.print(f"{printable(str(item.path))}: {prediction.label}  ({ranked})", markup=False, highlight=False)
        if pictures is not None:
            target = pictures.path(item)
            target.parent.mkdir(parents=True, exist_ok=True)
            save_steps(loaded, item.path, prediction, target)

    _run(batch, inputs, work)
    raise typer.Exit(batch.report("Predicted"))


class What(StrEnum):
    """What 'leafprep visualize' draws."""

    weights = "weights"
    dream = "dream"
    saliency = "saliency"
    gradcam = "gradcam"
    activations = "activations"


class Prior(StrEnum):
    """What keeps 'leafprep visualize --what dream' on pictures like the data."""

    auto = "auto"
    vae = "vae"
    ae = "ae"
    none = "none"


@app.command()
def visualize(
    run_folder: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder written by 'leafprep train'.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The picture (.png, .svg or .pdf), or the arrays behind it (.npy: weights, dreams or the heat map).")
    ],
    what: Annotated[What, typer.Option(help="weights, dream, saliency, gradcam or activations.")] = What.weights,
    input_photo: Annotated[Optional[Path], typer.Option("--input", help="The photo for saliency, gradcam and activations.")] = None,
    prior: Annotated[
        Prior,
        typer.Option(
            help="Dreams: search pictures like the training data, drawn by a small generative model learnt from the run's "
            "records once and kept in the run folder: 'vae' a variational autoencoder, 'ae' an autoencoder with a Gaussian "
            "on its codes, 'auto' the autoencoder (measured the better of the two); 'none' optimises the "
            "pixels, showing what the network alone responds to."
        ),
    ] = Prior.auto,
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="Dreams of each class (one row a class).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the dreams (and of the prior's training).")] = 0,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Gradient steps of each dream (default: 300 on the prior, 150 without).")] = None,
) -> None:
    """Draw what a trained network learned: its weights, dreamt-up classes, where it looks, its feature maps."""
    suffix = out.suffix.lower()
    if suffix not in (*_PICTURE_SUFFIXES, ".npy"):
        raise _usage_error(f"--out must end in .png, .svg, .pdf or .npy, got {out}")
    if suffix == ".npy" and what == What.activations:
        raise _usage_error("--what activations draws layers of different sizes: write it as .png, .svg or .pdf")
    if what in (What.saliency, What.gradcam, What.activations) and input_photo is None:
        raise _usage_error(f"--what {what.value} needs --input PHOTO")
    from trainers import visualize as draw
    from trainers.predict import prepare_inputs
    from trainers.runs import load_run

    arrays = None
    with _fails_cleanly():
        loaded = load_run(run_folder)
        model, labels = loaded.image_model(), loaded.labels  # a fused leaf model: its image branch, at the mean descriptors
        if what == What.weights:
            if suffix == ".npy":
                arrays = draw.weight_maps(model)
            else:
                figure = draw.weights_figure(model, labels)
        elif what == What.dream:
            decoder = None
            if prior != Prior.none:
                from trainers.prior import MIN_VARIETY, decoder_for, variety

                decoder = decoder_for(loaded, kind=prior.value, seed=seed, verbose=True)
                if variety(decoder) < MIN_VARIETY:
                    _say(
                        "warning",
                        f"{run_folder}: the dream prior draws nearly the same picture whatever its code (too few or too varied "
                        "training images for it to learn): these dreams show little; --prior none shows what the network responds to",
                    )
            figure, arrays, probabilities = draw.dream_figure(model, labels, prior=decoder, per_class=per_class, seed=seed, steps=steps)
            err_console.print(f"each dream's probability for its own class: min {probabilities.min():.3f}, mean {probabilities.mean():.3f}")
        else:
            assert input_photo is not None
            image, stages, descriptors = prepare_inputs(loaded, input_photo)
            model = loaded.image_model(descriptors)  # a fused leaf model: its image branch at this leaf's own descriptors
            if what == What.activations:
                figure = draw.activations_figure(model, image)
            else:
                arrays = draw.saliency(model, image) if what == What.saliency else draw.gradcam(model, image)
                probabilities = model.predict(image[None], verbose=0)[0]
                guess = int(probabilities.argmax())
                title = f"{what.value}: {labels[guess]} ({probabilities[guess]:.0%})"
                figure = draw.attention_figure(arrays, image, *draw.object_on_photo(stages), title)
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npy":
            import numpy as np

            np.save(out, np.asarray(arrays, np.float32), allow_pickle=False)
        else:
            draw.save(figure, out)
    shape = f" (an array of shape {tuple(arrays.shape)})" if suffix == ".npy" and arrays is not None else ""
    err_console.print(f"{what.value} in {escape(str(out))}{shape}")


@app.command()
def serve(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Run folders written by 'leafprep train' (the first is the default).")],
    host: Annotated[str, typer.Option(help="Address to listen on; anything but 127.0.0.1 (localhost) lets other machines in.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, help="Refuse uploads larger than this many megabytes (413).")] = 20.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images that declare more pixels than this (413).")] = 150_000_000,
    queue: Annotated[int, typer.Option(min=1, help="Requests waiting or at work at once; more are refused as busy (503).")] = 16,
) -> None:
    """A web page and JSON API over trained runs: draw a digit or upload a photo and see how the run reads it.

    Needs leafprep's serve extra (FastAPI and uvicorn). Ctrl-C stops it.
    """
    from .serve import EXTRA, missing_packages

    missing = missing_packages()
    if missing:
        _say("error", f"leafprep serve needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed ({EXTRA})")
        raise typer.Exit(EXIT_FAILED)
    from .serve.app import Limits, create_app, is_loopback, listen, run_server
    from .serve.runs import load_runs

    with _fails_cleanly():
        served = load_runs(runs)
        sock = listen(host, port)
    local = is_loopback(host)
    limits = Limits(max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels, places=queue, workers=min(2, os.cpu_count() or 1))
    web = create_app(served, limits, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"] if local else None)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if not local:
        err_console.print(
            f"[yellow]warning:[/yellow] listening on {escape(host)}: other machines can reach this server and send it photos "
            "(it has no login; use --host 127.0.0.1 to keep it to this machine)"
        )
    names = ", ".join(f"{name} ({entry.kind})" for name, entry in served.items())
    err_console.print(f"serving {escape(names)}", highlight=False)
    out_console.print(f"http://{shown}:{bound_port}/", highlight=False)
    err_console.print("the API's page is at /docs; Ctrl-C stops the server", highlight=False)
    warnings.filterwarnings("ignore", category=LeafprepWarning)  # each answer carries its warnings
    run_server(web, sock)


def run() -> None:
    """Entry point of the ``leafprep`` console script."""
    # TensorFlow's C++ log lines (CUDA not found and the like) are noise to a user of the command.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - outside any command
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if "tensorflow" in sys.modules:
            # The process ends next. Python's last garbage collections would walk every object
            # TensorFlow made (about 0.6 s of a 3 s build); frozen, they are left to the system.
            import gc

            gc.freeze()


if __name__ == "__main__":
    run()
