"""Every sentence, caption, label and hover text the app builds from numbers, in one place.

Pages and figure builders call these instead of writing their own f-strings, so one number is
said one way everywhere (a relative loss change is always a percentage, a duration always
"4 min 05 s", a grouping always ``{a, b} · {c}``). No Streamlit here; text only.

Direction: ``A[i, j]`` is the effect of a step on source task i on target task j's loss;
positive means the loss went down (the step helped).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from app.colours import run_colour
from app.regroup import GroupResult
from mtl_core.store import RunInfo
from mtl_core.text.units import format_value, is_percent, step_rate, unit_name

#: Material icons (rendered by Streamlit's own font, so they show on any machine).
STATUS_ICONS = {
    "queued": ":material/hourglass_top:",
    "running": ":material/play_circle:",
    "finished": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/stop_circle:",
    "interrupted": ":material/warning:",
}
#: The lesson's three ways of training.
APPROACH_LABELS = {"together": "all together", "groups": "in groups", "single": "each alone"}
#: Smoothing over steps as the controls and titles name it (``mtl_core.series`` definitions).
SMOOTHING_LABELS = {
    "none": "none (as logged)",
    "running": "running average",
    "window": "moving window",
    "ema": "EMA",
}


# ----------------------------------------------------------------------------- numbers


def pct(v: float) -> str:
    """The size of a relative loss change as a short percentage ("0.04%", "3.1%", "12%")."""
    p = abs(float(v)) * 100
    if p < 0.05:
        return f"{p:.2f}%"
    return f"{p:.2g}%" if p < 10 else f"{p:.0f}%"


def format_seconds(s: float | None) -> str:
    """A duration: ``45 s``, ``4 min 05 s``, ``2 h 03 min``; ``–`` when unknown.

    Rounded once, to the unit shown last, before splitting: 239.7 s is ``4 min 00 s`` (never
    ``3 min 60 s``), 59.6 s is ``1 min 00 s``, 3599.7 s is ``1 h 00 min``.
    """
    if s is None or not np.isfinite(s):
        return "–"
    secs = int(round(max(0.0, float(s))))
    if secs < 60:
        return f"{secs} s"
    if secs < 3600:
        return f"{secs // 60} min {secs % 60:02d} s"
    mins = int(round(secs / 60))
    return f"{mins // 60} h {mins % 60:02d} min"


#: Steps before an ETA is shown (the first include start-up: "4 h 36 min" for a 2-min run).
ETA_MIN_STEPS = 5


def eta_text(steps_done: int | None, steps_per_s: float | None, eta_s: float | None) -> str:
    """``estimating…`` until a rate over ``ETA_MIN_STEPS`` steps, then ``eta_s`` formatted."""
    if (
        not steps_per_s
        or steps_per_s <= 0
        or eta_s is None
        or not np.isfinite(eta_s)
        or (steps_done or 0) < ETA_MIN_STEPS
    ):
        return "estimating…"
    return format_seconds(eta_s)


def ago(t: float | None) -> str:
    """How long ago a Unix time was (``4 min 05 s ago``); ``–`` when unknown."""
    if not t:
        return "–"
    return format_seconds(time.time() - t) + " ago"


def file_size(n: int) -> str:
    """Bytes as ``512 bytes``, ``3.2 KB``, ``1.4 MB``, in decimal units (1 KB = 1,000 bytes)
    as Streamlit's file uploader shows the same file just above (its chip read "2.6KB" where
    binary units gave "2.5 KB")."""
    if n < 1000:
        return f"{n} bytes"
    if n < 1000**2:
        return f"{n / 1000:.1f} KB"
    return f"{n / 1000**2:.1f} MB"


# ----------------------------------------------------------------------------- affinity cells


def describe_cell(source: str, target: str, value: float, measure: str = "lookahead") -> str:
    """One affinity cell in words, e.g. "A step on task a lowers task b's loss by 3.1%"."""
    if not np.isfinite(value):
        return f"{source} → {target}: nothing logged (not zero)"
    if is_percent(measure):
        whose = "its own" if source == target else f"task {target}'s"
        verb = "lowers" if value >= 0 else "raises"
        return f"A step on task {source} {verb} {whose} loss by {pct(value)}"
    if measure == "cosine":
        how = "with" if value >= 0 else "against"
        return f"Task {source}'s gradient points {how} task {target}'s (cosine {value:+.2f})"
    return f"Affinity of task {source} onto task {target}: {value:+.3g} ({measure})"


def cell_sentences(
    A: np.ndarray, names: Sequence[str], measure: str, hide_diagonal: bool = False
) -> np.ndarray:
    """:func:`describe_cell` for every cell of ``A`` ``(n, n)`` (rows = sources, in the order
    of ``names``), saying so on a hidden diagonal: an ``(n, n)`` object array."""
    out = np.empty(A.shape, dtype=object)
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            out[i, j] = describe_cell(s, t, float(A[i, j]), measure)
            if hide_diagonal and i == j and len(names) > 1:
                out[i, j] += f" ({DIAGONAL_NOTE})"
    return out


#: What a grey diagonal cell means (hover, legend and caption say the same).
DIAGONAL_NOTE = "the diagonal, a task on itself: grey, left off the colour scale"


def cell_template(measure: str) -> str:
    """A plotly hover template saying one heatmap cell in words (reads ``x``, ``y``, ``z``):
    one template serves every frame of an animation."""
    value = "%{z:+.2%} (+ means it went down)" if is_percent(measure) else "%{z:+.3f}"
    return f"a step on task %{{y}} → task %{{x}}'s loss: {value}<extra></extra>"


def describe_difference(
    source: str,
    target: str,
    a: float,
    b: float,
    label_a: str,
    label_b: str,
    measure: str = "lookahead",
) -> str:
    """One cell of a difference heatmap: both runs' values and ``b - a`` (in ``measure``'s
    display unit)."""
    return (
        f"{source} → {target}: {label_b} {format_value(b, measure)} vs {label_a} "
        f"{format_value(a, measure)} (difference {format_value(b - a, measure)})"
    )


def timeline_cell(step: int, task: str, groups: Sequence[Iterable[str]]) -> str:
    """Hover text of one cell of the group timeline: the group(s) holding ``task`` at
    ``step`` (two or more: overlapping TAG groups; none: not grouped)."""
    if not groups:
        return f"step {step}: {task} in no group"
    held = " and ".join(format_grouping([g]) for g in groups)
    return f"step {step}: {task} in {held}"


def pair_title(source: str, target: str) -> str:
    return f"A step on {source}: effect on {target}'s loss"


def loss_template(label: str, task: str) -> str:
    """Hover template of one loss curve (plotly fills in ``x`` = step, ``y`` = loss)."""
    return f"{label} · {task}<br>step %{{x}}<br>loss %{{y:.4g}}<extra></extra>"


def approach_template(key: str) -> str:
    """Hover template of one lesson bar (``x`` = task, ``y`` = held-out loss)."""
    return f"{APPROACH_LABELS[key]}<br>task %{{x}}: held-out loss %{{y:.4g}}<extra></extra>"


def heatmap_title(matrix_mode: str, first_step: int, step: int, how: str) -> str:
    """The Explore heatmap's title: what the shown matrix is."""
    if matrix_mode == "average":
        return f"Averaged over steps {first_step}–{step}"
    return f"Step {step}" + (f" ({SMOOTHING_LABELS[how]})" if how != "none" else "")


