"""Upload and download runs in the open run-file format.

Uploads go through the same reader the CLI uses (``mtl_core.runfile.read_run_file``, run in a
capped child process by ``mtl_core.runner.upload_read``): every
file is validated and previewed before anything is saved, a bad file shows the reader's own
message, and a saved upload opens in Explore like any trained run. Any run can be downloaded
in the same format.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import auth, captions, charts, data, data_follow, nav, session, tables, words
from app.escape import md
from app.guard import show_error
from app.views import upload_controls as controls
from mtl_core.errors import LabError
from mtl_core.runfile import ParsedRun, run_file_bytes
from mtl_core.runfile.units import unit_factor, value_range
from mtl_core.runner.upload_read import read_upload
from mtl_core.text.units import format_value

SAVED = "upload_saved"  # session_state: file id -> run ids saved from it
FORMATS = {
    ".zip": "zip — affinity, metrics, config and metadata (and any groupings the run logged)",
    ".parquet": "Parquet — affinity table only",
    ".csv": "CSV — affinity table only",
    ".jsonl": "JSON Lines — affinity table only",
}


def render() -> None:
    st.title("Upload & download runs")
    st.markdown(
        "Bring affinity logs from your own training: **CSV/TSV** (comma, semicolon or tab), "
        "**Parquet, JSON Lines** or a **JSON** array of rows (columns "
        "`step, source, target, affinity`, optional `measure, run, wall_time`; or a square "
        "**matrix** with task names as header, optionally stacked by a `step` column), "
        "**NumPy** `.npy`/`.npz` matrices (`A[i, j]` = source i → target j; `.npz` may add "
        "`tasks` and `steps`), a **.zip** bundle with metrics and `meta.json`, or "
        "**TensorBoard** event files (tags `affinity/<source>/<target>`, "
        "`Affinity/<source>_to_<target>`, or your own tag pattern), or what experiment "
        "trackers export: W&B history, runs tables and `wandb-summary.json`, MLflow runs, "
        "Lightning's `metrics.csv`, Ray Tune's `progress.csv`/`result.json`. Send a **log "
        "folder** (MLflow, TensorBoard, a Hydra multirun, per-seed CSVs) as a `.zip`: each run "
        "inside is saved, named by its path. A matrix's rows are sources unless you say they "
        "are targets; a file that names no measure asks for one; values are fractions unless "
        "you declare percent or TAG's 1/lr sums. See `docs/run-format.md` for every layout."
    )
    _upload()
    _follow()
    st.divider()
    _download()


# ----------------------------------------------------------------------------- upload


# The cache lives in the one shared server process: a few parsed files (each at most the
# reader's cell limit, MTL_LAB_MAX_CELLS), for a few minutes, not 32 for ever.
@st.cache_data(show_spinner="Reading the file…", max_entries=8, ttl=900)
def _parse(
    file_id: str,
    name: str,
    size: int,
    rows: str | None,
    tag_pattern: str | None,
    _data: bytes,
    unit: str | None = None,
) -> ParsedRun:
    """Parse once per uploaded file and read options (the bytes are not hashed; the file id
    names them; ``rows``, ``tag_pattern`` and ``unit`` are the user's declarations, in the
    key).

    The read runs in a child process with a time and a memory cap
    (:mod:`mtl_core.runner.upload_read`), so one upload never stalls the other sessions."""
    return read_upload(_data, name, rows=rows, tag_pattern=tag_pattern, unit=unit)


def _raw_range(parsed: ParsedRun, unit: str | None) -> tuple[float, float] | None:
    """The file's value range as written in it (the declared unit's factor undone)."""
    found = value_range(parsed.affinity)
    if found is None:
        return None
    factor = unit_factor(unit)
    return found[0] / factor, found[1] / factor


def preview_frame(parsed: ParsedRun) -> pd.DataFrame:
    """One row per run in the file: tasks, logged steps, measures, value range (in each
    measure's display unit), metric rows."""
    rows = []
    for run in parsed.runs:
        a = parsed.affinity[parsed.affinity["run"] == run]
        m = parsed.metrics[parsed.metrics["run"] == run]
        steps = np.unique(a["step"].to_numpy()) if len(a) else np.unique(m["step"].to_numpy())
        tasks = parsed.run_tasks(run)
        rows.append(
            {
                "run": run or "(single run)",
                "tasks": len(tasks),
                "task names": ", ".join(tasks[:12]) + (" …" if len(tasks) > 12 else ""),
                "logged steps": int(len(steps)),
                "step range": f"{int(steps.min())}–{int(steps.max())}" if len(steps) else "–",
                "measures": ", ".join(parsed.measures(run)) or "–",
                "value range": _range_text(a),
                "metric rows": int(len(m)),
            }
        )
    return pd.DataFrame(rows)


def _range_text(aff: pd.DataFrame) -> str:
    """``from -1.7% to +4.1%`` per measure (its display unit: percent for loss changes)."""
    parts = []
    several = aff["measure"].nunique() > 1
    for m, rows in aff.groupby("measure", sort=False):
        found = value_range(rows)
        if found is not None:
            lo, hi = (format_value(v, str(m)) for v in found)
            parts.append(f"{m}: " * several + f"from {lo} to {hi}")
    return "; ".join(parts) or "–"


def _upload() -> None:
    files = st.file_uploader(
        "Run files",
        accept_multiple_files=True,
        key="upload_files",
        help="Several files at once are fine; each is checked before anything is saved.",
    )
    if not files:
        st.caption("Nothing uploaded yet. Example files are in `examples/run-format/`.")
        return
    saved: dict[str, list[int]] = st.session_state.setdefault(SAVED, {})
    good: list[tuple[object, ParsedRun]] = []
    defaults: dict[str, str] = {}  # file id -> default name, distinct within this upload
    for f in files:
        with st.container(border=True):
            st.markdown(f"**{md(f.name)}** · {words.file_size(f.size)}")
            parsed = _preview(f)
            if parsed is None:
                continue
            if f.file_id in saved:
                _saved_links(saved[f.file_id])
                continue
            default = words.upload_name(f.name, parsed.meta.get("name"), defaults.values())
            defaults[f.file_id] = default
            st.text_input("Name", default, key=f"upload_name_{f.file_id}")
            good.append((f, parsed))
    pending = [(f, p) for f, p in good if f.file_id not in saved]
    if not pending:
        return
    label = "Save this run" if len(pending) == 1 else f"Save {len(pending)} files"
    if st.button(label, type="primary", icon=":material/save:", key="upload_save"):
        for f, parsed in pending:
            name = st.session_state.get(f"upload_name_{f.file_id}") or defaults[f.file_id]
            try:
                ids = data.import_parsed(parsed, name=name)
            except LabError as exc:
                st.error(f"{md(f.name)}: {md(exc)}")
                continue
            saved[f.file_id] = ids
            session.remember(*ids)
        st.rerun()


def _preview(f) -> ParsedRun | None:
    """Read one uploaded file with the options the user declared, show its controls and
    preview; the run to save (its measure chosen), or None when it cannot be saved yet."""
    rows, pattern = controls.read_options(f.file_id)
    unit = controls.read_unit(f.file_id)
    parsed, error = None, None
    try:
        parsed = _parse(f.file_id, f.name, f.size, rows, pattern, f.getvalue(), unit)
    except LabError as exc:
        error = str(exc)
    except Exception as exc:  # a reader bug: logged, shown as a message
        show_error(exc)
        return None
    controls.orientation(f.file_id, parsed, f.name)
    controls.tag_pattern(f.file_id, f.name, error)
    if parsed is None:
        st.error(md(error), icon=":material/error:")
        return None
    controls.unit(f.file_id, _raw_range(parsed, unit), unit)
    chosen = controls.measure(f.file_id, parsed)
    tables.show_table(preview_frame(chosen or parsed), hide_index=True, width="stretch")
    shown = parsed.orientation_note()  # in its own box beside the flip toggle, above
    for text in parsed.warnings():  # what the reader left out or assumed, as the CLI says
        if text != shown:
            st.warning(md(text), icon=":material/warning:")
    return chosen


def _saved_links(ids: list[int]) -> None:
    st.success(
        f"Saved as run{'s' if len(ids) > 1 else ''} " + ", ".join(f"#{i}" for i in ids) + ".",
        icon=":material/check_circle:",
    )
    for rid in ids:
        nav.link("explore", f"Open run #{rid} in Explore", icon=":material/grid_on:", run=rid)


# ----------------------------------------------------------------------------- follow a folder

FOLLOWED = "upload_followed"  # session_state: the run id of the folder followed last


def _follow() -> None:
    """Hand a live log folder on the server to the runner (``app.data_follow``) and link to
    its run in Explore, which updates as the folder grows."""
    with st.expander("Follow a live log folder on this server", icon=":material/folder_open:"):
        why = data_follow.follow_refusal()
        if why is not None:
            st.caption(
                f"Not available here: {md(why)}. Beside the app, `task-affinity-lab watch DIR "
                "--store STORE` imports a folder as it grows into the same store."
            )
            return
        roots = ", ".join(md(r) for r in data_follow.follow_roots())
        st.caption(
            "A folder `AffinityLogger(live=DIR)` writes while a job trains (`meta.json` beside "
            f"`affinity.csv`), inside {roots}. Its steps are imported as they land; following "
            "it again continues the same run."
        )
        path = st.text_input("Folder on the server", key="follow_path", placeholder="runs/live1")
        if st.button("Follow this folder", icon=":material/visibility:", key="follow_go"):
            try:
                rid = data_follow.follow_folder(path)
            except LabError as exc:
                st.error(md(exc), icon=":material/error:")
            else:
                st.session_state[FOLLOWED] = rid
                session.remember(rid)
        rid = st.session_state.get(FOLLOWED)
        if rid is not None:
            st.success(f"Following as run #{int(rid)}.", icon=":material/check_circle:")
            nav.link(
                "explore", f"Open run #{int(rid)} in Explore (live)", icon=":material/grid_on:",
                run=int(rid),
            )  # fmt: skip


# ----------------------------------------------------------------------------- download


def _download() -> None:
    st.subheader("Download a run")
    done = st.session_state.pop("_upload_deleted", None)
    if done:
        st.success(done, icon=":material/delete:")
    runs = data.list_runs()
    if not runs:
        st.caption("No runs in the store yet.")
        return
    info = session.run_picker("Run", "download_run", runs, qp_key=None)
    if info is None:
        return
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    ext = c1.selectbox("Format", list(FORMATS), format_func=FORMATS.get, key="download_fmt")
    base = charts.safe_filename(f"run{info.id}_{info.name}")
    filename = f"{base}{ext}"
    rid = info.id

    def payload() -> bytes:
        return run_file_bytes(data.get_store().export_parsed(rid), filename)

    c2.download_button(
        "⬇ Download",
        data=payload,
        file_name=filename,
        mime="application/octet-stream",
        key="download_btn",
        on_click="ignore",
        type="primary",
        width="stretch",
    )
    if info.is_active:
        st.caption("This run is still training: the download holds the steps logged so far.")
    if ext == ".zip":
        st.caption(":material/info: " + captions.zip_contents(_would_drop(info), _groupings(info)))
    else:
        lost = _would_drop(info)
        if lost:
            st.caption(
                f":material/info: A {ext} file holds the affinity table only; this run "
                f"also has {', '.join(lost)} — choose zip to keep everything."
            )
    if not auth.may_change(info):
        st.caption("Only its owner or a teacher can rename or delete this run.")
        return
    _rename(info)
    with st.expander("Delete this run", icon=":material/delete:"):
        st.caption(
            "Removes the run and everything logged for it from the store. A running "
            "run is cancelled first."
        )
        sure = st.checkbox(
            f"Yes, delete #{info.id} {md(info.name)} for good",
            key=f"download_delete_sure_{info.id}",
        )
        if st.button(f"Delete run #{info.id}", key="download_delete", disabled=not sure):
            try:
                data.get_runner().delete(info.id)
            except LabError as exc:
                st.error(md(exc))
            else:
                st.session_state.pop("download_run", None)
                st.session_state["_upload_deleted"] = f"Deleted run #{info.id} ({md(info.name)})."
                st.rerun()


def _rename(info) -> None:
    """Rename a run (its owner, or an admin: the runner checks again)."""
    with st.expander("Rename this run", icon=":material/edit:"):
        new = st.text_input("New name", info.name, key=f"rename_{info.id}", max_chars=200)
        if st.button("Rename", key=f"rename_btn_{info.id}") and new.strip() != info.name:
            try:
                data.get_runner().rename(info.id, new.strip())
            except LabError as exc:
                st.error(md(exc))
            else:
                st.rerun()


def _groupings(info) -> int:
    """How many logged groupings this run has (sequential runs log one per grouping step)."""
    try:
        return len(data.get_store().groupings(info.id))
    except (LabError, AttributeError):
        return 0


def _would_drop(info) -> list[str]:
    """What a single-table download of this run leaves out."""
    out = []
    df = data.metrics(info)
    if df is not None and not df.empty:
        out.append("metrics")
    if info.config:
        out.append("its config")
    return out
