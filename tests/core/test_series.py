"""The one smoothing over steps (mtl_core.series): each definition against a plain loop over
the logged values, NaN (unlogged) cells skipped, and the step sampling helpers."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.errors import LabError
from mtl_core.series import bucket_mean, sample_indices, smooth


def _stack_with_gaps() -> np.ndarray:
    X = np.random.default_rng(0).normal(size=(30, 3, 3))
    X[5, 0, 1] = np.nan
    X[:4, 2, 0] = np.nan  # a cell first logged at the 5th step
    X[10:, 1, 2] = np.nan  # a cell no longer logged after the 10th
    return X


def _logged(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def test_running_and_window_means_skip_unlogged_cells():
    X = _stack_with_gaps()
    run = smooth(X, "running")
    win = smooth(X, "window", window=4)
    for s in range(30):
        for i in range(3):
            for j in range(3):
                seen = _logged(X[: s + 1, i, j])
                recent = _logged(X[max(0, s - 3) : s + 1, i, j])
                assert (
                    run[s, i, j] == pytest.approx(seen.mean())
                    if seen.size
                    else np.isnan(run[s, i, j])
                )
                assert (
                    win[s, i, j] == pytest.approx(recent.mean())
                    if recent.size
                    else np.isnan(win[s, i, j])
                )


def test_ema_is_the_bias_corrected_mean_over_each_cells_logged_values():
    X = _stack_with_gaps()
    beta = 0.8
    got = smooth(X, "ema", beta=beta)
    for i in range(3):
        for j in range(3):
            e = w = 0.0  # the recursion from zero, divided by its total weight
            for s in range(30):
                x = X[s, i, j]
                if np.isfinite(x):
                    e, w = beta * e + (1 - beta) * x, beta * w + (1 - beta)
                if w == 0:
                    assert np.isnan(got[s, i, j])
                else:
                    assert got[s, i, j] == pytest.approx(e / w)
    # NaN-free: e_t = sum beta^(t-k) x_k / sum beta^(t-k)
    Y = X[:, :2, :2][:, [0], [0]]
    t = np.arange(30)
    weights = beta ** (29 - t)
    assert smooth(Y, "ema", beta=beta)[-1, 0] == pytest.approx(
        (weights * Y[:, 0]).sum() / weights.sum()
    )


def test_a_missing_cell_keeps_its_last_value_instead_of_decaying_to_zero():
    X = np.full((50, 2, 2), 0.01)
    X[10:, 0, 1] = np.nan
    for how in ("running", "window", "ema"):
        assert smooth(X, how, window=45)[-1, 0, 1] == pytest.approx(0.01), how
    # ... unless the window holds no logged value of it: then there is nothing to show
    assert np.isnan(smooth(X, "window", window=5)[-1, 0, 1])


def test_none_copies_and_bad_parameters_say_what_is_allowed():
    X = _stack_with_gaps()
    out = smooth(X, "none")
    assert np.array_equal(out, X, equal_nan=True) and out is not X
    assert smooth(np.zeros((0, 2, 2)), "ema").shape == (0, 2, 2)
    with pytest.raises(LabError, match="unknown smoothing 'median'; choose one of: none"):
        smooth(X, "median")
    with pytest.raises(LabError, match="window must be >= 1"):
        smooth(X, "window", window=0)
    with pytest.raises(LabError, match=r"beta must be in \[0, 1\)"):
        smooth(X, "ema", beta=1.0)


def test_sample_indices_downsample_without_truncating():
    idx = sample_indices(2000, 60)
    assert len(idx) <= 60 and idx[0] == 0 and idx[-1] == 1999
    assert np.all(np.diff(idx) > 0)
    assert list(sample_indices(10, 60)) == list(range(10))
    assert list(sample_indices(5, None)) == list(range(5))
    assert len(sample_indices(0, 10)) == 0
    with pytest.raises(LabError, match="at least 2"):
        sample_indices(10, 1)


def test_bucket_mean_keeps_the_last_step_and_averages_buckets():
    x, y = bucket_mean(np.arange(1000), np.arange(1000.0), 100)
    assert len(x) == 100 and x[-1] == 999 and y[0] == pytest.approx(4.5)
    gaps = np.arange(20.0)
    gaps[:10] = np.nan
    x, y = bucket_mean(np.arange(20), gaps, 2)
    assert np.isnan(y[0]) and y[1] == pytest.approx(14.5)
