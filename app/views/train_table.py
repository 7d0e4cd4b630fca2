"""Train on your own table: the csv scenario's inputs on the Train page.

In the app a table comes only from an upload (never a path on the server, issue 13): the file
is read by the run-file reader (encodings, delimiters, decimal commas), the targets are picked
from its columns, the features the run will use and the columns left out (a saved row index,
text, a constant) are listed before anything is queued. Queueing saves the bytes beside the
run store, content-addressed and owned by this session's user
(:mod:`mtl_core.scenarios.table_files`); the run's config names only that reference.
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from app import data
from app.escape import md, plain
from mtl_core.accounts.quota import Limits, check_table
from mtl_core.errors import LabError
from mtl_core.runner.upload_read import read_table_upload
from mtl_core.scenarios.table import TablePlan, plan_table
from mtl_core.scenarios.table_files import table_ext
from mtl_core.scenarios.table_read import Table
from mtl_core.text.labels import column_label

FILE_KEY = "train_table_file"
TYPES = ["csv", "tsv", "txt", "parquet", "json", "jsonl"]


@st.cache_data(show_spinner="Reading the table…", max_entries=8)
def _parse(file_id: str, name: str, size: int, _data: bytes) -> tuple[Table, str]:
    """The table and its reference (``<sha256>.<ext>``), once per uploaded file; read in a
    capped child process (:mod:`mtl_core.runner.upload_read`), never in the shared server."""
    ref = hashlib.sha256(_data).hexdigest() + table_ext(name)
    return read_table_upload(_data, name), ref


def option(col: str) -> str:
    """A column as a select option (plain text; an unnamed column says so)."""
    return plain(col) if str(col).strip() else "(no name)"


def table_knobs(lim: Limits) -> dict[str, Any]:
    """The upload, the target and feature pickers and the plan; returns the csv scenario's
    knobs (``table`` empty until a readable table is uploaded)."""
    st.markdown("**Your table**")
    f = st.file_uploader(
        "Table file (CSV/TSV with any delimiter or encoding, Excel's CSV, Parquet, JSON)",
        type=TYPES,
        key=FILE_KEY,
        help="One row per example; two or more target columns; every other numeric column "
        "is a feature unless you pick features. The same size limit as the Upload page.",
    )
    empty: dict[str, Any] = {"table": "", "targets": [], "features": [], "data_seed": 0}
    if f is None:
        st.caption("Upload a table to pick its target columns.")
        return empty
    try:
        table, ref = _parse(f.file_id, f.name, f.size, f.getvalue())
    except LabError as exc:
        st.error(md(exc), icon=":material/error:")
        return empty
    st.caption(f"{md(f.name)} · {table.rows} rows · {len(table.columns)} columns")
    for note in table.notes:
        st.caption(f":material/info: {md(note)}")
    c1, c2, c3 = st.columns([3, 3, 1])
    targets = c1.multiselect(
        "targets (two or more)",
        list(table.columns),
        key=f"train_table_targets_{f.file_id}",
        format_func=option,
    )
    choices = [c for c in table.columns if c in table.numeric and c not in targets]
    features = c2.multiselect(
        "features (empty: automatic)",
        choices,
        key=f"train_table_features_{f.file_id}",
        format_func=option,
        help="Empty: every other numeric column except row indexes and constant columns.",
    )
    seed = c3.number_input("data seed", 0, 2**31 - 1, 0, key="train_table_seed")
    show_plan(table, targets, features, f.name, lim)
    return {"table": ref, "targets": targets, "features": features, "data_seed": int(seed)}


def plan_for(
    table: Table, targets: list[str], features: list[str], name: str, lim: Limits
) -> TablePlan:
    """The run's plan on ``table``, checked against the server's limits (LabError)."""
    plan = plan_table(table, targets, features, (), name)
    check_table(plan.rows, len(plan.features), lim)
    return plan


def show_plan(
    table: Table, targets: list[str], features: list[str], name: str, lim: Limits
) -> None:
    """The features the run will use and the columns it leaves out, or what is wrong."""
    if len(targets) < 2:
        st.caption("Pick two or more target columns (each is one task).")
        return
    try:
        plan = plan_for(table, targets, features, name, lim)
    except LabError as exc:
        st.caption(f":material/error: {md(exc)}")
        return
    tasks = ", ".join(
        f"{md(column_label(t))} ({kind})" for t, kind in zip(plan.targets, plan.task_types)
    )
    st.markdown(f"Tasks: {tasks} · {plan.rows} rows with a target value")
    feats = ", ".join(md(column_label(c)) for c in plan.features)
    st.markdown(f"Features ({len(plan.features)}): {feats}")
    if plan.left_out:
        left = "; ".join(f"{md(column_label(c))}: {md(why)}" for c, why in plan.left_out)
        st.markdown(f"Left out ({len(plan.left_out)}): {left}")


def save_upload(knobs: dict[str, Any], lim: Limits) -> None:
    """Before queueing: check the plan against the limits and save the uploaded bytes beside
    the store (owned by this user). LabError when there is no table or it changed."""
    f = st.session_state.get(FILE_KEY)
    if f is None or not knobs.get("table"):
        raise LabError("upload a table first (the csv scenario trains on your own table)")
    table, ref = _parse(f.file_id, f.name, f.size, f.getvalue())
    plan_for(table, list(knobs["targets"]), list(knobs.get("features") or []), f.name, lim)
    saved = data.save_table(f.getvalue(), f.name)
    if saved != ref or ref != knobs["table"]:
        raise LabError("the uploaded table changed while queueing; queue again")
