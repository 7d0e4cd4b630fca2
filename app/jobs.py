"""The ground-truth evaluation as a background job, and its panel on the Explore page.

``mtl_core.evaluate`` trains TAG's groups against every baseline over several seeds: minutes
of work, so it must not run in a script run. The runner only runs training configs, so this
adapter starts the CLI (``python -m mtl_core evaluate ... --out report.json``) as a separate
process and records the job in the run store (``store.save_ground_truth``), keyed by run and k:
any session can see it, it survives page changes, and the report lands in the store when done.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app import data
from app.escape import md
from app.guard import show_error
from app.words import format_seconds
from mtl_core.errors import LabError
from mtl_core.store import RunInfo, Store

log = logging.getLogger("task_affinity_lab.app")
ROOT = Path(__file__).resolve().parent.parent
POLL_S = 1.5


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except OSError:
        return False
    try:  # a zombie (our own child that exited) counts as gone
        state_ = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state_ not in ("Z", "X")
    except (OSError, IndexError):
        return True


def command(info: RunInfo, k: int, seeds: int, out: Path) -> list[str]:
    """The CLI call that evaluates ``info``'s scenario and knobs with budget ``k``."""
    cfg = info.config or {}
    scenario = cfg.get("scenario")
    if not scenario:
        raise LabError("The ground truth retrains the run's scenario, so it needs a run "
                       "trained by the lab (uploaded logs have no scenario to retrain).")
    args = [sys.executable, "-m", "mtl_core", "evaluate", "--scenario", str(scenario),
            "--k", str(int(k)), "--seeds", str(int(seeds)),
            "--steps", str(int((cfg.get("train") or {}).get("steps", 300))),
            "--out", str(out), "--workers", str(max(1, min(2, os.cpu_count() or 1)))]
    for key, value in (cfg.get("knobs") or {}).items():
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        args += ["--set", f"{key}={value}"]
    return args


def start(store: Store, info: RunInfo, k: int, seeds: int) -> dict[str, Any]:
    """Start the evaluation process and record the job; returns the job record."""
    folder = store.path.parent / "evaluations"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"run{info.id}_k{int(k)}_{int(time.time())}"
    out, logfile = folder / f"{stem}.json", folder / f"{stem}.log"
    cmd = command(info, k, seeds, out)
    with open(logfile, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    job = {"status": "running", "pid": proc.pid, "out": str(out), "log": str(logfile),
           "started": time.time(), "k": int(k), "seeds": int(seeds)}
    store.save_ground_truth(info.id, k, job)
    return job


def refresh(store: Store, run_id: int, k: int) -> dict[str, Any] | None:
    """The job's record, updated if its process has ended (report loaded into the store)."""
    job = store.get_ground_truth(run_id, k)
    if not job or job.get("status") != "running":
        return job
    if _pid_alive(int(job["pid"])):
        return job
    out = Path(job["out"])
    if out.exists():
        try:
            report = json.loads(out.read_text())
        except (OSError, ValueError) as exc:
            job.update(status="failed", error=f"unreadable report: {exc}")
        else:
            job.update(status="done", finished=time.time(), report=report)
    else:
        job.update(status="failed", finished=time.time(), error=last_line(job.get("log")))
    store.save_ground_truth(run_id, k, job)
    return job


def last_line(path: str | None) -> str:
    """The last non-empty line of a log (the CLI's progress or its one-line error)."""
    if not path:
        return ""
    try:
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""


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
        rows.append({
            "approach": a.get("name", key),
            "total test loss": mean,
            "± std": std,
            "vs all together": (mean / base - 1) if (mean is not None and base) else None,
            "parameters": (a.get("parameters") or {}).get("mean"),
            "compute s": (a.get("seconds") or {}).get("mean"),
            "groups (seed 0)": " · ".join("{" + ", ".join(g) + "}"
                                          for g in (a.get("groupings") or [[]])[0])
            if a.get("groupings") else "",
        })
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
        st.info("Only runs trained by the lab can be re-evaluated (an uploaded log has no "
                "scenario to retrain).")
        return
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    kk = c1.number_input("k (group budget)", 1, max(1, len(info.tasks) or 1),
                         int(min(max(k, 1), max(1, len(info.tasks) or 1))),
                         key="gt_k")
    seeds = c2.number_input("seeds", 1, 10, 2, key="gt_seeds")
    store = data.get_store()
    job = refresh(store, info.id, int(kk))
    running = bool(job and job.get("status") == "running")
    if c3.button("Run the ground truth", icon=":material/science:", key="gt_start",
                 disabled=running):
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
        st.info(f"Evaluating (k={k}, {job.get('seeds')} seed(s)) for "
                f"{format_seconds(elapsed)} — {md(last_line(job.get('log')) or 'starting')}",
                icon=":material/hourglass_top:")
    elif status == "failed":
        st.error(f"The evaluation failed: {md(job.get('error') or 'no report was written')}")
    elif status == "done":
        report = job.get("report") or {}
        df = report_frame(report)
        st.dataframe(df, hide_index=True, width="stretch", column_config={
            "total test loss": st.column_config.NumberColumn(format="%.4f"),
            "± std": st.column_config.NumberColumn(format="%.4f"),
            "vs all together": st.column_config.NumberColumn(
                format="percent", help="Change in total test loss against all together: "
                "negative = lower loss (better)"),
            "parameters": st.column_config.NumberColumn(format="%.0f"),
            "compute s": st.column_config.NumberColumn(format="%.1f"),
        })
        comp = report.get("comparison") or {}
        if "tag_vs_together" in comp:
            gain = float(comp["tag_vs_together"])
            words = (f"{gain * 100:.1f}% lower" if gain >= 0 else f"{-gain * 100:.1f}% higher")
            best = df.loc[df["total test loss"].idxmin(), "approach"] if not df.empty else None
            st.caption(f"TAG groups: {words} total test loss than all together. "
                       + (f"Lowest of all here: **{best}**." if best else ""))
    if was_running and status != "running":
        st.rerun()
