"""Live runs: a training job appends its steps while it trains, readers follow what is new.

Two destinations, both append-only (:mod:`mtl_core.live.sinks`):

- a **store run** (``origin="logged"``, ``status="running"`` until the logger is closed): the
  app's Explore page polls a running run and redraws as steps land;
- a **log folder** laid out as a lab bundle (``meta.json``, ``affinity.csv``, ``metrics.csv``),
  rows appended in whole lines; the lab's folder reader reads it at any moment, and
  :mod:`mtl_core.live.follow` (``task-affinity-lab watch DIR``) imports it as it grows,
  parsing only the bytes added since the last poll.

This package never imports torch or streamlit.
"""

from mtl_core.live.follow import FolderFollower, FollowBatch
from mtl_core.live.sinks import FolderSink, LiveSink, StoreSink, open_sinks

__all__ = ["FolderFollower", "FollowBatch", "FolderSink", "LiveSink", "StoreSink", "open_sinks"]
