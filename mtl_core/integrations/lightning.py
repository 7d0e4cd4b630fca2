"""A PyTorch Lightning callback that runs an :class:`~mtl_core.train.logger.AffinityLogger`
(optionally live) inside ``Trainer.fit`` (``pip install task-affinity-lab[lightning]``).

::

    from mtl_core.integrations.lightning import AffinityCallback
    cb = AffinityCallback(tasks=["a", "b"], task_losses_fn=per_task_losses, shared="encoder",
                          every=10, live="runs/live1")
    Trainer(callbacks=[cb]).fit(module, loader)

The module (``pl_module``) is the model; the optimizer is ``trainer.optimizers[0]``. Before each
optimizer step (``on_before_optimizer_step``) the logger measures on the step's batch, kept by
``on_train_batch_start``; the per-task losses are logged at ``on_train_batch_end``. The logger
is built at ``on_fit_start`` and closed at ``on_fit_end`` (``failed`` on an exception).
This module imports no Lightning at import time; the callback's base class is Lightning's
``Callback`` when it is installed, else ``object`` (duck-typed hooks, same signatures).
"""

from __future__ import annotations

from typing import Any

import torch

from mtl_core.train.logger import AffinityLogger

try:  # Lightning 2.x, then the older package name
    from lightning.pytorch.callbacks import Callback as _Base
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        from pytorch_lightning.callbacks import Callback as _Base
    except ImportError:
        _Base = object


class AffinityCallback(_Base):  # type: ignore[misc, valid-type]
    """Measure inter-task affinity during ``Trainer.fit``.

    Takes :class:`AffinityLogger`'s arguments except ``model`` and ``optimizer`` (the
    LightningModule and the trainer's first optimizer). ``self.logger`` is the logger once the
    fit has started (for ``save``/``matrices`` afterwards). Steps are ``trainer.global_step + 1``.
    """

    def __init__(self, **logger_kwargs: Any) -> None:
        super().__init__()
        self.logger_kwargs = logger_kwargs
        self.logger: AffinityLogger | None = None
        self._batch: Any = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.logger = AffinityLogger(
            pl_module, optimizer=trainer.optimizers[0], **self.logger_kwargs
        )

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        self._batch = batch

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.logger is not None:  # measures on every `every`-th optimizer step
            with torch.enable_grad():
                self.logger.measure(trainer.global_step + 1, self._batch)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.logger is None:
            return
        with torch.no_grad():
            losses = self.logger.task_losses_fn(pl_module, batch)
        self.logger.log_losses(trainer.global_step, losses)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.logger is not None:
            self.logger.close("finished")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.logger is not None:
            kind = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
            self.logger.close(kind)
