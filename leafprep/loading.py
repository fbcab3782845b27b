"""Decoding any image source into an upright 8-bit RGB array.

One loader serves every entry point of leafprep: a path, raw bytes, a binary
file object or a numpy array.  Pillow reads the header first, so that an image
whose declared size exceeds ``max_pixels`` is refused before a single pixel is
decoded; JPEG files can be decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
scaling) when the caller needs fewer pixels than the file holds.
"""

from __future__ import annotations

import atexit
import errno
import io
import os
import re
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError, ImageTooLargeError, LeafprepWarning

__all__ = ["DEFAULT_MAX_PIXELS", "MIN_TRUSTED_DPI", "ImageSource", "load_image", "describe_source", "file_facts", "file_px_per_mm"]

#: Default limit on the pixels an image may declare: 150 megapixels, above every
#: phone camera of 2026 but far below a decompression bomb.
DEFAULT_MAX_PIXELS = 150_000_000

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray]

_SUPPORTED = "JPEG, PNG, BMP, TIFF, WebP or GIF"
# Formats Pillow opens but that need a word of explanation when they fail.
_SIGNATURES = (
    (b"<svg", "an SVG drawing, not a raster image", "export it as PNG first"),
    (b"<?xml", "an XML file (perhaps SVG), not a raster image", "export it as PNG first"),
    (b"%PDF", "a PDF document, not an image", "export the page as PNG or JPEG"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif")


@dataclass(frozen=True)
class _Loaded:
    """A decoded image and what the caller may need to know about it."""

    rgb: np.ndarray  # (H, W, 3) uint8, upright, possibly reduced
    full_shape: tuple[int, int]  # (height, width) of the upright image at full size
    name: str
    px_per_mm: float | None = None  # the file's own resolution (a scan's), full-size pixels per millimetre


#: A file's resolution counts from this many dots per inch: cameras and screens write 72 or 96 whatever they show.
MIN_TRUSTED_DPI = 100.0


def file_px_per_mm(info: Mapping[Any, Any]) -> float | None:
    """Pixels per millimetre from an image file's own resolution (Pillow's ``info["dpi"]``: JFIF, EXIF, TIFF, PNG).

    None where the file gives none, or under :data:`MIN_TRUSTED_DPI` (the
    72 or 96 dpi that cameras and screens write by default says nothing of
    the real size).

    Examples
    --------
    >>> file_px_per_mm({"dpi": (600, 600)})
    23.62204724409449
    >>> file_px_per_mm({"dpi": (72, 72)}) is None
    True
    """
    dpi = info.get("dpi")
    if dpi is None:
        return None
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    if not (x >= MIN_TRUSTED_DPI and y >= MIN_TRUSTED_DPI) or not (np.isfinite(x) and np.isfinite(y)):
        return None
    return float(np.sqrt(x * y)) / 25.4


def describe_source(source: object) -> str:
    """Return the name used for ``source`` in messages.

    Parameters
    ----------
    source : path, bytes, file object or ndarray
        Anything :func:`load_image` accepts.

    Returns
    -------
    name : str
        The path as given, the file object's ``name``, or ``"<bytes>"``,
        ``"<array>"``, ``"<file object>"``.
    """
    if isinstance(source, (str, os.PathLike)):
        return str(os.fspath(source))
    if isinstance(source, np.ndarray):
        return "<array>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, (str, bytes)) and name else "<file object>"


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> np.ndarray:
    """Load an image as an upright 8-bit RGB array.

    Parameters
    ----------
    source : str, path-like, bytes, binary file object or ndarray
        A file path; the encoded bytes of a JPEG (MPO too), PNG, BMP, TIFF, WebP
        or GIF (first frame) file; an open binary file; or an array of shape
        ``(M, N)``, ``(M, N, 1)``, ``(M, N, 3)`` (RGB) or ``(M, N, 4)`` (RGBA) of
        dtype bool, uint8, uint16 or float in [0, 1].
    max_pixels : int, optional
        Refuse images whose header declares more pixels than this, before
        decoding them.
    min_side : int, optional
        Allow a reduced-size decode (JPEG only) as long as the shorter side of
        the result stays at least this long.  ``None`` always decodes at full size.

    Returns
    -------
    image : (M, N, 3) ndarray of uint8
        RGB, with the EXIF orientation applied, alpha composited onto white and
        16-bit samples scaled to 8 bits.

    Raises
    ------
    ImageLoadError
        The source is missing, a folder, unreadable, empty, not an image, or its
        data are corrupt or truncated.  The message names the source.
    ImageTooLargeError
        The declared size exceeds ``max_pixels``.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((2, 3), dtype=np.uint8)).shape
    (2, 3, 3)
    """
    return _load(source, max_pixels=max_pixels, min_side=min_side).rgb


def _load(source: ImageSource, *, max_pixels: int, min_side: int | None) -> _Loaded:
    name = describe_source(source)
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb8(source, name)
        if rgb.shape[0] * rgb.shape[1] > max_pixels:
            raise ImageTooLargeError(name, f"{_size_text(rgb.shape[1], rgb.shape[0])} exceeds the limit of {max_pixels:,} pixels")
        return _Loaded(rgb, (rgb.shape[0], rgb.shape[1]), name)
    data = _read_bytes(source, name)
    return _decode(data, name, max_pixels=max_pixels, min_side=min_side)


def _read_bytes(source: ImageSource, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        try:
            if path.is_dir():
                if path.is_symlink():
                    raise ImageLoadError(name, "is a link to a folder, which leafprep does not follow (links can loop)", "pass the folder itself")
                raise ImageLoadError(name, "is a folder, not an image file", "pass the image files inside it, or use a command that takes folders")
            data = path.read_bytes()
        except FileNotFoundError:
            if path.is_symlink():
                raise ImageLoadError(name, f"is a symbolic link to {os.readlink(path)}, which does not exist", "fix or remove the link") from None
            raise ImageLoadError(name, "no such file", "check the path") from None
        except PermissionError:
            raise ImageLoadError(name, "permission denied", "check the file's permissions") from None
        except IsADirectoryError:
            raise ImageLoadError(name, "is a folder, not an image file") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ImageLoadError(name, "is a symbolic link that loops (it points back to itself)", "remove or fix the link") from None
            raise ImageLoadError(name, f"cannot be read: {exc.strerror or exc}") from None
    elif hasattr(source, "read"):
        try:
            data = source.read()
        except OSError as exc:
            raise ImageLoadError(name, f"cannot be read: {exc}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageLoadError(name, "the file object is not open in binary mode", "open it with 'rb'")
        data = bytes(data)
    else:
        raise ImageLoadError(name, f"cannot load an image from a {type(source).__name__}", "pass a path, bytes, a binary file or a numpy array")
    if not data:
        raise ImageLoadError(name, "the file is empty (0 bytes)")
    return data


def _size_text(width: int, height: int) -> str:
    return f"{width}x{height} ({width * height / 1e6:.1f} megapixels)"


def _not_an_image(data: bytes, name: str) -> ImageLoadError:
    head = data[:256].lstrip()
    for signature, what, hint in _SIGNATURES:
        if head.startswith(signature):
            return ImageLoadError(name, f"is {what}", hint)
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return ImageLoadError(
            name,
            "is a HEIC/HEIF/AVIF image, which leafprep does not decode",
            "convert it to JPEG or PNG (most phones can save as 'Most compatible')",
        )
    return ImageLoadError(name, f"is not a recognised image file (expected {_SUPPORTED})")


def _decode(data: bytes, name: str, *, max_pixels: int, min_side: int | None) -> _Loaded:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise _not_an_image(data, name) from None
        except Image.DecompressionBombError as exc:  # Pillow's own, higher limit
            found = re.search(r"\((\d+) pixels\)", str(exc))
            declared = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
            raise ImageTooLargeError(name, f"declares {declared}, over the limit of {max_pixels:,} pixels") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageLoadError(name, f"has a corrupt header: {exc}") from None
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImageLoadError(name, f"declares an empty size {width}x{height}")
        if width * height > max_pixels:
            raise ImageTooLargeError(
                name,
                f"declares {_size_text(width, height)} = {width * height:,} pixels, over the limit of {max_pixels:,} pixels",
                "raise --max-pixels (max_pixels=) only for files you trust",
            )
        orientation = _orientation(image)
        if image.format == "PNG":
            damaged = _png_damage(data)
            if damaged:
                raise ImageLoadError(name, f"is corrupt: {damaged}", "re-export or re-download the file")
        full = _upright_shape(image.size, orientation)
        if image.format in ("JPEG", "MPO") and image.mode in ("RGB", "L"):
            # OpenCV's libjpeg-turbo decode is faster than Pillow's, and can scale the DCT.
            reduction = 1 if min_side is None else max((r for r in (8, 4, 2) if min(width, height) >= r * min_side), default=1)
            decoded, damage = _decode_jpeg(data, reduction)
            if decoded is not None and damage:
                _check_damage(data, name, damage)  # Pillow refuses what libjpeg only warned of: rejected; else a warning
            if decoded is not None:
                return _Loaded(decoded, full, name, file_px_per_mm(image.info))
        try:
            image.load()
            if orientation in (2, 3, 4, 5, 6, 7, 8):
                image = ImageOps.exif_transpose(image)  # type: ignore[assignment]
            rgb = _pil_to_rgb8(image)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(name, str(exc)) from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise ImageLoadError(name, f"is corrupt or truncated: {_pillow_reason(exc)}", "re-export or re-download the file") from None
    return _Loaded(rgb, full, name, file_px_per_mm(image.info))


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 where there is none, or the EXIF block is broken: that must not lose the picture)."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:
        return 1


def _upright_shape(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``(height, width)`` once the EXIF orientation is applied to an image of Pillow's ``size`` (width, height)."""
    width, height = size
    return (height, width) if orientation in (1, 2, 3, 4) else (width, height)


def file_facts(path: str | os.PathLike[str]) -> tuple[tuple[int, int], float | None]:
    """An image file's ``(height, width)`` once upright and its own resolution (:func:`file_px_per_mm`), from its header alone."""
    with Image.open(path) as image:
        return _upright_shape(image.size, _orientation(image)), file_px_per_mm(image.info)


def _png_damage(data: bytes) -> str | None:
    """What is wrong with a PNG's chunk structure (a CRC that does not match, a chunk cut short), or None.

    Pillow checks the CRCs of small chunks but not of the image data (IDAT),
    so a damaged pixel stream could decode to wrong pixels without a word.
    """
    offset = 8
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        end = offset + 8 + length
        if end + 4 > len(data):
            return f"the PNG chunk {kind.decode('latin-1')!r} at byte {offset:,} is cut short"
        (stored,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(data[offset + 4 : end]) != stored:
            return f"the PNG chunk {kind.decode('latin-1')!r} at byte {offset:,} fails its CRC check"
        if kind == b"IEND":
            return None
        offset = end + 4
    return None


def _decode_jpeg(data: bytes, reduction: int) -> tuple[np.ndarray | None, str]:
    """Decode a JPEG at full, 1/2, 1/4 or 1/8 size with OpenCV (libjpeg's DCT scaling), EXIF orientation applied,
    and what libjpeg said of damaged data ("" when nothing).

    The picture is None where OpenCV cannot decode it (corrupt or truncated
    data); the caller then decodes with Pillow, which gives the precise error.
    Damage that libjpeg decodes past (a corrupt data segment, stray bytes) it
    only prints to the process's standard error, which OpenCV does not pass on:
    that is read here (:func:`_c_stderr`).
    """
    import cv2

    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduction]
    with _c_stderr() as said:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    lines = said[0].splitlines(keepends=True) if said else []
    damage = [line.strip() for line in lines if line.startswith(_LIBJPEG_DAMAGE)]
    others = "".join(line for line in lines if not line.startswith(_LIBJPEG_DAMAGE))
    if others and sys.stderr is not None:  # not libjpeg's (another thread's, meanwhile): passed on as it was
        sys.stderr.write(others)
        sys.stderr.flush()
    if bgr is None or bgr.ndim != 3:
        return None, "; ".join(damage)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "; ".join(damage)


#: How libjpeg's warnings of damaged image data begin (its JWRN_* messages that a decode goes on past; those of odd
#: but whole files, an unknown JFIF revision or unusual scan parameters, are not damage).
_LIBJPEG_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file")
_STDERR_LOCK = threading.Lock()


@contextmanager
def _c_stderr() -> Iterator[list[str]]:
    """Collect what C code writes to file descriptor 2 meanwhile (one string, in the list yielded, once done).

    One thread at a time (a lock): another thread's C output in that moment
    is collected too, and passed on by the caller. Where descriptor 2 cannot
    be redirected, nothing is collected.
    """
    said: list[str] = []
    with _STDERR_LOCK:
        try:
            sink = _sink()
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no scratch file, no descriptor 2, or no sys.stderr (pythonw)
            yield said
            return
        try:
            os.dup2(sink, 2)
            try:
                yield said
            finally:
                os.dup2(saved, 2)
                written = os.lseek(sink, 0, os.SEEK_CUR)
                if written:  # rarely: read it, and empty the file for the next time
                    os.lseek(sink, 0, os.SEEK_SET)
                    said.append(os.read(sink, written).decode("utf-8", "replace"))
                    os.lseek(sink, 0, os.SEEK_SET)
                    os.ftruncate(sink, 0)
        finally:
            os.close(saved)


_SINKS: dict[int, Any] = {}


def _sink() -> int:
    """This process's scratch file for :func:`_c_stderr`, a descriptor (one a process: a forked worker opens its own)."""
    pid = os.getpid()
    if pid not in _SINKS:
        _SINKS.clear()  # the parent's, in a forked child: its offset is shared with the parent's
        scratch = tempfile.TemporaryFile(prefix="leafprep-stderr-")  # nameless (or deleted on close): gone with the process
        atexit.register(scratch.close)
        _SINKS[pid] = scratch
    return int(_SINKS[pid].fileno())


def _check_damage(data: bytes, name: str, damage: str) -> None:
    """A JPEG that libjpeg decoded past damage: rejected where Pillow's decoder refuses it, else a warning that names it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(name, f"is corrupt: {_pillow_reason(exc)} (libjpeg: {damage})", "re-export or re-download the file") from None
    warnings.warn(LeafprepWarning(name, f"the JPEG data is damaged (libjpeg: {damage}): parts of the picture may be wrong"), stacklevel=4)


def _pillow_reason(exc: BaseException) -> str:
    """Pillow's message without its byte count ("image file is truncated (0 bytes not processed)" reads as if nothing were)."""
    return re.sub(r"\s*\(\d+ bytes not processed\)", "", str(exc))


def _pil_to_rgb8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return _gray_to_rgb(_scale16(np.asarray(image)))
    if mode == "F":
        return _array_to_rgb8(np.asarray(image, dtype=np.float32), "<image>")
    if (mode == "P" and "transparency" in image.info) or mode in ("PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        return _composite_on_white(np.asarray(image))
    if mode == "L":
        return _gray_to_rgb(np.asarray(image))
    if mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _scale16(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32)
    return np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _array_to_rgb8(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageLoadError(name, f"an image array must have shape (M, N), (M, N, 1), (M, N, 3) or (M, N, 4), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageLoadError(name, f"the array is empty, shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = _scale16(array)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageLoadError(name, "the float array holds NaN or infinite values")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise ImageLoadError(name, f"float images must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]", "divide by 255 for 8-bit data")
        array = np.rint(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageLoadError(name, f"unsupported array dtype {array.dtype}", "use bool, uint8, uint16 or float in [0, 1]")
    if array.ndim == 2:
        return _gray_to_rgb(array)
    if array.shape[2] == 4:
        return _composite_on_white(array)
    return np.ascontiguousarray(array)
