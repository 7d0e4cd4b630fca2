"""Pure numpy helpers behind the pages: smoothing, averaging, downsampling, agreement, and the
lesson's plain-language explanation. No Streamlit and no torch here, so they test quickly.

Direction everywhere: ``A[..., i, j]`` is the effect of an update on task i's loss (the
*source*, a row) on task j's loss (the *target*, a column); positive means it helps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Grouping = tuple[frozenset[str], ...]


# ----------------------------------------------------------------------------- time axis


def running_mean(stack: np.ndarray) -> np.ndarray:
    """Mean over steps ``0..s`` for every ``s`` (NaN cells skipped): ``(S, n, n)``.

    This is the TAG time-averaged matrix as it would look at each logged step.
    """
    stack = np.asarray(stack, dtype=np.float64)
    ok = np.isfinite(stack)
    sums = np.cumsum(np.where(ok, stack, 0.0), axis=0)
    counts = np.cumsum(ok, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def window_mean(stack: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` logged matrices (NaN-aware): ``(S, n, n)``."""
    stack = np.asarray(stack, dtype=np.float64)
    w = max(int(window), 1)
    if w == 1 or len(stack) == 0:
        return stack.copy()
    ok = np.isfinite(stack)
    sums = np.cumsum(np.where(ok, stack, 0.0), axis=0)
    counts = np.cumsum(ok, axis=0).astype(np.float64)
    sums[w:] = sums[w:] - sums[:-w]
    counts[w:] = counts[w:] - counts[:-w]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def ema(stack: np.ndarray, beta: float) -> np.ndarray:
    """Exponential moving average ``e = beta * e + (1 - beta) * A`` (NaN cells keep ``e``),
    bias-corrected so early steps are not pulled towards zero."""
    stack = np.asarray(stack, dtype=np.float64)
    beta = float(np.clip(beta, 0.0, 0.9999))
    out = np.empty_like(stack)
    e = np.zeros(stack.shape[1:])
    weight = np.zeros(stack.shape[1:])
    for s in range(len(stack)):
        x = stack[s]
        ok = np.isfinite(x)
        e = np.where(ok, beta * e + (1 - beta) * np.where(ok, x, 0.0), e)
        weight = np.where(ok, beta * weight + (1 - beta), weight)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s] = np.where(weight > 0, e / np.maximum(weight, 1e-300), np.nan)
    return out


def smooth(stack: np.ndarray, how: str = "none", window: int = 1, beta: float = 0.9) -> np.ndarray:
    """Smooth a stack of matrices over steps: ``how`` is ``none``, ``window`` or ``ema``."""
    if how == "window":
        return window_mean(stack, window)
    if how == "ema":
        return ema(stack, beta)
    return np.asarray(stack, dtype=np.float64)


