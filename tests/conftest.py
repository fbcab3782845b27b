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
