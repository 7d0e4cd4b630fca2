"""CSV columns read with their Arrow codes (mtl_core.runfile.coded): same values, same
messages as a plain cell-by-cell read."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file
from mtl_core.runfile.cells import to_numbers
from mtl_core.runfile.coded import (
    as_text,
    coded,
    coded_column,
    constant,
    equals_text,
    factor_codes,
    frame_text,
    head,
    numbers_first,
    remember,
)
from mtl_core.runfile.sheet_habits import MISSING_MARKS
from mtl_core.runfile.tables import parse_table
from mtl_core.runfile.validate import _all_distinct


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


# ------------------------------------------------------------------ numbers first, duplicates


def _distinct(k: int) -> list[str]:
    return [f"{j / 7:.6f}" for j in range(k)]


def test_numbers_first_column_holds_arrows_parse_and_its_text():
    cells = [" 0.25", *_distinct(3000), "NA", "", "#DIV/0!", "1e-3 "]
    vals = coded_column(pa.array(cells), missing=MISSING_MARKS)
    nf = numbers_first(vals)
    assert nf is not None and nf.missing and vals.dtype == np.float64
    assert not vals.flags.writeable
    assert vals[0] == 0.25 and vals[-1] == 0.001 and vals[5] == float(f"{4 / 7:.6f}")
    assert np.isnan(vals[-4:-1]).all() and np.isfinite(vals[:-4]).all()
    text = as_text(vals)
    assert text[0] == "0.25" and text[-1] == "1e-3" and text[-3] == ""  # trimmed, as written
    assert as_text(vals) is text  # made once
    assert equals_text(vals, "").sum() == 1
    short = head(vals, 2)
    assert numbers_first(short) is not None and as_text(short).tolist() == ["0.25", "0.000000"]
    assert numbers_first(vals.copy()) is None  # a copy is plain numbers
    # without the marks (a reader that wants text), the same cells stay text
    assert coded_column(pa.array(cells)).dtype == object


def test_a_text_cell_keeps_the_column_text():
    vals = coded_column(pa.array([*_distinct(3000), "oops"]), missing=MISSING_MARKS)
    assert numbers_first(vals) is None and vals.dtype == object and vals[-1] == "oops"


def test_long_form_affinity_read_numbers_first_equals_the_text():
    rows = [f"0,t{k % 50},u{k // 50},{v}" for k, v in enumerate(_distinct(2500))]
    parsed = read_run_file(_csv(rows), "log.csv")
    assert parsed.affinity["affinity"].tolist() == [float(v) for v in _distinct(2500)]


def test_distinct_steps_message_shows_the_cell_as_written():
    rows = [f"{s},a,b,0.1" for s in range(3000)] + ["12.50,a,b,0.2"]
    with pytest.raises(LabError, match=r"row 3001.*'12\.50' is not a whole number"):
        read_run_file(_csv(rows), "log.csv")


def test_required_value_empty_in_a_numbers_first_column_is_named():
    vals = coded_column(pa.array([*_distinct(3000), " ", "0.5"]), missing=MISSING_MARKS)
    assert numbers_first(vals) is not None
    assert to_numbers(vals, "value", "f.csv", lambda i: f"row {i + 1}", allow_empty=True)[-1] == 0.5
    with pytest.raises(LabError, match=r"f.csv: row 3001, column 'value': is empty$"):
        to_numbers(vals, "value", "f.csv", lambda i: f"row {i + 1}")


@pytest.mark.parametrize(
    "gid, radix, distinct",
    [
        ([0, 1, 5, 9], 10, True),  # rising keys
        ([5, 1, 9, 0], 10, True),  # marked in a bool array
        ([5, 1, 9, 1], 10, False),
        ([2**60, 3, 2**61, 7], 2**62, True),  # too many possible keys: hashed
        ([2**60, 3, 2**60, 7], 2**62, False),
    ],
)
def test_all_distinct_by_each_route(gid, radix, distinct):
    assert _all_distinct(np.array(gid, dtype=np.int64), radix) is distinct


def test_duplicate_out_of_order_named_with_its_first_copy():
    rows = [f"{s},a,b,0.1" for s in range(30)] + ["3,b,a,0.2", "7,a,b,0.3"]
    with pytest.raises(LabError, match=r"row 32 .*duplicated cell \(step 7.*first at row 8 "):
        read_run_file(_csv(rows), "log.csv")


def test_factor_codes_of_repeated_dictionary_texts():
    vals = remember(np.array(["a", "b", "a"], dtype=object), np.array([0, 1, 2, 2, 0]),
                    pa.array(["a", "b", "a"]))  # fmt: skip
    codes, count = factor_codes(vals)
    assert count == 2 and codes.tolist() == [0, 1, 0, 0, 0]
    assert factor_codes(constant("x", 4))[1] == 1


# ------------------------------------------------------------------ float64 read by Arrow


def _big_history(rows: int, cell=lambda s: f"{s / 7:.6f}") -> str:
    """A per-step table past the sampled head (the first 64 KB): ``rows`` rows."""
    return "_step,affinity/a/b,affinity/b/a\n" + "".join(
        f"{s},{cell(s)},{s / 3:.5g}\n" for s in range(rows)
    )


def test_tracker_columns_read_as_float64_equal_the_text_read():
    text = _big_history(6000, lambda s: f" {s / 7:.6f}" if s % 5 else ("" if s % 2 else '"0.5"'))
    fast = read_run_file(text.encode(), "history.csv")
    cols, _ = parse_table(text.encode(), ".csv", "history.csv", numbers=True)
    nf = numbers_first(cols["affinity/a/b"])
    assert nf is not None and nf._text is None  # its text is never made on this path
    plain, _ = parse_table(text.encode(), ".csv", "history.csv")  # every column as text
    assert plain["affinity/a/b"].dtype == object
    want = [float(v) for v in plain["affinity/a/b"] if v]  # the logged cells, as written
    got = fast.affinity[fast.affinity["source"] == "a"]["affinity"].tolist()
    assert got == want and len(got) == 6000 - 600  # every 10th row empty: not logged


def test_a_mark_past_the_head_reads_the_file_as_text():
    text = _big_history(6000, lambda s: "NA" if s == 5999 else f"{s / 7:.6f}")
    parsed = read_run_file(text.encode(), "history.csv")
    assert (parsed.affinity["source"] == "a").sum() == 5999  # NA: not logged


def test_a_text_cell_past_the_head_named_at_its_row():
    text = _big_history(6000, lambda s: "oops" if s == 5999 else f"{s / 7:.6f}")
    with pytest.raises(LabError, match=r"row 6000 \(line 6001\), column 'affinity/a/b'.*'oops'"):
        read_run_file(text.encode(), "history.csv")


def test_float_column_text_made_when_asked():
    text = _big_history(6000)
    cols, _ = parse_table(text.encode(), ".csv", "history.csv", numbers=True)
    vals = cols["affinity/b/a"]
    assert as_text(vals)[:3].tolist() == ["0", "0.33333", "0.66667"]
    assert equals_text(vals, "0.33333").sum() == 1
    text = "_step,affinity/a/b\n" + "".join(f"{s},{0.1 + s / 1e5:.6f}\n" for s in range(6000))
    cut = (text[:-4]).encode()  # no line break at the end, the last value cut short
    parsed = read_run_file(cut, "history.csv")
    assert any("may have been cut off" in n for n in parsed.notes)


def test_long_form_affinity_float64_with_trailing_empty_rows():
    rows = [f"{s},a,b,{s / 7:.6f}" for s in range(6000)] + [",,,"] * 3
    parsed = read_run_file(_csv(rows), "log.csv")
    assert parsed.affinity["affinity"].tolist() == [float(f"{s / 7:.6f}") for s in range(6000)]
    assert any("3 empty row(s)" in n for n in parsed.notes)


def test_parquet_text_columns_coded_with_their_values():
    import io

    import pandas as pd

    df = pd.DataFrame(
        {
            "step": [0, 0, 1, 1],
            "source": pd.Categorical(["a", "b", "a", "b"]),  # a dictionary column
            "target": [" b", "a", " b", "a"],  # kept as stored: no trimming in Parquet
            "affinity": [0.1, 0.2, 0.3, 0.4],
        }
    )
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    cols, _ = parse_table(buf.getvalue(), ".parquet", "log.parquet")
    assert cols["source"].tolist() == ["a", "b", "a", "b"] and coded(cols["source"]) is not None
    assert cols["target"].tolist() == [" b", "a", " b", "a"]
    parsed = read_run_file(buf.getvalue(), "log.parquet")
    assert parsed.tasks == ["a", "b", " b"]


def _parquet(df) -> bytes:
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False, row_group_size=3)  # several row groups, own dictionaries
    return buf.getvalue()


def test_parquet_dictionary_codes_across_row_groups_keep_row_order():
    import pandas as pd

    # categories in another order than the rows, one never used, one blank never used
    cats = pd.CategoricalDtype(["z", " ", "c", "b", "a"])
    src = ["b", "c", "a", "c", "b", "a", "b", "c"]
    tgt = ["c", "b", "c", "a", "a", "b", "a", "a"]
    df = pd.DataFrame(
        {
            "step": [0, 0, 0, 1, 1, 1, 2, 2],
            "source": pd.Series(src, dtype=cats),
            "target": tgt,
            "affinity": np.arange(8) / 10,
        }
    )
    data = _parquet(df)
    cols, _ = parse_table(data, ".parquet", "log.parquet")
    assert cols["source"].tolist() == src and cols["target"].tolist() == tgt
    assert coded(cols["target"]).codes is not None  # a plain text column, read as codes
    parsed = read_run_file(data, "log.parquet")
    assert parsed.tasks == ["b", "c", "a"]  # first appearance, not the category order
    assert parsed.affinity["source"].tolist() == src
    assert parsed.affinity["affinity"].tolist() == (np.arange(8) / 10).tolist()


def test_parquet_duplicate_cell_named_with_its_first_copy_by_step_range():
    import pandas as pd

    steps = [10, 20, 30, 40, 50, 20]
    df = pd.DataFrame({"step": steps, "source": "a", "target": "b", "affinity": [0.1] * len(steps)})
    with pytest.raises(LabError, match=r"row 6, .*duplicated cell \(step 20.*first at row 2"):
        read_run_file(_parquet(df), "log.parquet")
    df["step"] = [0, 2**52, 7, 2**40, 3, 2]  # too wide a range for range codes: hashed
    assert len(read_run_file(_parquet(df), "log.parquet").affinity) == 6


def test_parquet_text_column_with_a_null_named_at_its_row():
    import pandas as pd

    df = pd.DataFrame(
        {"step": [0, 1, 2], "source": ["a", None, "a"], "target": "b", "affinity": 0.1}
    )
    with pytest.raises(LabError, match=r"row 2, column 'source'.*is empty"):
        read_run_file(_parquet(df), "log.parquet")
