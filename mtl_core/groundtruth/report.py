"""The lab's own ``evaluate --exhaustive`` reports read as ground-truth tables.

An exhaustive evaluation trains every candidate group of the scenario's tasks (paired with its
complement, so complements of one task are trained too) and writes, per seed, every trained
network's per-task validation and test loss into the report's ``exhaustive`` record
(``runs[i]["networks"]``, :meth:`mtl_core.experiments.candidates.CandidateNetworks.table`).
:func:`read_evaluate_report` turns them into two :class:`~.tables.GroundTruth` tables: the
validation losses (the selection table) and the test losses (the scoring table), every network
cost 1, lower is better. The report's co-training lookahead affinity comes with them, for TAG.

The JSON is parsed with :func:`json.loads` (never unpickled), after the size check of every
ground-truth file; every error is one line naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtl_core.errors import LabError
from mtl_core.groundtruth.tables import FULL_COST, GroundTruth, _check_size, _text, check_direction

#: ``kind`` of an evaluate report (:data:`mtl_core.experiments.report.REPORT_KIND`; written out
#: here so that this package never imports the experiments package, which may import it).
REPORT_KIND = "task-affinity-lab/evaluate"


@dataclass
class EvaluateTables:
    """An evaluate report as ground truth: ``selection`` (validation losses) and ``scoring``
    (test losses) over the same networks; ``affinity`` the co-training's mean lookahead
    matrix ``(n, n)`` (rows = source) over the seeds read, or None; ``seeds`` the seeds read."""

    selection: GroundTruth
    scoring: GroundTruth
    affinity: tuple[list[str], np.ndarray] | None
    seeds: list[int]


def is_evaluate_report(path: str | Path) -> bool:
    """Whether ``path`` looks like an evaluate report (a ``.json`` file whose first 4 KB name
    its ``kind``); a cheap check for the CLI's layout dispatch, :func:`read_evaluate_report`
    validates."""
    p = Path(path)
    if p.suffix.lower() != ".json" or not p.is_file():
        return False
    with open(p, "rb") as fh:
        head = fh.read(4096).decode("utf-8", "replace")
    return REPORT_KIND in head


def read_evaluate_report(
    source: str | Path | bytes,
    *,
    seed: int | None = None,
    direction: str | None = None,
    name: str | None = None,
) -> EvaluateTables:
    """Read an ``evaluate --exhaustive`` report (``--out r.json``) as ground-truth tables.

    ``seed``: read that seed's networks; default every seed, each cell the mean over the seeds
    (a network is kept when every seed trained it). Task names are the report's. Direction
    ``lower`` (losses); declaring ``higher`` is refused.

    Raises
    ------
    LabError
        One line naming the file: not JSON, not an evaluate report, no exhaustive record (run
        ``evaluate --exhaustive``), a report written before networks were recorded, a seed
        not in the report, a malformed network entry, sizes over the limits.
    """
    text, nm = _text(source, name)
    d = check_direction(direction, "lower", nm)
    if d != "lower":
        raise LabError(f"{nm}: an evaluate report holds losses: lower is better")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabError(f"{nm}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(doc, dict) or doc.get("kind") != REPORT_KIND:
        raise LabError(f"{nm}: not an evaluate report (its kind is not {REPORT_KIND!r})")
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    tasks = spec.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise LabError(f"{nm}: the report's spec names no tasks")
    runs = doc.get("runs") if isinstance(doc.get("runs"), list) else []
    ex = [r for r in runs if isinstance(r, dict) and r.get("approach") == "exhaustive"]
    if not ex:
        raise LabError(
            f"{nm}: no exhaustive results; run evaluate with --exhaustive to train every "
            "candidate network"
        )
    if any("networks" not in r for r in ex):
        raise LabError(
            f"{nm}: the report lists no candidate networks (written by an older version); "
            "rerun evaluate --exhaustive"
        )
    by_seed = {int(r.get("seed", -1)): r["networks"] for r in ex}
    if seed is not None:
        if int(seed) not in by_seed:
            have = ", ".join(str(s) for s in sorted(by_seed))
            raise LabError(f"{nm}: no exhaustive results for seed {seed} (it has: {have})")
        by_seed = {int(seed): by_seed[int(seed)]}
    n = len(tasks)
    pos = {t: i for i, t in enumerate(tasks)}
    cells: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
    for s, nets in by_seed.items():
        if not isinstance(nets, list):
            raise LabError(f"{nm}: seed {s}: 'networks' is not a list")
        _check_size(len(nets), n, nm)
        for i, net in enumerate(nets):
            mem, val, test = _network(net, pos, nm, s, i)
            cells.setdefault(mem, []).append((val, test))
    seeds = sorted(by_seed)
    kept = sorted((m for m, v in cells.items() if len(v) == len(seeds)), key=lambda m: (len(m), m))
    if not kept:
        raise LabError(f"{nm}: no network was trained in every seed; pick one with a seed")
    val = np.vstack([np.mean([v for v, _ in cells[m]], axis=0) for m in kept])
    test = np.vstack([np.mean([t for _, t in cells[m]], axis=0) for m in kept])
    costs = np.full(len(kept), FULL_COST)
    label = nm if len(seeds) > 1 else f"{nm} (seed {seeds[0]})"
    sel = GroundTruth(list(tasks), kept, costs, val, "lower", label, "val")
    sco = GroundTruth(list(tasks), list(kept), costs.copy(), test, "lower", label, "test")
    return EvaluateTables(sel, sco, _affinity(doc, seeds, n), seeds)


def _network(net, pos: dict[str, int], nm: str, s: int, i: int):
    where = f"{nm}: seed {s}, network {i + 1}"
    if not isinstance(net, dict) or not isinstance(net.get("tasks"), list):
        raise LabError(f"{where}: not {{'tasks', 'val', 'test'}}")
    names = net["tasks"]
    unknown = [t for t in names if t not in pos]
    if unknown or not names or len(set(names)) != len(names):
        raise LabError(f"{where}: tasks {names!r:.80} are not distinct tasks of the spec")
    mem = tuple(sorted(pos[t] for t in names))
    out = []
    for split in ("val", "test"):
        vals = net.get(split)
        row = np.full(len(pos), np.nan)
        if not isinstance(vals, dict):
            raise LabError(f"{where}: no {split} losses")
        for t in names:
            v = vals.get(t)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise LabError(f"{where}: {split} loss of {t!r} is not a finite number")
            row[pos[t]] = float(v)
        out.append(row)
    return mem, out[0], out[1]


def _affinity(doc: dict, seeds: list[int], n: int) -> tuple[list[str], np.ndarray] | None:
    aff = doc.get("affinity")
    if not isinstance(aff, dict):
        return None
    mats = []
    for s in seeds:
        a = aff.get(str(s))
        try:
            A = np.asarray(a, dtype=float)
        except (TypeError, ValueError):
            return None
        if A.shape != (n, n):
            return None
        mats.append(A)
    if not mats:
        return None
    return list(doc["spec"]["tasks"]), np.mean(mats, axis=0)


__all__ = ["REPORT_KIND", "EvaluateTables", "is_evaluate_report", "read_evaluate_report"]
