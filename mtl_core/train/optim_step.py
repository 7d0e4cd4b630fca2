"""The update a real optimizer *would* apply for a batch of candidate gradients, without stepping.

TAG's lookahead must take the step the training optimizer takes (SGD with its momentum buffer,
Adam with its moment estimates), so this mirrors ``torch.optim.SGD`` / ``Adam`` / ``AdamW``
(single-tensor path) for gradients with a leading task dimension. The reference loop in
``affinity.lookahead_affinity_reference`` steps real optimizer copies, and the tests compare.
"""

from __future__ import annotations

import math

import torch
from torch.optim import SGD, Adam, AdamW, Optimizer


def _group_of(optimizer: Optimizer, p: torch.Tensor) -> dict:
    for g in optimizer.param_groups:
        for q in g["params"]:
            if q is p:
                return g
    raise ValueError("a shared parameter is not handled by the optimizer")


def simulated_updates(
    optimizer: Optimizer, params: list[torch.Tensor], grads: list[torch.Tensor]
) -> list[torch.Tensor]:
    """Per-candidate parameter deltas ``(k, *p.shape)`` for each param, given grads ``(k, *shape)``.

    Optimizer state is read, never written.
    """
    if isinstance(optimizer, SGD):
        return [_sgd_delta(optimizer, p, g) for p, g in zip(params, grads)]
    if isinstance(optimizer, (Adam, AdamW)):
        decoupled = isinstance(optimizer, AdamW) or _adam_decoupled(optimizer)
        return [_adam_delta(optimizer, p, g, decoupled) for p, g in zip(params, grads)]
    raise TypeError(
        f"lookahead affinity supports SGD, Adam and AdamW; got {type(optimizer).__name__}"
    )


def _adam_decoupled(optimizer: Optimizer) -> bool:
    return any(g.get("decoupled_weight_decay", False) for g in optimizer.param_groups)


def _sgd_delta(opt: Optimizer, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    grp = _group_of(opt, p)
    lr, mom, damp = grp["lr"], grp["momentum"], grp["dampening"]
    wd, nesterov = grp["weight_decay"], grp["nesterov"]
    p0 = p.detach()
    if grp.get("maximize", False):
        g = -g
    if wd != 0:
        g = g + wd * p0
    if mom != 0:
        buf = opt.state.get(p, {}).get("momentum_buffer")
        buf = g if buf is None else mom * buf + (1 - damp) * g
        g = g + mom * buf if nesterov else buf
    return -lr * g


def _adam_delta(opt: Optimizer, p: torch.Tensor, g: torch.Tensor, decoupled: bool) -> torch.Tensor:
    grp = _group_of(opt, p)
    lr, (b1, b2), eps, wd = grp["lr"], grp["betas"], grp["eps"], grp["weight_decay"]
    p0 = p.detach()
    if grp.get("maximize", False):
        g = -g
    st = opt.state.get(p, {})
    step = float(st["step"]) + 1 if "step" in st else 1.0
    m = st.get("exp_avg", torch.zeros_like(p0))
    v = st.get("exp_avg_sq", torch.zeros_like(p0))
    delta_wd = 0.0
    if wd != 0:
        if decoupled:
            delta_wd = -lr * wd * p0
        else:
            g = g + wd * p0
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    if grp.get("amsgrad", False):
        vmax = st.get("max_exp_avg_sq", torch.zeros_like(p0))
        v = torch.maximum(vmax, v)
    bc1 = 1 - b1**step
    bc2 = 1 - b2**step
    denom = v.sqrt() / math.sqrt(bc2) + eps
    return delta_wd - (lr / bc1) * m / denom
