"""The ground-truth evaluation as a background job, and its panel on the Explore page.

``mtl_core.experiments`` trains TAG's groups against every baseline over several seeds:
minutes of work, so it must not run in a script run. This module queues the job in the run
store (``store.queue_ground_truth``), keyed by run and k and owned by the user who starts it;
the app's runner starts it in one of its worker slots like a queued run
(``mtl_core.experiments.background.EvaluationQueue``: one process, the fair order, the
starter's quota) and saves its outcome, so any session can see it, it survives page changes,
and the report lands in the store when done.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import streamlit as st

from app import auth, data, tables
from app.escape import md
from app.guard import show_error
from app.words import format_seconds
from mtl_core.errors import LabError
from mtl_core.experiments import background
from mtl_core.runner.procs import default_max_workers
from mtl_core.scenarios import table_files
from mtl_core.store import RunInfo, Store

log = logging.getLogger("task_affinity_lab.app")
POLL_S = 1.5
#: Most tasks the page lets an evaluation train exhaustively: 2^(n-1) - 1 candidate runs per
#: seed, 31 at 6 tasks (about the 28 pair runs HOA trains anyway at 8); the command line's
#: ``evaluate --exhaustive`` goes to 8.
EXHAUSTIVE_MAX_TASKS = 6


def start(
    store: Store, info: RunInfo, k: int, seeds: int, *, exhaustive: bool = False
) -> dict[str, Any]:
    """Queue the evaluation of ``info``'s scenario and knobs with budget ``k``, started by
    this session's user: the runner starts it in one of its worker slots
    (``MTL_LAB_WORKERS``, in the fair order shared with queued runs), and it counts against
    the starter's queue quota. ``exhaustive`` also trains every candidate group (at most
    :data:`EXHAUSTIVE_MAX_TASKS` tasks), so the report can be scored like a ground-truth
    table. Returns the job record.

    LabError for a run the lab cannot retrain, a config over this server's limits (an
    uploaded ``meta.json`` may claim anything), an uploaded table the *starter* did not
    upload (whoever owns the run, or none), one already queued or running for this k, or a
    starter at the quota.
    """
    if exhaustive and len(info.tasks) > EXHAUSTIVE_MAX_TASKS:
        raise LabError(
            f"exhaustive training here is limited to {EXHAUSTIVE_MAX_TASKS} tasks (this run "
            f"has {len(info.tasks)}); the command line's evaluate --exhaustive goes to 8"
        )
    dep = auth.deployment()
    starter = auth.current_actor(dep).id
    # an uploaded table only its uploader may train on: the starter, whoever owns the run
    # (or none), checked before the spec loads the scenario, which reads the table
    knobs = (info.config or {}).get("knobs") or {}
    table_files.check_owner(knobs, starter, table_files.tables_dir(store.path))
    # one slot's share of the CPUs, as a run's worker gets (the evaluation is one process)
    spec = background.spec_for_run(
        info.config or {},
        k,
        seeds,
        workers=default_max_workers(),
        limits=dep.limits,
        exhaustive=exhaustive,
    )
    folder = store.path.parent / "evaluations" / f"run{info.id}_k{int(k)}_{int(time.time())}"
    record = {
        "spec": spec.to_dict(),
        "folder": str(folder),
        "k": int(k),
        "seeds": int(seeds),
        "exhaustive": bool(exhaustive),
        "owner": starter,
    }
    saved = store.queue_ground_truth(info.id, k, record, limits=dep.limits)
    data.wake_runner()
    return saved


def refresh(store: Store, run_id: int, k: int) -> dict[str, Any] | None:
    """The job's record, with its latest progress line (the runner saves its outcome too)."""
    return background.refresh(store, run_id, k)


def report_frame(report: dict[str, Any]) -> pd.DataFrame:
    """One row per approach: total test loss (mean ± std), vs together, parameters, time."""
    rows = []
    approaches = report.get("approaches", {})
    base = (approaches.get("together") or {}).get("total_test_loss", {}).get("mean")
    for key, a in approaches.items():
        tl = a.get("total_test_loss", {})
        mean, std = tl.get("mean"), tl.get("std")
        if int((report.get("spec") or {}).get("seeds", 2)) < 2:
            std = None  # one seed: no spread to show
        rows.append(
            {
                "approach": a.get("name", key),
                "total test loss": mean,
                "± std": std,
                "vs all together": (mean / base - 1) if (mean is not None and base) else None,
                "parameters": (a.get("parameters") or {}).get("mean"),
                "compute s": (a.get("seconds") or {}).get("mean"),
                "groups (seed 0)": " · ".join(
                    "{" + ", ".join(g) + "}" for g in (a.get("groupings") or [[]])[0]
                )
                if a.get("groupings")
                else "",
            }
        )
    return pd.DataFrame(rows)


