"""Reading MNIST's IDX files (gzipped or not)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .errors import ImageLoadError

__all__ = ["read_idx", "write_idx"]

_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file as used by MNIST.

    Parameters
    ----------
    path : str or path-like
        An ``*-idx?-ubyte`` file, optionally gzipped (``.gz``).

    Returns
    -------
    array : ndarray
        Shape and dtype as the header declares, e.g. ``(60000, 28, 28)`` uint8.

    Raises
    ------
    ImageLoadError
        The file is missing, not IDX, or shorter than its header declares.
    """
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise ImageLoadError(name, f"cannot be read as IDX: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ImageLoadError(name, "is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header < expected:
        raise ImageLoadError(name, f"is truncated: the header declares {shape} but only {len(raw) - header} data bytes follow")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape)), offset=header).reshape(shape).astype(dtype.newbyteorder("="))


_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz`` (reproducibly: no timestamp).

    Parameters
    ----------
    path : str or path-like
    array : ndarray
        uint8 or int8 data, or int16/int32/float32/float64 (stored big-endian).
    """
    data = np.asarray(array)
    if data.dtype.itemsize > 1:
        data = data.astype(data.dtype.newbyteorder(">"))
    code = _CODES.get(data.dtype)
    if code is None:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    header = bytes([0, 0, code, data.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in data.shape)
    raw = header + np.ascontiguousarray(data).tobytes()
    target = Path(path)
    target.write_bytes(gzip.compress(raw, mtime=0) if target.suffix == ".gz" else raw)
