"""Ground-truth uploads as plain data: read the files of one layout and run every estimator on
them (:func:`run_select`), the work the app's Ground-truth tables page does in a capped child
process (:mod:`mtl_core.runner.select_job`). Files are ``(name, bytes)`` pairs."""

from __future__ import annotations

import numpy as np

from mtl_core.errors import LabError

LAYOUTS = ("hoa", "mtg", "long", "report")


def run_select(
    layout: str,
    files: dict,
    *,
    tasks: str | None,
    direction: str | None,
    rule: str,
    limits: list,
    affinity: tuple[list[str], list[list[float]]] | None,
    draws: int,
    time_limit: float,
) -> dict:
    """``{"doc": the select document, "cells": the prediction cells}`` (JSON-ready) for the
    uploads ``files`` (keys ``sel``, ``test``, ``masks``, ``est``; absent or None = not
    given). ``affinity``: a run's ``(tasks, A)`` for TAG, else the report's own, if any.

    Raises LabError: the readers' one-line messages, an unknown layout, bad limits."""
    from mtl_core.groundtruth.compare import compare, prediction_cells

    if layout not in LAYOUTS:
        raise LabError(f"unknown layout {layout!r}")
    table, scoring, estimate, own = read_uploads(
        layout,
        files.get("sel"),
        files.get("test"),
        files.get("masks"),
        files.get("est"),
        tasks,
        direction,
    )
    aff = own
    if affinity is not None:
        aff = (list(affinity[0]), np.asarray(affinity[1], dtype=float))
    kw = {"ks": list(limits)} if rule == "k" else {"budgets": list(limits)}
    doc = compare(
        table, scoring, estimate=estimate, affinity=aff, draws=draws, time_limit=time_limit, **kw
    )
    cells = prediction_cells(table, scoring, estimate=estimate, affinity=aff)
    return {"doc": doc, "cells": cells}


def read_uploads(layout, sel, test, masks, est, tasks, direction):
    """(selection, scoring or None, estimate or None, the file's own affinity or None) read
    from ``(name, bytes)`` uploads by the layout's reader (the ``select`` command's readers)."""
    from mtl_core.groundtruth.report import read_evaluate_report
    from mtl_core.groundtruth.tables import read_hoa, read_long, read_mtg

    names = None if tasks is None else [t.strip() for t in tasks.split(",")]
    if layout == "report":
        rep = read_evaluate_report(sel[1], name=sel[0], direction=direction)
        estimate = None
        if est is not None:
            estimate = _one_split(read_long(est[1], direction="lower", name=est[0]), est[0])
        return rep.selection, rep.scoring, estimate, rep.affinity
    if layout == "mtg":
        if masks is None:
            raise LabError("MTG-Net's layout needs the masks file too")

        def read(f):
            return read_mtg(
                masks[1],
                f[1],
                tasks=names,
                direction=direction,
                masks_name=masks[0],
                values_name=f[0],
            )
    elif layout == "long":

        def read(f):
            return _one_split(read_long(f[1], direction=direction, name=f[0]), f[0])

        if test is None:
            splits = read_long(sel[1], direction=direction, name=sel[0])
            if len(splits) > 1:
                if set(splits) != {"val", "test"}:
                    raise LabError(
                        f"{sel[0]}: splits {', '.join(sorted(map(str, splits)))}; a long form's "
                        "splits must be val and test (or upload one split per file)"
                    )
                estimate = read(est) if est is not None else None
                return splits["val"], splits["test"], estimate, None
    else:

        def read(f):
            return read_hoa(f[1], tasks=names, direction=direction, name=f[0])

    table = read(sel)
    scoring = read(test) if test is not None else None
    estimate = read(est) if est is not None else None
    return table, scoring, estimate, None


def _one_split(splits: dict, name: str):
    if len(splits) != 1:
        raise LabError(f"{name}: holds several splits; upload one per file")
    return next(iter(splits.values()))
