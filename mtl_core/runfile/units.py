"""Declared units of a file's affinity values (issue 21, kind 3). Torch-free.

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


def impossible_count(aff: pd.DataFrame) -> tuple[int, str]:
    """(count, warning text or ""): values outside their measure's registry ``bounds``
    (:data:`mtl_core.measures.REGISTRY`: lookahead/proximal above 1, a loss decrease of more
    than 100%; cosine outside [-1, 1]) are impossible. Unknown measures are not checked."""
    vals = aff["affinity"].astype(float)
    meas = aff["measure"].astype(str)
    bad = pd.Series(False, index=aff.index)
    for spec in measures.REGISTRY:
        low, high = spec.bounds
        rows = meas == spec.name
        if low is not None:
            bad |= rows & (vals < low)
        if high is not None:
            bad |= rows & (vals > high)
    n = int(bad.sum())
    if not n:
        return 0, ""
    hint = " (they look like percent: say --unit percent)" if vals.abs().max() <= 100 else ""
    return n, f"{n} values are impossible for their measure (above 1 = over 100% loss fall){hint}"
