"""Affinity-propagation grouping, as in selective task group updates (Jeong & Yoon, ICLR 2025).

The affinity is first made comparable across targets and symmetric:

1. column-normalize by the diagonal, ``X[i, j] = A[i, j] / A[j, j]``: the effect of task i's
   update on task j relative to the effect of j's own update on j (so a task whose loss moves a
   lot does not dominate). A column whose diagonal is not clearly positive is scaled by its
   largest absolute entry instead (or left as is when the column is all zeros);
2. symmetrize, ``S = (X + X.T) / 2``;
3. cluster with affinity propagation on ``S`` as a precomputed similarity (preference = median
   of S, damping 0.5), which picks the number of groups itself.

:func:`proximal_groups` is a pure-numpy port of scikit-learn's algorithm (same updates, same
tie-breaking noise for the same seed) because the trainer's sequential mode regroups every
batch and sklearn's estimator overhead is larger than the whole computation at 10 tasks. The
grouper uses scikit-learn itself by default; the tests check that both agree.

Non-convergence: when the messages have not settled after ``max_iter`` iterations, the
exemplars are not reliable (sklearn then warns and may return no clusters at all). We then
return the caller's ``fallback`` grouping, by default every task alone: training each task on
its own cannot add negative transfer, so it is the safe choice for a sequential update. The
trainer can pass the previous step's grouping instead to keep the schedule steady. The grouper
says so: ``converged_`` is False and ``warning_`` names the failure and the next method to try
(hierarchical clustering, which always returns a partition), so the fallback is never shown as
if it were a clustering.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping.base import BaseGrouper, labels_to_grouping
from mtl_core.types import AffinityMatrix, Grouping, canonical_grouping

BACKENDS = ("sklearn", "numpy")
_EPS = 1e-12


def normalize_affinity(A: AffinityMatrix) -> np.ndarray:
    """Column-normalize by the diagonal, then symmetrize (see module docstring).

    Works on one ``(n, n)`` matrix or a ``(..., n, n)`` stack.
    """
    A = np.asarray(A, dtype=np.float64)
    d = np.diagonal(A, axis1=-2, axis2=-1)
    colmax = np.abs(A).max(axis=-2)
    scale = np.where(d > _EPS * np.maximum(colmax, 1.0), d, colmax)
    scale = np.where(scale > 0, scale, 1.0)
    X = A / scale[..., None, :]
    return (X + np.swapaxes(X, -1, -2)) / 2.0


def _prepare(S: np.ndarray, preference: float, noise: np.ndarray) -> np.ndarray:
    """sklearn's set-up: preference on the diagonal, then tiny seeded tie-breaking noise."""
    S = np.array(S, dtype=np.float64)
    S.flat[:: S.shape[0] + 1] = preference
    S += (np.finfo(np.float64).eps * S + np.finfo(np.float64).tiny * 100) * noise
    return S


def _all_equal_similarities(S: np.ndarray) -> bool:
    # sklearn's _equal_similarities_and_preferences with one scalar preference.
    off = S[~np.eye(S.shape[0], dtype=bool)]
    return bool(np.all(off == off[0]))


