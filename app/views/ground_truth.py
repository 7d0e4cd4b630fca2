"""Ground-truth tables: upload measured results of networks trained on task subsets (HOA's,
MTG-Net's, the long form, or the lab's own ``evaluate --exhaustive`` report), choose networks
exactly, and score every estimator against them - the ``select`` command on a page.

Files go through the same readers as ``select`` (``mtl_core.groundtruth``), with their limits
and one-line messages; every name is escaped where it is shown (``app.escape.md``, the
figures' escaping, ``app.tables.show_table``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import streamlit as st

from app import charts, data, tables
from app.escape import md
from app.figures import ground_truth as figs
from app.guard import show_error
from mtl_core.errors import LabError

LAYOUTS = {
    "hoa": "HOA (tab-separated, line 1 = half-size singles)",
    "mtg": "MTG-Net (0/1 masks + values)",
    "long": "Long form (subset,task,value)",
    "report": "Lab evaluate --exhaustive report (.json)",
}
#: How many k or budget values one page may ask for (each is a few exact solves).
MAX_LIMITS = 12
#: Seconds per MILP on the page (the CLI's default is 120): a solve it stops says "not proven".
TIME_LIMIT = 20.0
DRAWS = 50


def render() -> None:
    st.title("Ground-truth tables")
    st.markdown(
        "Upload **measured** results of networks trained on task subsets (each task's loss or "
        "gain in each network) and see which networks are best, exactly, and how every "
        "estimator does on them: HOA's pair-based approximation, TAG from a run's affinity, "
        "your own estimate, random and worst selections. Layouts: `docs/run-format.md`; rules "
        "and agreement: `docs/ground-truth.md`."
    )
    layout = st.radio(
        "Layout", list(LAYOUTS), format_func=LAYOUTS.get, key="gtt_layout", horizontal=True
    )
    files = _files(layout)
    opts = _options(layout)
    if files.get("sel") is None:
        st.caption(
            "Nothing uploaded yet. Example tables come with the project's source (a clone of "
            "its repository, not the installed package), in `tests/data/groundtruth/`."
        )
        return

    def compute():
        return compute_scores(
            layout,
            *(_blob(files.get(k)) for k in ("sel", "test", "masks", "est")),
            opts["tasks"],
            opts["direction"],
            opts["rule"],
            tuple(parse_limits(opts["values"], opts["rule"])),
            run_affinity(opts["run"]),
        )

    show_computed(compute)


def show_computed(compute: Callable[[], tuple[dict, list[dict]]], prefix: str = "gtt") -> None:
    """Draw what ``compute()`` returns (a ``select`` document and its prediction cells, see
    :func:`compute_scores`) with :func:`show_scores`; a LabError (the user's input) is shown
    as its one escaped line, any other error through :func:`app.guard.show_error` (logged, a
    short message). The Ground-truth tables page and Explore's ground-truth tab both use it."""
    try:
        doc, cells = compute()
    except LabError as exc:
        st.error(md(exc), icon=":material/error:")
        return
    except Exception as exc:  # a bug: logged, shown as a short message
        show_error(exc)
        return
    show_scores(doc, cells, prefix=prefix)


def _files(layout: str) -> dict:
    c1, c2 = st.columns(2)
    out = {}
    if layout == "report":
        out["sel"] = c1.file_uploader("Evaluate report (.json)", type=["json"], key="gtt_sel")
        out["est"] = c2.file_uploader("Estimate (optional, long form)", key="gtt_est")
        return out
    if layout == "mtg":
        out["masks"] = c1.file_uploader("Masks (0/1, one row per subset)", key="gtt_masks")
    out["sel"] = c1.file_uploader("Selection table (values)", key="gtt_sel")
    out["test"] = c2.file_uploader(
        "Scoring table (optional; default: the selection table)", key="gtt_test"
    )
    out["est"] = c2.file_uploader("Estimate (optional, same layout)", key="gtt_est")
    return out


def _options(layout: str) -> dict:
    c1, c2, c3 = st.columns([2, 1, 1])
    tasks = None
    if layout in ("hoa", "mtg"):
        tasks = (
            c1.text_input(
                "Task names (comma-separated; default t0, t1, … or the masks' header)",
                key="gtt_tasks",
            ).strip()
            or None
        )
    direction = c2.selectbox(
        "Better is",
        ["layout default", "lower", "higher"],
        key="gtt_direction",
        help="HOA and evaluate reports: lower (losses); MTG-Net: higher (gains); the long "
        "form must say",
    )
    rule = c3.radio(
        "Rule",
        ["k", "budget"],
        format_func={"k": "at most k networks", "budget": "budget B (HOA)"}.get,
        key="gtt_rule",
    )
    values = st.text_input(
        "k values" if rule == "k" else "budgets",
        "1, 2, 3" if rule == "k" else "1, 1.5, 2, 3",
        key=f"gtt_values_{rule}",
    )
    runs = [r for r in data.list_runs() if r.measures]
    labels = {0: "none" if layout != "report" else "the report's own co-training affinity"}
    labels.update({r.id: f"#{r.id} {r.name}" for r in runs})
    run = st.selectbox(
        "TAG from the affinity of run",
        list(labels),
        format_func=lambda i: labels[i],
        key="gtt_run",
        help="tasks are matched to the table's by name",
    )
    return {
        "tasks": tasks,
        "direction": None if direction == "layout default" else direction,
        "rule": rule,
        "values": values,
        "run": run or None,
    }


def parse_limits(text: str, rule: str) -> list[float]:
    """``"1, 2, 3"`` -> the k values (integers >= 1) or budgets (> 0), at most
    :data:`MAX_LIMITS`, duplicates dropped, in the order given. LabError (one line) otherwise."""
    what = "k" if rule == "k" else "budget"
    out: list[float] = []
    for part in [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]:
        try:
            v = float(part)
        except ValueError:
            raise LabError(f"{what} values: {part[:20]!r} is not a number") from None
        if rule == "k" and (v != int(v) or v < 1):
            raise LabError(f"k values must be whole numbers >= 1, got {part[:20]!r}")
        if rule != "k" and not (v > 0 and math.isfinite(v)):
            raise LabError(f"budgets must be > 0, got {part[:20]!r}")
        v = int(v) if rule == "k" else v
        if v not in out:
            out.append(v)
    if not out:
        raise LabError(f"give at least one {what} value")
    if len(out) > MAX_LIMITS:
        raise LabError(f"at most {MAX_LIMITS} {what} values at once, got {len(out)}")
    return out


def _blob(f):
    return None if f is None else (f.name, f.getvalue())


def run_affinity(run_id: int | None):
    """``(tasks, A)`` of a store run the session may see, its matrices averaged over steps
    (lookahead when it has it), as tuples (hashable, for the cache); None for no run.
    LabError for a run with no matrices logged yet."""
    if run_id is None:
        return None
    from mtl_core.runfile.long import step_mean

    info = data.get_run(run_id)
    measure = "lookahead" if "lookahead" in info.measures else info.measures[0]
    steps, tasks, mats = data.affinity(info, measure)
    if len(steps) == 0:
        raise LabError(f"run #{run_id} has no affinity matrices logged yet")
    A = step_mean(mats)
    return tuple(tasks), tuple(map(tuple, A.tolist()))


# The cache lives in the shared server process: a few results (JSON-ready, each a table
# within the upload limits), for a few minutes; the work itself runs in a capped child.
@st.cache_data(show_spinner="Choosing networks exactly…", max_entries=8, ttl=900)
def compute_scores(layout, sel, test, masks, est, tasks, direction, rule, limits, affinity):
    """The ``select`` document and the prediction cells for one set of uploads and options
    (files as ``(name, bytes)``), computed in a capped child process
    (:func:`mtl_core.runner.select_job.run_select_capped`, which runs
    :func:`mtl_core.groundtruth.compare.compare`, the ``select`` command's function).
    Also Explore's ground-truth tab's, on an evaluation's report. LabError: one line."""
    from mtl_core.runner.select_job import run_select_capped

    files = {"sel": sel, "test": test, "masks": masks, "est": est}
    out = run_select_capped(
        layout,
        files,
        tasks=tasks,
        direction=direction,
        rule=rule,
        limits=list(limits),
        affinity=None if affinity is None else (list(affinity[0]), [list(r) for r in affinity[1]]),
        draws=DRAWS,
        time_limit=TIME_LIMIT,
    )
    return out["doc"], out["cells"]


def show_scores(doc: dict, cells: list[dict], prefix: str = "gtt") -> None:
    """Draw a ``select`` document: score against k or budget per estimator, the chosen
    networks (selection value, score, regret, proof), the agreement table and the
    predicted-against-measured scatter. ``prefix``: the widget keys' prefix (one per place
    that shows it)."""
    key = figs.limit_key(doc)
    better = "lower" if doc["direction"] == "lower" else "higher"
    st.caption(
        md(
            f"{len(doc['tasks'])} tasks: {', '.join(doc['tasks'])} ({better} is better)",
            max_len=600,
        )
    )
    charts.chart(
        figs.score_lines(doc, "Score of each estimator's networks"),
        key=f"{prefix}_lines",
        name="ground_truth_scores",
    )
    unproven = [r[key] for r in doc["rows"] if not r.get("optimal", {}).get("proven", True)]
    if unproven:
        st.warning(
            f"Not proven optimal within {TIME_LIMIT:.0f} s at {key} = "
            + ", ".join(f"{v:g}" for v in unproven)
            + " (the CLI's `select --time-limit` can run longer).",
            icon=":material/warning:",
        )
    st.subheader("Chosen networks")
    tables.show_table(networks_frame(doc), hide_index=True, width="stretch")
    st.subheader("Predicted against measured")
    if not doc["agreement"]:
        st.info(
            "No estimator predicts cells of this table: HOA needs networks of 3+ tasks and "
            "their pairs; pick a run for TAG or upload an estimate."
        )
        return
    tables.show_table(agreement_frame(doc), hide_index=True, width="stretch")
    names = list(doc["agreement"])
    pick = st.radio(
        "Estimator",
        names,
        format_func=lambda n: figs.ESTIMATOR_LABELS.get(n, n),
        horizontal=True,
        key=f"{prefix}_scatter",
    )
    a = doc["agreement"][pick]
    charts.chart(
        figs.prediction_scatter(
            cells,
            pick,
            doc["direction"],
            f"{figs.ESTIMATOR_LABELS[pick]}: Spearman {_fmt(a['spearman'])}, "
            f"Kendall {_fmt(a['kendall'])} over {a['cells']} cells",
        ),
        key=f"{prefix}_scatter_fig",
        name="ground_truth_scatter",
    )
    st.caption(
        "Cells of networks of 2+ tasks where both exist. TAG's affinity is higher-is-better, "
        "so it is ranked against the measured values turned higher-is-better: for every "
        "estimator a positive correlation means agreement."
    )


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def networks_frame(doc: dict) -> pd.DataFrame:
    """One row per (k or budget, estimator): its networks, selection value, measured score,
    regret against the optimum (positive = worse) and whether the solve was proven."""
    key = figs.limit_key(doc)
    sign = -1.0 if doc["direction"] == "lower" else 1.0
    rows = []
    for row in doc["rows"]:
        best = row.get("optimal", {}).get("score")
        for name, label in figs.ESTIMATOR_LABELS.items():
            s = row.get(name)
            if s is None:
                continue
            if name == "random":
                score, nets, sel, proven = (
                    s["mean"],
                    f"{s['draws']} draws, sd {s['sd']:.4g}",
                    None,
                    None,
                )
            else:
                score, sel, proven = s["score"], s["selection"], s["proven"]
                nets = " | ".join(" + ".join(n) for n in s["networks"])
            rows.append(
                {
                    key: row[key],
                    "estimator": label,
                    "networks": nets,
                    "selection": sel,
                    "score": score,
                    "regret": None if best is None else sign * (best - score),
                    "proven": proven,
                }
            )
    return pd.DataFrame(rows)


def agreement_frame(doc: dict) -> pd.DataFrame:
    """Spearman, Kendall and the cell count of each estimator with predictions."""
    return pd.DataFrame(
        [
            {
                "estimator": figs.ESTIMATOR_LABELS.get(n, n),
                "Spearman": a["spearman"],
                "Kendall": a["kendall"],
                "cells": a["cells"],
            }
            for n, a in doc["agreement"].items()
        ]
    )
