"""The arrays a scenario builds, and the one split every builder uses: shuffled 60/20/20 into
train/validation/test with features (and regression targets) standardized on train only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train / validation / test


@dataclass
class Dataset:
    """Standardized arrays for one scenario.

    ``Y`` arrays are ``(N, n_tasks)`` float32 with NaN where a label is missing; binary tasks
    hold 0/1. ``input_shape`` is ``(features,)`` or ``(1, 8, 8)`` for images.
    ``info`` holds scenario facts such as the planted cluster of each task.
    """

    tasks: list[str]
    task_types: list[str]
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    input_shape: tuple[int, ...]
    info: dict[str, Any] = field(default_factory=dict)


def split_standardize(
    X: np.ndarray,
    Y: np.ndarray,
    task_types: list[str],
    seed: int,
) -> tuple[np.ndarray, ...]:
    """Shuffle into train/val/test; standardize features (and regression targets) on train only.

    ``X``: ``(N, features)``; ``Y``: ``(N, n_tasks)`` with NaN where a label is missing;
    ``task_types[t]`` is ``"binary"`` or ``"regression"``. Returns ``(X_train, Y_train, X_val,
    Y_val, X_test, Y_test)`` as float32, deterministic given ``seed``. Missing features become
    the train mean; constant columns are left unscaled.
    """
    n = len(X)
    rng = np.random.default_rng(seed + 7919)
    perm = rng.permutation(n)
    n_tr = int(round(SPLIT_FRACTIONS[0] * n))
    n_va = int(round(SPLIT_FRACTIONS[1] * n))
    idx = (perm[:n_tr], perm[n_tr : n_tr + n_va], perm[n_tr + n_va :])
    Xs = [X[i].astype(np.float64) for i in idx]
    Ys = [Y[i].astype(np.float64) for i in idx]
    mu = np.nanmean(Xs[0], axis=0)
    mu = np.where(np.isfinite(mu), mu, 0.0)
    sd = np.nanstd(Xs[0], axis=0)
    sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
    # Missing features become the train mean (0 after standardizing).
    Xs = [np.nan_to_num((x - mu) / sd, nan=0.0) for x in Xs]
    for t, kind in enumerate(task_types):
        if kind == "regression":
            m = np.nanmean(Ys[0][:, t])
            s = np.nanstd(Ys[0][:, t])
            s = s if np.isfinite(s) and s > 1e-12 else 1.0
            for y in Ys:
                y[:, t] = (y[:, t] - m) / s
    out = []
    for x, y in zip(Xs, Ys):
        out += [x.astype(np.float32), y.astype(np.float32)]
    return tuple(out)
