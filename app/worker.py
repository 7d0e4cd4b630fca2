"""The training function the app's runner starts in its worker processes (never imported by
the app process itself, so the app stays torch-free).

A shim over ``mtl_core.training.train``. In the modes that train several networks (``groups``,
``single``) the training loop reports a NaN minibatch loss for every task not served by the
first network until the first evaluation (its ``served`` map starts at 0 for every task and
``setdefault`` never corrects it), and the runner stops any run whose reported loss is NaN as
diverged — so every grouped or single run would fail at step 1. Until ``training.py`` is
fixed, drop those not-yet-served entries before the first evaluation; real divergence is
raised inside the training loop (``DivergedError``) before ``on_step`` is called. Delete this
module and the default in ``app.state`` once the core is fixed.
"""

from __future__ import annotations

import math
from typing import Any

from mtl_core.config import RunConfig


def train(cfg: RunConfig, on_step: Any = None) -> Any:
    from mtl_core.training import train as core_train  # torch: inside the worker only

    first_eval = int(cfg.train.eval_every)
    multi = cfg.train.mode in ("groups", "single")

    def relay(event: Any) -> None:
        if multi and event.step <= first_eval:
            event.train_loss = {t: v for t, v in event.train_loss.items() if math.isfinite(v)}
        if on_step is not None:
            on_step(event)

    return core_train(cfg, relay)
