"""Replicas: R independent copies of a run's networks trained as one batched model.

``train.replicas = R > 1`` turns one run into R runs that differ only in their random
initialisation and minibatch order (same data), so every number can carry its spread. Each
network the mode trains (one for ``together``, one per group, one per task for ``single``)
is copied R times and all ``G * R`` copies ("members") are stacked into one set of parameters
with a leading member dimension, trained with batched matrix products: 16 replicas cost a
small multiple of one run, not 16 runs. Member ``m = g * R + r`` is replica ``r`` of network
``g``. Every member has a head for every task, but a member's loss counts only its network's
tasks, so the other heads get zero gradients (no Adam or SGD update without weight decay)
and are never served.

Affinity (lookahead or cosine, together mode) is measured per replica exactly as
:mod:`mtl_core.train.affinity` does for one network (the optimizer's own step on each task's
shared gradient, heads fixed, same batch) and reported as the mean over replicas. Metrics
are means over replicas of each task's serving network (the group with the lowest
validation loss, chosen per replica); each replica's held-out loss is reported too, as
metric ``"loss:r<k>"`` on the ``test`` split (:func:`mtl_core.events.replica_metric`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtl_core import measures
from mtl_core.config import ModelConfig, RunConfig
from mtl_core.errors import DivergedError, LabError
from mtl_core.events import MetricRow, StepEvent, replica_metric
from mtl_core.scenarios import load_dataset
from mtl_core.train.affinity import per_task_grads
from mtl_core.train.common import (
    TRAIN_EVAL_CAP,
    TrainResult,
    make_optimizer,
    minibatches,
    network_groups,
    resolve_device,
)
from mtl_core.train.models import SHARED_PREFIX
from mtl_core.train.optim_step import simulated_updates


class StackedMLP(nn.Module):
    """``members`` MLP multi-task networks with one architecture, parameters stacked.

    ``forward(x)`` takes ``x: (members, batch, in_dim)`` (or ``(batch, in_dim)``, shared by
    all members) and returns ``(members, batch, n_tasks)``. Parameters ``trunk.w<k>``
    ``(members, in, out)`` / ``trunk.b<k>`` ``(members, 1, out)`` are the shared trunk,
    ``heads.w`` ``(members, width, n_tasks)`` / ``heads.b`` the per-task heads. Each member is
    initialised like :class:`mtl_core.train.models.MultiTaskNet` (PyTorch's ``nn.Linear`` default,
    heads times ``cfg.head_scale``; ``cfg.linear_bottleneck`` drops the last ReLU).
    """

    def __init__(self, members: int, in_dim: int, n_tasks: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.linear_last = bool(cfg.linear_bottleneck)
        self.depth = len(cfg.hidden)
        widths = (in_dim, *(int(h) for h in cfg.hidden))
        self.trunk = nn.ParameterDict()
        for k in range(self.depth):
            w, b = _linear_init(members, widths[k], widths[k + 1])
            self.trunk[f"w{k}"], self.trunk[f"b{k}"] = w, b
        w, b = _linear_init(members, widths[-1], n_tasks, scale=float(cfg.head_scale))
        self.heads = nn.ParameterDict({"w": w, "b": b})

    def forward(
        self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        p = dict(self.named_parameters()) if params is None else params
        h = x
        for k in range(self.depth):
            h = torch.matmul(h, p[f"trunk.w{k}"]) + p[f"trunk.b{k}"]
            if not (self.linear_last and k == self.depth - 1):
                h = torch.relu(h)
        return torch.matmul(h, p["heads.w"]) + p["heads.b"]

    def shared_names(self) -> list[str]:
        return [n for n, _ in self.named_parameters() if n.startswith(SHARED_PREFIX)]


def _linear_init(
    members: int, fan_in: int, fan_out: int, scale: float = 1.0
) -> tuple[nn.Parameter, nn.Parameter]:
    """``nn.Linear``'s default init (uniform in +-1/sqrt(fan_in)), per member, times scale."""
    bound = scale / math.sqrt(fan_in)
    w = torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)
    b = torch.empty(members, 1, fan_out).uniform_(-bound, bound)
    return nn.Parameter(w), nn.Parameter(b)


