"""``leafprep serve``: a local web page and JSON API over trained runs.

Draw a digit or upload a photo and watch a run read it: the preprocessing
steps, the top classes, Grad-CAM and what the network learned. The same
answers come as JSON from ``POST /api/predict``, ``POST /api/normalize`` and
``GET /api/runs``.

- :mod:`leafprep.serve.runs`: the runs served, their facts, cached pictures of what they learned;
- :mod:`leafprep.serve.answers`: an upload's answer (top classes, a sheet's digits, the steps);
- :mod:`leafprep.serve.pictures`: PNG encoding and the pictures of the page;
- :mod:`leafprep.serve.work`: the bounded work queue (503 beyond it);
- :mod:`leafprep.serve.app`: the FastAPI app, its limits and errors, and the server.

FastAPI, uvicorn and python-multipart come with the optional extra
``leafprep[serve]``; nothing here is imported by ``import leafprep`` or
``leafprep --help``, and only :mod:`leafprep.serve.app` imports FastAPI.
"""

from __future__ import annotations

import importlib

__all__ = ["EXTRA", "missing_packages"]

#: What to install for ``leafprep serve``.
EXTRA = "pip install 'leafprep[serve]'"

# Import name -> distribution name of what the extra brings.
_NEEDED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def missing_packages() -> list[str]:
    """The distributions of the ``serve`` extra that cannot be imported (empty when all can).

    >>> isinstance(missing_packages(), list)
    True
    """
    missing = []
    for module, distribution in _NEEDED.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    return missing
