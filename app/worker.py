"""The training function the app's runner starts in its worker processes (never imported by
the app process itself, so the app stays torch-free).

Workers started from the app run at a lower CPU priority, so pages stay responsive while runs
train on the same cores: training only slows down when the UI needs the CPU.
"""

from __future__ import annotations

import os
from typing import Any

from mtl_core.config import RunConfig

WORKER_NICENESS = 10


def train(cfg: RunConfig, on_step: Any = None) -> Any:
    """``mtl_core.training.train`` at a lower CPU priority."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not permitted on some systems: train at normal priority
        pass
    from mtl_core.training import train as core_train  # torch: inside the worker only

    return core_train(cfg, on_step)
