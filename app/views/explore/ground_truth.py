"""Explore's "Ground truth" tab: the background evaluation panel lives in ``app.jobs``."""

from __future__ import annotations

from app import jobs
from app.views.explore.controls import GroupControls
from mtl_core.store import RunInfo


def ground_truth_tab(info: RunInfo, gc: GroupControls) -> None:
    """Retrain the run's scenario with TAG's groups for the chosen k against the baselines."""
    jobs.ground_truth_panel(info, gc.k)
