"""What this browser session remembers: the URL's query parameters, ``st.session_state``, and
widgets that keep their value across pages and reloads.

``st.session_state`` holds only ids and selections (which runs this session started, widget
values); the data itself is always read from the store (``app.data``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import streamlit as st

from app import auth, words
from mtl_core.store import RunInfo

MY_RUNS = "my_runs"  # session_state key: ids of the runs this browser session started


# ----------------------------------------------------------------------------- this session's runs


def my_runs() -> list[int]:
    """Ids of the runs this browser session started or uploaded (most recent last)."""
    return list(st.session_state.get(MY_RUNS, []))


def remember(*run_ids: int) -> None:
    """Mark runs as this session's own, so they are listed first."""
    mine = list(st.session_state.get(MY_RUNS, []))
    for rid in run_ids:
        if int(rid) not in mine:
            mine.append(int(rid))
    st.session_state[MY_RUNS] = mine


def mine(runs: Iterable[RunInfo]) -> set[int]:
    """Ids of ``runs`` that are this session's: owned by its user (or browser), or started
    here before the owner column existed."""
    actor = auth.current_actor()
    return set(my_runs()) | {r.id for r in runs if r.owner is not None and r.owner == actor.id}


def ordered_runs(runs: Iterable[RunInfo], mine_only: bool = False) -> list[RunInfo]:
    """This session's runs first (newest first), then everyone else's (newest first)."""
    runs = list(runs)
    ids = mine(runs)
    own = sorted((r for r in runs if r.id in ids), key=lambda r: -r.id)
    if mine_only:
        return own
    rest = sorted((r for r in runs if r.id not in ids), key=lambda r: -r.id)
    return own + rest


# ----------------------------------------------------------------------------- URL sync


def qp_get(key: str, kind: type = str, default: Any = None) -> Any:
    """A typed query parameter (``default`` when absent or unparsable)."""
    raw = st.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        if kind is bool:
            return raw.lower() in ("1", "true", "yes")
        value = kind(raw)
    except (TypeError, ValueError):
        return default
    if kind is float and not np.isfinite(value):  # ?tau=nan or inf: not a usable value
        return default
    return value


def qp_get_ints(key: str) -> list[int]:
    """A comma-separated list of ints (e.g. ``runs=3,5``); bad items are skipped."""
    raw = st.query_params.get(key) or ""
    out = []
    for part in str(raw).split(","):
        try:
            out.append(int(part))
        except ValueError:
            continue
    return out


def qp_set(**values: Any) -> None:
    """Write values to the URL (None removes a key); only touches keys that changed.

    Only for what a bound widget cannot say (``bind="query-params"`` serves plain widgets:
    Streamlit refuses a write to a bound key): a unit conversion (``tau`` in percent), short
    names for labelled options, a run list with its missing-run warning."""
    for key, value in values.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
            continue
        if isinstance(value, (list, tuple)):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


# ----------------------------------------------------------------------------- remembered widgets


def run_picker(
    label: str,
    key: str,
    runs: Sequence[RunInfo],
    *,
    qp_key: str | None = "run",
    need_measure: bool = False,
    help: str | None = None,
) -> RunInfo | None:
    """Pick one run: this session's runs first, then everyone's. Seeds from the URL (``run``),
    then from this session's last pick; writes the pick back to the URL."""
    ordered = ordered_runs(runs)
    if need_measure:
        ordered = [r for r in ordered if r.measures] or ordered
    if not ordered:
        return None
    ids = [r.id for r in ordered]
    by_id = {r.id: r for r in ordered}
    keep = f"_keep_{key}"
    if key not in st.session_state or st.session_state[key] not in by_id:
        want = qp_get(qp_key, int) if qp_key else None
        if want is not None and want not in by_id:
            known = {r.id: r.status for r in runs}
            st.warning(words.missing_run(want, known.get(want)), icon=":material/link_off:")
            want = None
        if want not in by_id:
            want = st.session_state.get(keep)
        if want not in by_id:
            want = ids[0]
        st.session_state[key] = want
    own = mine(ordered)

    def fmt(rid: int) -> str:
        r = by_id[rid]
        yours = "· yours" if rid in own else ""
        return f"{words.run_label(r)} — {r.status} {yours}".strip()

    rid = st.selectbox(label, ids, format_func=fmt, key=key, help=help)
    st.session_state[keep] = rid
    if qp_key:
        qp_set(**{qp_key: rid})
    return by_id[rid]


def keep_value(
    key: str,
    default: Any,
    qp_key: str | None = None,
    kind: type = str,
    valid: Callable[[Any], bool] | None = None,
) -> None:
    """Seed widget ``key`` from the URL, else this session's last value, else ``default``.

    Widget state disappears when a page is left; a plain ``_keep_`` copy carries it across.
    """
    if key in st.session_state:
        return
    value = qp_get(qp_key, kind) if qp_key else None
    if value is None or (valid and not valid(value)):
        value = st.session_state.get(f"_keep_{key}")
    if value is None or (valid and not valid(value)):
        value = default
    st.session_state[key] = value


def seed_bound(key: str, default: Any, valid: Callable[[Any], bool] | None = None) -> None:
    """Before a widget bound to the URL (``bind="query-params"``, its ``key`` is the URL's
    name; Streamlit reads the link, drops a value that is not an option and clamps one out of
    range): a value kept from an earlier run that ``valid`` refuses now (another run's task or
    measure) goes back to ``default``; with no value yet and none in the URL, this session's
    last value (:func:`remember_value`, e.g. from before a visit to another page) comes back.
    """
    if key in st.session_state:
        if valid is not None and not valid(st.session_state[key]):
            st.session_state[key] = default
        return
    if key in st.query_params:
        return  # the link wins (Streamlit seeds the widget from it)
    kept = st.session_state.get(f"_keep_{key}")
    if kept is not None and kept != default and (valid is None or valid(kept)):
        st.session_state[key] = kept


def remember_value(key: str) -> None:
    """Keep widget ``key``'s value for :func:`keep_value` when the page is next opened."""
    if key in st.session_state:
        st.session_state[f"_keep_{key}"] = st.session_state[key]