def smoothing_phrase(how: str, window: int, beta: float) -> str:
    """The smoothing in a sentence: ``moving window of 20``, ``EMA (beta 0.9)``."""
    return {"window": f"moving window of {window}", "ema": f"EMA (beta {beta})"}.get(
        how, "running average"
    )


# ----------------------------------------------------------------------------- groupings


def format_grouping(grouping: Iterable[Iterable[str]]) -> str:
    """``{a, b} · {c}``: how groups are written in text and tables."""
    return " · ".join("{" + ", ".join(sorted(g)) + "}" for g in grouping)


def group_mean(value: float | None, measure: str = "lookahead") -> str:
    """The mean affinity inside a group, as its table shows it, in the measure's unit
    (``+0.92%``; ``– (alone)`` for one task)."""
    return "– (alone)" if value is None else format_value(value, measure)


def groups_caption(result: GroupResult, method: str, measure: str = "lookahead") -> str:
    """Under the groups table: the grouping's TAG value (in the measure's unit), what is
    proven about it, and time."""
    extra = ""
    if method == "tag" and result.optimal:
        extra = " · proven optimal"
    elif method == "tag" and result.optimal is False:
        extra = f" · {tag_note(result.gap, result.relative_gap, result.upper, measure)}"
    return (
        f"TAG value of this grouping: {format_value(result.score, measure)} "
        f"({unit_name(measure)}; mean over tasks of the best "
        f"in-group affinity onto the task){extra} · grouped in "
        + (
            f"{result.seconds * 1000:.0f} ms"
            if result.seconds < 1
            else format_seconds(result.seconds)
        )
    )


def tag_note(
    gap: float | None,
    relative_gap: float | None = None,
    upper: float | None = None,
    measure: str = "lookahead",
) -> str:
    """A TAG answer that is not proven optimal: how much better the best grouping could be
    (absolute numbers in the measure's unit)."""
    if gap is None:
        return "best grouping found; its distance from the best possible is unknown"
    how_much = format_value(gap, measure, signed=False, digits=2)
    if relative_gap is not None and np.isfinite(relative_gap):
        how_much = f"{relative_gap:.0%}" if relative_gap >= 0.01 else f"{relative_gap:.1%}"
    bound = (
        f" (no grouping scores above {format_value(upper, measure, signed=False, digits=4)})"
        if upper is not None
        else ""
    )
    return f"best grouping found; the best possible is at most {how_much} better{bound}"


def tag_searching(k: int, n_tasks: int) -> str:
    return (
        f"TAG is searching for the best {k} groups of {n_tasks} tasks in the background "
        "(seconds; the page stays usable)…"
    )


