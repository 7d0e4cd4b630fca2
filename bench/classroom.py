"""A class pressing Train at once: N sessions on one runner (the app's process-wide runner:
2 workers, warm standby workers, nice 10), each doing what the Learn page does, through its
own code path: ``lesson.start(..., share="class")`` as its own owner (``browser:<i>``), then
polling the store every 0.5 s through ``mtl_core.lesson.state.state`` as the page's fragment
does. Presses are spread evenly over ``--spread`` seconds.

Per session: time from its press to the first heatmap (the together run's first affinity
matrix in the store) and to the lesson finished (all three runs, the grouped one queued by
the runner's LessonAdvancer, finished). Two cases:

- ``same``: half the sessions on the default knob (conflict 1), the rest spread over
  0, 0.25, 0.5 and 0.75 (5 distinct lessons, shared);
- ``distinct``: every session its own lesson (seeds 0..N-1, conflict 1);
- ``ahead``: the ``same`` class after the runner held the five levels' lessons ahead while
  idle (``lessons_ahead``, as ``MTL_LAB_LESSON_AHEAD=1,0,0.25,0.5,0.75``; the time it took
  is ``prep_s``): every press replays.

    nice python -m bench.classroom [--sessions 30] [--workers 2] [--spread 20] [--limit 400]

Prints a Markdown table (and writes ``bench/results/classroom-<cases>.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.state import state
from mtl_core.runner import Runner
from mtl_core.store import TERMINAL, Store

RESULTS = Path(__file__).resolve().parent / "results" / "classroom.json"
POLL_S = 0.5


class _Session:
    """One browser session's runner view: submits owned by ``browser:<i>``."""

    def __init__(self, runner: Runner, i: int) -> None:
        self.runner, self.actor = runner, SimpleNamespace(id=f"browser:{i}")
        self.limits = runner.limits

    def submit(self, cfg: Any, **kw: Any) -> int | None:
        return self.runner.submit(cfg, owner=self.actor.id, **kw)


LEVELS = (1.0, 0.0, 0.25, 0.5, 0.75)


def _knobs(case: str, i: int, n: int) -> tuple[dict[str, float], int]:
    if case == "distinct":
        return {"conflict": 1.0}, i
    if i < n // 2:
        return {"conflict": 1.0}, 0
    return {"conflict": (0.0, 0.25, 0.5, 0.75)[i % 4]}, 0


def _session(
    runner: Runner,
    store: Store,
    i: int,
    case: str,
    n: int,
    delay: float,
    limit: float,
    out: list[dict[str, Any]],
) -> None:
    time.sleep(delay)
    knobs, seed = _knobs(case, i, n)
    t0 = time.monotonic()
    rec: dict[str, Any] = {
        "session": i,
        "knobs": knobs,
        "seed": seed,
        "first": None,
        "done": None,
        "error": None,
    }
    try:
        ids = lesson.start(_Session(runner, i), store, knobs, seed=seed, share="class")
        rec["followed"] = ids.followed
        while time.monotonic() - t0 < limit:
            s = state(store, ids)
            ids = s.ids
            if rec["first"] is None and s.affinity is not None:
                rec["first"] = time.monotonic() - t0
            if len(s.runs) == 3 and all(r.status in TERMINAL for r in s.runs.values()):
                bad = [r.status for r in s.runs.values() if r.status != "finished"]
                if bad:
                    rec["error"] = f"runs ended {bad}"
                rec["done"] = time.monotonic() - t0
                break
            time.sleep(POLL_S)
    except Exception as exc:  # noqa: BLE001 - a bench counts every error
        rec["error"] = repr(exc)
    out.append(rec)


def run_case(case: str, sessions: int, workers: int, spread: float, limit: float) -> dict:
    """One case on a fresh store and runner; the per-session records and a summary."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "class.sqlite")
        runner = Runner(
            store,
            max_workers=workers,
            warm=workers,
            preload=("mtl_core.train.loop:warmup",),
            nice=10,
            lessons_ahead=LEVELS if case == "ahead" else (),
        )
        time.sleep(5.0)  # the standby workers import torch, as a server does before class
        prep = 0.0
        if case == "ahead":  # until all five lessons are held (15 runs finished)
            p0 = time.monotonic()
            while time.monotonic() - p0 < limit and not (
                len(store.run_ids("finished")) >= 3 * len(LEVELS)
                and not store.run_ids("queued", "running")
            ):
                time.sleep(1.0)
            prep = time.monotonic() - p0
        out: list[dict[str, Any]] = []
        threads = [
            threading.Thread(
                target=_session,
                args=(
                    runner,
                    store,
                    i,
                    case,
                    sessions,
                    spread * i / max(1, sessions - 1),
                    limit,
                    out,
                ),
            )
            for i in range(sessions)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        trained = len(store.run_ids())
        runner.shutdown()
    first = [r["first"] for r in out if r["first"] is not None]
    done = [r["done"] for r in out if r["done"] is not None]
    return {
        "case": case,
        "sessions": sessions,
        "workers": workers,
        "spread_s": spread,
        "runs_trained": trained,
        "first_median_s": statistics.median(first) if first else None,
        "first_max_s": max(first) if first else None,
        "done_median_s": statistics.median(done) if done else None,
        "done_max_s": max(done) if len(done) == sessions else None,
        "unfinished": sessions - len(done),
        "errors": sum(r["error"] is not None for r in out),
        "wall_s": wall,
        "prep_s": prep,
        "records": sorted(out, key=lambda r: r["session"]),
    }


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--spread", type=float, default=20.0, help="presses over this many s")
    ap.add_argument("--limit", type=float, default=400.0, help="a session gives up after s")
    ap.add_argument("--cases", default="same,distinct")
    a = ap.parse_args()
    rows = [run_case(c, a.sessions, a.workers, a.spread, a.limit) for c in a.cases.split(",")]
    out = RESULTS.with_name(f"classroom-{a.cases.replace(',', '-')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(
        "| case | sessions | runs trained | first heatmap median / max (s) "
        "| lesson finished median / max (s) | unfinished | errors | held ahead in (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['sessions']} | {r['runs_trained']} "
            f"| {_fmt(r['first_median_s'])} / {_fmt(r['first_max_s'])} "
            f"| {_fmt(r['done_median_s'])} / {_fmt(r['done_max_s'])} "
            f"| {r['unfinished']} | {r['errors']} "
            f"| {_fmt(r['prep_s']) if r['case'] == 'ahead' else '–'} |"
        )


if __name__ == "__main__":
    main()
