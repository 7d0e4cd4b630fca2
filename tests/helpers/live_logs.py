"""A live log folder written by hand (``mtl_core.live.FolderSink``), for the tests that follow
one: the core's folder follows and the Upload page's "Follow a folder"."""

from __future__ import annotations

import numpy as np

from mtl_core.events import StepEvent
from mtl_core.live import FolderSink

TASKS = ["a", "b", "c"]


def start_sink(folder, name: str) -> FolderSink:
    """A started live log folder at ``folder`` (parents made) for :data:`TASKS`, run ``name``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    sink = FolderSink(folder)
    sink.start(TASKS, {t: "regression" for t in TASKS}, {"name": name})
    return sink


def write_steps(sink: FolderSink, steps: list[int]) -> None:
    """Append ``steps`` to ``sink``: losses 0.5, lookahead affinity drawn from ``steps[0]``."""
    rng = np.random.default_rng(steps[0])
    loss = {t: 0.5 for t in TASKS}
    sink.write(
        [
            StepEvent(s, 0, TASKS, loss, affinity={"lookahead": rng.normal(size=(3, 3))})
            for s in steps
        ]
    )
