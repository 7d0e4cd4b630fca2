"""Synthetic runs for the app tests and benchmarks, written through the store's own API.

``planted_stack`` makes affinity matrices with known blocks (tasks in one cluster help each
other, clusters hurt each other), optionally with one task switching cluster part-way so the
group timeline has a change point. ``seed_run`` writes such a run with ``import_parsed`` (one
transaction, fast); ``seed_live_run`` writes step by step with ``append_step`` like a worker.
``fake_train`` is a training function for the runner (``MTL_LAB_TRAIN_FN``) that trains
nothing and reports such matrices quickly.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.config import RunConfig
from mtl_core.events import MetricRow, StepEvent, replica_metric
from mtl_core.runfile import METRIC_FRAME, ParsedRun, matrices_to_long
from mtl_core.store import Store


def planted_stack(
    n_tasks: int = 6,
    steps: int = 60,
    clusters: int = 2,
    *,
    within: float = 0.01,
    between: float = -0.006,
    noise: float = 0.001,
    switch_at: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(steps, tasks, A (S, n, n))`` with planted blocks; ``switch_at``: from that step on,
    the last task of cluster 0 behaves like cluster 1."""
    rng = np.random.default_rng(seed)
    tasks = [f"t{i}" for i in range(n_tasks)]
    cluster = np.array([i * clusters // n_tasks for i in range(n_tasks)])
    out = np.empty((steps, n_tasks, n_tasks))
    moved = int(np.flatnonzero(cluster == 0)[-1])
    for s in range(steps):
        c = cluster.copy()
        if switch_at is not None and s + 1 >= switch_at:
            c[moved] = 1
        same = c[:, None] == c[None, :]
        A = np.where(same, within, between) + noise * rng.standard_normal((n_tasks, n_tasks))
        np.fill_diagonal(A, 0.03)
        out[s] = A
    return np.arange(1, steps + 1, dtype=np.int64), tasks, out


def metrics_frame(
    tasks: list[str], steps: int, *, base: float = 0.5, every: int = 10, scale: float = 1.0
) -> pd.DataFrame:
    """Decreasing val/test losses every ``every`` steps (long form)."""
    rows = []
    for s in range(every, steps + 1, every):
        for i, t in enumerate(tasks):
            v = scale * (base + 0.05 * i) / (1 + s / 50)
            rows.append(("", s, t, "val", "loss", v))
            rows.append(("", s, t, "test", "loss", v * 1.05))
    return pd.DataFrame(rows, columns=METRIC_FRAME)


def config_dict(**over: Any) -> dict[str, Any]:
    """A real RunConfig as a dict (so config diffs and ground truth see real fields)."""
    knobs = {"tasks": 6, "clusters": 2, "conflict": 1.0, **over.pop("knobs", {})}
    cfg = RunConfig(scenario="synthetic", knobs=knobs).to_dict()
    for dotted, value in over.items():
        part, key = dotted.split("__")
        cfg[part][key] = value
    return cfg


def seed_run(
    store: Store,
    *,
    name: str = "seeded",
    n_tasks: int = 6,
    steps: int = 60,
    switch_at: int | None = None,
    measure: str = "lookahead",
    config: dict | None = None,
    loss_scale: float = 1.0,
    seed: int = 0,
    metrics: bool = True,
    unlogged: np.ndarray | None = None,
    tasks: list[str] | None = None,
    owner: str | None = None,
    affinity: bool = True,
) -> int:
    """A finished run with planted-block affinity (and losses) in one transaction (no
    affinity at all with ``affinity=False``: a run trained in groups or alone);
    ``unlogged`` (a ``(steps, n, n)`` bool mask) leaves those cells out of the log; ``tasks``
    names the tasks (``n_tasks`` of the default names otherwise); ``owner`` owns the run."""
    n_tasks = len(tasks) if tasks is not None else n_tasks
    st_, default_names, A = planted_stack(n_tasks, steps, switch_at=switch_at, seed=seed)
    tasks = list(tasks) if tasks is not None else default_names
    if unlogged is not None:
        A = np.where(unlogged, np.nan, A)
    aff = matrices_to_long(st_, tasks, A, measure)
    if not affinity:
        aff = aff.iloc[0:0]
    met = (
        metrics_frame(tasks, steps, scale=loss_scale)
        if metrics
        else pd.DataFrame(columns=METRIC_FRAME)
    )
    meta = {"name": name}
    if config is not None:
        meta["config"] = config
    parsed = ParsedRun(
        tasks=tasks,
        task_types={t: "regression" for t in tasks},
        affinity=aff,
        metrics=met,
        meta=meta,
        runs=[""],
        tasks_declared=True,
    )
    (rid,) = store.import_parsed(parsed, name=name, origin="uploaded")
    if owner is not None:
        store.set_owner(rid, owner)
    return rid


def seed_live_run(
    store: Store,
    *,
    name: str = "live",
    n_tasks: int = 6,
    steps_total: int = 100,
    steps_done: int = 20,
    config: dict | None = None,
) -> int:
    """A *running* trained run with ``steps_done`` steps appended like a worker would, owned by
    this (alive) process so the runner does not mark it interrupted."""
    rid = store.create_run(
        name=name,
        origin="trained",
        status="running",
        config=config or config_dict(),
        steps_total=steps_total,
    )
    store.set_worker(rid, os.getpid())
    append_steps(store, rid, 1, steps_done, steps_total, n_tasks)
    return rid


def append_steps(
    store: Store, rid: int, first: int, last: int, total: int, n_tasks: int = 6
) -> None:
    steps, tasks, A = planted_stack(n_tasks, last, seed=rid)
    for s in range(first, last + 1):
        metrics = []
        if s % 10 == 0:
            metrics = [MetricRow(t, "val", "loss", 0.5 / (1 + s / 50)) for t in tasks]
        store.append_step(
            rid,
            StepEvent(
                step=s,
                total_steps=total,
                tasks=tasks,
                train_loss={t: 0.5 / (1 + s / 50) for t in tasks},
                metrics=metrics,
                affinity={"lookahead": A[s - 1]},
                elapsed_s=0.01 * s,
            ),
        )


def fake_train(cfg: RunConfig, on_step=None):
    """Runner training function that reports planted matrices fast (``knobs``: ``tasks``,
    ``sleep`` seconds per step, else ``MTL_LAB_FAKE_SLEEP_S`` from the server's environment:
    a lesson's runs, whose knobs the page sets, still training when a test looks)."""
    k = cfg.knobs
    n = int(k.get("tasks", 6))
    total = int(cfg.train.steps)
    steps, tasks, A = planted_stack(n, total, seed=int(cfg.train.seed))
    t0 = time.perf_counter()
    for s in range(1, total + 1):
        metrics = []
        if s % int(cfg.train.eval_every) == 0 or s == total:
            metrics = [
                MetricRow(t, split, "loss", 0.5 / (1 + s / 50) + 0.01 * i)
                for i, t in enumerate(tasks)
                for split in ("val", "test")
            ]
            # replicas: each one's held-out loss, spread around the mean
            metrics += [
                MetricRow(
                    t,
                    "test",
                    replica_metric("loss", r),
                    0.5 / (1 + s / 50) + 0.01 * i + 0.001 * (r - 1),
                )
                for i, t in enumerate(tasks)
                for r in range(int(cfg.train.replicas))
                if int(cfg.train.replicas) > 1
            ]
        aff = {"lookahead": A[s - 1]} if cfg.affinity.measure != "none" else {}
        if on_step is not None:
            on_step(
                StepEvent(
                    step=s,
                    total_steps=total,
                    tasks=tasks,
                    train_loss={t: 0.5 / (1 + s / 50) for t in tasks},
                    metrics=metrics,
                    affinity=aff,
                    elapsed_s=time.perf_counter() - t0,
                )
            )
        time.sleep(float(k.get("sleep", os.environ.get("MTL_LAB_FAKE_SLEEP_S", 0.0))))
    return SimpleNamespace(tasks=tasks, task_types=["regression"] * n)


def open_app(page: str, store_path, monkeypatch, *, query: dict | None = None, timeout: float = 30):
    """An AppTest of the real app opened on ``page`` over the store at ``store_path``."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MTL_LAB_STORE", str(store_path))
    monkeypatch.setenv("MTL_LAB_TEST_PAGE", page)
    script = Path(__file__).resolve().parent / "app_script.py"
    at = AppTest.from_file(str(script), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = str(v)
    return at


def shown(markdown: str) -> str:
    """The text a Markdown string from ``app.escape.md`` shows (escapes and joiners removed),
    for asserting on what a page says."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(markdown)).replace("\u2060", "")
