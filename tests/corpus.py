"""A corpus of bad (and awkward) inputs, and what leafprep promises for each.

``make_corpus(folder, subject)`` writes one file (or link, or folder) per case
and returns the cases with their paths. Each case says what happens to it:

* ``digit``: through ``leafprep normalize`` (and ``build``, ``predict``) for digits,
* ``leaf``: through ``leafprep segment --kind leaf``,

as ``"ok"``, ``"warning: <text>"`` (done, with a warning naming the file) or
``"error: <text>"`` (a message that names the file; the batch goes on; exit 1).
``docs/reliability.md`` holds the same table: ``python tests/corpus.py`` prints
it, and ``test_reliability.py`` checks that the page and this file agree.
"""

from __future__ import annotations

import io
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photos import encode, page_with_digit, png_header_only

#: EXIF orientation -> how the camera stored the upright picture (the inverse of what a viewer applies).
_STORED = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


@dataclass
class Case:
    name: str
    filename: str
    make: Callable[[Path, np.ndarray], None]
    digit: str
    leaf: str = ""  # the same as for a digit ("no leaf found" for "no digit found") unless given
    is_file: bool = True  # False: not a file a folder walk finds (a folder)
    path: Path = Path()

    def __post_init__(self) -> None:
        self.leaf = self.leaf or self.digit.replace("no digit found", "no leaf found")

    @property
    def failure(self) -> str | None:
        """The error text expected for a digit, or None when the input is used."""
        return self.digit.removeprefix("error: ") if self.digit.startswith("error: ") else None


def _data(produce: Callable[[np.ndarray], bytes]) -> Callable[[Path, np.ndarray], None]:
    return lambda path, picture: path.write_bytes(produce(picture))


def _exif_jpeg(orientation: int) -> Callable[[np.ndarray], bytes]:
    def produce(picture: np.ndarray) -> bytes:
        stored = Image.fromarray(np.ascontiguousarray(_STORED[orientation](picture)))
        exif = Image.Exif()
        exif[0x0112] = orientation
        return encode(stored, "JPEG", quality=95, exif=exif.tobytes())

    return produce


def _png_bad_crc(picture: np.ndarray) -> bytes:
    data = bytearray(encode(picture, "PNG"))
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    data[idat + 4 + length] ^= 0xFF  # first byte of the IDAT chunk's CRC
    return bytes(data)


def _palette_png(picture: np.ndarray) -> bytes:
    """A 16-colour palette PNG whose most common colour (the paper) is transparent."""
    image = Image.fromarray(picture).quantize(16)
    paper = int(np.bincount(np.asarray(image).ravel()).argmax())
    return encode(image, "PNG", transparency=paper)


