"""Shared fixtures: synthetic photos made in memory, and the shared data sets."""

from __future__ import annotations

import numpy as np
import pytest

from photos import SHARED, page_with_digit


@pytest.fixture(scope="session")
def mnist_test():
    """MNIST test images and labels from ../shared/data/mnist."""
    from leafprep.idx import read_idx

    folder = SHARED / "mnist"
    if not (folder / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("../shared/data/mnist is not here")
    return read_idx(folder / "t10k-images-idx3-ubyte.gz"), read_idx(folder / "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def digit_page() -> np.ndarray:
    return page_with_digit()


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory):
    """Run folders for ``leafprep serve``: a conv-net and a softmax net for digits, a softmax net for leaves (tests/serving.py)."""
    pytest.importorskip("fastapi", reason="leafprep serve's extra is not installed (pip install 'leafprep[serve]')")
    from serving import make_runs

    return make_runs(tmp_path_factory.mktemp("serve-runs"))


@pytest.fixture(scope="session")
def served(serve_runs):
    """The runs of :func:`serve_runs` loaded and warmed up as ``leafprep serve`` serves them (convnet first, the default)."""
    from leafprep.serve.runs import load_runs

    return load_runs([serve_runs["convnet"], serve_runs["softmax"], serve_runs["leaves"]])
