"""W&B's chart panel "Export CSV" layout (issue 21, kind 1). Torch-free.

A line-plot panel exported from the W&B app has the x axis first and, per run shown and per
plotted key, three columns: the curve and its band::

    Step,sunny-river-3 - affinity/seg/depth,sunny-river-3 - affinity/seg/depth__MIN,...
    10,0.0241,0.0241,0.0241
    20,0.0242,0.0242,0.0242

(``<run name> - <key>``, then ``__MIN`` and ``__MAX``; an x axis other than a step, such as
``Wall Time``, is refused; a grouped curve is named ``Group: <name>
- <key>`` and is the group's mean). :func:`panel_columns` reads the plain columns of each run
under its key (the run-name prefix stripped, the ``__MIN``/``__MAX`` bands left out) and stacks
the runs into one per-step table with a run column, which the per-step tracker reader
(:func:`mtl_core.runfile.trackers.read_step_columns`) then reads: several runs in one file
become several runs, named as W&B shows them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.coded import as_text
from mtl_core.runfile.messages import Locate, names
from mtl_core.runfile.report import note

#: The x-axis column of a panel export (the default axis; others are not steps).
STEP = "Step"
#: The x axes read as steps (W&B's default, its own ``_step``, a logged ``step``); any other
#: (``Wall Time``, ``Relative Time (Process)``) is refused.
STEP_AXES = (STEP, "_step", "step", "global_step", "trainer/global_step")
#: The band columns W&B adds beside each curve.
BANDS = ("__MIN", "__MAX")
#: The run column the stacked table gets (one of the tracker reader's run columns).
RUN = "run_name"
_SEP = " - "


def _split(col: str, is_cell: Callable[[str], bool]) -> tuple[str, str] | None:
    """``"<run> - <key>"`` -> ``(run, key)`` at the ``" - "`` whose right side is an affinity
    key (a run name may hold ``" - "`` itself); else at the last one; None without one."""
    cuts = []
    k = col.find(_SEP)
    while k >= 0:  # every place it starts (a search, not a test at each character)
        cuts.append(k)
        k = col.find(_SEP, k + 1)
    if not cuts:
        return None
    for k in reversed(cuts):
        if is_cell(col[k + len(_SEP) :]):
            return col[:k], col[k + len(_SEP) :]
    k = cuts[-1]
    return col[:k], col[k + len(_SEP) :]


def panel_columns(
    cols: dict[str, np.ndarray], name: str, is_cell: Callable[[str], bool], locate: Locate
) -> tuple[dict[str, np.ndarray], Locate] | None:
    """A panel export's columns -> a per-step table (``Step``, ``run_name``, one column per
    key; rows = runs x the file's rows, run by run), and its row naming; None when ``cols``
    is not that layout (a ``Step`` column first, every other column ``<run> - <key>``, and
    some key an affinity cell by ``is_cell``).

    A run that did not log a key at a step has an empty cell there (not logged).
    """
    header = list(cols)
    if len(header) < 2:
        return None
    parts = {c: _split(c.removesuffix(BANDS[0]).removesuffix(BANDS[1]), is_cell)
             for c in header[1:]}  # fmt: skip
    if any(p is None for p in parts.values()):
        return None
    if not any(is_cell(p[1]) for p in parts.values()):  # type: ignore[index]
        return None
    axis = header[0]
    if axis not in STEP_AXES:
        raise LabError(
            f"{name}: a W&B panel export with the x axis {axis!r}: the lab reads steps; export "
            "the panel again with the x axis 'Step'"
        )
    runs: dict[str, dict[str, np.ndarray]] = {}
    bands = 0
    for c, (run, key) in parts.items():  # type: ignore[misc]
        if c.endswith(BANDS):
            bands += 1
            continue
        runs.setdefault(run, {})[key] = as_text(cols[c])
    keys = list(dict.fromkeys(k for per in runs.values() for k in per))
    n = len(cols[axis])
    steps = as_text(cols[axis])
    out: dict[str, np.ndarray] = {
        "step": np.concatenate([steps] * len(runs)).astype(object),
        RUN: np.repeat(np.array(list(runs), dtype=object), n),
    }
    for key in keys:
        parts_k = [per.get(key) for per in runs.values()]
        text = all(p is None or (p.dtype == object and all(isinstance(v, str) for v in p[:8]))
                   for p in parts_k)  # fmt: skip
        empty = np.full(n, "" if text else np.nan, dtype=object)
        out[key] = np.concatenate([empty if p is None else p.astype(object) for p in parts_k])
    groups = [r for r in runs if r.startswith("Group: ")]
    note(
        f"{name}: read as a W&B panel export: {len(runs)} run(s) ({names(list(runs), 4)}), "
        f"the run-name prefix stripped from {len(keys)} key(s)"
        + (f", {bands} __MIN/__MAX band column(s) left out" if bands else "")
        + (f"; {len(groups)} grouped curve(s) are the group's mean" if groups else "")
    )
    run_names = list(runs)
    return out, lambda i: f"{locate(i % n)}, run {run_names[i // n]!r}"
