"""Values logged without a step, all at step 0, numbered by wall time (issue 21, kind 4).
Torch-free.

TensorBoard's ``add_scalar(tag, v)`` without ``global_step`` and MLflow's ``log_metric(key, v)``
without ``step`` (or a metric file from MLflow before 1.0, lines ``timestamp value``; MLflow's
``FileStore`` reads the missing step as 0) put every value of a series at step 0, where only one
can be kept. :func:`plan_steps` decides, for one run's series, what the readers
(:mod:`mtl_core.runfile.tensorboard`, :mod:`mtl_core.runfile.mlflow_store`) do, and says it:

- every series of the run is at step 0 and some has several values: each series is ordered by
  wall time and numbered 0, 1, 2, ... (the k-th value of every series is step k);
- some series have steps and others are all at step 0: numbering those would misalign them, so
  each keeps its last value (by wall time) and the cut is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtl_core.runfile.messages import names
from mtl_core.runfile.report import note


@dataclass(frozen=True)
class StepPlan:
    """What to do with one run's step-0 series.

    Attributes
    ----------
    order : ``{key: indices}``: the series to renumber, its values taken in this order (by
        wall time, stable) and given steps ``0..len-1``; empty when nothing is renumbered.
    keep_last : ``{key: index}``: the series to cut to their last value by wall time (the
        other series of the run have steps).
    """

    order: dict[str, np.ndarray]
    keep_last: dict[str, int]


def plan_steps(
    run: str,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    unit: str,
    without: str,
    clock: str = "wall time",
) -> StepPlan:
    """Plan the numbering of one run's series logged without steps, and note it.

    Parameters
    ----------
    run : the run's name for the note ("" = the log).
    series : ``{key: (wall times, steps)}``, both (values,) arrays of one series.
    unit : what a series is called in the note (``tag``, ``metric key``).
    without : how the values were logged (``without global_step``), for the note.
    clock : what the times are, for the note: TensorBoard's ``wall time`` (seconds), MLflow's
        timestamps (wall-clock milliseconds since the epoch). Ties keep the file's order
        (the order they were logged in).

    Returns
    -------
    The :class:`StepPlan` (both maps empty when every series has steps, or when each step-0
    series holds one value).
    """
    who = run or "the log"
    if not series:
        return StepPlan({}, {})
    zero = {k: w for k, (w, s) in series.items() if not np.asarray(s).any()}
    if len(zero) < len(series):  # other series have steps: numbering these would misalign
        cut = {k: w for k, w in zero.items() if len(w) > 1}
        if cut:
            n_cut = sum(len(w) - 1 for w in cut.values())
            note(
                f"{who}: {len(cut)} {unit}(s) logged {without} (every value at step 0) while "
                f"others have steps: {n_cut} earlier values of them were cut, the last kept "
                f"(e.g. {names(sorted(cut), 3)})"
            )
        last = {k: int(np.argsort(np.asarray(w), kind="stable")[-1]) for k, w in cut.items()}
        return StepPlan({}, last)
    most = max(len(w) for w, _ in series.values())
    if most < 2:
        return StepPlan({}, {})
    note(
        f"{who}: every value is at step 0 (logged {without}): up to {most} values per "
        f"{unit} ordered by {clock} and read as steps 0..{most - 1}"
    )
    order = {k: np.argsort(np.asarray(w), kind="stable") for k, (w, _) in series.items()}
    return StepPlan(order, {})