def member_losses(out: torch.Tensor, y: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Per-member, per-task mean loss ``(members, n_tasks)`` from ``out: (members, batch, n)``
    and ``y`` of the same shape (or ``(batch, n)``): BCE-with-logits where ``binary`` else
    MSE; NaN labels are missing and masked out (as :func:`mtl_core.train.models.task_losses`)."""
    y = y.expand_as(out)
    mask = ~torch.isnan(y)
    y0 = torch.nan_to_num(y)
    per = (out - y0) ** 2
    if bool(binary.any()):  # regression-only runs (the lesson) skip the BCE pass
        bce = F.binary_cross_entropy_with_logits(out, y0, reduction="none")
        per = torch.where(binary, bce, per)
    per = per * mask
    return per.sum(-2) / mask.sum(-2).clamp_min(1)


def check_supported(cfg: RunConfig, input_shape: tuple[int, ...]) -> None:
    """LabError unless the replicated trainer can train ``cfg`` (MLP trunk, no norm layers,
    not sequential)."""
    arch = cfg.model.arch
    if arch == "cnn" or (arch == "auto" and len(input_shape) == 3):
        raise LabError(
            "replicas > 1 trains MLP trunks only: set model.arch=mlp or train.replicas=1"
        )
    if cfg.model.norm != "none":
        raise LabError(
            "replicas > 1 trains trunks without normalisation layers: set "
            "model.norm=none or train.replicas=1"
        )
    if cfg.train.mode == "sequential":
        raise LabError("replicas > 1 is not available with --mode sequential")


def train_replicas(cfg: RunConfig, on_step=None):
    """Train ``cfg.train.replicas`` copies of the run's networks as one batched model.

    Reports through ``on_step`` like :func:`mtl_core.train.loop.train` (means over replicas;
    per-replica held-out loss as ``"loss:r<k>"`` metrics) and returns its ``TrainResult``.
    Raises LabError for an unsupported config and DivergedError when a loss is NaN/inf.
    """

    t0 = time.perf_counter()
    ds = load_dataset(cfg.scenario, cfg.knobs)
    check_supported(cfg, ds.input_shape)
    device = resolve_device(cfg.train.device)
    tasks, types, n = ds.tasks, ds.task_types, len(ds.tasks)
    R, seed = int(cfg.train.replicas), int(cfg.train.seed)
    torch.manual_seed(seed)

    def to(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a.reshape(len(a), -1), device=device)

    Xtr, Ytr = to(ds.X_train), torch.as_tensor(ds.Y_train, device=device)
    splits = {
        "train": (Xtr[:TRAIN_EVAL_CAP], Ytr[:TRAIN_EVAL_CAP]),
        "val": (to(ds.X_val), torch.as_tensor(ds.Y_val, device=device)),
        "test": (to(ds.X_test), torch.as_tensor(ds.Y_test, device=device)),
    }
    groups = network_groups(cfg, tasks)
    G = len(groups)
    mask = torch.zeros(G * R, n, dtype=torch.bool, device=device)
    for g, idx in enumerate(groups):
        mask[g * R : (g + 1) * R, idx] = True
    model = StackedMLP(G * R, Xtr.shape[1], n, cfg.model).to(device)
    opt = make_optimizer(model.parameters(), cfg.optim)
    binary = torch.tensor([t == "binary" for t in types], device=device)
    # replica r draws its own minibatch order; every network of replica r sees the same batch
    streams = [
        minibatches(len(Xtr), int(cfg.train.batch_size), np.random.default_rng([seed, r]))
        for r in range(R)
    ]
    serve = _first_serving(groups, R, n)
    measure, every, total = cfg.affinity.measure, int(cfg.affinity.every), int(cfg.train.steps)
    spec = measures.find(measure)  # None for "none"
    shared_step = spec is not None and spec.logged_by == measures.SHARED_STEP
    sums: dict[str, np.ndarray] = {}
    last_metrics: list[MetricRow] = []
    for step in range(1, total + 1):
        idx = torch.as_tensor(np.stack([next(s) for s in streams]), device=device).repeat(G, 1)
        xb, yb = Xtr[idx], Ytr[idx]
        losses = member_losses(model(xb), yb, binary)
        _check_finite(losses, mask, tasks, step)
        affinity: dict[str, np.ndarray] = {}
        if shared_step and G == 1 and (step - 1) % every == 0:
            affinity[measure] = _affinity(measure, model, opt, losses, xb, yb, binary)
            sums[measure] = sums.get(measure, 0.0) + affinity[measure]
        opt.zero_grad(set_to_none=True)
        (losses * mask).sum().backward()
        opt.step()
        metrics: list[MetricRow] = []
        if step % int(cfg.train.eval_every) == 0 or step == total:
            metrics, serve = _evaluate(model, splits, mask, binary, tasks, types, R)
            last_metrics = metrics
        if on_step is not None:
            served = losses.detach()[serve, torch.arange(n, device=device)[None, :]]
            on_step(
                StepEvent(
                    step=step,
                    total_steps=total,
                    tasks=list(tasks),
                    train_loss={t: float(v) for t, v in zip(tasks, served.mean(0).cpu().numpy())},
                    metrics=metrics,
                    affinity=affinity,
                    elapsed_s=time.perf_counter() - t0,
                    task_types=list(types),
                )
            )
    n_measured = {k: len(range(0, total, every)) for k in sums}
    by_net = (serve // R).cpu().numpy()
    return TrainResult(
        tasks=list(tasks),
        task_types=list(types),
        metrics=last_metrics,
        mean_affinity={k: v / n_measured[k] for k, v in sums.items()},
        served_by={t: int(np.bincount(by_net[:, i]).argmax()) for i, t in enumerate(tasks)},
        groups=[[tasks[i] for i in g] for g in groups],
        parameters=sum(p.numel() for p in model.parameters()) // (G * R) * len(groups),
        seconds=time.perf_counter() - t0,
        device=str(device),
        steps=total,
        info={**ds.info, "replicas": R},
    )


def _first_serving(groups: list[list[int]], R: int, n: int) -> torch.Tensor:
    """``(R, n)`` member index serving each task before the first evaluation: replica r of
    the first network holding the task."""
    first = {}
    for g, idx in enumerate(groups):
        for i in idx:
            first.setdefault(i, g)
    return torch.tensor([[first[i] * R + r for i in range(n)] for r in range(R)])


def _check_finite(losses: torch.Tensor, mask: torch.Tensor, tasks: list[str], step: int) -> None:
    bad = ~torch.isfinite(losses.detach()) & mask
    if bool(bad.any()):
        m, i = (int(v) for v in torch.nonzero(bad)[0])
        what = "NaN" if math.isnan(float(losses[m, i])) else "infinite"
        raise DivergedError(
            f"loss became {what} at step {step} on task {tasks[i]}; try a smaller learning rate"
        )


def _affinity(
    measure: str,
    model: StackedMLP,
    opt: torch.optim.Optimizer,
    losses: torch.Tensor,
    xb: torch.Tensor,
    yb: torch.Tensor,
    binary: torch.Tensor,
) -> np.ndarray:
    """Mean over replicas of the ``(n, n)`` affinity (rows = source task), one network.

    ``losses: (R, n)`` with their graph; ``xb: (R, batch, d)``. Lookahead: row i of replica
    r is ``1 - L_rj(after the optimizer's step on task i's shared gradient) / L_rj(now)``.
    """
    R, n = losses.shape
    names = model.shared_names()
    params = dict(model.named_parameters())
    # d(sum_r L_rj)/d(theta_r) = dL_rj/d(theta_r): replicas do not share parameters
    grads = per_task_grads(losses.sum(0), [params[k] for k in names])  # each (n, R, ...)
    if measure == "cosine":
        flat = torch.cat([g.reshape(n, R, -1) for g in grads], dim=2).transpose(0, 1)
        unit = flat / flat.norm(dim=2, keepdim=True).clamp_min(1e-12)
        return (unit @ unit.transpose(1, 2)).mean(0).detach().cpu().numpy().astype(np.float64)
    if measure != "lookahead":  # a registered shared-step measure with no computation here yet
        raise LabError(f"the replica loop cannot compute {measure} affinity yet")
    deltas = dict(
        zip(names, simulated_updates(opt, [params[k] for k in names], [g.detach() for g in grads]))
    )
    moved = {}
    for name, p in params.items():
        p0 = p.detach()[None]
        p1 = p0 + deltas[name] if name in deltas else p0.expand(n, *p.shape)
        moved[name] = p1.reshape(n * R, *p.shape[1:])
    with torch.no_grad():
        after = member_losses(model(xb.repeat(n, 1, 1), moved), yb.repeat(n, 1, 1), binary)
    after = after.reshape(n, R, n)
    base = losses.detach().clamp_min(torch.finfo(losses.dtype).tiny)
    A = 1.0 - after / base[None]  # (source i, replica r, target j)
    return A.mean(1).cpu().numpy().astype(np.float64)


@torch.no_grad()
def _evaluate(
    model: StackedMLP,
    splits: dict,
    mask: torch.Tensor,
    binary: torch.Tensor,
    tasks: list[str],
    types: list[str],
    R: int,
):
    """Metric rows (means over replicas, per-replica test loss) and the ``(R, n)`` serving
    member of each task: per replica, the network with the lowest validation loss."""
    res = {}
    for split, (X, Y) in splits.items():
        out = model(X)  # (members, N, n)
        y = Y.expand_as(out)
        ok = ~torch.isnan(y)
        acc = (((out > 0).float() == y) & ok).sum(1) / ok.sum(1).clamp_min(1)
        res[split] = (member_losses(out, Y, binary), acc)
    n = len(tasks)
    val = torch.where(mask, res["val"][0], torch.inf).reshape(-1, R, n)  # (G, R, n)
    serve = val.argmin(0) * R + torch.arange(R, device=mask.device)[:, None]  # (R, n)
    cols = torch.arange(n, device=mask.device)[None, :]
    served = {
        split: (
            loss[serve, cols].cpu().numpy().astype(np.float64),
            acc[serve, cols].cpu().numpy().astype(np.float64),
        )
        for split, (loss, acc) in res.items()
    }  # each (R, n)
    rows: list[MetricRow] = []
    for i, t in enumerate(tasks):
        for split, (loss, acc) in served.items():
            rows.append(MetricRow(t, split, "loss", float(loss[:, i].mean())))
            if types[i] == "binary":
                rows.append(MetricRow(t, split, "accuracy", float(acc[:, i].mean())))
            if split == "test":
                rows += [
                    MetricRow(t, split, replica_metric("loss", r), float(v))
                    for r, v in enumerate(loss[:, i])
                ]
    return rows, serve
