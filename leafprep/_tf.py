"""Import TensorFlow once, quietly: only the modules that need it call :func:`tensorflow`."""

from __future__ import annotations

import os
import sys
from typing import Any


def tensorflow() -> Any:
    """The ``tensorflow`` module, imported without its start-up log lines on stderr.

    TensorFlow's C++ start-up messages (CUDA not found, CPU instructions, absl)
    tell a leafprep user nothing; ``TF_CPP_MIN_LOG_LEVEL`` (default 2 here)
    still rules what TensorFlow logs later. An import error is re-raised with
    what to install.
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
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError(f"leafprep needs TensorFlow for records and training: {exc} (pip install 'tensorflow==2.21.0')") from exc
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
