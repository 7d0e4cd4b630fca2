"""Inter-task affinity measures over a model's shared parameters.

Direction everywhere: ``A[i, j]`` = effect of an update on task i's loss (source) on task j's
loss (target); positive means the update helps task j.

- TAG lookahead (Fifty et al., 2021):
  ``Z[i, j] = 1 - L_j(theta_s + step_i, theta_j) / L_j(theta_s, theta_j)``, where ``step_i`` is the
  update the real optimizer would take on task i's gradient; heads stay fixed; same minibatch.
- Gradient cosine similarity between per-task gradients on the shared parameters.
- Proximal affinity (Jeong & Yoon, 2025) lives in the sequential training mode, since it is the
  measured effect of the group updates the mode performs (see ``training``).

The vectorized path takes all per-task gradients in one batched autograd call and evaluates all
n lookahead models in one ``vmap``-ed ``functional_call``; the reference path loops over tasks
stepping real optimizer copies, and exists so tests can check the fast path against it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.modules.batchnorm import _BatchNorm

from mtl_core.train.optim_step import simulated_updates

#: ``task_losses_fn(model, batch) -> Tensor[n_tasks]``: per-task mean losses on one batch.
TaskLossesFn = Callable[[nn.Module, Any], torch.Tensor]


@contextlib.contextmanager
def frozen_norm_stats(model: nn.Module) -> Iterator[None]:
    """Normalization layers use batch statistics but do not update their running statistics.

    Lookahead forwards must not move BatchNorm's running mean/var (the real step already did).
    """
    saved = []
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            saved.append((m, m.track_running_stats))
            m.track_running_stats = False  # train mode: batch stats, running buffers untouched
    try:
        yield
    finally:
        for m, flag in saved:
            m.track_running_stats = flag


def per_task_grads(losses: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every task loss's gradient w.r.t. ``params`` in one batched call: ``(n, *p.shape)``."""
    n = losses.shape[0]
    eye = torch.eye(n, device=losses.device, dtype=losses.dtype)
    grads = torch.autograd.grad(
        losses,
        params,
        grad_outputs=eye,
        is_grads_batched=True,
        retain_graph=True,
        allow_unused=True,
    )
    return [
        g if g is not None else torch.zeros((n, *p.shape), device=p.device, dtype=p.dtype)
        for g, p in zip(grads, params)
    ]


class _LossModule(nn.Module):
    """Wraps ``task_losses_fn`` so ``functional_call`` can swap the model's parameters."""

    def __init__(self, model: nn.Module, fn: TaskLossesFn) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.fn(self.model, batch)