def _multipage_tiff(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    pages = [Image.fromarray(picture), Image.new("RGB", (50, 50), "white"), Image.new("RGB", (50, 50), "black")]
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def _animated_gif(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    frames = [Image.fromarray(picture), Image.new("RGB", picture.shape[1::-1])]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _heic(_: np.ndarray) -> bytes:
    """The start of an HEIC file as an iPhone writes it (ftyp box, brand heic), with no decodable image."""
    ftyp = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heicmiaf"
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + struct.pack(">I", 16) + b"meta" + bytes(8)


def _png_variant(level: int) -> Callable[[np.ndarray], bytes]:
    """The picture as a PNG whose bytes differ by compression level: not a duplicate of another case."""
    return lambda picture: encode(picture, "PNG", compress_level=level)


def _svg(_: np.ndarray) -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><text y="15">7</text></svg>\n'


def _symlink(target: str) -> Callable[[Path, np.ndarray], None]:
    return lambda path, picture: os.symlink(target, path)


def _unreadable(path: Path, picture: np.ndarray) -> None:
    path.write_bytes(encode(picture, "PNG"))
    path.chmod(0)


def _strip(picture: np.ndarray) -> bytes:
    strip = np.full((1, 10000, 3), 235, np.uint8)
    strip[0, 4990:5010] = 20
    return encode(strip, "PNG")


def _tiny() -> np.ndarray:
    tiny = np.full((12, 16, 3), 235, np.uint8)
    tiny[3:9, 6:9] = 20
    return tiny


def _several_leaves(rng_seed: int) -> Callable[[np.ndarray], bytes]:
    def produce(picture: np.ndarray) -> bytes:
        from leafprep.synthetic import leaf_photo

        first, _ = leaf_photo("ovata", np.random.default_rng(rng_seed), background="card")
        second, leaf = leaf_photo("ovata", np.random.default_rng(rng_seed + 1), background="card")
        ys, xs = np.nonzero(leaf)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        size = (round((xs.max() + 1 - xs.min()) / 2.5), round((ys.max() + 1 - ys.min()) / 2.5))
        small = cv2.resize(second[box], size, interpolation=cv2.INTER_AREA)
        small_leaf = cv2.resize(leaf[box].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        both = first.copy()
        corner = both[8 : 8 + size[1], 8 : 8 + size[0]]
        corner[small_leaf] = small[small_leaf]  # a second, smaller leaf on the same card, clear of the first
        return encode(both, "PNG")

    return produce


def cases() -> list[Case]:
    """Every case, in the order of the table in docs/reliability.md."""
    png, jpeg = (lambda p: encode(p, "PNG")), (lambda p: encode(p, "JPEG"))
    no_digit = "error: no digit found"
    return [
        Case("zero-byte PNG", "empty.png", _data(lambda p: b""), "error: the file is empty"),
        Case("truncated JPEG", "truncated.jpg", _data(lambda p: jpeg(p)[:2000]), "error: truncated"),
        Case("JPEG with scrambled data", "scrambled.jpg", _data(lambda p: _damaged(jpeg(p), "scrambled")), "error: is corrupt"),
        Case("JPEG with a zeroed block (decodes)", "zeroed.jpg", _data(lambda p: _damaged(jpeg(p), "zeroed")), "warning: the JPEG data is damaged"),
        Case("text file named .jpg", "text.jpg", _data(lambda p: b"shopping list: milk\n"), "error: not a recognised image"),
        Case("1x1 image", "one.png", _data(lambda p: png(np.zeros((1, 1, 3), np.uint8))), no_digit),
        Case("blank white page", "blank.jpg", _data(lambda p: jpeg(np.full((300, 200, 3), 245, np.uint8))), no_digit),
        Case("all-black image", "black.png", _data(lambda p: png(np.zeros((300, 200, 3), np.uint8))), no_digit),
        Case("16-bit PNG", "sixteen.png", _data(lambda p: encode(Image.fromarray(p[..., 0].astype(np.uint16) * 257), "PNG")), "ok"),
        Case("RGBA PNG, transparent paper", "rgba.png", _data(lambda p: png(np.dstack([p // 8, 255 - p[..., :1]]))), "ok"),
        Case("CMYK JPEG", "cmyk.jpg", _data(lambda p: encode(Image.fromarray(p).convert("CMYK"), "JPEG")), "ok"),
        Case("greyscale JPEG", "grey.jpg", _data(lambda p: jpeg(p[..., 0])), "ok"),
        Case("animated GIF (first frame used)", "anim.gif", _data(_animated_gif), "ok"),
        Case("PNG header claiming 30000x30000", "huge.png", _data(lambda p: png_header_only(30000, 30000)), "error: over the limit"),
        Case("folder named like an image", "folder.jpg", lambda path, p: path.mkdir(), "error: folder", is_file=False),
        Case("PNG with a bad CRC", "badcrc.png", _data(_png_bad_crc), "error: fails its CRC check"),
        Case("JPEG with garbage after the end marker", "trailing.jpg", _data(lambda p: jpeg(p) + b"\x00garbage" * 100), "ok"),
        *(Case(f"EXIF orientation {n}", f"exif{n}.jpg", _data(_exif_jpeg(n)), "ok") for n in range(2, 9)),
        Case("symbolic link loop", "loop.png", _symlink("loop.png"), "error: symbolic link that loops"),
        Case("dangling symbolic link", "dangling.png", _symlink("nowhere/missing.png"), "error: which does not exist"),
        Case("unreadable file (no permission)", "secret.png", _unreadable, "error: permission denied"),
        Case("1x10000 image", "strip.png", _data(_strip), no_digit),
        Case("12x16 image, a mark 3x6 pixels", "tiny.png", _data(lambda p: png(_tiny())), "warning: enlarged", "ok"),
        Case("palette PNG with transparency", "palette.png", _data(_palette_png), "ok"),
        Case("TIFF with several pages (first used)", "pages.tif", _data(_multipage_tiff), "ok"),
        Case("SVG drawing", "drawing.svg", _data(_svg), "error: an SVG drawing"),
        Case("HEIC photo named .jpg", "iphone.jpg", _data(_heic), "error: HEIC"),
        Case("name with spaces", "my digit seven.png", _data(_png_variant(1)), "ok"),
        Case("name with quotes and brackets", 'it\'s "seven" [draft].png', _data(_png_variant(2)), "ok"),
        Case("name with a newline", "line\nbreak.png", _data(_png_variant(3)), "ok"),
        Case("non-ASCII name", "zahl sieben ñ ü 七.jpg", _data(jpeg), "ok"),
        Case("name that is not UTF-8 (Latin-1 bytes)", os.fsdecode(b"caf\xe9.png"), _data(_png_variant(4)), "ok"),
        Case("blank card (no leaf)", "card.png", _data(lambda p: png(np.full((200, 150, 3), (200, 120, 150), np.uint8))), no_digit),
        Case("leaf cut by the border", "cut.png", _data(_cut_leaf), "ok", "warning: touches the image border"),
        Case("several leaves", "several.png", _data(_several_leaves(3)), "ok", "warning: leaves found"),
    ]


def _damaged(data: bytes, how: str) -> bytes:
    """400 bytes in the middle of a JPEG's image data scrambled or zeroed, the file's length kept. libjpeg decodes
    past both, saying so only on the process's standard error; Pillow refuses the scrambled one."""
    damaged = bytearray(data)
    middle = (damaged.index(b"\xff\xda") + len(damaged)) // 2
    damaged[middle : middle + 400] = np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes() if how == "scrambled" else bytes(400)
    return bytes(damaged)


def _cut_leaf(_: np.ndarray) -> bytes:
    return encode(np.ascontiguousarray(_leaf()[150:]), "PNG")


def _leaf() -> np.ndarray:
    from leafprep.synthetic import leaf_photo

    return leaf_photo("ovata", np.random.default_rng(3), background="card")[0]


def subject_picture(subject: str) -> np.ndarray:
    """The good picture every case is made from: a photo of a digit or of a leaf."""
    return page_with_digit() if subject == "digit" else _leaf()


def make_corpus(folder: Path, subject: str = "digit") -> list[Case]:
    """Write every case into ``folder`` (made if needed); return the cases with their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = subject_picture(subject)
    made = []
    for case in cases():
        case.path = folder / case.filename
        case.make(case.path, picture)
        made.append(case)
    return made


def markdown_table() -> str:
    """The table of docs/reliability.md."""
    rows = ["| input | digit (`normalize`, `build`, `predict`) | leaf (`segment --kind leaf`) |", "|---|---|---|"]
    for case in cases():
        rows.append(f"| {case.name} | {_cell(case.digit)} | {_cell(case.leaf)} |")
    return "\n".join(rows)


def _cell(outcome: str) -> str:
    kind, _, text = outcome.partition(": ")
    return "used" if kind == "ok" else f'{kind}: "{text}"'


if __name__ == "__main__":
    print(markdown_table())
