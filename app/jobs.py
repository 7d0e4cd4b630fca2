"""The ground-truth evaluation as a background job, and its panel on the Explore page.

``mtl_core.experiments`` trains TAG's groups against every baseline over several seeds:
minutes of work, so it must not run in a script run. ``mtl_core.experiments.background``
runs it in a separate process (the in-process API, no command line in between) that leaves
its progress and report in a job folder; this module records the job in the run store
(``store.save_ground_truth``), keyed by run and k, so any session can see it, it survives page
changes, and the report lands in the store when done.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pandas as pd
import streamlit as st

from app import auth, data, tables
from app.escape import md
from app.guard import show_error
from app.words import format_seconds
from mtl_core.accounts.quota import check_quota
from mtl_core.errors import LabError
from mtl_core.experiments import background
from mtl_core.scenarios import table_files
from mtl_core.store import RunInfo, Store

log = logging.getLogger("task_affinity_lab.app")
POLL_S = 1.5
#: Worker processes of an evaluation started from the app (it shares the machine with the UI).
WORKERS = max(1, min(2, os.cpu_count() or 1))


def start(store: Store, info: RunInfo, k: int, seeds: int) -> dict[str, Any]:
    """Start evaluating ``info``'s scenario and knobs with budget ``k`` in the background and
    record the job, owned by this session's user (it counts against their queue quota);
    returns the job record. LabError for a run the lab cannot retrain, a config over this
    server's limits (an uploaded ``meta.json`` may claim anything), or a user at the quota."""
    dep = auth.deployment()
    owner = auth.current_actor(dep).id
    spec = background.spec_for_run(info.config or {}, k, seeds, workers=WORKERS, limits=dep.limits)
    # an uploaded table only its uploader's runs may use (a forged meta.json may name any)
    knobs = (info.config or {}).get("knobs") or {}
    table_files.check_owner(knobs, info.owner, table_files.tables_dir(store.path))
    check_quota(store.active_count(owner) + store.running_ground_truths(owner), dep.limits)
    folder = store.path.parent / "evaluations" / f"run{info.id}_k{int(k)}_{int(time.time())}"
    job = background.start(spec, folder, workers=WORKERS)
    record = {
        "status": "running",
        **job.to_dict(),
        "k": int(k),
        "seeds": int(seeds),
        "owner": owner,
    }
    store.save_ground_truth(info.id, k, record)
    return record


def refresh(store: Store, run_id: int, k: int) -> dict[str, Any] | None:
    """The job's record, with its latest progress line; once the job has ended, its outcome
    (the report, or the reason it failed) is saved into the store."""
    job = store.get_ground_truth(run_id, k)
    if not job or job.get("status") != "running":
        return job
    if "folder" not in job:  # started by an older lab (a CLI subprocess): cannot be followed
        job.update(
            status="failed",
            finished=time.time(),
            error="started by an older version of the lab; run it again",
        )
    else:
        now = background.poll(background.BackgroundJob.from_dict(job))
        if now.status == "running":
            return {**job, "message": now.message}
        job.update(status=now.status, finished=now.finished or time.time(), message=now.message)
        if now.status == "done":
            job["report"] = now.report
        else:
            job["error"] = now.error
    store.save_ground_truth(run_id, k, job)
    return job


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


def ground_truth_panel(info: RunInfo, k: int) -> None:
    """Explore's "Ground truth" tab: start the evaluation, follow it, show its table."""
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
        return
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    kk = c1.number_input(
        "k (group budget)",
        1,
        max(1, len(info.tasks) or 1),
        int(min(max(k, 1), max(1, len(info.tasks) or 1))),
        key="gt_k",
    )
    seeds = c2.number_input("seeds", 1, auth.deployment().limits.seeds or 10, 2, key="gt_seeds")
    store = data.get_store()
    job = refresh(store, info.id, int(kk))
    running = bool(job and job.get("status") == "running")
    if c3.button(
        "Run the ground truth", icon=":material/science:", key="gt_start", disabled=running
    ):
        try:
            job = start(store, info, int(kk), int(seeds))
            running = True
        except LabError as exc:
            st.error(md(exc))
        except OSError as exc:
            show_error(exc)
    st.fragment(run_every=POLL_S if running else None)(_job_view)(info.id, int(kk), running)


def _job_view(run_id: int, k: int, was_running: bool) -> None:
    store = data.get_store()
    job = refresh(store, run_id, k)
    if not job:
        st.caption(f"No ground truth for k={k} yet.")
        return
    status = job.get("status")
    if status == "running":
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
    if was_running and status != "running":
        st.rerun()
