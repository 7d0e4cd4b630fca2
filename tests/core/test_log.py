"""AffinityLogger in a user's own loop: same numbers as the lab's reference, valid files."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mtl_core.errors import LabError  # noqa: E402
from mtl_core.runfile import read_run_file  # noqa: E402
from mtl_core.store import Store  # noqa: E402
from mtl_core.train.affinity import lookahead_affinity_reference  # noqa: E402
from mtl_core.train.logger import AffinityLogger  # noqa: E402

TASKS = ["left", "right", "sum"]


class TwoTower(nn.Module):
    """A model the lab does not ship: two towers merged, then one head per task."""

    def __init__(self) -> None:
        super().__init__()
        self.tower_a = nn.Sequential(nn.Linear(3, 8), nn.Tanh())
        self.tower_b = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(16, 1) for _ in TASKS])

    def forward(self, x):
        h = torch.cat([self.tower_a(x[:, :3]), self.tower_b(x[:, 3:])], dim=1)
        return torch.cat([hd(h) for hd in self.heads], dim=1)


def losses_fn(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean(0)


def setup(opt_name: str):
    torch.manual_seed(0)
    model = TwoTower().double()
    params = model.parameters()
    opt = (
        torch.optim.SGD(params, lr=0.05, momentum=0.9)
        if opt_name == "sgd"
        else torch.optim.Adam(params, lr=0.01)
    )
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = torch.stack([x[:, 0], x[:, 3], x[:, 0] + x[:, 3]], dim=1)
    return model, opt, (x, y)


def shared_predicate(name: str) -> bool:
    return name.startswith("tower")


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_logger_matches_the_lab_reference(opt_name, tmp_path):
    model, opt, batch = setup(opt_name)
    logger = AffinityLogger(
        model,
        TASKS,
        losses_fn,
        opt,
        shared=shared_predicate,
        every=3,
        measures=("lookahead", "cosine"),
        task_types={"sum": "regression"},
        config={"opt": opt_name},
        notes="two towers",
    )
    checked = 0
    for step in range(1, 8):
        if logger.should_measure():
            ref = lookahead_affinity_reference(model, logger.shared_names, losses_fn, batch, opt)
        losses = losses_fn(model, batch)
        got = logger.measure(step, batch, losses)
        if got is not None:
            np.testing.assert_allclose(got["lookahead"], ref.detach().numpy(), atol=1e-10)
            checked += 1
        opt.zero_grad()
        losses.sum().backward()  # the user's backward still works after measure()
        opt.step()
        logger.log_losses(step, losses)
    assert checked == 3  # calls 1, 4, 7
    steps, mats = logger.matrices()
    np.testing.assert_array_equal(steps, [1, 4, 7])
    assert mats.shape == (3, 3, 3) and np.isfinite(logger.mean()).all()

    path = logger.save(tmp_path / "two_tower.zip")
    parsed = read_run_file(path)
    assert parsed.tasks == TASKS and parsed.measures("") == ["lookahead", "cosine"]
    np.testing.assert_array_equal(parsed.matrices("", "lookahead")[2], mats)
    assert parsed.meta["config"] == {"opt": opt_name} and parsed.task_types == {"sum": "regression"}
    assert len(parsed.metrics) == 7 * 3

    store = Store(tmp_path / "s.sqlite")
    rid = logger.to_store(store, name="two towers")
    info = store.get_run(rid)
    assert info.origin == "logged" and info.tasks == TASKS
    np.testing.assert_array_equal(store.affinity_steps(rid, "lookahead")[2], mats)


def test_logger_shared_specs_and_errors():
    model, opt, batch = setup("sgd")
    by_module = AffinityLogger(model, TASKS, losses_fn, opt, shared=model.tower_a)
    assert by_module.shared_names == ["tower_a.0.weight", "tower_a.0.bias"]
    by_prefix = AffinityLogger(model, TASKS, losses_fn, opt, shared="tower_b")
    assert all(n.startswith("tower_b.") for n in by_prefix.shared_names)
    with pytest.raises(LabError, match="no shared parameters matched"):
        AffinityLogger(model, TASKS, losses_fn, opt, shared="encoder")
    with pytest.raises(LabError, match="no parameter named"):
        AffinityLogger(model, TASKS, losses_fn, opt, shared=["nope.weight"])
    with pytest.raises(LabError, match="every"):
        AffinityLogger(model, TASKS, losses_fn, opt, shared="tower_a", every=0)
    bad = AffinityLogger(model, TASKS[:2], losses_fn, opt, shared="tower_a")
    with pytest.raises(LabError, match="expected \\(2,\\)"):
        bad.measure(1, batch)
    with pytest.raises(LabError, match="nothing measured"):
        by_prefix.parsed()


def test_bn_running_stats_untouched_by_measure():
    model, opt, batch = setup("adam")
    bn = model.tower_b[1]
    before = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    logger = AffinityLogger(model, TASKS, losses_fn, opt, shared=shared_predicate, every=1)
    logger.measure(1, batch)  # no losses given: the logger runs its own forward
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(
        bn.num_batches_tracked, before[1]
    )