def sample_indices(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` evenly spaced indices into ``range(n)``, always keeping the first and
    the last, so long runs are downsampled and never truncated."""
    if n <= 0:
        return np.zeros(0, dtype=np.intp)
    if n <= limit:
        return np.arange(n)
    idx = np.unique(np.round(np.linspace(0, n - 1, max(int(limit), 2))).astype(np.intp))
    return idx


def bucket_mean(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Downsample a series to at most ``limit`` points by averaging consecutive buckets
    (x = the bucket's last x, so the final value is at the final step)."""
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.float64)
    if len(x) <= limit:
        return x, y
    edges = np.linspace(0, len(x), int(limit) + 1).astype(np.intp)
    xs, ys = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        seg = y[a:b]
        xs.append(x[b - 1])
        ys.append(np.nanmean(seg) if np.isfinite(seg).any() else np.nan)
    return np.asarray(xs), np.asarray(ys)


def robust_zmax(stack: np.ndarray, hide_diagonal: bool = True, q: float = 99.0) -> float:
    """A fixed symmetric colour limit for a whole run: the ``q``-th percentile of |A| over all
    steps (the diagonal left out when hidden), so animations do not rescale frame to frame."""
    a = np.asarray(stack, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.size == 0:
        return 1.0
    if hide_diagonal and a.shape[-1] > 1:
        mask = ~np.eye(a.shape[-1], dtype=bool)
        a = a[:, mask]
    vals = np.abs(a[np.isfinite(a)])
    if vals.size == 0:
        return 1.0
    z = float(np.percentile(vals, q))
    return z if z > 0 else float(vals.max()) or 1.0


# ----------------------------------------------------------------------------- groupings


def labels_of(grouping: Iterable[Iterable[str]], tasks: Sequence[str]) -> np.ndarray:
    """One label per task: the index of the first group holding it (-1 if none).

    Overlapping groups (TAG) are reduced to a partition this way for agreement scores.
    """
    out = np.full(len(tasks), -1, dtype=np.intp)
    pos = {t: i for i, t in enumerate(tasks)}
    for g, members in enumerate(grouping):
        for t in sorted(members):
            i = pos.get(t)
            if i is not None and out[i] < 0:
                out[i] = g
    return out


def adjusted_rand(
    a: Iterable[Iterable[str]], b: Iterable[Iterable[str]], tasks: Sequence[str]
) -> float:
    """Adjusted Rand index between two groupings of the same tasks (1 = identical, ~0 =
    chance), scikit-learn's ``adjusted_rand_score`` on one label per task (:func:`labels_of`;
    tasks missing from either grouping are left out). Fewer than two tasks: 1."""
    la, lb = labels_of(a, tasks), labels_of(b, tasks)
    keep = (la >= 0) & (lb >= 0)
    if keep.sum() < 2:
        return 1.0
    # imported here: sklearn.metrics takes a noticeable fraction of a second to import
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(la[keep], lb[keep]))


def group_order(
    tasks: Sequence[str], base_order: Sequence[int], grouping: Iterable[Iterable[str]] | None
) -> np.ndarray:
    """Row order that keeps groups contiguous (groups in order of their first task in
    ``base_order``), tasks inside a group in ``base_order``. Without groups: ``base_order``."""
    base = [int(i) for i in base_order]
    if not grouping:
        return np.asarray(base, dtype=np.intp)
    labels = labels_of(grouping, tasks)
    rank = {i: r for r, i in enumerate(base)}
    first: dict[int, int] = {}
    for i in base:
        first.setdefault(int(labels[i]), rank[i])
    return np.asarray(
        sorted(base, key=lambda i: (first[int(labels[i])], rank[i])), dtype=np.intp
    )


def format_grouping(grouping: Iterable[Iterable[str]]) -> str:
    """``{a, b} · {c}``: how groups are written in text and tables."""
    return " · ".join("{" + ", ".join(sorted(g)) + "}" for g in grouping)


def change_steps(steps: Sequence[int], groupings: Sequence[Grouping]) -> list[int]:
    """Steps at which the grouping differs from the previous logged one."""
    out = []
    for k in range(1, len(groupings)):
        if set(groupings[k]) != set(groupings[k - 1]):
            out.append(int(steps[k]))
    return out


# ----------------------------------------------------------------------------- lesson words


def _pct(v: float) -> str:
    """A relative loss change as a short percentage ("0.4%", "3.1%", "12%")."""
    p = abs(float(v)) * 100
    if p < 0.05:
        return f"{p:.2f}%"
    return f"{p:.2g}%" if p < 10 else f"{p:.0f}%"


def block_means(
    A: np.ndarray, tasks: Sequence[str], grouping: Sequence[Iterable[str]]
) -> tuple[float, float]:
    """Mean off-diagonal affinity inside groups and between different groups."""
    labels = labels_of(grouping, tasks)
    n = len(tasks)
    same = (labels[:, None] == labels[None, :]) & ~np.eye(n, dtype=bool)
    diff = labels[:, None] != labels[None, :]
    within = float(np.nanmean(A[same])) if same.any() else float("nan")
    between = float(np.nanmean(A[diff])) if diff.any() else float("nan")
    return within, between


def explain_lesson(
    A: np.ndarray | None,
    tasks: Sequence[str],
    grouping: Sequence[Iterable[str]] | None,
    mean_loss: dict[str, float],
    finished: bool,
) -> list[str]:
    """Two or three plain sentences about what the lesson shows, written from the numbers.

    ``A`` is the time-averaged lookahead matrix of the all-together run; ``grouping`` the
    groups the grouped run trains; ``mean_loss`` maps ``together`` / ``groups`` / ``single``
    to the mean held-out loss so far (missing while a run has not evaluated yet).
    """
    out: list[str] = []
    between = float("nan")
    if A is not None and grouping and len(grouping) >= 2 and np.isfinite(A).any():
        within, between = block_means(A, tasks, grouping)
        g = [sorted(x) for x in grouping]
        first, second = ", ".join(g[0]), ", ".join(g[1])
        if np.isfinite(within):
            verb = "lowers" if within >= 0 else "raises"
            out.append(
                f"Inside a group ({first}, or {second}) a training step on one task {verb} "
                f"the others' loss by {_pct(within)} on average: "
                + ("they help each other." if within >= 0 else "even they get in each other's way.")
            )
        if np.isfinite(between):
            if between < 0:
                out.append(
                    f"Across groups it is the opposite: a step on a task in one group raises the "
                    f"loss of the tasks in the other by {_pct(between)} on average — the red "
                    "cells. They pull the shared layers in different directions."
                )
            else:
                out.append(
                    f"Across groups a step still lowers the other group's loss, by "
                    f"{_pct(between)} on average, so sharing costs little here."
                )
    elif A is not None and np.isfinite(A).any():
        off = A[~np.eye(len(tasks), dtype=bool)]
        worst = float(np.nanmin(off))
        out.append(
            f"The most harmful pair so far: one task's step raises another's loss by "
            f"{_pct(worst)}." if worst < 0 else "So far every task's step helps every other task."
        )
    tog, grp, sgl = (mean_loss.get(k) for k in ("together", "groups", "single"))
    if tog is not None and grp is not None:
        rel = (tog - grp) / max(abs(tog), 1e-12)
        lead = "At the end" if finished else "So far"
        losses = (f"({grp:.4g} vs {tog:.4g}"
                  + (f"; each task alone: {sgl:.4g}" if sgl is not None else "") + ")")
        if rel > 0.03 and np.isfinite(between) and between >= 0:
            # The loss says "split them" but the affinity shows no harm across the groups:
            # on a tiny shared layer one training run can simply land worse than another.
            out.append(
                f"{lead}, the groups ended {_pct(rel)} lower in held-out loss {losses}, yet the "
                "affinity shows no harm across the groups: this gap is not negative transfer "
                "but the luck of one training run (the shared layer is tiny, and some runs "
                "land worse than others). Change the seed under Advanced knobs to see it move; "
                "the affinity heatmap is the steadier signal."
            )
        elif rel > 0.03:
            out.append(
                f"{lead}, training in these groups gives a {_pct(rel)} lower held-out loss than "
                f"training all tasks together {losses}. That gap is negative transfer."
            )
        elif rel < -0.03 and np.isfinite(between) and between < 0:
            out.append(
                f"{lead}, all tasks together ended {_pct(-rel)} lower in held-out loss than the "
                f"groups {losses}, even though the red cells show the groups hurting each "
                "other: one training run on a tiny shared layer is noisy. Change the seed under "
                "Advanced knobs; the affinity heatmap is the steadier signal."
            )
        elif rel < -0.03:
            out.append(
                f"{lead}, training all tasks together is {_pct(-rel)} better than the groups "
                f"({tog:.4g} vs {grp:.4g}): sharing helps here, there is no negative transfer to "
                "avoid. Turn the conflict up to create some."
            )
        else:
            out.append(
                f"{lead}, all-together and grouped training are within 3% of each other "
                f"({tog:.4g} vs {grp:.4g}): little negative transfer at this conflict level."
            )
    return out