def lookahead_from_grads(
    model: nn.Module,
    shared_names: list[str],
    task_losses_fn: TaskLossesFn,
    batch: Any,
    optimizer: torch.optim.Optimizer,
    losses: torch.Tensor,
    grads: list[torch.Tensor],
) -> torch.Tensor:
    """TAG lookahead matrix ``(n, n)`` from already computed losses and per-task shared grads."""
    params = dict(model.named_parameters())
    shared = [params[n] for n in shared_names]
    deltas = simulated_updates(optimizer, shared, [g.detach() for g in grads])
    moved = {f"model.{n}": p.detach() + d for n, p, d in zip(shared_names, shared, deltas)}
    fixed: dict[str, torch.Tensor] = {
        f"model.{n}": p.detach() for n, p in params.items() if n not in set(shared_names)
    }
    fixed.update({f"model.{n}": b for n, b in model.named_buffers()})
    wrapper = _LossModule(model, task_losses_fn)

    def after_step(moved_i: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(wrapper, {**fixed, **moved_i}, (batch,))

    with torch.no_grad(), frozen_norm_stats(model):
        new = vmap(after_step)(moved)  # row i: all task losses after task i's step
    base = losses.detach()
    return 1.0 - new / base.clamp_min(torch.finfo(base.dtype).tiny)[None, :]


def lookahead_affinity(
    model: nn.Module,
    shared_names: list[str],
    task_losses_fn: TaskLossesFn,
    batch: Any,
    optimizer: torch.optim.Optimizer,
    losses: torch.Tensor | None = None,
) -> torch.Tensor:
    """Vectorized TAG lookahead affinity ``Z (n, n)``, ``Z[i, j]``: task i's step on task j.

    ``losses`` may be the training forward's per-task losses (with their graph) to share the
    forward pass; otherwise a forward is run here without touching normalization statistics.
    """
    if losses is None:
        with frozen_norm_stats(model):
            losses = task_losses_fn(model, batch)
    params = dict(model.named_parameters())
    grads = per_task_grads(losses, [params[n] for n in shared_names])
    return lookahead_from_grads(
        model, shared_names, task_losses_fn, batch, optimizer, losses, grads
    )


def lookahead_affinity_reference(
    model: nn.Module,
    shared_names: list[str],
    task_losses_fn: TaskLossesFn,
    batch: Any,
    optimizer: torch.optim.Optimizer,
) -> torch.Tensor:
    """Plain per-task loop: step a copy of the real optimizer on each task's shared gradient."""
    with frozen_norm_stats(model):
        losses = task_losses_fn(model, batch)
    n = losses.shape[0]
    params = dict(model.named_parameters())
    shared = [params[name] for name in shared_names]
    out = torch.empty((n, n), dtype=losses.dtype, device=losses.device)
    for i in range(n):
        g_i = torch.autograd.grad(losses[i], shared, retain_graph=True, allow_unused=True)
        clone = copy.deepcopy(model)
        names = [name for name, _ in model.named_parameters()]
        opt = _clone_optimizer(optimizer, model, clone)
        cparams = dict(clone.named_parameters())
        for name in names:
            cparams[name].grad = None  # heads (and anything unshared) do not move
        for name, g in zip(shared_names, g_i):
            p = cparams[name]
            p.grad = torch.zeros_like(p) if g is None else g.detach().clone()
        opt.step()
        with torch.no_grad(), frozen_norm_stats(clone):
            out[i] = task_losses_fn(clone, batch)
    return 1.0 - out / losses.detach()[None, :]


def _clone_optimizer(
    optimizer: torch.optim.Optimizer, model: nn.Module, clone: nn.Module
) -> torch.optim.Optimizer:
    """A copy of ``optimizer`` (same class, groups and state) over ``clone``'s parameters."""
    mapping = {id(p): q for p, q in zip(model.parameters(), clone.parameters())}
    groups = []
    for g in optimizer.param_groups:
        ng = {k: v for k, v in g.items() if k != "params"}
        ng["params"] = [mapping[id(p)] for p in g["params"]]
        groups.append(ng)
    opt = type(optimizer)(groups)
    opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return opt


def cosine_affinity(grads: list[torch.Tensor]) -> torch.Tensor:
    """Cosine similarity ``(n, n)`` between flattened per-task shared gradients (symmetric)."""
    flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)
    unit = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def cosine_affinity_reference(
    model: nn.Module, shared_names: list[str], task_losses_fn: TaskLossesFn, batch: Any
) -> torch.Tensor:
    """Per-task loop version of ``cosine_affinity`` for tests."""
    with frozen_norm_stats(model):
        losses = task_losses_fn(model, batch)
    params = dict(model.named_parameters())
    shared = [params[n] for n in shared_names]
    vecs = []
    for i in range(losses.shape[0]):
        g = torch.autograd.grad(losses[i], shared, retain_graph=True, allow_unused=True)
        vecs.append(
            torch.cat(
                [
                    (x if x is not None else torch.zeros_like(p)).reshape(-1)
                    for x, p in zip(g, shared)
                ]
            )
        )
    G = torch.stack(vecs)
    n = G.shape[0]
    out = torch.empty((n, n), dtype=G.dtype)
    for i in range(n):
        for j in range(n):
            out[i, j] = torch.dot(G[i], G[j]) / (G[i].norm() * G[j].norm()).clamp_min(1e-12)
    return out
