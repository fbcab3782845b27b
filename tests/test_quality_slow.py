"""The quality targets of the foundation issue, with a real conv-net (slow: trains it once, ~7 min on 2 cores).

Run with ``pytest -m slow``; ``python -m bench.digit_quality`` prints the full table.
"""

from __future__ import annotations

import numpy as np
import pytest

import leafprep
from photos import SHARED

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # trains a conv-net on MNIST first


@pytest.fixture(scope="module")
def convnet():
    pytest.importorskip("tensorflow")
    from bench._mnist import trained_convnet

    return trained_convnet()


def test_convnet_reads_real_digit_photos_after_normalize(convnet):
    from bench._mnist import predict

    photos = sorted((SHARED / "digit_photos").glob("dcdl-*/*/*.png"))
    labels = np.array([int(p.parent.name) for p in photos])
    predicted = predict(convnet, np.stack([leafprep.normalize(p) for p in photos]))
    assert (predicted == labels).mean() >= 0.98


def test_round_trip_keeps_correlation_and_accuracy(convnet, mnist_test):
    from bench._mnist import predict
    from leafprep.synthetic import ink_on_paper

    images, labels = mnist_test
    images, labels = images[:1000], labels[:1000]
    back = np.stack([leafprep.normalize(ink_on_paper(d, scale=8)) for d in images])
    correlation = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(back, images / 255.0)])
    before = (predict(convnet, images / 255.0) == labels).mean()
    after = (predict(convnet, back) == labels).mean()
    assert correlation >= 0.9
    assert before - after <= 0.01
