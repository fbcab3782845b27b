"""The leafprep error family.

Every error a user can cause carries the input it is about (``source``), what is
wrong (``reason``) and, where there is one, what to do about it (``hint``).  The
command-line interface prints these three parts and never a traceback.
"""

from __future__ import annotations

__all__ = [
    "LeafprepError",
    "ImageLoadError",
    "ImageTooLargeError",
    "NothingFoundError",
    "ParameterError",
    "LeafprepWarning",
    "printable",
]


def printable(name: str) -> str:
    """``name`` fit for a one-line message: control characters shown as escapes.

    A file name may hold a newline, a tab, a terminal escape sequence, a
    right-to-left override or bytes that are not UTF-8 (kept by Python as lone
    surrogates); printed raw they would break the line, restyle the terminal,
    hide the real name or fail to encode.

    >>> printable("line\\nbreak.png")
    'line\\\\nbreak.png'
    >>> printable("zahl sieben ñ 七.png")
    'zahl sieben ñ 七.png'
    """
    if name.isprintable():
        return name
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii") for ch in name)


class LeafprepError(Exception):
    """Base class of every error leafprep raises on purpose.

    Parameters
    ----------
    source : str
        The input the error is about: a file path, ``"<bytes>"``, ``"<array>"``...
    reason : str
        What is wrong, in one sentence without a trailing full stop.
    hint : str, optional
        What the user can do about it.
    """

    def __init__(self, source: str, reason: str, hint: str | None = None) -> None:
        self.source = source
        self.reason = reason
        self.hint = hint
        message = f"{printable(source)}: {reason}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class ImageLoadError(LeafprepError):
    """The input could not be read as an image: missing, empty, corrupt, not an image."""


class ImageTooLargeError(ImageLoadError):
    """The image header declares more pixels than the configured limit."""


class NothingFoundError(LeafprepError):
    """The image was read, but holds no digit (or leaf) to normalise."""


class ParameterError(LeafprepError, ValueError):
    """An argument is outside the values a function accepts."""


#: Warnings that doubt an object's mask start with this (``build`` counts them as doubtful inputs).
DOUBT = "doubtful mask: "
#: The warning of what a photo of several leaves left out (specks, rectangles, fragments) starts with this.
LEFT_OUT = "left out as not leaves: "


class LeafprepWarning(UserWarning):
    """Something the user should know about an input that was still processed.

    Parameters
    ----------
    source : str
        The input the warning is about.
    message : str
        What happened, e.g. "the leaf touches the image border".
    """

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{printable(source)}: {message}")
