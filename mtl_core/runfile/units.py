"""Declared units of a file's affinity values, and common names of the lab's measures
(issue 21, kind 3). Torch-free.

Every reader (the CLI's ``--measure``, a file's ``measure`` column or tag, the Upload page's
choice) maps a measure's common names to the lab's through :func:`canonical_measure`, by the
aliases of the measure registry (:data:`mtl_core.measures.REGISTRY`).

``fraction`` (the lab's own unit: 0.041 = the target's loss fell by 4.1%), ``percent``
(4.1 = 4.1%: divided by 100), ``tag-lr:LR`` (TAG's notebooks store ``(1 - L'/L) / lr``,
Fifty et al. 2021, CelebA notebook ``task_gain``: multiplied by LR). A sum over steps is not
divided by the number of steps: the file does not say how many steps it summed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_core import measures
from mtl_core.errors import LabError
from mtl_core.runfile.long import first_seen

UNIT_HELP = "unit of the file's values: fraction (default), percent, or tag-lr:LR (TAG's 1/lr)"


def unit_factor(unit: str | None) -> float:
    """Stored value = file value x factor. Raises LabError for an unknown unit or a bad LR."""
    text = (unit or "fraction").strip().lower()
    if text == "fraction":
        return 1.0
    if text == "percent":
        return 0.01
    if text.startswith("tag-lr:"):
        try:
            lr = float(text.split(":", 1)[1])
        except ValueError:
            lr = float("nan")
        if not np.isfinite(lr) or lr <= 0:
            raise LabError(f"--unit {unit}: the learning rate must be a positive number")
        return lr
    raise LabError(f"--unit must be fraction, percent or tag-lr:LR, got {unit!r}")


def convert_affinity(aff: pd.DataFrame, unit: str | None) -> pd.DataFrame:
    """A copy of an affinity frame (column ``affinity``) in fractions."""
    factor = unit_factor(unit)
    if factor == 1.0:
        return aff
    out = aff.copy()
    out["affinity"] = out["affinity"].astype(float) * factor
    return out


#: Fewer impossible values than one in this many checked ones are read as odd cells, not as
#: the file's unit (a matrix in percent has most of its values above 1).
OUTLIER_SHARE = 10


def impossible_count(aff: pd.DataFrame) -> tuple[int, str]:
    """(count, warning text or ""): values outside their measure's registry ``bounds``
    (:data:`mtl_core.measures.REGISTRY`: lookahead/proximal above 1, a loss decrease of more
    than 100%; cosine outside [-1, 1]) are impossible. Unknown measures are not checked."""
    vals = aff["affinity"].astype(float)
    if not (vals.abs() > 1).any():  # the usual case, decided without the measure column
        return 0, ""
    meas = aff["measure"].astype(str)
    bad = pd.Series(False, index=aff.index)
    why = []  # what each measure with an impossible value can never be, in words
    for spec in measures.REGISTRY:
        low, high = spec.bounds
        rows = meas == spec.name
        out = pd.Series(False, index=aff.index)
        if low is not None:
            out |= rows & (vals < low)
        if high is not None:
            out |= rows & (vals > high)
        if out.any():
            why.append(_bound_words(spec))
        bad |= out
    n = int(bad.sum())
    if not n:
        return 0, ""
    checked = int(meas.isin([spec.name for spec in measures.REGISTRY]).sum())
    are = "value is" if n == 1 else "values are"
    if n * OUTLIER_SHARE < checked:  # a few cells, not the file's unit
        hint = (
            f" (only {n} of {checked}: check those cells; a file in percent or in TAG's "
            "1/lr-scaled sums makes most of its values impossible)"
        )
    elif vals.abs().max() <= 100:
        hint = (
            " (they look like percent: say --unit percent, or pick percent as the "
            '"Unit of the file\'s values" on Upload)'
        )
    else:
        hint = " (TAG's notebooks sum (1 - L'/L) / lr: say --unit tag-lr:LR with the rate)"
    return n, f"{n} {are} impossible for their measure ({'; '.join(why)}){hint}"


def _bound_words(spec: measures.Measure) -> str:
    """A measure's registry bounds in words: ``lookahead above 1 = over 100% loss fall``,
    ``cosine outside [-1, 1]``."""
    low, high = spec.bounds
    if low is None and high is not None:
        loss = " = over 100% loss fall" if spec.is_percent and high == 1.0 else ""
        return f"{spec.name} above {high:g}{loss}"
    if high is None and low is not None:
        return f"{spec.name} below {low:g}"
    return f"{spec.name} outside [{low:g}, {high:g}]"


def canonical_measure(name: str) -> str:
    """The lab's name for a measure written another common way (``TAG`` ->
    ``lookahead``), by the registry's aliases (:data:`mtl_core.measures.REGISTRY`; any case,
    ``-``, ``_`` and spaces alike); any other name kept (its spaces trimmed)."""
    text = " ".join(str(name).split())
    for variant in (text, text.replace("-", "_").replace(" ", "_"),
                    text.replace("_", " ").replace("-", " ")):  # fmt: skip
        found = measures.find(variant)
        if found is not None:
            return found.name
    return measures.canonical(text)


def rename_measures(aff: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """An affinity frame with aliases in its ``measure`` column mapped to the lab's names;
    ``(frame, notes)``: one note per alias mapped and per measure the lab does not know
    (shown as plain numbers)."""
    if aff.empty:
        return aff, []
    found = first_seen(aff["measure"])  # from the reader's codes, or hashed: files hold a few
    mapping = {m: canonical_measure(m) for m in found}
    notes = [f"measure {m!r} read as {c!r} (a common name for it)" for m, c in mapping.items()
             if c != m]  # fmt: skip
    unknown = [c for c in dict.fromkeys(mapping.values()) if measures.find(c) is None]
    if unknown:
        notes.append(
            f"measure {', '.join(map(repr, unknown))} is not one the lab knows "
            f"({', '.join(measures.names())}): its values are shown as plain numbers"
        )
    if any(c != m for m, c in mapping.items()):
        aff = aff.copy()
        aff["measure"] = aff["measure"].replace(mapping)
    return aff, notes


def value_range(aff: pd.DataFrame) -> tuple[float, float] | None:
    """``(min, max)`` of the finite affinity values, or None when there are none."""
    vals = aff["affinity"].to_numpy(dtype=float)
    vals = vals[np.isfinite(vals)]
    return (float(vals.min()), float(vals.max())) if vals.size else None
