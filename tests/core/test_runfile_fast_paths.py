"""The readers' fast paths (issue 21, kind 7) give what the plain paths give: JSON row
objects taken by key, the long-digit-run test, on the cases where they could differ."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import jsontext
from mtl_core.runfile.jsontext import MAX_DIGITS, _long_digit_run, load_json
from mtl_core.runfile.tables import (
    _fast_record_columns,
    _pandas_record_columns,
    _uniform_record_columns,
)


def _by_pandas(records):
    """What ``_fast_record_columns`` made before its fast path: ``from_records``."""
    return _pandas_record_columns(records)


CASES = [
    [{"step": 1, "a": 0.5, "n": "x"}, {"step": 2, "a": 1, "n": "y"}],  # int and float
    [{"b": True, "m": 1}, {"b": False, "m": True}],  # booleans, mixed with an int
    [{"s": "a", "v": 1.5}, {"v": 2.5, "s": "b"}],  # keys in another order
    [{"x": 2**63 + 5}, {"x": 1}],  # past int64: uint64 by pandas
    [{"x": 10**30}, {"x": -1}],  # past every int type: objects
    [{"x": [1, 2]}, {"x": {"y": 1}}],  # nested values
    [{"x": "1"}, {"x": 2}],  # text beside a number
]


@pytest.mark.parametrize("records", CASES)
def test_uniform_rows_read_as_from_records_reads_them(records):
    got, want = _fast_record_columns(records), _by_pandas(records)
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        assert got[key].tolist() == want[key].tolist()
        assert [type(v) for v in got[key].tolist()] == [type(v) for v in want[key].tolist()]


@pytest.mark.parametrize(
    "records",
    [
        [{"a": 1.0}, {"a": float("nan")}],  # NaN: the slow path says where
        [{"a": 1}, {"a": None}],  # null
        [{"a": 1, "b": 2}, {"a": 1}],  # a key missing
        [{"a": 1}, {"b": 1}],  # same count, other keys
    ],
)
def test_rows_the_fast_path_leaves_to_the_slow_one(records):
    assert _uniform_record_columns(records) is None
    assert _fast_record_columns(records) is None  # as from_records: a gap is not read fast


def test_long_digit_run_found_across_chunks_as_the_regex_finds_it(monkeypatch):
    monkeypatch.setattr(jsontext, "_CHUNK", 1000)
    regex = re.compile(r"[0-9]{" + str(MAX_DIGITS + 1) + "}")
    run = "7" * (MAX_DIGITS + 1)
    texts = [
        "x" * 990 + run + "y",  # straddles the first chunk's end
        "é" * 995 + run,  # non-ASCII before it (UTF-8 bytes never read as digits)
        "1" * MAX_DIGITS + "." + "1" * MAX_DIGITS,  # two runs of 308: none long enough
        "٣" * 400,  # Arabic-Indic digits: never a JSON number
        "",
    ]
    for text in texts:
        assert _long_digit_run(text) is bool(regex.search(text)), text[:20]


def test_a_whole_number_too_long_still_refused():
    text = json.dumps([{"step": 1}]).replace("1", "9" * (MAX_DIGITS + 1))
    with pytest.raises(LabError, match=f"a whole number with {MAX_DIGITS + 1} digits"):
        load_json(text, "x.json")
    assert load_json("[" + "9" * MAX_DIGITS + "]", "x.json") == [int("9" * MAX_DIGITS)]


# ------------------------------------------------------------- run columns, MLflow folders


@pytest.mark.parametrize(
    ("run", "dropped"),
    [
        (["", " ", None] * 3, True),  # blank everywhere: one unnamed run
        (["", "", "a"], False),  # a name after blanks
        (["a", "", ""], False),
        ([[1], "", ""], False),  # unhashable (a JSON list): looked at row by row
        (["", [1], ""], False),
    ],
)
def test_blank_run_column_dropped_only_when_every_row_is_blank(run, dropped):
    from mtl_core.runfile.cells import drop_blank_run

    col = np.empty(len(run), dtype=object)
    col[:] = run
    assert ("run" not in drop_blank_run({"run": col, "step": np.arange(len(run))})) is dropped


def test_repeated_texts_are_coded_without_the_empty_parts():
    from mtl_core.runfile.coded import coded, repeated

    vals = repeated(["a", "zz", "b", "a"], [2, 0, 1, 3])
    assert vals.tolist() == ["a", "a", "b", "a", "a", "a"]
    assert coded(vals).uniques.tolist() == ["a", "b", "a"]  # "zz" names no row


def test_mlflow_folder_with_an_empty_metric_file_reads_the_others(tmp_path):
    from mtl_core.runfile import read_run_file

    run = tmp_path / "run"
    (run / "metrics" / "affinity" / "a").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: r\n")
    (run / "metrics" / "affinity" / "a" / "b").write_text("1000 0.25 0\n2000 0.5 1\n")
    (run / "metrics" / "affinity" / "b").mkdir()
    (run / "metrics" / "affinity" / "b" / "a").write_text("")  # created, nothing logged
    (run / "metrics" / "affinity" / "a" / "c").write_text("3000 -0.125 1\n")
    parsed = read_run_file(run)
    aff = parsed.affinity
    assert aff["source"].tolist() == ["a", "a", "a"]
    assert aff["target"].tolist() == ["b", "b", "c"]
    assert aff["affinity"].tolist() == [0.25, 0.5, -0.125]
    assert aff["wall_time"].tolist() == [1.0, 2.0, 3.0] and parsed.runs == [""]


def test_distinct_dictionary_texts_keep_their_codes_as_factors():
    import pyarrow as pa

    from mtl_core.runfile.coded import factor_codes, remember

    vals = remember(np.array(["b", "a"], dtype=object), np.array([1, 0, 1, 1]),
                    pa.array(["b", "a"]))  # fmt: skip
    codes, count = factor_codes(vals)
    assert count == 2 and codes.tolist() == [1, 0, 1, 1]


def test_duplicate_among_many_steps_found_by_marking(monkeypatch):
    from mtl_core.runfile import read_run_file, validate

    seen = []
    real = validate._all_distinct
    monkeypatch.setattr(validate, "_all_distinct", lambda g, r: seen.append(r) or real(g, r))
    rows = [f"{s},a{s % 40},b{s % 40},0.1" for s in range(3000)]  # 3000 x 40 x 40 keys
    rows.insert(7, "40,a0,b0,0.2")  # out of order, a second value for (step 40, a0 -> b0)
    text = ("step,source,target,affinity\n" + "\n".join(rows) + "\n").encode()
    with pytest.raises(LabError, match=r"row 42 .*duplicated cell \(step 40, .*first at row 8 "):
        read_run_file(text, "log.csv")
    assert seen and 4 * 2**20 < seen[0] <= validate._MARKED_KEYS  # past the old cap: marked


# --- Arrow's threads: the CLI's import only (mtl_core.runfile.threads) ----------------------


def _long_frame(rows: int = 3000):
    import pandas as pd

    rng = np.random.default_rng(3)
    tasks = ["seg", "depth", "normal"]
    pairs = [(a, b) for a in tasks for b in tasks]
    steps = np.repeat(np.arange(rows // len(pairs)), len(pairs))
    return pd.DataFrame({
        "step": steps,
        "source": [pairs[k % len(pairs)][0] for k in range(len(steps))],
        "target": [pairs[k % len(pairs)][1] for k in range(len(steps))],
        "affinity": rng.normal(0, 0.01, len(steps)),
    })  # fmt: skip


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_a_threaded_read_gives_the_same_run_as_a_one_thread_read(tmp_path, ext) -> None:
    from mtl_core.runfile import read_run_file

    frame = _long_frame()
    path = tmp_path / f"l{ext}"
    frame.to_csv(path, index=False) if ext == ".csv" else frame.to_parquet(path, index=False)
    one = read_run_file(path)
    many = read_run_file(path, threads=True)
    assert one.affinity.equals(many.affinity) and one.notes == many.notes
    np.testing.assert_array_equal(many.affinity["affinity"].to_numpy(), frame["affinity"])


def test_only_the_cli_import_lets_arrow_use_threads(tmp_path, monkeypatch) -> None:
    import pyarrow.csv as pacsv

    from mtl_core.commands.cli import main
    from mtl_core.runfile import read_run_file

    seen = []
    real = pacsv.ReadOptions

    def spy(*args, **kwargs):
        seen.append(kwargs.get("use_threads"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pacsv, "ReadOptions", spy)
    path = tmp_path / "l.csv"
    _long_frame(90).to_csv(path, index=False)
    read_run_file(path)  # the app's upload child and every other reader
    assert seen and set(seen) == {False}
    seen.clear()
    assert main(["import", str(path), "--store", str(tmp_path / "s.sqlite")]) == 0
    assert seen and set(seen) == {True}
    from mtl_core.runfile.threads import use_threads

    assert use_threads() is False  # the setting ended with the read
