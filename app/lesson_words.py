"""The lesson's sentences: verdicts with their intervals, the heatmap caption while the
together run trains, the groups note, and the sequential presets' labels. Built from the
numbers the Learn page draws (``mtl_core.lesson.report``); no Streamlit here; text only.

Direction: ``A[i, j]`` is the effect of a step on source task i on target task j's loss;
positive means the loss went down (the step helped).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from app.escape import md
from app.words import APPROACH_LABELS, format_grouping, format_seconds, pct, queue_place
from mtl_core.lesson.report import NEGATIVE, POSITIVE, Interval, block_means
from mtl_core.lesson.report import verdict as lesson_verdict

SEQUENTIAL_PRESET_LABELS = {
    "paper": "paper (official code's settings)",
    "fast": "fast (short runs)",
}
SEQUENTIAL_PRESET_HELP = (
    "Proximal affinity in sequential mode. paper: EMA rate 0.001 from zero, 100 warm-up steps, "
    "a group's loss change divided by its size (Jeong & Yoon 2025, official code). fast: EMA "
    "weight 0.9 from the first matrix, 10 warm-up steps, no normalisation (for a few hundred "
    "steps)."
)
#: The conflict slider's help: what the knob means (the lesson scenario's ``rotation`` type).
LESSON_CONFLICT_HELP = (
    "The angle between the two clusters' directions, as a fraction of 60 degrees. 0: both "
    "clusters are the same task, sharing helps. 1: they are 60 degrees apart (their targets "
    "correlate about 0.4), and the network's one-unit bottleneck cannot hold both, so sharing "
    "it hurts. In between the conflict grows steadily: turn the knob down and the red turns "
    "blue; near the crossing the paired difference covers 0 and the verdict says so."
)
LESSON_INTRO = (
    "Six tasks, in two clusters of three. Tasks inside a cluster are alike; the **conflict** "
    "knob sets how much the two clusters pull against each other. Press **Train** and the lab "
    "trains them three ways — **all together** in one network, **in groups** (the groups TAG "
    "picks from the all-together run's affinity) and **each task alone** — 16 replicas of "
    "each, so every loss comes with its 95% interval. As it goes it shows how a training step "
    "on one task changes every other task's loss."
)


def lesson_heatmap_caption(step: int, steps_total: int | None, zmax: float, settling: bool) -> str:
    """The lesson heatmap's caption: progress, the fixed colour scale, the reading
    direction, and a "still settling" mark while the average rests on few steps."""
    mark = " · **still settling**: early averages rest on a few steps" if settling else ""
    return (
        f"Affinity so far: step {step} of {steps_total}{mark} · colour scale fixed at "
        f"±{pct(zmax)} for the whole lesson · row = the task that takes a step, "
        "column = the task whose loss moves."
    )


def lesson_groups_note(
    grouping: Iterable[Iterable[str]], planted: Iterable[Iterable[str]], source: str
) -> str:
    """Which groups the grouped run trains, where they came from, and whether they are the
    planted clusters."""
    same = {frozenset(g) for g in grouping} == {frozenset(g) for g in planted}
    where = f" ({source})" if source else ""
    agree = (
        "— the planted clusters."
        if same
        else f"— not the planted clusters ({md(format_grouping(planted))})."
    )
    return f"**Grouped run trains** {md(format_grouping(grouping))}{where} {agree}"


def relative(a: float, b: float) -> str:
    """How ``a`` compares with ``b``, relative to ``b``: ``"75% higher"``, ``"27% lower"``.

    The one way the app turns two numbers into a ratio in prose (``(a - b) / |b|``), so the
    percentage always matches the two numbers shown next to it.
    """
    r = (float(a) - float(b)) / max(abs(float(b)), 1e-12)
    return f"{pct(r)} {'higher' if r > 0 else 'lower'}"


def _places(iv: Interval) -> int | None:
    """Decimal places that show an interval's ends apart: down to the first significant
    digit of its half-width (``0.0022`` -> 3: ``0.271 (0.269 to 0.273)``, never
    ``0.27 to 0.27``), at most 6; None when it has no finite width (fall back to ``.3g``)."""
    half = (float(iv.high) - float(iv.low)) / 2
    if not np.isfinite(half) or half <= 0:
        return None
    return int(min(6, max(0, -np.floor(np.log10(half)))))


def loss_interval(iv: Interval) -> str:
    """``0.127 (95% interval 0.125–0.130)``, all three to the same decimal places
    (:func:`_places`); the mean alone when there is no interval."""
    if not np.isfinite(iv.low):
        return f"{iv.mean:.3g}"
    d = _places(iv)
    if d is None:
        return f"{iv.mean:.3g} (95% interval {iv.low:.3g}–{iv.high:.3g})"
    return f"{iv.mean:.{d}f} (95% interval {iv.low:.{d}f}–{iv.high:.{d}f})"


def explain_lesson(
    A: np.ndarray | None,
    tasks: Sequence[str],
    clusters: Sequence[Iterable[str]] | None,
    loss: Mapping[str, Interval],
    finished: bool,
    *,
    diff: Mapping[str, Interval],
) -> list[str]:
    """A few plain sentences about what the lesson shows, written from the numbers.

    ``A`` ``(n, n)`` (rows = source) is the all-together run's lookahead affinity averaged
    so far; ``clusters`` the planted clusters; ``loss`` maps ``together`` / ``groups`` /
    ``single`` to the mean held-out loss with its 95% interval over the replicas (missing
    while a run has not evaluated yet); ``diff`` maps ``groups`` / ``single`` to the paired
    difference together minus that approach over the replicas
    (:func:`mtl_core.lesson.report.differences`). The verdict is
    :func:`mtl_core.lesson.report.verdict` of ``diff``: only a difference interval clear of 0
    counts.
    """
    out = _transfer_sentences(A, tasks, clusters)
    if "together" in loss and ("groups" in loss or "single" in loss):
        out.append(_loss_sentence(loss, diff, finished))
    return out


def _transfer_sentences(
    A: np.ndarray | None, tasks: Sequence[str], clusters: Sequence[Iterable[str]] | None
) -> list[str]:
    """What the affinity says inside and across the planted clusters."""
    if A is None or not np.isfinite(A).any() or not clusters or len(clusters) < 2:
        return []
    within, cross = block_means(A, tasks, clusters)
    out = []
    if np.isfinite(within):
        verb = "lowers" if within >= 0 else "raises"
        out.append(
            f"Inside a planted cluster a training step on one task {verb} the others' "
            f"loss by {pct(within)} on average"
            + (": they help each other." if within >= 0 else ": even they get in each other's way.")
        )
    if np.isfinite(cross) and cross < 0:
        out.append(
            f"Across the clusters it is the opposite: a step on a task in one cluster "
            f"raises the loss of the tasks in the other by {pct(cross)} on average — "
            "the red cells. They pull the shared layers in different directions."
        )
    elif np.isfinite(cross):
        out.append(
            f"Across the clusters a step lowers the other cluster's loss too, by "
            f"{pct(cross)} on average: all six tasks help each other."
        )
    return out


def paired_text(d: Interval) -> str:
    """``+0.012 (95% interval +0.010 to +0.015)``: a paired difference of losses, signed, all
    three to the same decimal places (:func:`_places`)."""
    k = _places(d)
    if k is None:
        return f"{d.mean:+.2g} (95% interval {d.low:+.2g} to {d.high:+.2g})"
    return f"{d.mean:+.{k}f} (95% interval {d.low:+.{k}f} to {d.high:+.{k}f})"


def _loss_sentence(
    loss: Mapping[str, Interval], diff: Mapping[str, Interval], finished: bool
) -> str:
    """The verdict from the paired differences, with the numbers it rests on."""
    lead = "At the end" if finished else "So far"
    tog, grp, sgl = loss["together"], loss.get("groups"), loss.get("single")
    dg, ds = diff.get("groups"), diff.get("single")
    shown = "; ".join(
        f"{APPROACH_LABELS[k]} {loss_interval(loss[k])}"
        for k in ("together", "groups", "single")
        if k in loss
    )
    head = f"{lead}, held-out loss (mean over the replicas): {shown}."
    verdict = lesson_verdict(diff)
    if verdict == NEGATIVE:
        by_groups = dg is not None and dg.low > 0
        other, d = (grp, dg) if by_groups else (sgl, ds)
        name = "the groups'" if by_groups else "each task alone's"
        return (
            f"{head} All together is {relative(tog.mean, other.mean)} than {name}; the "
            f"difference, paired over the {d.n} replicas, is {paired_text(d)}, above 0: "
            "that gap is negative transfer."
        )
    if verdict == POSITIVE:
        alone = f" and {relative(tog.mean, sgl.mean)} than each task alone" if ds else ""
        both = f" and {paired_text(ds)}" if ds else ""
        return (
            f"{head} All together is {relative(tog.mean, grp.mean)} than the groups'{alone}; "
            f"the difference{'s' if ds else ''}, paired over the {dg.n} replicas, "
            f"{'are' if ds else 'is'} {paired_text(dg)}{both}, below 0: positive transfer, "
            "sharing every task helps. Turn the conflict up to see it turn into negative "
            "transfer."
        )
    if grp is None:
        return f"{head} The grouped run has no held-out loss yet, so no verdict yet."
    if dg is None or not np.isfinite(dg.low):
        return f"{head} One run per approach has no interval, so no verdict is given."
    covers = not dg.high < 0
    d = dg if covers or ds is None else ds
    other = "training in groups" if d is dg else "training each task alone"
    return (
        f"{head} All together minus {'the groups' if d is dg else 'each task alone'}, paired "
        f"over the {d.n} replicas: {paired_text(d)}, which covers 0: no clear difference "
        f"between sharing every task and {other} at this conflict level"
        + ("." if finished else " yet.")
    )


def lesson_pace_text(run_s: float, runs: int, steps: int) -> str:
    """What one lesson run of ``steps`` steps costs here, measured over ``runs`` recent runs."""
    return (
        f"A lesson run of {steps} steps takes about {format_seconds(run_s)} on this server "
        f"(median over its last {runs} lesson run{'s' if runs != 1 else ''}, start-up "
        "included); the heatmap starts filling in as soon as the all-together run starts."
    )


def found_running_text(run_id: int, ahead_at: float | None = None) -> str:
    """A lesson this session did not start but found training for the knob it opened on
    (another student's, or the server's: ``ahead_at``, epoch s, when the idle runner queued
    it ahead, ``workflow.NOTE_AHEAD``): followed live, nothing queued."""
    if ahead_at is not None:
        at = time.strftime("%H:%M UTC", time.gmtime(ahead_at))
        who = f"ahead by the server while it is idle (run #{run_id}, queued at {at})"
    else:
        who = f"for another session (run #{run_id})"
    return (
        f"Live: this exact lesson (these knobs, seed, steps and code) is training now {who}; "
        "you follow it live. Nothing was queued for you: pressing Train joins the same runs."
    )


def followed_text(
    run_id: int,
    created: float,
    status: str,
    *,
    ahead_at: float | None = None,
    finished: float | None = None,
    joined_live: bool = False,
) -> str:
    """A lesson Train found rather than queued: followed live, or replayed. ``ahead_at``
    (epoch s): the idle runner queued it ahead of the class (``workflow.NOTE_AHEAD``); a
    finished one says when it was trained (``finished``, else ``created``) and that it is
    replayed, unless this session joined it while it was still training (``joined_live``:
    then it says it was followed live and has finished)."""
    when = time.strftime("%H:%M UTC on %d %b %Y", time.gmtime(created))
    if status == "finished" and joined_live:
        by = f"started at {when}"
        if ahead_at is not None:
            by = "queued ahead by the server while it was idle"
        return (
            f"Shared: this exact lesson (same knobs, seed, steps and code) was {by} "
            f"(run #{run_id}); you followed its runs live, and they have finished."
        )
    if ahead_at is not None:
        done = finished if finished is not None else created
        at = time.strftime("%H:%M UTC", time.gmtime(done if status == "finished" else ahead_at))
        if status == "finished":
            return (
                f"Replay: this exact lesson (same knobs, seed, steps and code) was trained "
                f"ahead at {at} (run #{run_id}) by the server while it was idle, and is "
                "replayed: nothing new was trained for this press."
            )
        return (
            f"Shared: this exact lesson (same knobs, seed, steps and code) was queued ahead "
            f"at {at} by the server while it was idle (run #{run_id}); you follow its runs "
            "live instead of queueing three more."
        )
    if status == "finished":
        return (
            f"Replay: this exact lesson (same knobs, seed, steps and code) was trained at "
            f"{when} (run #{run_id}), so it is shown again instead of being trained twice."
        )
    return (
        f"Shared: this exact lesson (same knobs, seed, steps and code) was started at {when} "
        f"(run #{run_id}); you follow its runs live instead of queueing three more."
    )


def queue_text(ahead: int | None, wait_s: float | None, runs: int | None) -> str:
    """The all-together run's place in the queue and its measured wait."""
    place = queue_place(ahead)
    if wait_s is None:
        return (
            f"The all-together run is queued ({place}). No lesson run has finished here "
            "yet, so there is no measured wait to quote."
        )
    return (
        f"The all-together run is queued ({place}); it should start in about "
        f"{format_seconds(wait_s)} (from the step rate of the last {runs} lesson "
        "runs here and the runs ahead of it); the heatmap fills in once it runs."
    )