def tag_stage(stage: str) -> str:
    """The progress bar's label for a stage of the TAG search."""
    return {
        "queued": "waiting for the search before it to finish",
        "local search": "looking for good groupings (local search)",
        "bound": "proving how good they are (upper bound)",
    }.get(stage, stage)


def tag_slow(n_tasks: int) -> str:
    return (
        f":material/timer: TAG on {n_tasks} tasks takes seconds: it searches in the "
        "background, and says whether the answer is proven optimal or how far from the "
        "best possible it may be."
    )


#: The button under a grouping that failed (affinity propagation did not converge).
NEXT_METHOD_BUTTON = "Group by hierarchical clustering instead"


def grouper_warning(message: str) -> str:
    """What a grouping method could not do, as the page shows it (capitalised)."""
    return message[:1].upper() + message[1:] + "."


def timeline_caption(
    how: str, window: int, beta: float, change_steps: Sequence[int], grouped: int, logged: int
) -> str:
    """Under the group timeline: the smoothing, the change points, and any downsampling
    (``grouped`` of ``logged`` steps were grouped)."""
    n = len(change_steps)
    shown = ", ".join(map(str, change_steps[:12])) + (" …" if n > 12 else "")
    note = f" grouped at {grouped} evenly spaced steps." if grouped < logged else ""
    return (
        f"Grouped on the {smoothing_phrase(how, window, beta)} of the matrices; a group has "
        "the same colour here, on the heatmap and in the groups table; the solid line is "
        "the step shown above; a task in two overlapping groups carries a second-colour "
        "dot. "
        + (
            f"The grouping changes {n} time(s), at steps {shown} (dotted lines)."
            if n
            else "The grouping never changes."
        )
        + note
    )


# ----------------------------------------------------------------------------- runs


def run_label(info: RunInfo) -> str:
    """Stable display name: ``#id name`` (the id keeps equal names apart)."""
    return f"#{info.id} {info.name or 'run'}"


def colour_dot(run_id: int, colour: str | None = None) -> str:
    """A dot in the run's colour, as HTML for markdown (run colours are the same everywhere)."""
    return f"<span style='color:{colour or run_colour(run_id)}'>●</span>"


def queue_place(ahead: int | None) -> str:
    """Where a queued run stands (``ahead``: queued runs before it, None = unknown); runs start
    oldest first as workers free up."""
    if ahead is None:
        return "waiting for a free worker"
    if ahead == 0:
        return "starts when a worker is free"
    return f"{ahead} queued run{'s' if ahead > 1 else ''} ahead"


def status_text(info: RunInfo, queue_ahead: int | None = None) -> str:
    """``▶️ running 120/300 · 45 step/s · ETA 4 s`` (what a person wants to know);
    ``queue_ahead`` (``data.queue_ahead``) places a queued run in the queue."""
    parts = [f"{STATUS_ICONS.get(info.status, '')} {info.status}"]
    if info.steps_total:
        parts.append(f"{info.steps_done}/{info.steps_total} steps")
    elif info.steps_done:
        parts.append(f"{info.steps_done} step{'s' if info.steps_done != 1 else ''}")
    if info.status == "queued":
        parts.append(queue_place(queue_ahead))
    if info.status == "running":
        if info.steps_per_s:
            parts.append(step_rate(info.steps_per_s))
        parts.append(f"ETA {eta_text(info.steps_done, info.steps_per_s, info.eta_s)}")
    return " · ".join(parts)


def missing_run(run_id: int, status: str | None) -> str:
    """A link asked for a run that cannot be shown (``status`` None: not in this store)."""
    why = (
        f"run #{run_id} logged no affinity to explore ({status}, e.g. a grouped or single-task run)"
        if status is not None
        else f"there is no run #{run_id} (deleted, or from another store)"
    )
    return (
        f"The link asked for a run that cannot be shown here: {why}. Showing another run instead."
    )


def table_features(note: dict) -> str:
    """Markdown: the features a table run used and the columns it left out (the worker's
    ``table`` note), every column name escaped."""
    from app.escape import md
    from mtl_core.text.labels import column_label

    feats = [str(f) for f in note.get("features") or []]
    text = f"Features ({len(feats)}): " + ", ".join(md(column_label(f)) for f in feats)
    left = note.get("left_out") or {}
    if left:
        text += f" · left out ({len(left)}): " + "; ".join(
            f"{md(column_label(c))}: {md(why)}" for c, why in left.items()
        )
    return text


def upload_name(file_name: str, meta_name: object, taken: Iterable[str] = ()) -> str:
    """The default name of an uploaded run: the name its file declares, else the file name
    without a known extension (``a.csv`` -> ``a``; a TensorBoard file keeps its whole name:
    ``events.out.tfevents.1796067895.vm.11421.0`` and ``...11421.2`` from one folder must
    not both become ``events.out.tfevents.1796067895.vm.11421``); `` (2)``, `` (3)`` ... added
    while it equals a name in ``taken`` (the other files of the same upload)."""
    from mtl_core.runfile.schema import run_name

    base = str(meta_name).strip() if meta_name not in (None, "") else ""
    if not base:
        base = run_name(file_name)
    taken = set(taken)
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base} ({k})"
    return name
