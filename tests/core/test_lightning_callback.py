"""AffinityCallback with a duck-typed Trainer (Lightning is not installed here) and, where it
is installed, a real Trainer."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from mtl_core.integrations.lightning import AffinityCallback
from mtl_core.store import Store
from tests.core.test_live import _losses, _Net


class _FakeTrainer:
    def __init__(self, opt):
        self.optimizers = [opt]
        self.global_step = 0


def _fit(cb, module, trainer, steps):
    """The hook order of Lightning's automatic optimization, per batch."""
    cb.on_fit_start(trainer, module)
    g = torch.Generator().manual_seed(0)
    opt = trainer.optimizers[0]
    for i in range(steps):
        x = torch.randn(8, 3, generator=g)
        batch = (x, torch.stack([x[:, 0], x[:, 1], -x[:, 2]], 1))
        cb.on_train_batch_start(trainer, module, batch, i)
        loss = _losses(module, batch).sum()
        opt.zero_grad()
        loss.backward()
        cb.on_before_optimizer_step(trainer, module, opt)
        opt.step()
        trainer.global_step += 1
        cb.on_train_batch_end(trainer, module, {"loss": loss}, batch, i)
    cb.on_fit_end(trainer, module)


def test_callback_measures_every_kth_step_and_finishes_the_live_run(tmp_path):
    torch.manual_seed(0)
    module = _Net()
    trainer = _FakeTrainer(torch.optim.SGD(module.parameters(), lr=0.05))
    store = Store(tmp_path / "s.sqlite")
    cb = AffinityCallback(
        tasks=["a", "b", "c"], task_losses_fn=_losses, shared="encoder", every=3,
        live=store, flush_every=1,
    )  # fmt: skip
    _fit(cb, module, trainer, 7)
    steps, a = cb.logger.matrices()
    assert list(steps) == [1, 4, 7] and a.shape == (3, 3, 3)
    (rid,) = store.run_ids()
    assert store.get_run(rid).status == "finished"
    assert list(store.affinity_steps(rid, "lookahead")[0]) == [1, 4, 7]


@pytest.mark.skipif(
    importlib.util.find_spec("lightning") is None,
    reason="lightning is not installed here (pip install .[lightning] to run this test)",
)
def test_callback_in_a_real_trainer(tmp_path):  # pragma: no cover - needs lightning
    import lightning.pytorch as pl

    class _Mod(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _Net()
            self.encoder = self.net.encoder

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, i):
            return _losses(self, batch).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    x = torch.randn(32, 3)
    data = torch.utils.data.DataLoader(
        list(zip(x, torch.stack([x[:, 0], x[:, 1], -x[:, 2]], 1))), batch_size=8
    )
    cb = AffinityCallback(
        tasks=["a", "b", "c"], task_losses_fn=_losses, shared=lambda n: "encoder" in n, every=2
    )
    pl.Trainer(max_steps=4, callbacks=[cb], logger=False, enable_checkpointing=False).fit(
        _Mod(), data
    )
    assert list(cb.logger.matrices()[0]) == [1, 3]
