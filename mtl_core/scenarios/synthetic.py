"""The ``synthetic`` builder: n tasks in c planted clusters.

Each task is a one-sided response to ``rank`` latent directions of a Gaussian input; tasks in one
cluster share a prototype direction (how much: ``relatedness``), and clusters' prototypes move
from a shared direction towards opposing (a simplex) or orthogonal ones as ``conflict`` grows.

``conflict_type`` sets the path:

- ``opposing``: prototype ``(1 - g) shared + g s_c`` with ``s_c`` a simplex (for two clusters,
  ``+u`` and ``-u``): cosine between two clusters ``((1-g)^2 - g^2) / ((1-g)^2 + g^2)`` for two
  clusters, so 0 at ``g = 0.5`` and -1 at ``g = 1``. Not monotone in what a shared trunk can
  hold: relu(z) and relu(-z) correlate at -1/(pi-1) ~ -0.47, and one linear unit carrying ``z``
  serves both, so two independent clusters (g = 0.5) conflict more than opposite ones (g = 1).
- ``orthogonal``: prototype ``(1 - g) shared + g e_c`` (``e_c`` orthonormal), normalised.
- ``rotation``: the clusters' prototypes are at the angle ``theta = g * max_angle`` from each
  other (pairwise cosine ``cos(theta)``): prototype ``sqrt(cos theta) shared +
  sqrt(1 - cos theta) e_c``. For two clusters this is the second cluster's direction rotated
  away from the first, ``cos(theta) w1 + sin(theta) w_perp``. The correlation ``r`` of two
  clusters' targets (relu responses) falls monotonically from 1 and never turns negative
  (``max_angle`` <= 90), so the best one-unit summary of both (their first principal
  component) leaves ``(1 - r) / 2`` of each target's variance unexplained, growing with the
  knob. The lesson ends at 60 degrees, not 90: TAG's affinity is a *relative* loss change, and
  its cross-cluster magnitude, roughly ``(1 - r^2) / ((1 - r) / 2 + noise)`` for a one-unit
  trunk (tug of war over the unit divided by the loss it leaves), peaks near r ~ 0.3 and
  falls again towards orthogonal, so 0.75 -> 1 of a 90-degree path was not monotone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.scenarios.dataset import Dataset, split_standardize


def _simplex(c: int) -> np.ndarray:
    """``c`` unit vectors in R^(c-1) with pairwise cosine -1/(c-1) (maximally opposed)."""
    if c == 1:
        return np.zeros((1, 1))
    e = np.eye(c) - 1.0 / c
    u, s, _ = np.linalg.svd(e)
    v = u[:, : c - 1] * s[: c - 1]
    return v / np.linalg.norm(v, axis=1, keepdims=True)


RESPONSE = lambda Z: np.maximum(Z, 0.0)


def build(k: dict[str, Any]) -> Dataset:
    """The dataset for resolved knobs ``k``; ``info["clusters"]`` maps each task to its cluster."""
    n_tasks, c = int(k["tasks"]), int(k["clusters"])
    if c > n_tasks:
        raise LabError(f"clusters ({c}) cannot exceed tasks ({n_tasks})")
    d, N = int(k["features"]), int(k["samples"])
    rel, gamma, noise = float(k["relatedness"]), float(k["conflict"]), float(k["noise"])
    rank = int(k.get("rank", 2))  # latent directions per cluster (and per task's own part)
    need = rank * (1 + c + n_tasks)
    if d < 2 * rank:
        raise LabError(
            f"features must be at least {2 * rank} for the synthetic scenario with rank {rank}"
        )
    rng = np.random.default_rng(int(k["data_seed"]))
    # Orthonormal directions; when the input is too small to keep every block orthogonal, the
    # extra blocks are random (nearly orthogonal in high dimension anyway).
    q, _ = np.linalg.qr(rng.standard_normal((d, min(d, need))))
    basis = list(q.T)
    while len(basis) < need:
        v = rng.standard_normal(d)
        basis.append(v / np.linalg.norm(v))
    blocks = [np.stack(basis[i * rank : (i + 1) * rank]) for i in range(1 + c + n_tasks)]
    shared, full = blocks[0], blocks[1 : 1 + c]
    own = blocks[1 + c :]
    if k["conflict_type"] == "opposing":
        s = _simplex(c)  # (c, c-1)
        targets = [sum(s[ci, j] * full[j] for j in range(max(c - 1, 1))) for ci in range(c)]
        if c == 1:
            targets = [full[0]]
        protos = [(1 - gamma) * shared + gamma * t for t in targets]
    elif k["conflict_type"] == "rotation":
        cos = float(np.cos(np.radians(gamma * float(k.get("max_angle", 90.0)))))
        protos = [np.sqrt(cos) * shared + np.sqrt(max(1.0 - cos, 0.0)) * e for e in full]
    else:
        protos = [(1 - gamma) * shared + gamma * t for t in full]
    protos = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in protos]
    cluster_of = [t * c // n_tasks for t in range(n_tasks)]  # contiguous, balanced clusters
    W = []
    for t in range(n_tasks):
        w = np.sqrt(rel) * protos[cluster_of[t]] + np.sqrt(1 - rel) * own[t]
        W.append(w / np.linalg.norm(w, axis=1, keepdims=True))
    W = np.stack(W)  # (tasks, rank, d)
    X = rng.standard_normal((N, d))
    Z = np.einsum("nd,trd->ntr", X, W)
    # A one-sided response: a task and its opposite need different features (relu(z) vs
    # relu(-z)), so opposing clusters compete for the shared trunk instead of sharing it.
    signal = RESPONSE(Z).sum(axis=2)
    signal = (signal - signal.mean(0)) / signal.std(0)
    if k["task_type"] == "regression":
        Y = signal + noise * rng.standard_normal(signal.shape)
        types = ["regression"] * n_tasks
    else:
        Y = (signal > 0).astype(np.float64)
        flip = rng.random(Y.shape) < noise
        Y = np.where(flip, 1.0 - Y, Y)
        types = ["binary"] * n_tasks
    tasks = [f"t{t}" for t in range(n_tasks)]
    arrays = split_standardize(X, Y, types, int(k["data_seed"]))
    info = {"clusters": {tasks[t]: cluster_of[t] for t in range(n_tasks)}}
    return Dataset(tasks, types, *arrays, input_shape=(d,), info=info)
