"""Replicas trained as one batched model: the same networks, the same affinity, per replica."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_core.config import ModelConfig, RunConfig
from mtl_core.errors import LabError
from mtl_core.events import parse_replica_metric, replica_metric
from mtl_core.train.affinity import lookahead_affinity_reference
from mtl_core.train.loop import train
from mtl_core.train.models import MultiTaskNet, task_losses
from mtl_core.train.replicas import StackedMLP, _affinity, member_losses

CFG = ModelConfig(hidden=(8, 1), linear_bottleneck=True, head_scale=0.1)


def _member_net(stacked: StackedMLP, m: int, tasks: list[str], d: int) -> MultiTaskNet:
    """A MultiTaskNet holding member ``m``'s weights."""
    net = MultiTaskNet(tasks, (d,), CFG)
    p = dict(stacked.named_parameters())
    linears = [mod for mod in net.trunk.modules() if isinstance(mod, torch.nn.Linear)]
    with torch.no_grad():
        for k, lin in enumerate(linears):
            lin.weight.copy_(p[f"trunk.w{k}"][m].T)
            lin.bias.copy_(p[f"trunk.b{k}"][m, 0])
        for j, head in enumerate(net.heads):
            head.weight.copy_(p["heads.w"][m][:, j][None, :])
            head.bias.copy_(p["heads.b"][m, 0, j : j + 1])
    return net


def test_model_options_linear_bottleneck_and_head_scale():
    torch.manual_seed(0)
    plain = MultiTaskNet(["a", "b"], (5,), ModelConfig(hidden=(8, 1)))
    torch.manual_seed(0)
    opts = MultiTaskNet(["a", "b"], (5,), CFG)
    assert isinstance(list(plain.trunk.modules())[-1], torch.nn.ReLU)
    assert isinstance(list(opts.trunk.modules())[-1], torch.nn.Linear)
    assert torch.allclose(opts.heads[0].weight, 0.1 * plain.heads[0].weight)
    with pytest.raises(LabError, match="head_scale"):
        ModelConfig(head_scale=0.0)
    cfg = RunConfig().with_overrides({"model.linear_bottleneck": "yes", "model.head_scale": "0.5"})
    assert cfg.model.linear_bottleneck is True and cfg.model.head_scale == 0.5
    with pytest.raises(LabError, match="linear_bottleneck must be true or false"):
        RunConfig().with_overrides({"model.linear_bottleneck": "maybe"})


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_stacked_members_equal_single_networks_forward_and_lookahead(opt_name):
    torch.manual_seed(1)
    R, d, tasks = 3, 5, ["a", "b", "c"]
    model = StackedMLP(R, d, len(tasks), CFG)
    x, y = torch.randn(R, 16, d), torch.randn(R, 16, len(tasks))
    binary = torch.zeros(len(tasks), dtype=torch.bool)
    make = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
    }[opt_name]
    losses = member_losses(model(x), y, binary)
    got = _affinity("lookahead", model, make(model.parameters()), losses, x, y, binary)
    refs = []
    for r in range(R):
        net = _member_net(model, r, tasks, d)
        assert torch.allclose(net(x[r]), model(x)[r], atol=1e-6)
        assert torch.allclose(task_losses(net(x[r]), y[r], binary), losses[r], atol=1e-6)
        refs.append(
            lookahead_affinity_reference(
                net,
                net.shared_names(),
                lambda m, b: task_losses(m(b[0]), b[1], binary),
                (x[r], y[r]),
                make(net.parameters()),
            )
            .detach()
            .numpy()
        )
    np.testing.assert_allclose(got, np.mean(refs, axis=0), rtol=1e-4, atol=1e-6)


def _lesson_cfg(mode: str, **extra) -> RunConfig:
    return RunConfig.for_scenario(
        "lesson",
        {"samples": 200},
        {
            "train.mode": mode,
            "train.steps": 20,
            "train.eval_every": 10,
            "train.replicas": 4,
            **extra,
        },
    )


def test_replicated_run_reports_means_and_each_replicas_held_out_loss():
    events = []
    res = train(_lesson_cfg("together"), events.append)
    assert res.info["replicas"] == 4 and res.mean_affinity["lookahead"].shape == (6, 6)
    assert all(e.affinity for e in events)  # measured every step
    per: dict[str, list[float]] = {}
    for m in res.metrics:
        parsed = parse_replica_metric(m.metric)
        if parsed:
            assert m.split == "test" and parsed[0] == "loss"
            per.setdefault(m.task, []).append(m.value)
    assert sorted(per) == res.tasks and all(len(v) == 4 for v in per.values())
    assert len({round(v, 9) for v in per["t0"]}) == 4  # replicas differ
    for t, vals in per.items():
        assert res.loss("test")[t] == pytest.approx(np.mean(vals))


def test_replicated_groups_serve_each_task_from_a_network_that_trains_it():
    res = train(_lesson_cfg("groups", **{"train.groups": "t0,t1,t2; t3,t4,t5; t0,t3"}))
    assert res.groups == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t0", "t3"]]
    assert res.served_by["t1"] == 0 and res.served_by["t4"] == 1
    assert res.served_by["t0"] in (0, 2) and res.served_by["t3"] in (1, 2)
    single = train(_lesson_cfg("single"))
    assert len(single.groups) == 6 and np.isfinite(list(single.loss("test").values())).all()


def test_replica_metric_names_round_trip_and_unsupported_configs_are_refused():
    assert replica_metric("loss", 12) == "loss:r12"
    assert parse_replica_metric("loss:r12") == ("loss", 12)
    assert parse_replica_metric("loss") is None and parse_replica_metric("loss:rx") is None
    with pytest.raises(LabError, match="replicas > 1 is not available with --mode sequential"):
        RunConfig().with_overrides({"train.mode": "sequential", "train.replicas": 2})
    with pytest.raises(LabError, match="replicas must be a whole number from 1"):
        RunConfig().with_overrides({"train.replicas": 0})
    with pytest.raises(LabError, match="MLP trunks only"):
        train(RunConfig.for_scenario("digits", {}, {"train.replicas": 2, "train.steps": 2}))
