"""Explore's "Ground truth" tab: the background evaluation panel (``app.jobs``) and, for an
evaluation that trained every candidate group (``exhaustive``) or an uploaded ``evaluate
--exhaustive`` report, the same scores as the Ground-truth tables page: per k the exact
optimum, TAG from this run's affinity (or the evaluation's co-training), HOA, random (mean,
sd) and worst selections, with regret and rank agreement. The numbers come from the page's
own :func:`app.views.ground_truth.compute_scores` (``select``'s
:func:`mtl_core.groundtruth.compare.compare`, in the page's capped child process), so they
equal ``python -m mtl_core select REPORT.json --k ... --draws 50 --json`` on the same report.
"""

from __future__ import annotations

import json

import streamlit as st

from app import data, jobs
from app.views import ground_truth as gt_page
from app.views.explore.controls import GroupControls
from mtl_core.store import RunInfo

#: The affinity TAG chooses from in the scored table.
SOURCES = {
    "run": "this run's affinity (mean over its logged steps)",
    "report": "the evaluation's own co-training affinity",
}


def ground_truth_tab(info: RunInfo, gc: GroupControls) -> None:
    """Retrain the run's scenario with TAG's groups for the chosen k against the baselines;
    score an exhaustive evaluation (the stored one for this k, or an uploaded report) like
    the Ground-truth tables page."""
    k = jobs.ground_truth_panel(info, gc.k)
    if k is None:
        return
    record = data.get_store().get_ground_truth(info.id, k) or {}
    report = record.get("report") if record.get("status") == "done" else None
    scored_evaluation(info, report, k)


def _is_exhaustive(report: dict | None) -> bool:
    runs = (report or {}).get("runs") or []
    return any(isinstance(r, dict) and r.get("approach") == "exhaustive" for r in runs)


def scored_evaluation(info: RunInfo, report: dict | None, k: int) -> None:
    """The scored table of ``report`` (this run's stored evaluation, or None) or of an
    uploaded report file, which takes its place when given."""
    st.subheader("Scored against the measured networks")
    upload = st.file_uploader(
        "…or an evaluate --exhaustive report file (.json)", type=["json"], key="gtx_file"
    )
    if upload is not None:
        blob = (upload.name, upload.getvalue())
    elif _is_exhaustive(report):
        blob = (f"evaluation of run #{info.id} (k={k})", json.dumps(report).encode("utf-8"))
    else:
        st.caption(
            "Tick **exhaustive** and run the ground truth (or upload a report of `evaluate "
            "--exhaustive`) to score every estimator against the networks it trained, as on "
            "the Ground-truth tables page."
        )
        return
    c1, c2 = st.columns([1, 2])
    values = c1.text_input("k values", ", ".join(str(v) for v in range(1, 4)), key="gtx_values")
    sources = list(SOURCES) if info.measures else ["report"]
    source = c2.radio(
        "TAG chooses from", sources, format_func=SOURCES.get, key="gtx_source", horizontal=True
    )

    def compute():
        limits = tuple(gt_page.parse_limits(values, "k"))
        affinity = gt_page.run_affinity(info.id) if source == "run" else None
        return gt_page.compute_scores(
            "report", blob, None, None, None, None, None, "k", limits, affinity
        )

    gt_page.show_computed(compute, prefix="gtx")
