"""The training loop: every mode, every affinity measure, reporting only through ``on_step``.

Modes
-----
- ``together``: one network, sum of all task losses.
- ``groups``: one network per given group (groups may overlap); each task is served by the
  network with its lowest validation loss.
- ``single``: one network per task.
- ``sequential``: selective task group updates (Jeong & Yoon, ICLR 2025). Each batch the tasks
  are grouped from the proximal affinity tracked so far (every task alone during warm-up), and
  the groups are updated one after another in random order, one optimizer step each on the
  same batch. The proximal affinity of a group's tasks onto every task is the relative loss
  change measured right after *that group's own* update, divided by the group's size
  (``affinity.group_size_norm``), tracked by an EMA (``affinity.beta``, ``ema_start``). The
  defaults are the official code's settings (``SEQUENTIAL_PRESETS["paper"]`` in
  :mod:`mtl_core.config`; ``"fast"`` is the lab's earlier short-run preset).
  One deliberate difference: the official code credits the loss change measured before a
  group's update to the group updated *before* it (so the first group of a batch is credited
  with the previous batch's last change); here each group is credited with the change its own
  update caused on the same batch, which is what the proximal affinity is meant to measure.

The loop writes no files: callers (CLI, runner) persist what ``on_step`` receives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mtl_core import measures
from mtl_core.config import RunConfig
from mtl_core.errors import LabError
from mtl_core.events import MetricRow, StepEvent
from mtl_core.scenarios import Dataset, load_dataset
from mtl_core.train.affinity import (
    cosine_affinity,
    frozen_norm_stats,
    lookahead_from_grads,
    per_task_grads,
)
from mtl_core.train.common import (
    TRAIN_EVAL_CAP,
    TrainResult,
    check_finite,
    make_optimizer,
    minibatches,
    network_groups,
    resolve_device,
)
from mtl_core.train.models import MultiTaskNet, count_parameters, task_losses

OnStep = Callable[[StepEvent], None]


@dataclass
class _Net:
    tasks: list[int]  # indices into the run's task list
    model: MultiTaskNet
    opt: torch.optim.Optimizer
    binary: torch.Tensor


@torch.no_grad()
def _evaluate(
    net: _Net, X: torch.Tensor, Y: torch.Tensor, types: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-task loss and accuracy (NaN for regression) of one network on one split."""
    net.model.eval()
    outs = [net.model(X[s : s + 4096]) for s in range(0, len(X), 4096)]
    net.model.train()
    out = torch.cat(outs) if outs else torch.zeros((0, len(net.tasks)), device=X.device)
    y = Y[:, net.tasks]
    loss = task_losses(out, y, net.binary).cpu().numpy().astype(np.float64)
    mask = ~torch.isnan(y)
    correct = ((out > 0).float() == y) & mask
    acc = (correct.sum(0) / mask.sum(0).clamp_min(1)).cpu().numpy().astype(np.float64)
    acc = np.where([types[i] == "binary" for i in net.tasks], acc, np.nan)
    return loss, acc


