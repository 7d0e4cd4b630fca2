"""Train's queue of runs: live runs with progress, ETA and Cancel, failures where they are seen,
and the table of every run the visibility rule shows (polled while anything is active)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import auth, data, session, tables, words
from app.escape import md
from mtl_core.errors import LabError
from mtl_core.text import units

POLL_S = 1.0


def show() -> None:
    """The queue, as a fragment that reruns every :data:`POLL_S` s while a run is active."""
    runs = data.list_runs()
    active = data.any_active(runs)
    st.fragment(run_every=POLL_S if active else None)(_queue_body)(was_active=active)


def queue_frame(runs: list) -> pd.DataFrame:
    """One row per run for the queue table (this session's runs first)."""
    mine = session.mine(runs)
    rows = []
    for r in runs:
        cfg = r.config or {}
        rows.append(
            {
                "run": words.run_label(r),
                "yours": "✓" if r.id in mine else "",
                "status": r.status,
                "progress": float(r.progress)
                if r.progress is not None
                else (1.0 if r.status == "finished" else 0.0),
                "steps": f"{r.steps_done}/{r.steps_total}" if r.steps_total else str(r.steps_done),
                "ETA": words.eta_text(r.steps_done, r.steps_per_s, r.eta_s)
                if r.status == "running"
                else "",
                "speed": units.step_rate(r.steps_per_s),
                "origin": r.origin,
                "scenario": cfg.get("scenario", ""),
                "mode": (cfg.get("train") or {}).get("mode", ""),
                "created": words.ago(r.created),
                "error": r.error or "",
            }
        )
    return pd.DataFrame(rows)


def _queue_body(was_active: bool) -> None:
    runs = data.list_runs()
    only_mine = st.toggle(
        "Only my runs",
        key="train_only_mine",
        help="Runs you started or uploaded (signed in: as this user; otherwise: in this browser)",
    )
    ordered = session.ordered_runs(runs, mine_only=only_mine)
    live = [r for r in ordered if r.is_active]
    for r in live:
        c1, c2, c3 = st.columns([3, 5, 1], vertical_alignment="center")
        c1.markdown(
            f"{words.colour_dot(r.id)} **{md(words.run_label(r))}**", unsafe_allow_html=True
        )
        c2.progress(float(r.progress or 0.0), text=words.status_text(r, data.queue_ahead(r)))
        if not auth.may_change(r):  # someone else's run: no cancel button (the core refuses too)
            c3.caption("not yours")
        elif c3.button("Cancel", key=f"cancel_{r.id}", icon=":material/stop:"):
            try:
                data.get_runner().cancel(r.id)
                st.toast(f"Cancelling run #{r.id}")
            except LabError as exc:
                st.error(md(exc))
    mine = session.mine(ordered)
    failed = [r for r in ordered if r.status == "failed" and r.id in mine][:3]
    for r in failed:  # the reason, where it is seen (the table's error column is far right)
        st.error(f"Run #{r.id} ({md(r.name)}) failed: {md(r.error)}", icon=":material/error:")
    if not ordered:
        st.info("No runs yet. Queue one above, run the lesson, or upload a log.")
    else:
        tables.show_table(
            queue_frame(ordered),
            hide_index=True,
            width="stretch",
            column_config={
                "progress": st.column_config.ProgressColumn(
                    "progress", min_value=0.0, max_value=1.0, format="percent"
                ),
            },
        )
    still = data.any_active(runs)
    if was_active and not still:
        st.rerun()
