"""The long CSV's faster paths (issue 21, kind 7) read the same values and refuse the same
way: steps read as numbers, a name column on one text, the frame's names from their codes,
the columns converted side by side on threads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file
from mtl_core.runfile.coded import coded, coded_column, frame_text, head, numbers_first
from mtl_core.runfile.frame_names import known_distinct
from mtl_core.runfile.long import first_seen
from mtl_core.runfile.tables import parse_table

#: Refusals of a bad step, each as the text read wrote it (the cell shown as written).
BAD_STEPS = [
    ("12.50", "'12.50' is not a whole number"),
    ("-3", "'-3' is negative"),
    ("", "column 'step': is empty"),
    ("1e20", "'1e20' is above 9,007,199,254,740,991"),
    ("x", "'x' is not a number"),
    ("inf", "'inf' is not a whole number"),
    ("NA", "'NA' is a missing-value mark where a value is required"),
]


def _csv(rows: list[str], header: str = "step,source,target,affinity") -> bytes:
    return (header + "\n" + "\n".join(rows) + "\n").encode()


def _many(n: int = 3000) -> list[str]:
    return [f"{s},a,b,0.1" for s in range(n)]


def test_long_form_steps_are_read_as_numbers_and_kept_whole():
    data = _csv([f"{10 * s},t{s % 3},u{s % 2},0.5" for s in range(5000)])
    cols, _ = parse_table(data, ".csv", "log.csv", numbers=True)
    assert numbers_first(cols["step"]) is not None  # no text per row, no dictionary pass
    parsed = read_run_file(data, "log.csv")
    steps = parsed.affinity["step"]
    assert steps.dtype == np.int64 and steps.tolist() == [10 * s for s in range(5000)]


@pytest.mark.parametrize("where", ["head", "past the head"])
@pytest.mark.parametrize(("cell", "said"), BAD_STEPS)
def test_a_bad_step_is_refused_as_the_text_read_refused_it(cell, said, where):
    rows = [f"{cell},a,b,0.2", *_many()] if where == "head" else [*_many(), f"{cell},a,b,0.2"]
    at = "row 1 (line 2)" if where == "head" else "row 3001 (line 3002)"
    with pytest.raises(LabError) as err:
        read_run_file(_csv(rows), "log.csv")
    assert f"{at}, column 'step': " in str(err.value) and said in str(err.value)


def test_steps_with_spaces_and_leading_zeros_read_as_their_numbers():
    rows = [f" {s:03d} ,a,b,0.1" for s in range(3000)]
    parsed = read_run_file(_csv(rows), "log.csv")
    assert parsed.affinity["step"].tolist() == list(range(3000))


def _big_names(n: int = 120_000) -> tuple[bytes, list[str], list[str]]:
    """Over Arrow's 1 MB read block (several chunks): names first seen in the order c, a, b;
    a name with spaces around it only in the last rows."""
    names = ["c", "a", "b"]
    src = [names[k % 3] for k in range(n)]
    tgt = [names[(k + 1) % 3] for k in range(n)]
    src[-5:] = ["  a "] * 5
    rows = [f"{k},{s},{t},0.25" for k, (s, t) in enumerate(zip(src, tgt))]
    return _csv(rows), [s.strip() for s in src], tgt


@pytest.mark.parametrize("threads", [False, True])
def test_names_over_several_blocks_with_spaces_read_trimmed(threads):
    data, src, tgt = _big_names()
    parsed = read_run_file(data, "log.csv", threads=threads)
    assert parsed.affinity["source"].tolist() == src
    assert parsed.affinity["target"].tolist() == tgt
    assert parsed.tasks == ["c", "a", "b"]


@pytest.mark.parametrize("cell", ["", "  "])
def test_an_empty_name_past_a_block_is_refused_at_its_row(cell):
    data, _, _ = _big_names(60_000)
    text = data.decode().splitlines()
    text[50_001] = f"50000,{cell},a,0.25"
    with pytest.raises(LabError, match=r"row 50001 \(line 50002\), column 'source': is empty"):
        read_run_file(("\n".join(text) + "\n").encode(), "log.csv", threads=True)


def test_a_column_on_one_text_then_another_reads_both():
    rows = [f"{k},a,b,0.1,lookahead" for k in range(5000)] + ["9999,a,b,0.3,proximal"]
    parsed = read_run_file(_csv(rows, "step,source,target,affinity,measure"), "log.csv")
    assert parsed.measures("") == ["lookahead", "proximal"]
    assert parsed.affinity["measure"].tolist() == ["lookahead"] * 5000 + ["proximal"]


def test_a_column_on_one_text_with_spaces_is_trimmed():
    col = coded_column(pa.array(["  proximal "] * 5000))
    assert set(col.tolist()) == {"proximal"} and list(frame_text(col)) == ["proximal"] * 5000
    same = coded_column(pa.array(["proximal"] * 5000))
    assert coded(same).rows is not None  # untrimmed cells: the frame takes them as read


def test_frame_names_from_codes_equal_the_hashed_ones():
    col = coded_column(pa.array(["z", "x", "z", "y"] * 3000))
    frame = pd.DataFrame({"source": frame_text(col)})
    hashed = list(pd.unique(frame["source"].to_numpy(dtype=object)))
    assert list(known_distinct(frame["source"])) == hashed == ["z", "x", "y"]
    assert first_seen(frame["source"]) == hashed
    assert known_distinct(frame["source"][frame["source"] != "z"]) is None  # a new column
    part = head(col, 2)  # a prefix still knows its names: only those it holds
    assert list(known_distinct(pd.Series(frame_text(part)))) == ["z", "x"]


def test_parquet_dictionary_names_out_of_order_use_their_rows():
    """Parquet dictionaries need not follow first appearance: hashed codes say the order."""
    dictionary = pa.array(["b", "a", "unused"])
    names = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1, 0], pa.int32()), dictionary)
    col = coded_column(names)
    assert list(known_distinct(pd.Series(frame_text(col)))) == ["a", "b"]


def test_a_threaded_read_refuses_with_the_one_thread_message():
    rows = [*_many(), "7,a,,0.1"]
    msgs = []
    for threads in (False, True):
        with pytest.raises(LabError) as err:
            read_run_file(_csv(rows), "log.csv", threads=threads)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] and "row 3001 (line 3002), column 'target': is empty" in msgs[0]


def test_trailing_empty_rows_still_dropped_and_said():
    rows = [*_many(10), ",,,", ",,,"]
    parsed = read_run_file(_csv(rows), "log.csv")
    assert len(parsed.affinity) == 10 and any("2 empty row(s)" in n for n in parsed.notes)
    full = read_run_file(_csv(_many(10)), "log.csv")  # a last row with values: nothing said
    assert not any("empty row" in n for n in full.notes)


def test_first_seen_codes_read_by_blocks_equal_pandas_unique():
    from mtl_core.runfile.frame_names import _BLOCK, _first_seen_codes

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 3 * _BLOCK + 7)
    codes[2 * _BLOCK + 5] = 4  # a name first seen in a later block; code 3 never used
    assert _first_seen_codes(codes, 5) == pd.unique(codes).tolist()
    assert _first_seen_codes(codes[:10], 5) == pd.unique(codes[:10]).tolist()


def test_tracker_names_are_coded_once_each():
    """A W&B history's measure repeats for every cell: the read keeps one text for it."""
    header = "_step," + ",".join(f"affinity/t{a}/t{b}" for a in range(3) for b in range(3))
    rows = [f"{s}," + ",".join(str(0.01 * (s + k)) for k in range(9)) for s in range(50)]
    data = (header + "\n" + "\n".join(rows) + "\n").encode()
    parsed = read_run_file(data, "history.csv")
    assert parsed.tasks == ["t0", "t1", "t2"] and len(parsed.affinity) == 450
    assert parsed.affinity["source"].tolist()[:9] == ["t0"] * 3 + ["t1"] * 3 + ["t2"] * 3
    assert set(parsed.affinity["measure"]) == {"lookahead"}
