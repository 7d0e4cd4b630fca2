"""Affinity measures: vectorized == reference loop, optimizer-faithful lookahead, direction."""

from __future__ import annotations

import pytest
import torch

from mtl_core.config import ModelConfig
from mtl_core.train.affinity import (
    cosine_affinity,
    cosine_affinity_reference,
    lookahead_affinity,
    lookahead_affinity_reference,
    per_task_grads,
)
from mtl_core.train.models import MultiTaskNet, task_losses

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd-momentum-wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "sgd-nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "adam-amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
}
MODELS = {
    "mlp": ((10,), ModelConfig(hidden=(16, 8))),
    "mlp-batchnorm": ((10,), ModelConfig(hidden=(16, 8), norm="batch")),
    "mlp-layernorm": ((10,), ModelConfig(hidden=(12,), norm="layer")),
    "cnn-batchnorm": ((1, 8, 8), ModelConfig(hidden=(16,), channels=(4, 8), norm="batch")),
}


def _setup(shape, cfg, make_opt, n=4, warm_steps=3, dtype=torch.float64):
    torch.manual_seed(0)
    tasks = [f"t{i}" for i in range(n)]
    model = MultiTaskNet(tasks, shape, cfg).to(dtype)
    x = torch.randn(32, *shape, dtype=dtype)
    y = torch.randn(32, n, dtype=dtype)
    y[:, 1] = (y[:, 1] > 0).to(dtype)
    binary = torch.tensor([i == 1 for i in range(n)])

    def fn(m, b):
        return task_losses(m(b[0]), b[1], binary)

    opt = make_opt(model.parameters())
    for _ in range(warm_steps):  # give the optimizer real momentum / moment state
        opt.zero_grad()
        fn(model, (x, y)).sum().backward()
        opt.step()
    return model, fn, (x, y), opt


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_vectorized_lookahead_equals_reference(model_name, opt_name):
    shape, cfg = MODELS[model_name]
    model, fn, batch, opt = _setup(shape, cfg, OPTIMIZERS[opt_name])
    buffers = [b.clone() for b in model.buffers()]
    params = [p.detach().clone() for p in model.parameters()]
    fast = lookahead_affinity(model, model.shared_names(), fn, batch, opt)
    ref = lookahead_affinity_reference(model, model.shared_names(), fn, batch, opt)
    assert fast.shape == (4, 4)
    assert torch.allclose(fast, ref, atol=1e-5, rtol=0), (fast - ref).abs().max()
    # Measuring must not move the model, its normalization statistics, or the optimizer.
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))


def test_lookahead_in_float32_matches_reference():
    shape, cfg = MODELS["mlp"]
    model, fn, batch, opt = _setup(shape, cfg, OPTIMIZERS["adam"], n=6, dtype=torch.float32)
    fast = lookahead_affinity(model, model.shared_names(), fn, batch, opt)
    ref = lookahead_affinity_reference(model, model.shared_names(), fn, batch, opt)
    assert torch.allclose(fast, ref, atol=1e-5, rtol=0)


def test_lookahead_uses_the_optimizer_step_not_a_plain_gradient_step():
    """With Adam state, the lookahead differs from a plain SGD step of the same lr."""
    shape, cfg = MODELS["mlp"]
    model, fn, batch, adam = _setup(shape, cfg, OPTIMIZERS["adam"])
    plain = torch.optim.SGD(model.parameters(), lr=adam.param_groups[0]["lr"])
    a = lookahead_affinity(model, model.shared_names(), fn, batch, adam)
    b = lookahead_affinity(model, model.shared_names(), fn, batch, plain)
    assert (a - b).abs().max() > 1e-4


def test_lookahead_direction_row_is_source():
    """A task whose gradient is zero on the shared trunk cannot change anyone's loss as source."""
    shape, cfg = MODELS["mlp"]
    model, fn, batch, opt = _setup(shape, cfg, OPTIMIZERS["sgd"], warm_steps=0)
    x, y = batch
    y = y.clone()
    y[:, 2] = float("nan")  # task 2 has no labels in this batch -> zero gradient, zero step
    Z = lookahead_affinity(model, model.shared_names(), fn, (x, y), opt)
    others = [0, 1, 3]
    assert torch.allclose(Z[2, others], torch.zeros(3, dtype=Z.dtype), atol=1e-12)
    assert Z[0, others].abs().max() > 0


def test_plain_sgd_lookahead_matches_first_order_prediction():
    """For a tiny SGD step, Z[i, j] ~ lr * <g_i, g_j> / L_j (TAG's first-order reading)."""
    shape, cfg = MODELS["mlp"]
    lr = 1e-4
    model, fn, batch, _ = _setup(shape, cfg, OPTIMIZERS["sgd"], warm_steps=0)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = fn(model, batch)
    params = dict(model.named_parameters())
    grads = per_task_grads(losses, [params[n] for n in model.shared_names()])
    G = torch.cat([g.reshape(g.shape[0], -1) for g in grads], 1)
    predicted = lr * (G @ G.T) / losses.detach()[None, :]
    Z = lookahead_affinity(model, model.shared_names(), fn, batch, opt)
    assert torch.allclose(Z, predicted, rtol=1e-2, atol=1e-9)


def test_cosine_vectorized_equals_reference():
    shape, cfg = MODELS["cnn-batchnorm"]
    model, fn, batch, _ = _setup(shape, cfg, OPTIMIZERS["sgd"])
    losses = fn(model, batch)
    params = dict(model.named_parameters())
    fast = cosine_affinity(per_task_grads(losses, [params[n] for n in model.shared_names()]))
    ref = cosine_affinity_reference(model, model.shared_names(), fn, batch)
    assert torch.allclose(fast, ref, atol=1e-6)
    assert torch.allclose(torch.diagonal(fast), torch.ones(4, dtype=fast.dtype))
    assert torch.allclose(fast, fast.T)
