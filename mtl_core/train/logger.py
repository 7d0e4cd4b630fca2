"""Log inter-task affinity from your own PyTorch training loop, in the lab's open format.

Drop an :class:`AffinityLogger` into any multi-task loop whose model has shared parameters and
whose loss can be computed per task. Every ``every`` calls it measures the TAG lookahead affinity
(Fifty et al., 2021) with the lab's vectorized implementation
(:func:`mtl_core.train.affinity.lookahead_from_grads`): ``A[i, j] = 1 - L_j(after task i's step) /
L_j(now)``, the step being the one your optimizer would take (momentum / Adam moments
included), only the shared parameters moving, on the same batch. Then ``save("run.zip")``
writes a file the lab's upload page and ``python -m mtl_core import`` read.

::

    logger = AffinityLogger(model, tasks=["ctr", "cvr", "dwell"], shared="encoder",
                            optimizer=opt, task_losses_fn=per_task_losses, every=10)
    for step, batch in enumerate(loader, start=1):
        losses = per_task_losses(model, batch)           # Tensor[n_tasks], with its graph
        logger.measure(step, batch, losses)              # before optimizer.step()
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        logger.log_losses(step, losses)
    logger.save("my_run.zip")

Live: ``AffinityLogger(..., live="runs/live1")`` (a log folder) or ``live=".lab/store.sqlite"``
(a store run the app's Explore page follows), or both in a list, appends the steps as they are
measured, flushed every ``flush_every`` measured steps or ``flush_s`` seconds, whichever comes
first; ``close()`` (or ``with AffinityLogger(...) as logger:``) writes the rest and ends the run.
See docs/live.md.

This module imports torch; the store and file format modules do not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtl_core import measures as registry
from mtl_core.errors import LabError
from mtl_core.events import BATCH_SPLIT, MetricRow, StepEvent
from mtl_core.runfile import (
    METRIC_FRAME,
    ParsedRun,
    matrices_to_long,
    write_run_file,
)
from mtl_core.train.affinity import (
    TaskLossesFn,
    cosine_affinity,
    frozen_norm_stats,
    lookahead_from_grads,
    per_task_grads,
)

SharedSpec = str | nn.Module | Iterable[str] | Callable[[str], bool]


class AffinityLogger:
    """Measure inter-task affinity inside a user's training loop and write the open format.

    Parameters
    ----------
    model : the multi-task model (``task_losses_fn(model, batch)`` must use it).
    tasks : task names, in the order of ``task_losses_fn``'s output.
    task_losses_fn : ``(model, batch) -> Tensor[n_tasks]``, per-task mean losses on a batch.
    optimizer : the optimizer that trains ``model``; the lookahead step replays its update rule
        and state without changing either.
    shared : which parameters are shared: a name prefix (``"encoder"``), a submodule of
        ``model``, a list of parameter names, or a predicate on names.
    every : measure on every ``every``-th call of :meth:`measure` (the first call included).
    measures : ``("lookahead",)`` by default; add ``"cosine"`` for gradient cosine similarity
        (it reuses the same per-task gradients). Any measure of
        :func:`mtl_core.measures.logger_names` (the registry's shared-step measures), by name
        or alias (``"TAG"``); raises LabError for another.
    task_types, config, notes, name : stored in the file's metadata.
    live : where to append while training (:func:`mtl_core.live.open_sinks`): a folder path,
        a store path (``.sqlite``/``.db``), a ``Store``, a ``LiveSink``, or a list of them.
        Started at the first measured step. Raises LabError for a folder already holding a log.
    flush_every, flush_s : with ``live``, append after this many measured steps or seconds.
    """

    def __init__(
        self,
        model: nn.Module,
        tasks: Sequence[str],
        task_losses_fn: TaskLossesFn,
        optimizer: torch.optim.Optimizer,
        shared: SharedSpec,
        *,
        every: int = 10,
        measures: Sequence[str] = ("lookahead",),
        task_types: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        notes: str = "",
        name: str = "",
        live: Any = None,
        flush_every: int = 10,
        flush_s: float = 5.0,
    ) -> None:
        if int(every) < 1:
            raise LabError(f"every must be a positive integer, got {every}")
        allowed = registry.logger_names()
        names = [registry.canonical(m) for m in measures]
        if not names or any(m not in allowed for m in names):
            raise LabError(f"measures must be among {', '.join(allowed)}, got {list(measures)}")
        measures = tuple(dict.fromkeys(names))
        self.tasks = [str(t) for t in tasks]
        if len(set(self.tasks)) != len(self.tasks) or not self.tasks:
            raise LabError("tasks must be distinct, non-empty names")
        self.model = model
        self.task_losses_fn = task_losses_fn
        self.optimizer = optimizer
        self.shared_names = _shared_names(model, shared)
        self.every = int(every)
        self.measure_names = tuple(measures)
        self.task_types = dict(task_types or {})
        self.config = dict(config or {})
        self.notes = notes
        self.name = name
        self._calls = 0
        self._mats: dict[str, list[tuple[int, float, np.ndarray]]] = {m: [] for m in measures}
        self._metrics: list[tuple[int, str, str, str, float]] = []
        if int(flush_every) < 1 or not float(flush_s) >= 0:
            raise LabError(
                f"flush_every must be >= 1 and flush_s >= 0, got {flush_every}, {flush_s}"
            )
        from mtl_core.live import open_sinks

        self.sinks = open_sinks(live, name)
        self.flush_every = int(flush_every)
        self.flush_s = float(flush_s)
        self._started = False
        self._closed = False
        self._pending: dict[int, StepEvent] = {}
        self._pending_wall: dict[int, float] = {}
        self._t0 = time.monotonic()
        self._last_flush = time.monotonic()
        self._since_flush = 0

    # ------------------------------------------------------------------ logging

    def should_measure(self) -> bool:
        """Whether the next :meth:`measure` call will measure (every ``every``-th call)."""
        return self._calls % self.every == 0

    def measure(
        self, step: int, batch: Any, losses: torch.Tensor | None = None
    ) -> dict[str, np.ndarray] | None:
        """Measure affinity at ``step`` on ``batch`` if this call is due; call it before
        ``optimizer.step()``.

        ``losses`` may be the per-task losses of your training forward (with their graph):
        they are reused, saving a forward, and your ``backward()`` still works afterwards.
        Returns ``{measure: A}`` with ``A[i, j]`` = effect of task i's update on task j's loss,
        or None when this call is not due.
        """
        due = self.should_measure()
        self._calls += 1
        if not due:
            return None
        if losses is None:
            with frozen_norm_stats(self.model):
                losses = self.task_losses_fn(self.model, batch)
        if losses.shape != (len(self.tasks),):
            raise LabError(
                f"task_losses_fn returned shape {tuple(losses.shape)}; expected "
                f"({len(self.tasks)},) for tasks {self.tasks}"
            )
        if not losses.requires_grad:
            raise LabError("the losses carry no graph: compute them with gradients enabled")
        params = dict(self.model.named_parameters())
        grads = per_task_grads(losses, [params[n] for n in self.shared_names])
        out: dict[str, np.ndarray] = {}
        if "lookahead" in self.measure_names:
            a = lookahead_from_grads(
                self.model,
                self.shared_names,
                self.task_losses_fn,
                batch,
                self.optimizer,
                losses,
                grads,
            )
            out["lookahead"] = a.detach().cpu().numpy().astype(np.float64)
        if "cosine" in self.measure_names:
            out["cosine"] = cosine_affinity(grads).detach().cpu().numpy().astype(np.float64)
        now = time.time()
        for m, a in out.items():
            self._mats[m].append((int(step), now, a))
        if self.sinks:
            self._event(step).affinity.update(out)
            self._pending_wall[int(step)] = now
            self._since_flush += 1
            self._maybe_flush()
        return out

    # ------------------------------------------------------------------ live

    def _event(self, step: int) -> StepEvent:
        ev = self._pending.get(int(step))
        if ev is None:
            ev = StepEvent(int(step), 0, list(self.tasks), {})
            self._pending[int(step)] = ev
        ev.elapsed_s = time.monotonic() - self._t0
        return ev

    def _maybe_flush(self) -> None:
        due_n = self._since_flush >= self.flush_every
        due_t = time.monotonic() - self._last_flush >= self.flush_s
        if due_n or due_t:
            self.flush()

    def flush(self) -> int:
        """Append every pending step to the live destinations now; returns how many steps
        (0 without ``live``). A step whose losses arrive after its flush is appended again
        with them (the store and the folder's readers keep the latest values)."""
        if not self.sinks or not self._pending:
            return 0
        if self._closed:
            raise LabError("the logger is closed; make a new one for another run")
        if not self._started:
            meta = self.parsed_meta()
            for sink in self.sinks:
                sink.start(list(self.tasks), dict(self.task_types), meta)
            self._started = True
        events = [self._pending[s] for s in sorted(self._pending)]
        for sink in self.sinks:
            sink.write(events, dict(self._pending_wall))
        self._pending.clear()
        self._pending_wall.clear()
        self._since_flush = 0
        self._last_flush = time.monotonic()
        return len(events)

    def close(self, status: str = "finished") -> None:
        """Flush what is pending and end the live run(s) with ``status`` (the store run
        stops showing as running; the folder's ``meta.json`` says ``"live": false``).
        Idempotent; a no-op without ``live``."""
        if self._closed or not self.sinks:
            return
        self.flush()
        if self._started:
            for sink in self.sinks:
                sink.close(status)
        self._closed = True

    def __enter__(self) -> AffinityLogger:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close("finished")
        else:
            self.close("interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed")

    def log_losses(
        self, step: int, losses: torch.Tensor | Sequence[float], split: str = BATCH_SPLIT
    ) -> None:
        """Record per-task losses (default: the training minibatch's, ``split="batch"``)."""
        vals = losses.detach().cpu().tolist() if isinstance(losses, torch.Tensor) else losses
        if len(vals) != len(self.tasks):
            raise LabError(f"got {len(vals)} losses for {len(self.tasks)} tasks")
        for t, v in zip(self.tasks, vals):
            self.log_metric(step, t, split, "loss", float(v))
        if self.sinks and split == BATCH_SPLIT:
            self._event(step).train_loss.update({t: float(v) for t, v in zip(self.tasks, vals)})
            self._maybe_flush()

    def log_metric(self, step: int, task: str, split: str, metric: str, value: float) -> None:
        """Record one metric value (e.g. validation accuracy)."""
        if task not in self.tasks:
            raise LabError(f"unknown task {task!r}; tasks are {', '.join(self.tasks)}")
        self._metrics.append((int(step), task, split, metric, float(value)))
        if self.sinks and not (split == BATCH_SPLIT and metric == "loss"):
            self._event(step).metrics.append(MetricRow(task, split, metric, float(value)))

    # ------------------------------------------------------------------ results

    def matrices(self, measure: str = "lookahead") -> tuple[np.ndarray, np.ndarray]:
        """``(steps (S,), A (S, n, n))`` measured so far."""
        rows = self._mats.get(measure, [])
        n = len(self.tasks)
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, n, n))
        return (np.array([r[0] for r in rows], dtype=np.int64), np.stack([r[2] for r in rows]))

    def mean(self, measure: str = "lookahead") -> np.ndarray:
        """Time-averaged affinity matrix (NaN before the first measurement)."""
        _, a = self.matrices(measure)
        return a.mean(axis=0) if len(a) else np.full((len(self.tasks),) * 2, np.nan)

    def parsed(self) -> ParsedRun:
        """Everything logged, as the lab's :class:`~mtl_core.runfile.ParsedRun`."""
        parts = []
        for m, rows in self._mats.items():
            if rows:
                steps, a = self.matrices(m)
                wt = np.array([r[1] for r in rows], dtype=np.float64)
                parts.append(matrices_to_long(steps, self.tasks, a, m, wall_times=wt))
        if not parts:
            raise LabError("nothing measured yet: call measure() in the training loop first")
        aff = pd.concat(parts, ignore_index=True)
        met = pd.DataFrame([("", *r) for r in self._metrics], columns=METRIC_FRAME)
        met = met.astype({"step": np.int64, "value": np.float64})
        meta = self.parsed_meta()
        return ParsedRun(
            tasks=list(self.tasks),
            task_types=dict(self.task_types),
            affinity=aff,
            metrics=met,
            meta=meta,
            runs=[""],
            tasks_declared=True,
        )

    def parsed_meta(self) -> dict[str, Any]:
        """The run's metadata: name, config, notes and the logger's name."""
        meta: dict[str, Any] = {"name": self.name} if self.name else {}
        if self.config:
            meta["config"] = self.config
        if self.notes:
            meta["notes"] = self.notes
        meta["logger"] = "mtl_core.train.logger.AffinityLogger"
        return meta

    def save(self, path: str | Path) -> Path:
        """Write the run file (``.zip`` keeps metrics and metadata; ``.csv``/``.parquet``/
        ``.jsonl`` the affinity table only)."""
        return write_run_file(self.parsed(), path)

    def to_store(self, store: Any = None, name: str | None = None) -> int:
        """Add the run to a run store (a ``Store``, a path, or the default); returns its id."""
        from mtl_core.store import Store

        st = store if isinstance(store, Store) else Store(store)
        return st.import_parsed(self.parsed(), name or self.name or "logged run", origin="logged")[
            0
        ]


def _shared_names(model: nn.Module, shared: SharedSpec) -> list[str]:
    """Resolve the ``shared`` argument to parameter names of ``model``."""
    named = list(model.named_parameters())
    if isinstance(shared, str):
        prefix = shared.rstrip(".") + "."
        names = [n for n, _ in named if n.startswith(prefix) or n == shared]
    elif isinstance(shared, nn.Module):
        ids = {id(p) for p in shared.parameters()}
        names = [n for n, p in named if id(p) in ids]
    elif callable(shared):
        names = [n for n, _ in named if shared(n)]
    else:
        wanted = list(shared)
        have = {n for n, _ in named}
        missing = [n for n in wanted if n not in have]
        if missing:
            raise LabError(f"model has no parameter named {missing[0]!r}")
        names = wanted
    if not names:
        raise LabError(
            f"no shared parameters matched {shared!r}; parameter names look like "
            f"{', '.join(n for n, _ in named[:4])}"
        )
    return names
