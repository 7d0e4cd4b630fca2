"""The colour bar's ticks (``app.figures.heatmaps.colorbar_ticks``): round values that keep
off the bar's ends, where the top label ran into the bar's title (issue 22, Learn at 1920 px;
the browser measures the gap in ``tests/e2e/test_projector.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from app.figures.heatmaps import TICK_ROOM, colorbar_ticks, heatmap


@pytest.mark.parametrize(
    ("zmax", "ticks"),
    [
        (0.02, [-0.015, -0.01, -0.005, 0.0, 0.005, 0.01, 0.015]),  # ±2 %: 0.5 % steps
        (1.0, [-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8]),
        (0.37, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]),
        (5.0, [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]),
    ],
)
def test_ticks_are_round_and_inside_the_range(zmax, ticks):
    got = colorbar_ticks(zmax)
    assert got == pytest.approx(ticks)
    assert max(got) <= TICK_ROOM * zmax < zmax  # the top label is off the bar's end
    assert 0.0 in got


@pytest.mark.parametrize("zmax", [0.0, -1.0, float("nan"), float("inf")])
def test_range_must_be_positive(zmax):
    with pytest.raises(ValueError, match="colour range must be positive"):
        colorbar_ticks(zmax)


def test_heatmap_colour_bar_uses_them():
    A = np.array([[0.0, 0.02], [-0.01, 0.0]])
    fig = heatmap(A, ["a", "b"], measure="lookahead", zmax=0.02)
    bar = fig.data[0].colorbar
    assert bar.tickmode == "array"
    assert list(bar.tickvals) == pytest.approx(colorbar_ticks(0.02))
