"""Affinity measure names, and the one rule for picking the measure to read. Torch-free.

Shared by the run-file package (a long-form log's ``measure`` column,
:func:`mtl_core.runfile.measure_matrices`) and the store (a run's logged measures,
``Store.affinity_steps``), which must not know the file format: so the rule lives below both.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtl_core.errors import LabError

#: The measure of a log or file that names none (TAG's lookahead affinity).
DEFAULT_MEASURE = "lookahead"


def pick_measure(
    measures: Sequence[str], measure: str | None, where: str, *, hint: str = "pick one"
) -> str:
    """The measure to read: ``measure`` if given, else the only one logged.

    Parameters
    ----------
    measures : the measures logged (in the order messages list them).
    measure : the one asked for, or None for "the only one".
    where : what holds them, for messages (``"the log"``, ``"run 3"``, a file name).
    hint : how the caller's user picks one (``"pick one with --measure"``).

    Raises
    ------
    LabError
        ``measure`` is None and several (or no) measures are logged; or ``measure`` is not
        among them.
    """
    if measure is None:
        if len(measures) > 1:
            raise LabError(f"{where} holds several measures ({', '.join(measures)}); {hint}")
        if not measures:
            raise LabError(f"{where} has no affinity rows")
        return measures[0]
    if measure not in measures:
        raise LabError(f"measure {measure!r} not in {where}; it has: {', '.join(measures)}")
    return measure
