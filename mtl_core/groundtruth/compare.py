"""Estimators side by side on one measured table: which networks each chooses, their measured
score, the regret against the optimum, and rank agreement with the measured values.

Every estimator predicts a value for each (network, task) cell, chooses networks on its
predictions, and is then *served and scored by the same rule on the measured tables*: each
task is served by the chosen network with its best value on the selection table, and the
selection's score is the sum of those networks' values on the scoring table (networks matched
by task set and cost).

- ``optimal``: the exact best selection on the selection table (:mod:`.select`).
- ``hoa``: HOA's higher-order approximation (Standley et al. 2020, Sec. 3.4): a network on 3+
  tasks is predicted, per task, by the mean of that task's value in the table's pair networks
  inside the subset (full-size pairs only); single and pair networks keep their measured
  selection values. A 3+ network with a task in no measured pair inside it is not a candidate.
- ``affinity``: TAG (Fifty et al. 2021): a task's predicted value in a network is the mean
  affinity onto it from the network's other tasks (``A[source, target]``); TAG's own rule
  chooses at most ``k`` networks of 2+ tasks (under a budget ``B``: at most ``floor(B)``),
  among the table's full-size networks, maximising the served total of those predictions.
- ``estimate``: an uploaded table in the same layout, chosen on like the measured one.
- ``random``: random covering selections within the limit (mean and sd of the score).
- ``worst``: the exact worst covering selection within the limit (served by the same rule).

Rank agreement: Spearman and Kendall (tau-b; :func:`scipy.stats.spearmanr`,
:func:`scipy.stats.kendalltau`) between an estimator's predictions and the scoring table's
values over the cells (network, task) of networks of 2+ tasks where both exist. Affinity is
in other units and higher = better, so it is correlated with the measured values turned
higher-is-better (negated when lower is better); a positive number always means agreement.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import kendalltau, spearmanr

from mtl_core.errors import LabError
from mtl_core.groundtruth.select import (
    DEFAULT_TIME_LIMIT,
    Choice,
    best_selection,
    random_selections,
    served_total,
    worst_selection,
)
from mtl_core.groundtruth.tables import FULL_COST, GroundTruth


def align(table: GroundTruth, other: GroundTruth, what: str, *, complete: bool) -> np.ndarray:
    """``other``'s values in ``table``'s network and task order (NaN where missing).

    Tasks are matched by name; networks by task set and cost. ``complete``: every network
    of ``table`` must be in ``other`` (a scoring table), else LabError naming the first one
    missing.
    """
    pos = {t: i for i, t in enumerate(other.tasks)}
    missing = [t for t in table.tasks if t not in pos]
    if missing:
        raise LabError(f"{other.name}: the {what} has no task {missing[0]!r} of {table.name}")
    cols = np.array([pos[t] for t in table.tasks])
    out = np.full(table.values.shape, np.nan)
    for j, mem in enumerate(table.members):
        key = tuple(sorted(int(cols[i]) for i in mem))
        r = other.find(key, float(table.costs[j]))
        if r is None:
            if complete:
                raise LabError(
                    f"{other.name}: the {what} has no network "
                    f"{'+'.join(table.network_names(j))} (cost {table.costs[j]:g}) of {table.name}"
                )
            continue
        out[j, list(mem)] = other.values[r, cols[list(mem)]]
        if complete and np.isnan(out[j, list(mem)]).any():
            raise LabError(f"{other.name}: network {'+'.join(table.network_names(j))} lacks a task")
    return out


def hoa_predictions(table: GroundTruth) -> np.ndarray:
    """HOA's higher-order approximation of ``table.values`` (see the module docstring):
    (m, n), NaN for networks that cannot be predicted."""
    n = len(table.tasks)
    pair = np.full((n, n), np.nan)  # pair[i, l]: task i's value in the full-size pair {i, l}
    for j, mem in enumerate(table.members):
        if len(mem) == 2 and float(table.costs[j]) == FULL_COST:
            a, b = mem
            pair[a, b] = table.values[j, a]
            pair[b, a] = table.values[j, b]
    pred = table.values.copy()
    for j, mem in enumerate(table.members):
        if len(mem) < 3:
            continue
        idx = list(mem)
        sub = pair[np.ix_(idx, idx)]
        with np.errstate(invalid="ignore"):
            counts = (~np.isnan(sub)).sum(axis=1)
            means = np.nansum(sub, axis=1) / np.maximum(counts, 1)
        if (counts == 0).any():
            pred[j] = np.nan
        else:
            pred[j, idx] = means
    return pred


def affinity_predictions(table: GroundTruth, tasks: list[str], A: np.ndarray) -> np.ndarray:
    """TAG's per-cell prediction (higher = better): mean of ``A[l, i]`` over the network's other
    tasks ``l``; NaN for single-task networks, half-size networks and unmeasured cells.

    Raises LabError when the matrix lacks one of the table's tasks (matched by name)."""
    pos = {t: i for i, t in enumerate(tasks)}
    missing = [t for t in table.tasks if t not in pos]
    if missing:
        raise LabError(
            f"the affinity matrix has no task {missing[0]!r} of {table.name} "
            f"(it has: {', '.join(tasks[:8])}{', ...' if len(tasks) > 8 else ''}); "
            "tasks are matched by name: give --tasks"
        )
    idx = np.array([pos[t] for t in table.tasks])
    B = np.asarray(A, dtype=float)[np.ix_(idx, idx)]
    pred = np.full(table.values.shape, np.nan)
    for j, mem in enumerate(table.members):
        if len(mem) < 2 or float(table.costs[j]) != FULL_COST:
            continue
        m = list(mem)
        sub = B[np.ix_(m, m)].copy()
        np.fill_diagonal(sub, np.nan)
        with np.errstate(invalid="ignore"):
            pred[j, m] = np.nanmean(sub, axis=0)
    return pred


