"""CSV columns read with their Arrow codes (mtl_core.runfile.coded): same values, same
messages as a plain cell-by-cell read."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file
from mtl_core.runfile.coded import coded, coded_column, equals_text, frame_text, head


def _csv(rows: list[str]) -> bytes:
    return ("step,source,target,affinity\n" + "\n".join(rows) + "\n").encode()


def test_repeated_names_are_coded_and_equal_the_cells():
    col = pa.chunked_array([pa.array([" a", "b ", "a"] * 2000), pa.array(["b"] * 10)])
    vals = coded_column(col)
    assert vals.tolist() == ["a", "b", "a"] * 2000 + ["b"] * 10
    c = coded(vals)
    assert c is not None and c.codes is not None and len(c.uniques) <= 4
    assert not vals.flags.writeable  # the remembered codes cannot go stale
    assert coded(vals.copy()) is None and coded(vals[1:]) is None
    assert equals_text(vals, "b").sum() == 2010
    short = head(vals, 3)
    assert short.tolist() == ["a", "b", "a"] and coded(short) is not None
    assert list(frame_text(vals)[:3]) == ["a", "b", "a"]


def test_distinct_numbers_keep_one_value_per_row():
    vals = coded_column(pa.array([f"{k / 7:.6f}" for k in range(5000)]))
    c = coded(vals)
    assert c is not None and c.codes is None and vals[10] == f"{10 / 7:.6f}"


def test_bad_step_named_at_its_row_among_repeats():
    rows = [f"{s},a,b,0.1" for s in range(50)] * 2 + ["x,a,b,0.1"]
    with pytest.raises(LabError, match=r"row 101 \(line 102\).*'x' is not a number"):
        read_run_file(_csv(rows), "log.csv")


def test_empty_and_na_affinity_left_out_and_counted():
    rows = [f"{s},a,b,{'' if s == 3 else ('NA' if s == 7 else s / 100)}" for s in range(100)]
    parsed = read_run_file(_csv(rows), "log.csv")
    assert parsed.left_out == 2 and "row 4 (line 5)" in parsed.first_left_out
    assert np.allclose(parsed.affinity["affinity"].to_numpy()[:3], [0.0, 0.01, 0.02])


def test_formula_escaped_names_unescaped():
    rows = [f"{s},'=a,b,0.5" for s in range(20)]
    parsed = read_run_file(_csv(rows), "log.csv")
    assert set(parsed.affinity["source"]) == {"=a"}
    assert parsed.tasks == ["=a", "b"]


def _history(cells: list[str]) -> bytes:
    head = "_step,affinity/a/b,affinity/b/a\n"
    return (head + "\n".join(f"{s},{c}" for s, c in enumerate(cells)) + "\n").encode()


def test_wandb_history_empty_cells_not_logged_names_coded():
    cells = ["0.1,", ",0.2", "NA,0.3", "0.4,0.5"] * 30
    parsed = read_run_file(_history(cells), "history.csv")
    aff = parsed.affinity
    assert len(aff) == 5 * 30
    first = aff[aff["step"] == 3]
    assert first["source"].tolist() == ["a", "b"] and first["affinity"].tolist() == [0.4, 0.5]
    assert parsed.tasks == ["a", "b"]


def test_wandb_history_text_cell_refused_at_its_row():
    cells = ["0.1,0.2"] * 40 + ["0.1,oops"]
    with pytest.raises(LabError, match=r"row 41.*'oops' is not a number"):
        read_run_file(_history(cells), "history.csv")