def _ap_messages(
    S: np.ndarray, damping: float, max_iter: int, convergence_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Message passing for a batch of prepared ``(B, n, n)`` similarities.

    Same maths and operation order as scikit-learn, so the same seed gives the same result.
    At 10-20 tasks numpy call overhead, not arithmetic, is the cost: every step is one
    in-place call over the whole batch, diagonals are strided views, and problems that have
    converged are dropped from the batch. Returns ``(exemplar mask (B, n), converged (B,))``.
    """
    B, n, _ = S.shape
    E_out = np.zeros((B, n), dtype=bool)
    conv_out = np.zeros(B, dtype=bool)
    active = np.arange(B)
    S = np.ascontiguousarray(S)
    A = np.zeros_like(S)
    R = np.zeros_like(S)
    prev = np.zeros((B, n), dtype=bool)
    run = np.zeros(B, dtype=np.int64)
    keep, take = damping, 1.0 - damping

    def buffers(b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.arange(b)[:, None] * (n * n) + np.arange(n)[None, :] * n
        return np.empty((b, n, n)), np.empty((b, n, n)), rows

    tmp, Rp, rows = buffers(B)
    for it in range(max_iter):
        b = len(active)
        Sf, tf = S.reshape(-1), tmp.reshape(-1)
        # Responsibilities: r(i,k) = s(i,k) - max_{k' != k} (a(i,k') + s(i,k')).
        np.add(A, S, out=tmp)
        fl = rows + tmp.argmax(axis=2)
        Y = tf[fl]
        tf[fl] = -np.inf
        Y2 = tmp.max(axis=2)
        np.subtract(S, Y[:, :, None], out=tmp)
        tf[fl] = Sf[fl] - Y2
        tmp *= take
        R *= keep
        R += tmp
        # Availabilities: a(i,k) = min(0, r(k,k) + sum_{i' not in {i,k}} max(0, r(i',k))).
        Rd = R.reshape(b, -1)[:, :: n + 1]
        td = tmp.reshape(b, -1)[:, :: n + 1]
        np.maximum(R, 0, out=Rp)
        Rp.reshape(b, -1)[:, :: n + 1] = Rd
        np.subtract(Rp, Rp.sum(axis=1, keepdims=True), out=tmp)  # tmp = -Anew
        dA = td.copy()
        np.maximum(tmp, 0, out=tmp)
        td[...] = dA
        tmp *= take
        A *= keep
        A -= tmp
        # Converged when the exemplar set has not changed for convergence_iter iterations.
        E = (A.reshape(b, -1)[:, :: n + 1] + Rd) > 0
        run = np.where((E == prev).all(axis=1), run + 1, 1)
        prev = E
        if it >= convergence_iter:
            done = (run >= convergence_iter) & E.any(axis=1)
            if done.any():
                E_out[active[done]] = E[done]
                conv_out[active[done]] = True
                left = ~done
                if not left.any():
                    return E_out, conv_out
                active, S, A, R = active[left], S[left], A[left], R[left]
                prev, run = prev[left], run[left]
                tmp, Rp, rows = buffers(len(active))
    E_out[active] = prev
    return E_out, conv_out


def _exemplar_labels(S: np.ndarray, E: np.ndarray) -> np.ndarray:
    """sklearn's final assignment: refine each exemplar to its cluster's most central member."""
    exemplars = np.flatnonzero(E)
    K = exemplars.size
    if K == 0:
        return np.full(S.shape[0], -1, dtype=np.intp)
    c = np.argmax(S[:, exemplars], axis=1)
    c[exemplars] = np.arange(K)
    for kk in range(K):
        members = np.flatnonzero(c == kk)
        exemplars[kk] = members[np.argmax(S[np.ix_(members, members)].sum(axis=0))]
    c = np.argmax(S[:, exemplars], axis=1)
    c[exemplars] = np.arange(K)
    labels = exemplars[c]
    return np.searchsorted(np.unique(labels), labels)


def affinity_propagation_batch(
    S: np.ndarray,
    *,
    seed: int | None = 0,
    preference: float | None = None,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
) -> tuple[np.ndarray, np.ndarray]:
    """Affinity propagation on a ``(B, n, n)`` stack of precomputed similarities at once.

    Each problem gets exactly what scikit-learn would return for it with ``random_state=seed``.
    Returns ``(labels (B, n), converged (B,))``; labels are 0..K-1, all -1 where no exemplar
    emerged.
    """
    X = np.asarray(S, dtype=np.float64)
    B, n = X.shape[0], X.shape[1]
    if n == 1:
        return np.zeros((B, 1), dtype=np.intp), np.ones(B, dtype=bool)
    labels = np.zeros((B, n), dtype=np.intp)
    conv = np.ones(B, dtype=bool)
    prepared = np.empty_like(X)
    # sklearn draws the noise from RandomState(seed) per fit: the same matrix for every problem.
    noise = np.random.RandomState(seed).standard_normal(size=(n, n))
    run_idx = []
    for b in range(B):
        pref = float(np.median(X[b])) if preference is None else float(preference)
        if _all_equal_similarities(X[b]):
            # Nothing to separate: sklearn returns all alone if the preference wins, else one.
            labels[b] = np.arange(n) if pref > X[b].flat[n - 1] else 0
            continue
        prepared[b] = _prepare(X[b], pref, noise)
        run_idx.append(b)
    if run_idx:
        idx = np.array(run_idx)
        E, ok = _ap_messages(prepared[idx], damping, max_iter, convergence_iter)
        for j, b in enumerate(idx):
            labels[b] = _exemplar_labels(prepared[b], E[j])
            conv[b] = bool(ok[j]) and labels[b].min() >= 0
    return labels, conv


def affinity_propagation_labels(
    S: np.ndarray,
    *,
    seed: int | None = 0,
    preference: float | None = None,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
) -> tuple[np.ndarray, bool]:
    """Affinity propagation on one precomputed similarity (numpy port of scikit-learn's).

    Returns ``(labels, converged)``; see :func:`affinity_propagation_batch`.
    """
    labels, conv = affinity_propagation_batch(
        np.asarray(S, dtype=np.float64)[None],
        seed=seed,
        preference=preference,
        damping=damping,
        max_iter=max_iter,
        convergence_iter=convergence_iter,
    )
    return labels[0], bool(conv[0])


def non_convergence_message(max_iter: int, n_tasks: int) -> str:
    """What to say when affinity propagation did not converge (one sentence, no CLI flags)."""
    return (
        f"affinity propagation did not converge in {max_iter} iterations on {n_tasks} tasks, "
        "so these groups (every task alone) are a fallback, not clusters; hierarchical "
        "clustering always gives a partition (or raise the damping or the iterations)"
    )


def proximal_groups(
    A: AffinityMatrix,
    tasks: Sequence[str],
    seed: int | None = 0,
    *,
    fallback: Grouping | None = None,
    max_iter: int = 200,
) -> Grouping:
    """Groups for one sequential-update step: normalize, symmetrize, affinity propagation.

    Fast path for the trainer (no validation beyond shape; median ~1 ms at 10 tasks, a few ms
    when the messages never settle). ``A[i, j]``: effect of task i's update on task j's loss,
    e.g. the proximal EMA. Returns a partition; on non-convergence ``fallback`` (default: every
    task alone).
    """
    A = np.asarray(A, dtype=np.float64)
    labels, converged = affinity_propagation_labels(
        normalize_affinity(A), seed=seed, max_iter=max_iter
    )
    if not converged or labels.min() < 0:
        return fallback if fallback is not None else canonical_grouping([t] for t in tasks)
    return labels_to_grouping(tasks, labels)


class AffinityPropagationGrouper(BaseGrouper):
    """Affinity propagation on the diagonal-normalized, symmetrized affinity.

    Parameters
    ----------
    seed : int or None
        Seed of the tiny tie-breaking noise (sklearn's ``random_state``).
    damping, preference, max_iter, convergence_iter :
        As in ``sklearn.cluster.AffinityPropagation`` (preference None = median similarity).
    backend : {"sklearn", "numpy"}
        scikit-learn's estimator, or the numpy port used by :func:`proximal_groups`.

    Attributes
    ----------
    groups_, score_ :
        As for every grouper. On non-convergence every task is alone (see module docstring).
    converged_ : bool
        Whether the messages converged.
    warning_ : str or None
        On non-convergence, what happened and what to try next (else None).
    similarity_ : ndarray
        The normalized, symmetrized matrix that was clustered.
    """

    method = "affinity-propagation"

    def __init__(
        self,
        *,
        seed: int | None = 0,
        damping: float = 0.5,
        preference: float | None = None,
        max_iter: int = 200,
        convergence_iter: int = 15,
        backend: str = "sklearn",
    ) -> None:
        self.seed = seed
        self.damping = damping
        self.preference = preference
        self.max_iter = max_iter
        self.convergence_iter = convergence_iter
        self.backend = backend

    def _check_params(self, n_tasks: int) -> None:
        if not 0.5 <= float(self.damping) < 1.0:
            raise LabError(f"damping must be in [0.5, 1), got {self.damping}")
        if self.backend not in BACKENDS:
            raise LabError(
                f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}"
            )
        if int(self.max_iter) < 1 or int(self.convergence_iter) < 1:
            raise LabError("max_iter and convergence_iter must be >= 1")

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        S = normalize_affinity(A)
        self.similarity_ = S
        if self.backend == "numpy" or len(tasks) == 1:
            labels, conv = affinity_propagation_labels(
                S,
                seed=self.seed,
                preference=self.preference,
                damping=float(self.damping),
                max_iter=int(self.max_iter),
                convergence_iter=int(self.convergence_iter),
            )
        else:
            labels, conv = self._sklearn_labels(S)
        self.converged_ = bool(conv and labels.min() >= 0)
        if not self.converged_:
            self.warning_ = non_convergence_message(int(self.max_iter), len(tasks))
            return canonical_grouping([t] for t in tasks)
        return labels_to_grouping(tasks, labels)

    def _batch_labels(self, A: np.ndarray, tasks: list[str]) -> np.ndarray:
        # Timelines: the batched numpy port (identical results to sklearn, tested).
        labels, conv = affinity_propagation_batch(
            normalize_affinity(A),
            seed=self.seed,
            preference=self.preference,
            damping=float(self.damping),
            max_iter=int(self.max_iter),
            convergence_iter=int(self.convergence_iter),
        )
        labels[~conv] = np.arange(len(tasks))  # non-convergence: every task alone
        return labels

    def _sklearn_labels(self, S: np.ndarray) -> tuple[np.ndarray, bool]:
        from sklearn.cluster import AffinityPropagation
        from sklearn.exceptions import ConvergenceWarning

        ap = AffinityPropagation(
            affinity="precomputed",
            damping=float(self.damping),
            preference=self.preference,
            max_iter=int(self.max_iter),
            convergence_iter=int(self.convergence_iter),
            random_state=self.seed,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ap.fit(S)
        conv = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return np.asarray(ap.labels_), conv