def train(cfg: RunConfig, on_step: OnStep | None = None) -> TrainResult:
    """Train ``cfg`` and report every step through ``on_step``; see module docstring for modes.

    Raises ``LabError`` for unusable configs and ``DivergedError`` when a loss becomes NaN/inf.
    ``train.replicas > 1`` trains that many copies as one batched model
    (:func:`mtl_core.train.replicas.train_replicas`).
    """
    if int(cfg.train.replicas) > 1:
        from mtl_core.train.replicas import train_replicas

        return train_replicas(cfg, on_step)
    t0 = time.perf_counter()
    ds: Dataset = load_dataset(cfg.scenario, cfg.knobs)
    device = resolve_device(cfg.train.device)
    tasks, types = ds.tasks, ds.task_types
    n = len(tasks)
    seed = int(cfg.train.seed)
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)

    def to(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, device=device)

    Xtr, Ytr = to(ds.X_train), to(ds.Y_train)
    splits = {
        "train": (Xtr[:TRAIN_EVAL_CAP], Ytr[:TRAIN_EVAL_CAP]),
        "val": (to(ds.X_val), to(ds.Y_val)),
        "test": (to(ds.X_test), to(ds.Y_test)),
    }
    binary_all = torch.tensor([t == "binary" for t in types], device=device)

    nets: list[_Net] = []
    for idx in network_groups(cfg, tasks):
        model = MultiTaskNet([tasks[i] for i in idx], ds.input_shape, cfg.model).to(device)
        opt = make_optimizer(model.parameters(), cfg.optim)
        nets.append(_Net(idx, model, opt, binary_all[idx]))
    measure = cfg.affinity.measure
    spec = measures.find(measure)  # None for "none"
    shared_step = spec is not None and spec.logged_by == measures.SHARED_STEP
    every = int(cfg.affinity.every)
    total = int(cfg.train.steps)
    batches = minibatches(len(Xtr), int(cfg.train.batch_size), gen)
    served: dict[int, int] = {}
    for k, net in enumerate(nets):  # until the first evaluation: the first network holding it
        for i in net.tasks:
            served.setdefault(i, k)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    seq = _Sequential(n, cfg, gen) if cfg.train.mode == "sequential" else None
    last_metrics: list[MetricRow] = []

    for step in range(1, total + 1):
        bidx = torch.as_tensor(next(batches), device=device)
        xb, yb = Xtr[bidx], Ytr[bidx]
        measure_now = shared_step and (step - 1) % every == 0
        affinity: dict[str, np.ndarray] = {}
        train_loss = np.full(n, np.nan)
        groups_used = None
        for k, net in enumerate(nets):
            y = yb[:, net.tasks]
            model, opt = net.model, net.opt
            out = model(xb)
            losses = task_losses(out, y, net.binary)
            check_finite(losses, tasks, net.tasks, step)
            if measure_now and len(net.tasks) == n:
                affinity[measure] = _measure(measure, net, (xb, y), losses)
            if seq is not None:
                groups_used, prox = seq.step(net, (xb, y), losses, tasks, step)
                if prox is not None:
                    affinity["proximal"] = prox
            else:
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
                opt.step()
            lv = losses.detach().cpu().numpy()
            for j, i in enumerate(net.tasks):
                if served[i] == k:
                    train_loss[i] = lv[j]
        for name, mat in affinity.items():
            sums[name] = sums.get(name, 0.0) + mat
            counts[name] = counts.get(name, 0) + 1

        metrics: list[MetricRow] = []
        if step % int(cfg.train.eval_every) == 0 or step == total:
            metrics = _evaluate_all(nets, splits, types, tasks, served)
            last_metrics = metrics
        if on_step is not None:
            on_step(
                StepEvent(
                    step=step,
                    total_steps=total,
                    tasks=list(tasks),
                    train_loss={tasks[i]: float(train_loss[i]) for i in range(n)},
                    metrics=metrics,
                    affinity=affinity,
                    groups=groups_used,
                    elapsed_s=time.perf_counter() - t0,
                    task_types=list(types),
                )
            )

    return TrainResult(
        tasks=list(tasks),
        task_types=list(types),
        metrics=last_metrics,
        mean_affinity={k: sums[k] / counts[k] for k in sums},
        served_by={tasks[i]: k for i, k in served.items()},
        groups=[[tasks[i] for i in net.tasks] for net in nets],
        parameters=sum(count_parameters(net.model) for net in nets),
        seconds=time.perf_counter() - t0,
        device=str(device),
        steps=total,
        info=dict(ds.info),
    )


def warmup() -> None:
    """Train a tiny run once, so torch's lazily imported parts (the optimizers pull in
    ``torch._dynamo``, ~2 s), ``torch.func`` and the device are ready before a real run.
    A standby worker calls this while it waits."""
    from mtl_core.config import AffinityConfig, TrainConfig

    cfg = RunConfig(
        scenario="synthetic",
        knobs={"tasks": 2, "samples": 60, "features": 8},
        train=TrainConfig(steps=2, batch_size=8, eval_every=2),
        affinity=AffinityConfig(measure="lookahead", every=1),
    )
    train(cfg)