def agreement(pred: np.ndarray, measured: np.ndarray, members) -> dict | None:
    """Spearman and Kendall between ``pred`` and ``measured`` over cells of 2+ task networks
    where both are finite; None when fewer than 3 such cells."""
    big = np.array([len(m) >= 2 for m in members])
    mask = big[:, None] & np.isfinite(pred) & np.isfinite(measured)
    p, v = pred[mask], measured[mask]
    if len(p) < 3:
        return None
    rho = spearmanr(p, v).statistic
    tau = kendalltau(p, v).statistic
    return {
        "spearman": _num(rho),
        "kendall": _num(tau),
        "cells": int(len(p)),
    }


def predictions(
    table: GroundTruth,
    *,
    estimate: GroundTruth | None = None,
    affinity: tuple[list[str], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each estimator's per-cell predictions of ``table``, (m, n) in its network and task
    order (NaN where it predicts nothing): ``hoa`` when the table has networks of 3+ tasks it
    can predict from pairs, ``affinity`` (higher = better, affinity units) with a matrix,
    ``estimate`` with an estimate table (in the table's own units and direction)."""
    preds: dict[str, np.ndarray] = {}
    hp = hoa_predictions(table)
    if np.isfinite(hp[[len(m) >= 3 for m in table.members]]).any():
        preds["hoa"] = hp
    if affinity is not None:
        preds["affinity"] = affinity_predictions(table, *affinity)
    if estimate is not None:
        preds["estimate"] = align(table, estimate, "estimate", complete=False)
    return preds


def prediction_cells(
    table: GroundTruth,
    scoring: GroundTruth | None = None,
    *,
    estimate: GroundTruth | None = None,
    affinity: tuple[list[str], np.ndarray] | None = None,
) -> list[dict]:
    """The cells the agreement is computed over, one dict per (estimator, network of 2+
    tasks, task) where both the prediction and the scoring table's value exist:
    ``{"estimator", "network" ("a+b+c"), "task", "predicted", "measured"}`` (measured in the
    scoring table's own units and direction; for the predicted-vs-measured scatter)."""
    measured = (
        table.values if scoring is None else align(table, scoring, "scoring table", complete=True)
    )
    out = []
    for name, p in predictions(table, estimate=estimate, affinity=affinity).items():
        for j, mem in enumerate(table.members):
            if len(mem) < 2:
                continue
            net = "+".join(table.network_names(j))
            for i in mem:
                if np.isfinite(p[j, i]) and np.isfinite(measured[j, i]):
                    out.append(
                        {
                            "estimator": name,
                            "network": net,
                            "task": table.tasks[i],
                            "predicted": float(p[j, i]),
                            "measured": float(measured[j, i]),
                        }
                    )
    return out


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _sign(table: GroundTruth) -> float:
    return 1.0 if table.direction == "higher" else -1.0


def compare(
    table: GroundTruth,
    scoring: GroundTruth | None = None,
    *,
    ks: list[int] | None = None,
    budgets: list[float] | None = None,
    estimate: GroundTruth | None = None,
    affinity: tuple[list[str], np.ndarray] | None = None,
    draws: int = 100,
    seed: int = 0,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> dict:
    """Every estimator at every ``k`` (or budget) on ``table``, scored on ``scoring``
    (default: ``table`` itself). Returns the ``select --json`` document (docs/ground-truth.md):
    ``{"tasks", "direction", "rows": [...], "agreement": {...}, "stopped": bool}``;
    ``stopped`` is True when any solve (optimal, an estimator's, worst) was ended by
    ``time_limit`` (wall-clock seconds), the one case where the result may depend on the
    machine's speed and load (that solve's ``proven`` is then False).

    Raises LabError for limits that are not positive, an estimate or scoring table that does
    not match, an affinity matrix that lacks a task.
    """
    if (ks is None) == (budgets is None):
        raise LabError("give either --k or --budget")
    limits: list[tuple[str, float]] = []
    for k in ks or []:
        if int(k) < 1:
            raise LabError(f"--k must be at least 1, got {k}")
        limits.append(("k", int(k)))
    for b in budgets or []:
        if not (float(b) > 0 and math.isfinite(float(b))):
            raise LabError(f"--budget must be > 0, got {b}")
        limits.append(("budget", float(b)))
    sign = _sign(table)
    sel = table.values
    score_vals = sel if scoring is None else align(table, scoring, "scoring table", complete=True)
    gains = sign * sel
    present = ~np.isnan(sel)
    preds = predictions(table, estimate=estimate, affinity=affinity)
    size2 = np.array(
        [len(m) >= 2 and float(c) == FULL_COST for m, c in zip(table.members, table.costs)]
    )

    stopped = False  # a solve ended by its wall-clock limit: the answer may depend on load

    def result(ch: Choice | None) -> dict | None:
        nonlocal stopped
        if ch is None:
            return None
        stopped = stopped or not ch.proven
        nets = sorted(ch.networks, key=lambda j: (table.members[j], float(table.costs[j])))
        return {
            "networks": [table.network_names(j) for j in nets],
            "selection": served_total(sel, nets, gains),
            "score": served_total(score_vals, nets, gains),
            "proven": bool(ch.proven),
            "_gap": ch.gap,
            "_costs": [float(table.costs[j]) for j in nets],
        }

    rows = []
    # each estimator's selections so far, by limit: a selection within a smaller limit is one
    # within this one, so a search the time limit cuts short starts from it too
    done: dict[str, list[tuple[float, list[int]]]] = {}

    def solve(name: str, lim: float, fn, *args, **kw) -> Choice | None:
        starts = [nets for was, nets in done.get(name, []) if was <= lim]
        ch = fn(*args, time_limit=time_limit, starts=starts, **kw)
        if ch is not None:
            done.setdefault(name, []).append((lim, list(ch.networks)))
        return ch

    for kind, lim in limits:
        kw = {"k": lim} if kind == "k" else {"budget": lim}
        row: dict = {kind: lim}
        row["optimal"] = result(solve("optimal", lim, best_selection, gains, table.costs, **kw))
        for name, p in preds.items():
            if name == "affinity":
                tk = int(lim) if kind == "k" else int(math.floor(lim + 1e-9))
                ch = (
                    solve(name, tk, best_selection, p, table.costs, k=tk, allowed=size2)
                    if tk >= 1
                    else None
                )
            else:
                pg = sign * np.where(present, p, np.nan)
                allowed = ~(present & np.isnan(p)).any(axis=1)
                ch = solve(name, lim, best_selection, pg, table.costs, allowed=allowed, **kw)
            row[name] = result(ch)
        picks = random_selections(table.costs, present, draws=draws, seed=seed, **kw)
        if picks:
            scores = np.array([served_total(score_vals, p, gains) for p in picks])
            row["random"] = {
                "mean": float(scores.mean()),
                "sd": float(scores.std(ddof=1)) if len(scores) > 1 else 0.0,
                "draws": len(scores),
            }
        row["worst"] = result(solve("worst", lim, worst_selection, gains, table.costs, **kw))
        rows.append({key: v for key, v in row.items() if v is not None})
    agree = {}
    for name, p in preds.items():
        measured = score_vals * (sign if name == "affinity" else 1.0)
        a = agreement(p, measured, table.members)
        if a is not None:
            agree[name] = a
    return {
        "tasks": list(table.tasks),
        "direction": table.direction,
        "rows": rows,
        "agreement": agree,
        "stopped": stopped,
    }


def public(doc: dict) -> dict:
    """``doc`` without the private keys (``_gap``, ``_costs``) the text table uses."""

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if not k.startswith("_")}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return strip(doc)