def ground_truth_panel(info: RunInfo, k: int) -> int | None:
    """Explore's "Ground truth" tab: start the evaluation, follow it, show its table.
    Returns the k the tab shows (None for a run the lab cannot retrain)."""
    st.markdown(
        "Does the grouping really win? This retrains the run's scenario from scratch: TAG's "
        "groups for k, all tasks together, every task alone, random groups and a "
        "capacity-matched network, over several seeds, and compares held-out loss. It runs in "
        "the background (minutes); you can leave the page."
    )
    if not (info.config or {}).get("scenario"):
        st.info(
            "Only runs trained by the lab can be re-evaluated (an uploaded log has no "
            "scenario to retrain)."
        )
        return None
    c1, c2, c4, c3 = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    kk = c1.number_input(
        "k (group budget)",
        1,
        max(1, len(info.tasks) or 1),
        int(min(max(k, 1), max(1, len(info.tasks) or 1))),
        key="gt_k",
    )
    seeds = c2.number_input("seeds", 1, auth.deployment().limits.seeds or 10, 2, key="gt_seeds")
    small = len(info.tasks) <= EXHAUSTIVE_MAX_TASKS
    exhaustive = c4.checkbox(
        "exhaustive",
        key="gt_exhaustive",
        disabled=not small,
        help="also train every candidate group (2^(n-1) - 1 runs a seed), so every "
        "estimator can be scored against the measured networks below"
        if small
        else f"at most {EXHAUSTIVE_MAX_TASKS} tasks here (the command line's evaluate "
        "--exhaustive goes to 8)",
    )
    store = data.get_store()
    job = refresh(store, info.id, int(kk))
    running = bool(job and job.get("status") in ("queued", "running"))
    if c3.button(
        "Run the ground truth", icon=":material/science:", key="gt_start", disabled=running
    ):
        try:
            job = start(store, info, int(kk), int(seeds), exhaustive=bool(exhaustive and small))
            running = True
        except LabError as exc:
            st.error(md(exc))
        except OSError as exc:
            show_error(exc)
    st.fragment(run_every=POLL_S if running else None)(_job_view)(info.id, int(kk), running)
    return int(kk)


def _job_view(run_id: int, k: int, was_running: bool) -> None:
    store = data.get_store()
    job = refresh(store, run_id, k)
    if not job:
        st.caption(f"No ground truth for k={k} yet.")
        return
    status = job.get("status")
    if status == "queued":
        waited = time.time() - float(job.get("queued", time.time()))
        st.info(
            f"Queued (k={k}, {job.get('seeds')} seed(s)) for {format_seconds(waited)}: it "
            "starts when one of the lab's worker slots is free, taking turns with queued runs.",
            icon=":material/schedule:",
        )
    elif status == "running":
        elapsed = time.time() - float(job.get("started", time.time()))
        st.info(
            f"Evaluating (k={k}, {job.get('seeds')} seed(s)) for "
            f"{format_seconds(elapsed)} — {md(job.get('message') or 'starting')}",
            icon=":material/hourglass_top:",
        )
    elif status == "failed":
        st.error(f"The evaluation failed: {md(job.get('error') or 'no report was written')}")
    elif status == "done":
        report = job.get("report") or {}
        df = report_frame(report)
        tables.show_table(
            df,
            hide_index=True,
            width="stretch",
            column_config={
                "total test loss": st.column_config.NumberColumn(format="%.4f"),
                "± std": st.column_config.NumberColumn(format="%.4f"),
                "vs all together": st.column_config.NumberColumn(
                    format="percent",
                    help="Change in total test loss against all together: "
                    "negative = lower loss (better)",
                ),
                "parameters": st.column_config.NumberColumn(format="%.0f"),
                "compute s": st.column_config.NumberColumn(format="%.1f"),
            },
        )
        comp = report.get("comparison") or {}
        if "tag_vs_together" in comp:
            gain = float(comp["tag_vs_together"])
            words = f"{gain * 100:.1f}% lower" if gain >= 0 else f"{-gain * 100:.1f}% higher"
            best = df.loc[df["total test loss"].idxmin(), "approach"] if not df.empty else None
            st.caption(
                f"TAG groups: {words} total test loss than all together. "
                + (f"Lowest of all here: **{best}**." if best else "")
            )
    if was_running and status not in ("queued", "running"):
        st.rerun()
