"""Import TensorFlow once, quietly: only the modules that need it call :func:`tensorflow`."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block is done, then raise it.

    TensorFlow's import runs for seconds, partly in C++. A ``KeyboardInterrupt``
    inside it leaves a half-imported module behind and, on CPython 3.11, makes
    the interpreter end by killing itself with SIGINT even after leafprep has
    handled the interrupt (exit status -2 instead of 130). Outside the main
    thread, where Python receives no signals, the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        signal.raise_signal(signal.SIGINT)  # now, to the handler there was before


_EAGER_KERAS = "keras.src.optimizers"  # what TensorFlow's __init__ imports "eagerly" (and passes over if it cannot)


@contextlib.contextmanager
def _keras_held_back() -> Iterator[None]:
    """Within the block, importing :data:`_EAGER_KERAS` raises ImportError (unless Keras is already imported)."""
    if "keras" in sys.modules or _EAGER_KERAS in sys.modules:
        yield
        return
    sys.modules[_EAGER_KERAS] = None  # type: ignore[assignment]  # Python's way to make one import fail
    try:
        yield
    finally:
        if sys.modules.get(_EAGER_KERAS, 0) is None:
            del sys.modules[_EAGER_KERAS]


def tensorflow() -> Any:
    """The ``tensorflow`` module, imported without its start-up log lines on stderr.

    TensorFlow's C++ start-up messages (CUDA not found, CPU instructions, absl)
    tell a leafprep user nothing; ``TF_CPP_MIN_LOG_LEVEL`` (default 2 here)
    still rules what TensorFlow logs later. An import error is re-raised with
    what to install. Ctrl-C during the import takes effect once it is done.

    TensorFlow 2.21's ``import tensorflow`` also imports Keras's optimizers
    "eagerly" (and through Keras ``matplotlib.pyplot``): about 0.5 s of a 3 s
    import that writing or reading records never uses. That import is held
    back here (TensorFlow passes over an ``ImportError`` there); Keras loads
    in full, with its optimizers, when a trainer imports it.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
    except (OSError, ValueError, AttributeError):  # no real stderr (a notebook, a test runner): import as is
        saved = None
    try:
        with interrupts_deferred(), _keras_held_back():
            import tensorflow as tf
    except ImportError as exc:
        raise ImportError(f"leafprep needs TensorFlow for records and training: {exc} (pip install 'tensorflow==2.21.0')") from exc
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
