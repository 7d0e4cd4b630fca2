"""The ``digits`` builder: scikit-learn's 8x8 digits as binary attribute tasks plus unrelated
random-projection tasks (images ``(1, 8, 8)``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.scenarios.dataset import Dataset, split_standardize

#: attribute task name -> the digits for which its label is 1
ATTRIBUTES: dict[str, set[int]] = {
    "even": {0, 2, 4, 6, 8},
    "ge5": {5, 6, 7, 8, 9},
    "prime": {2, 3, 5, 7},
    "loop": {0, 4, 6, 8, 9},  # has a closed loop
    "one_or_seven": {1, 7},
    "mult3": {0, 3, 6, 9},
    "zero_one_eight": {0, 1, 8},  # vertically symmetric shapes
    "lt3": {0, 1, 2},
    "four_or_nine": {4, 9},
    "straight": {1, 4, 7},  # drawn with straight strokes only
}


def build(k: dict[str, Any]) -> Dataset:
    """The dataset for resolved knobs ``k``; ``info["clusters"]``: attributes 0, random tasks 1."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, labels = digits.data.astype(np.float64), digits.target
    rng = np.random.default_rng(int(k["data_seed"]))
    attrs = list(k["attributes"])
    if len(attrs) + int(k["random_tasks"]) < 2:
        raise LabError("the digits scenario needs at least two tasks")
    cols, tasks = [], []
    for a in attrs:
        cols.append(np.isin(labels, list(ATTRIBUTES[a])).astype(np.float64))
        tasks.append(a)
    for r in range(int(k["random_tasks"])):
        proj = X @ rng.standard_normal(X.shape[1])
        cols.append((proj > np.median(proj)).astype(np.float64))
        tasks.append(f"random{r}")
    Y = np.stack(cols, axis=1)
    noise = float(k["noise"])
    if noise > 0:
        flip = rng.random(Y.shape) < noise
        Y = np.where(flip, 1.0 - Y, Y)
    types = ["binary"] * len(tasks)
    arrays = list(split_standardize(X, Y, types, int(k["data_seed"])))
    for i in (0, 2, 4):
        arrays[i] = arrays[i].reshape(-1, 1, 8, 8)
    info = {"clusters": {t: (1 if t.startswith("random") else 0) for t in tasks}}
    return Dataset(tasks, types, *arrays, input_shape=(1, 8, 8), info=info)
