from __future__ import annotations

import numpy as np
import pytest

from leafprep import ParameterError
from leafprep.geometry import (
    bounding_box,
    box_size_for,
    center_by_mass,
    deskew,
    fit_to_box,
    render_strokes,
    stroke_width,
)


def test_box_size_for_scales_mnist_box():
    assert [box_size_for(s) for s in (28, 56, 112, 14)] == [20, 40, 80, 10]
    with pytest.raises(ParameterError, match="at least 4"):
        box_size_for(3)


def test_bounding_box_of_empty_image_is_none():
    assert bounding_box(np.zeros((3, 3))) is None


def test_fit_to_box_keeps_aspect_ratio():
    fitted = fit_to_box(np.ones((100, 50), np.float32), 20)
    assert fitted.shape == (20, 10)
    assert fitted.min() == pytest.approx(1.0)


def test_center_by_mass_puts_mass_at_center():
    image = np.zeros((6, 4), np.float32)
    image[0, 0] = 1.0
    canvas = center_by_mass(image, 28)
    assert canvas[14, 14] == 1.0 and canvas.sum() == 1.0


def test_center_by_mass_of_symmetric_block():
    canvas = center_by_mass(np.ones((20, 10), np.float32), 28)
    ys, xs = np.nonzero(canvas)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (5, 24, 10, 19)


def test_deskew_straightens_a_slanted_bar():
    image = np.zeros((40, 40), np.float32)
    for y in range(5, 35):
        x = 10 + (y - 5) // 2
        image[y, x : x + 3] = 1.0
    straight = deskew(image)
    xs = [np.average(np.arange(straight.shape[1]), weights=row) for row in straight[8:32] if row.sum() > 0]
    assert np.ptp(xs) < 2.0


def test_stroke_width_of_a_bar():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 20:26] = True
    assert stroke_width(mask) == pytest.approx(6.0, rel=0.2)


def test_render_strokes_gives_the_requested_pen():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 15:35] = True  # a thick marker bar
    redrawn = render_strokes(mask, 4.0)
    assert stroke_width(redrawn > 0.5) == pytest.approx(4.0, rel=0.3)