def _measure(measure: str, net: _Net, batch, losses: torch.Tensor) -> np.ndarray:
    """Affinity of one measure at this step, sharing the training forward's losses."""
    model = net.model
    names = model.shared_names()
    params = dict(model.named_parameters())
    grads = per_task_grads(losses, [params[nm] for nm in names])
    if measure == "cosine":
        mat = cosine_affinity(grads)
    elif measure == "lookahead":
        binary = net.binary

        def fn(m, b):
            return task_losses(m(b[0]), b[1], binary)

        mat = lookahead_from_grads(model, names, fn, batch, net.opt, losses, grads)
    else:  # a registered shared-step measure with no computation here yet
        raise LabError(f"the training loop cannot compute {measure} affinity yet")
    return mat.detach().cpu().numpy().astype(np.float64)


def _evaluate_all(nets, splits, types, tasks, served) -> list[MetricRow]:
    """Evaluate every network; serve each task by its lowest-validation-loss network."""
    results = []
    for net in nets:
        results.append({s: _evaluate(net, X, Y, types) for s, (X, Y) in splits.items()})
    best: dict[int, tuple[float, int, int]] = {}
    for k, (net, res) in enumerate(zip(nets, results)):
        for j, i in enumerate(net.tasks):
            v = res["val"][0][j]
            if i not in best or v < best[i][0]:
                best[i] = (v, k, j)
    rows = []
    for i in range(len(tasks)):
        _, k, j = best[i]
        served[i] = k
        for split in splits:
            loss, acc = results[k][split]
            rows.append(MetricRow(tasks[i], split, "loss", float(loss[j])))
            if types[i] == "binary":
                rows.append(MetricRow(tasks[i], split, "accuracy", float(acc[j])))
    return rows


class _Sequential:
    """State of selective sequential group updates: the proximal-affinity EMA and the grouping."""

    def __init__(self, n: int, cfg: RunConfig, gen: np.random.Generator) -> None:
        self.n = n
        self.beta = float(cfg.affinity.beta)
        self.warmup = int(cfg.train.warmup)
        self.normalise = bool(cfg.affinity.group_size_norm)
        self.gen = gen
        # "zero": the official code's start; "first": the first matrix seeds the average
        self.ema: np.ndarray | None = np.zeros((n, n)) if cfg.affinity.ema_start == "zero" else None

    def groups(self, tasks: list[str]) -> list[list[int]]:
        if self.ema is None or self.n < 2 or not np.any(self.ema):
            return [[i] for i in range(self.n)]
        from mtl_core.grouping.affinity_propagation import proximal_groups

        index = {t: i for i, t in enumerate(tasks)}
        grouping = proximal_groups(self.ema, tasks, seed=0)
        return [sorted(index[t] for t in g) for g in grouping]

    def step(self, net: _Net, batch, losses: torch.Tensor, tasks: list[str], step: int):
        """One batch: update the groups one after another; returns (grouping, proximal matrix)."""
        groups = [[i] for i in range(self.n)] if step <= self.warmup else self.groups(tasks)
        order = self.gen.permutation(len(groups))
        prox = np.zeros((self.n, self.n))
        x, y = batch
        current = losses
        for pos, gi in enumerate(order):
            g = groups[gi]
            net.opt.zero_grad(set_to_none=True)
            current[g].sum().backward()
            net.opt.step()
            before = current.detach()
            last = pos == len(order) - 1
            # The losses right after this group's update: credited to this group (the next
            # group's forward doubles as this measurement, saving one forward per group).
            with torch.set_grad_enabled(not last), frozen_norm_stats(net.model):
                current = task_losses(net.model(x), y, net.binary)
            check_finite(current.detach(), tasks, net.tasks, step)
            change = 1.0 - current.detach() / before.clamp_min(1e-12)
            prox[g, :] = change.cpu().numpy() / (len(g) if self.normalise else 1)
        self.ema = prox if self.ema is None else self.beta * self.ema + (1 - self.beta) * prox
        grouping = tuple(frozenset(tasks[i] for i in g) for g in groups)
        return grouping, prox
