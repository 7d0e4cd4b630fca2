"""Issues 20/21, round 4: new variants of the handed field-case kinds (tests/data/field3,
tests/data/groundtruth), written as their producers write them, read back cell by cell.

Each variant either reads faithfully (rows = source, the logged steps, the written values) or
is refused with one line naming what is wrong."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile.read import read_run_file

T = ["seg", "depth", "normal", "edge"]
REF = np.array(
    [[0.041, 0.023, -0.015, 0.002], [0.003, 0.038, 0.021, -0.012],
     [-0.017, 0.019, 0.035, 0.024], [0.018, -0.014, 0.001, 0.033]]
)  # fmt: skip
STEPS = [10, 20, 30]


def _mat(step: int) -> np.ndarray:
    """The matrix logged at ``step``: distinct per step, so a step mix-up shows."""
    return np.round(REF + step * 1e-4, 6)


def _expected(tasks: list[str] = T, steps: list[int] = STEPS) -> pd.DataFrame:
    rows = [
        (s, a, b, float(_mat(s)[i, j]))
        for s in steps
        for i, a in enumerate(tasks)
        for j, b in enumerate(tasks)
    ]
    return pd.DataFrame(rows, columns=["step", "source", "target", "affinity"])


def _same(parsed, expected: pd.DataFrame) -> None:
    """The affinity of ``parsed`` (a ParsedRun, or its affinity frame) is ``expected``."""
    aff = parsed if isinstance(parsed, pd.DataFrame) else parsed.affinity
    got = aff[["step", "source", "target", "affinity"]]
    key = ["step", "source", "target"]
    got = got.sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    assert got[key].astype(str).equals(expected[key].astype(str))
    np.testing.assert_allclose(got["affinity"].to_numpy(float), expected["affinity"], atol=1e-12)


def _wide(fmt: str, tasks: list[str] = T) -> bytes:
    d = pd.DataFrame({"step": STEPS})
    for i, s in enumerate(tasks):
        for j, t in enumerate(tasks):
            d[fmt.format(source=s, target=t)] = [_mat(st)[i, j] for st in STEPS]
    return d.to_csv(index=False).encode()


# --- kind: per-step columns named by a tag pattern (G08) -----------------------------------


@pytest.mark.parametrize(
    "fmt", ["{source}→{target}", "aff[{source},{target}]", "aff.{source}|{target}+"]
)
def test_pattern_with_unicode_or_regex_characters_reads_every_cell(fmt: str) -> None:
    _same(read_run_file(_wide(fmt), "w.csv", tag_pattern=fmt), _expected())


def test_pattern_fitting_a_column_two_ways_is_refused_never_split_at_a_guess() -> None:
    # before: 'aff_seg_a_seg' read as seg -> a_seg: 48 of 192 cells under wrong task names
    tasks = ["seg_a", "seg", "normal", "edge"]
    with pytest.raises(LabError, match=r"fits the tag pattern 'aff_\{source\}_\{target\}' more"):
        read_run_file(_wide("aff_{source}_{target}", tasks), "w.csv",
                      tag_pattern="aff_{source}_{target}")  # fmt: skip


def test_pattern_fitting_an_mlflow_key_two_ways_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run1"
    for s in ("a", "a_b", "b"):
        for t in ("a", "a_b", "b"):
            p = run / "metrics" / f"aff_{s}_{t}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("1796600000000 0.01 10\n")
    (run / "meta.yaml").write_text("run_id: run1\nrun_name: r\n")
    with pytest.raises(LabError, match="more than one way"):
        read_run_file(run, tag_pattern="aff_{source}_{target}")


# --- kind: '#' comment lines below the header (every delimited text reader) ----------------


def _long_csv(sep: str = ",") -> list[str]:
    return _expected().to_csv(index=False, sep=sep).splitlines(keepends=True)


def test_comment_line_between_long_rows_is_skipped_with_its_line_number() -> None:
    # before: "not a readable CSV table (CSV parse error: Row #6: Expected 4 columns, got 1)"
    lines = _long_csv()
    text = "".join([*lines[:5], "# resumed from checkpoint 20\n", *lines[5:]])
    parsed = read_run_file(text.encode(), "a.csv")
    _same(parsed, _expected())
    assert "a.csv: skipped 1 '#' comment line(s) below the header (line 6)" in parsed.notes


def test_comment_lines_below_a_matrix_header_and_at_the_end_of_a_tsv_are_skipped() -> None:
    m = pd.DataFrame(REF, index=T, columns=T).to_csv(sep="\t").splitlines(keepends=True)
    text = "".join([m[0], "# rows = source\n", *m[1:3], "  # half way\n", *m[3:], "# end\n"])
    parsed = read_run_file(text.encode(), "m.tsv")
    _same(parsed, _expected(steps=[0]).assign(affinity=REF.ravel()))
    assert "m.tsv: skipped 3 '#' comment line(s) below the header (lines 2, 5, 8)" in parsed.notes


def test_rows_after_a_comment_line_are_named_by_their_line_in_the_file() -> None:
    lines = _long_csv()
    bad = lines[7].rsplit(",", 1)[0] + ",oops\n"
    text = "".join(["# exported by hand\n", lines[0], "# note\n", *lines[1:7], bad, *lines[8:]])
    with pytest.raises(LabError, match=r"row 7 \(line 10\), column 'affinity': 'oops' is not"):
        read_run_file(text.encode(), "a.csv")


def test_a_row_starting_with_an_excel_error_is_data_not_a_comment() -> None:
    m = pd.DataFrame(REF, index=T, columns=T)
    text = m.to_csv(index=False)  # no row labels: first cells are values
    lines = text.splitlines(keepends=True)
    lines[2] = "#N/A" + lines[2][lines[2].index(",") :]
    parsed = read_run_file("".join(lines).encode(), "m.csv")
    assert parsed.left_out == 1
    assert not any("comment" in n for n in parsed.notes)


def test_only_comment_lines_after_the_header_is_refused() -> None:
    with pytest.raises(LabError, match="only '#' comment lines follow the header"):
        read_run_file(b"step,source,target,affinity\n# nothing logged\n", "a.csv")


# --- kind: R's write.table / write.csv output ------------------------------------------------


def _r_num(v: float) -> str:
    return repr(float(v))


def test_r_write_table_matrix_default_output_reads_from_a_txt_file() -> None:
    # before: "unsupported file type .txt"
    text = (
        " ".join(f'"{t}"' for t in T)
        + "\n"
        + "".join(f'"{s}" ' + " ".join(_r_num(v) for v in REF[i]) + "\n" for i, s in enumerate(T))
    )
    parsed = read_run_file(text.encode(), "x.txt")
    _same(parsed, _expected(steps=[0]).assign(affinity=REF.ravel()))
    assert any("one name short (R's write.table)" in n for n in parsed.notes)


def test_r_write_table_of_a_long_data_frame_drops_r_row_numbers() -> None:
    rows = _expected().itertuples()
    text = '"step" "source" "target" "affinity"\n' + "".join(
        f'"{k + 1}" {r.step} "{r.source}" "{r.target}" {_r_num(r.affinity)}\n'
        for k, r in enumerate(rows)
    )
    parsed = read_run_file(text.encode(), "x.txt")
    _same(parsed, _expected())
    assert "column '' holds 1, 2, 3, ... (a saved index: R's row names) and was left out" in (
        parsed.notes
    )


def test_r_write_table_with_tabs_and_write_csv_matrix_read_the_same() -> None:
    tab = (
        "\t".join(T)
        + "\n"
        + "".join(s + "\t" + "\t".join(_r_num(v) for v in REF[i]) + "\n" for i, s in enumerate(T))
    )
    csv = (
        '"",'
        + ",".join(f'"{t}"' for t in T)
        + "\n"
        + "".join(f'"{s}",' + ",".join(_r_num(v) for v in REF[i]) + "\n" for i, s in enumerate(T))
    )
    want = _expected(steps=[0]).assign(affinity=REF.ravel())
    _same(read_run_file(tab.encode(), "x.txt"), want)
    _same(read_run_file(csv.encode(), "x.csv"), want)


def test_a_txt_file_inside_a_folder_is_not_read_as_a_table(tmp_path: Path) -> None:
    (tmp_path / "affinity.csv").write_bytes(_wide("affinity/{source}/{target}"))
    (tmp_path / "README.txt").write_text("notes about this run, not a table\n")
    _same(read_run_file(tmp_path), _expected())


# --- kind: MLflow metric files without steps --------------------------------------------------

_TS = 1796600000000  # ms


def _mlflow_run(root: Path, line, order=STEPS) -> Path:
    """A file-store run folder, one ``metrics/affinity/<s>/<t>`` file per cell, its lines
    written by ``line(timestamp, value, step)`` in the order of the steps ``order``."""
    run = root / "0" / "r1"
    for i, s in enumerate(T):
        for j, t in enumerate(T):
            p = run / "metrics" / "affinity" / s / t
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("".join(line(_TS + st * 100, float(_mat(st)[i, j]), st) for st in order))
    (run / "meta.yaml").write_text("run_id: r1\nrun_name: r\nexperiment_id: '0'\n")
    return run


def _renumbered() -> pd.DataFrame:
    e = _expected()
    return e.assign(step=e["step"].map({10: 0, 20: 1, 30: 2}))


@pytest.mark.parametrize("order", [STEPS, STEPS[::-1]], ids=["in order", "lines shuffled"])
def test_mlflow_two_field_lines_are_numbered_by_timestamp(tmp_path: Path, order) -> None:
    # before: "duplicated cell (step 0, ...)": each file's values all read at step 0
    run = _mlflow_run(tmp_path, lambda ts, v, st: f"{ts} {v!r}\n", order)
    parsed = read_run_file(run)
    _same(parsed, _renumbered())
    assert any(n.startswith("r1: every value is at step 0") for n in parsed.notes)
    np.testing.assert_allclose(sorted(set(parsed.affinity["wall_time"])), [_TS / 1000 + 1,
                               _TS / 1000 + 2, _TS / 1000 + 3])  # fmt: skip


def test_mlflow_log_metric_without_step_writes_step_0_and_reads_the_same(tmp_path: Path) -> None:
    run = _mlflow_run(tmp_path, lambda ts, v, st: f"{ts} {v!r} 0\n")
    _same(read_run_file(run), _renumbered())


def test_mlflow_key_without_steps_beside_stepped_keys_keeps_its_last_value(tmp_path: Path) -> None:
    run = _mlflow_run(tmp_path, lambda ts, v, st: f"{ts} {v!r} {st}\n")
    odd = run / "metrics" / "affinity" / "seg" / "depth"
    odd.write_text(f"{_TS + 3000} 0.5\n{_TS + 1000} 0.25\n{_TS + 2000} 0.75\n")
    parsed = read_run_file(run)
    got = parsed.affinity
    cell = got[(got.source == "seg") & (got.target == "depth")]
    assert cell[["step", "affinity"]].values.tolist() == [[0, 0.5]]  # the latest by timestamp
    assert any("1 metric key(s) logged without a step" in n and "2 earlier values" in n
               for n in parsed.notes)  # fmt: skip
    assert len(got) == 15 * 3 + 1


# --- kind: percent text in value cells (every table reader) ---------------------------------

_PCT_NOTE = "values written as percent ('4.1%') read as fractions (4.1% = 0.041)"


def _pct(v: float) -> str:
    return f"{v * 100:.4g}%"  # what a spreadsheet's percent format shows: 4.1%, -1.5%


def _as_percent(e: pd.DataFrame) -> pd.DataFrame:
    return e.assign(affinity=[float(_pct(v)[:-1]) / 100 for v in e["affinity"]])


def test_percent_matrix_csv_reads_as_fractions_exactly() -> None:
    # before: "row 1 (line 2), column 'seg': '4.1%' is not a number"
    m = pd.DataFrame(REF, index=T, columns=T).map(_pct)
    parsed = read_run_file(m.to_csv().encode(), "p.csv")
    got = parsed.affinity.set_index(["source", "target"])["affinity"]
    assert got[("seg", "seg")] == 0.041 and got[("normal", "seg")] == -0.017  # exact doubles
    _same(parsed, _expected(steps=[0]))
    assert _PCT_NOTE in parsed.notes


@pytest.mark.parametrize("ext", [".csv", ".json", ".parquet", ".jsonl"])
def test_percent_long_table_reads_as_fractions_in_every_container(ext: str) -> None:
    from mtl_core.runfile.tables import table_bytes

    e = _expected()
    d = e.assign(affinity=[_pct(v) for v in e["affinity"]])
    data = d.to_json(orient="records").encode() if ext == ".json" else table_bytes(d, ext)
    parsed = read_run_file(data, "p" + ext)
    _same(parsed, _as_percent(e))
    assert _PCT_NOTE in parsed.notes


def test_percent_cells_of_a_tracker_table_read_as_fractions() -> None:
    d = pd.read_csv(io.BytesIO(_wide("aff/{source}/{target}")))
    d = d.astype(object)
    d.iloc[:, 1:] = d.iloc[:, 1:].map(_pct)
    d.loc[1, "aff/seg/depth"] = "NA"  # not logged at step 20
    parsed = read_run_file(d.to_csv(index=False).encode(), "w.csv",
                           tag_pattern="aff/{source}/{target}")  # fmt: skip
    e = _as_percent(_expected())
    e = e[~((e.step == 20) & (e.source == "seg") & (e.target == "depth"))]
    _same(parsed, e)


def test_percent_beside_plain_numbers_is_refused_naming_the_cell() -> None:
    m = pd.DataFrame(REF, index=T, columns=T).map(_pct)
    m.loc["depth", "normal"] = "0.021"  # a fraction? a percent? never guessed
    with pytest.raises(LabError, match=(
        r"^cannot import p.csv: row 2 \(line 3\), column 'normal': '0.021' has no '%' while "
        r"other values are written as percent \(e.g. '4.1%'\): write every value the same way"
    )):  # fmt: skip
        read_run_file(m.to_csv().encode(), "p.csv")


def test_percent_column_beside_a_plain_number_column_is_refused() -> None:
    m = pd.DataFrame(REF, index=T, columns=T)
    m["depth"] = m["depth"].map(_pct)
    with pytest.raises(LabError, match=r"column 'seg': '0.041' has no '%'"):
        read_run_file(m.to_csv().encode(), "p.csv")


def test_percent_text_with_a_declared_unit_is_refused_not_divided_twice() -> None:
    m = pd.DataFrame(REF, index=T, columns=T).map(_pct)
    with pytest.raises(LabError, match=r"written with '%' and were read as percent already; "
                       r"drop --unit percent"):  # fmt: skip
        read_run_file(m.to_csv().encode(), "p.csv", unit="percent")


# --- kind: pandas to_json orients (matrix and long forms) ----------------------------------

_MATRIX = pd.DataFrame(REF, index=T, columns=T)


def _json(df: pd.DataFrame, orient: str) -> bytes:
    return df.to_json(orient=orient, double_precision=15).encode()


@pytest.mark.parametrize("orient", ["table", "split", "columns", "records"])
def test_pandas_matrix_orients_read_rows_as_sources(orient: str) -> None:
    # before: orient='table' refused ("found an object (keys: 'schema', 'data')")
    _same(read_run_file(_json(_MATRIX, orient), "m.json"), _expected(steps=[0]))


def test_pandas_matrix_table_orient_with_a_named_index_reads_it_as_row_labels() -> None:
    named = _MATRIX.rename_axis("source")
    _same(read_run_file(_json(named, "table"), "m.json"), _expected(steps=[0]))
    targets = _MATRIX.T.rename_axis("target")  # rows = targets, declared by the index's name
    _same(read_run_file(_json(targets, "table"), "m.json"), _expected(steps=[0]))


def test_pandas_matrix_index_orient_is_read_by_pandas_meaning_and_flipped_on_request() -> None:
    data = _json(_MATRIX, "index")  # {source: {target: v}}: the same shape as orient='columns'
    plain = read_run_file(data, "m.json")
    assert plain.json_object
    assert any("flip it with --rows target" in n for n in plain.notes)
    _same(read_run_file(data, "m.json", rows="target"), _expected(steps=[0]))


def test_pandas_matrix_values_orient_makes_up_task_names() -> None:
    parsed = read_run_file(_json(_MATRIX, "values"), "m.json")
    _same(parsed, _expected(tasks=["t0", "t1", "t2", "t3"], steps=[0]))
    assert "the matrix has no task names: t0..t3 were made up" in parsed.notes


@pytest.mark.parametrize("orient", ["table", "split", "records", "columns", "index"])
def test_pandas_long_table_orients_read_every_row(orient: str) -> None:
    # before: 'table' refused, 'index' read as a 48-column matrix ("missing column 'step'")
    parsed = read_run_file(_json(_expected(), orient), "l.json")
    _same(parsed, _expected())
    assert not parsed.json_object  # never told "outer keys are targets" for a table
    assert not any("JSON object of objects" in n for n in parsed.notes)


def test_pandas_long_values_orient_is_refused_naming_the_fix() -> None:
    with pytest.raises(LabError, match=(
        r"^cannot import l.json: an array of arrays holding text is a table without column "
        r"names \(pandas' to_json\(orient='values'\) drops them\): save it with "
        r"orient='records', 'split' or 'table'$"
    )):  # fmt: skip
        read_run_file(_json(_expected(), "values"), "l.json")


# --- kind: W&B chart panel "Export CSV" ----------------------------------------------------


def _panel(runs: dict[str, float], key: str = "affinity/{source}/{target}", bands=True) -> bytes:
    """A panel export: ``Step``, then per run and key the curve and its __MIN/__MAX band (the
    band set apart from the curve, so reading a band column shows); run values offset."""
    d = pd.DataFrame({"Step": STEPS})
    for run, off in runs.items():
        for i, s in enumerate(T):
            for j, t in enumerate(T):
                col = f"{run} - {key.format(source=s, target=t)}"
                vals = [_mat(st)[i, j] + off for st in STEPS]
                d[col] = vals
                if bands:
                    d[col + "__MIN"] = [v - 0.5 for v in vals]
                    d[col + "__MAX"] = [v + 0.5 for v in vals]
    return d.to_csv(index=False).encode()


def test_wandb_panel_export_of_one_run_reads_the_curves_not_the_bands() -> None:
    # before: "missing column 'source' ... give a tag pattern" (the run prefix hid the keys)
    parsed = read_run_file(_panel({"sunny-river-3": 0.0}), "w.csv")
    _same(parsed, _expected())
    assert parsed.runs == [""]
    assert (
        "w.csv: read as a W&B panel export: 1 run(s) (sunny-river-3), the run-name prefix "
        "stripped from 16 key(s), 32 __MIN/__MAX band column(s) left out"
    ) in parsed.notes


def test_wandb_panel_export_of_several_runs_reads_as_several_runs() -> None:
    parsed = read_run_file(_panel({"sunny-river-3": 0.0, "lr 0.1 - seed 2": 0.25}), "w.csv")
    assert sorted(parsed.runs) == ["lr 0.1 - seed 2", "sunny-river-3"]  # ' - ' in a run name
    aff = parsed.affinity
    for run, off in (("sunny-river-3", 0.0), ("lr 0.1 - seed 2", 0.25)):
        e = _expected()
        _same(aff[aff.run == run], e.assign(affinity=e["affinity"] + off))


def test_wandb_panel_export_with_a_tag_pattern_and_sparse_runs() -> None:
    d = pd.read_csv(io.BytesIO(_panel({"a": 0.0, "b": 0.1}, key="{source}->{target}",
                                      bands=False)))  # fmt: skip
    d.loc[0, [c for c in d.columns if c.startswith("b - ")]] = np.nan  # b starts at step 20
    parsed = read_run_file(d.to_csv(index=False).encode(), "w.csv",
                           tag_pattern="{source}->{target}")  # fmt: skip
    aff = parsed.affinity
    assert sorted(set(aff[aff.run == "a"].step)) == STEPS
    assert sorted(set(aff[aff.run == "b"].step)) == [20, 30]
    got = aff[(aff.run == "b") & (aff.step == 30) & (aff.source == "edge") & (aff.target == "seg")]
    assert got["affinity"].tolist() == [pytest.approx(_mat(30)[3, 0] + 0.1, abs=1e-12)]


def test_wandb_panel_export_of_a_grouped_curve_says_it_is_the_group_mean() -> None:
    parsed = read_run_file(_panel({"Group: lr=0.1": 0.0}), "w.csv")
    _same(parsed, _expected())
    assert any("1 grouped curve(s) are the group's mean" in n for n in parsed.notes)


# --- the command line: the same reads, one line and exit 2 on a refusal --------------------


def test_cli_imports_a_panel_export_as_two_runs_and_refuses_mixed_percent_in_one_line(
    tmp_path: Path, capsys
) -> None:
    from mtl_core.commands.cli import main
    from mtl_core.store import Store

    store = tmp_path / "s.sqlite"
    panel = tmp_path / "w.csv"
    panel.write_bytes(_panel({"seed-0": 0.0, "seed-1": 0.1}))
    assert main(["import", str(panel), "--store", str(store)]) == 0
    assert len(Store(store).list_runs()) == 2
    capsys.readouterr()
    m = pd.DataFrame(REF, index=T, columns=T).map(_pct)
    m.loc["seg", "edge"] = "0.002"
    bad = tmp_path / "p.txt"
    bad.write_text(m.to_csv(sep="\t"))
    assert main(["import", str(bad), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "column 'edge': '0.002' has no '%' while other values are written as percent" in err


def test_wandb_panel_export_on_the_step_axis_reads_and_on_wall_time_is_refused() -> None:
    d = pd.read_csv(io.BytesIO(_panel({"r1": 0.0})))
    _same(read_run_file(d.rename(columns={"Step": "_step"}).to_csv(index=False).encode(),
                        "w.csv"), _expected())  # fmt: skip
    wall = d.rename(columns={"Step": "Wall Time"}).to_csv(index=False).encode()
    with pytest.raises(LabError, match=(
        r"^cannot import w.csv: a W&B panel export with the x axis 'Wall Time': the lab reads "
        r"steps; export the panel again with the x axis 'Step'$"
    )):  # fmt: skip
        read_run_file(wall, "w.csv")


def test_r_write_table_without_quotes_or_row_names_reads_too() -> None:
    unquoted = (
        " ".join(T)
        + "\n"
        + "".join(s + " " + " ".join(_r_num(v) for v in REF[i]) + "\n" for i, s in enumerate(T))
    )  # write.table(m, quote = FALSE)
    _same(read_run_file(unquoted.encode(), "x.txt"), _expected(steps=[0]))
    rows = _expected().itertuples()
    plain = '"step" "source" "target" "affinity"\n' + "".join(
        f'{r.step} "{r.source}" "{r.target}" {_r_num(r.affinity)}\n' for r in rows
    )  # write.table(df, row.names = FALSE)
    _same(read_run_file(plain.encode(), "x.txt"), _expected())


def test_pandas_table_orient_without_index_or_with_a_multiindex_reads_the_long_table() -> None:
    e = _expected()
    _same(read_run_file(e.to_json(orient="table", index=False).encode(), "l.json"), e)
    multi = e.set_index(["step", "source", "target"]).to_json(orient="table", double_precision=15)
    _same(read_run_file(multi.encode(), "l.json"), e)


def test_a_header_line_without_a_line_break_or_rows_is_refused_in_plain_words() -> None:
    # before: "not a readable CSV table (Could not skip initial 1 rows from CSV file, ...)"
    for data, fname in ((b"step,source,target,affinity", "a.csv"), (b"hello", "notes.txt")):
        with pytest.raises(LabError, match=f"^cannot import {fname}: has a header but no rows$"):
            read_run_file(data, fname)


def test_a_matrix_row_labelled_by_a_task_named_with_a_hash_is_data_not_a_comment() -> None:
    tasks = ["#1", "#2", "#3", "#4"]
    m = pd.DataFrame(REF, index=tasks, columns=tasks).to_csv()
    parsed = read_run_file(m.encode(), "m.csv")
    _same(parsed, _expected(tasks=tasks, steps=[0]))
    assert not any("comment" in n for n in parsed.notes)


@pytest.mark.parametrize(
    "body",
    [
        # pandas' split orient written once per line (JSON lines): each cell a list
        "\n".join(['{"columns":["a","b"],"index":["a","b"],"data":[[0.0,0.1],[0.2,0.0]]}'] * 3),
        # records whose value cells are objects
        '[{"step":1,"source":"a","target":"b","affinity":{"v":0.1}}]',
    ],
)
def test_cells_holding_json_lists_or_objects_are_refused_in_one_line(tmp_path, body):
    from mtl_core.runfile.read import UNREADABLE

    path = tmp_path / "cells.json"
    path.write_text(body)
    with pytest.raises(LabError) as err:
        read_run_file(path)
    msg = str(err.value)
    assert msg.startswith("cannot import cells.json: ") and "\n" not in msg
    assert UNREADABLE not in msg and "is not a number" in msg


# --- round 5 kind: '#' end-of-row comments (every delimited text reader) --------------------

_M0 = _expected(steps=[0]).assign(affinity=REF.ravel())


def _matrix_lines(sep: str = ",") -> list[str]:
    return pd.DataFrame(REF, index=T, columns=T).to_csv(sep=sep).splitlines()


@pytest.mark.parametrize(("sep", "ext"), [(",", "csv"), ("\t", "tsv"), (";", "csv")])
@pytest.mark.parametrize("gap", ["  ", " ", "\t", "{sep}", "{sep} "])
def test_end_of_row_comment_on_a_matrix_row_is_left_out_and_its_line_named(sep, ext, gap):
    # before: "row 2 (line 3), column 'edge': '0.024  # resumed' is not a number"
    lines = _matrix_lines(sep)
    lines[3] += gap.format(sep=sep) + "# resumed here, seed 2"
    lines[4] += gap.format(sep=sep) + "#done"
    parsed = read_run_file(("\n".join(lines) + "\n").encode(), f"m.{ext}")
    _same(parsed, _M0)
    assert (
        f"m.{ext}: read the values before an end-of-row '#' comment on 2 row(s) and left the "
        "comment out (lines 4, 5)"
    ) in parsed.notes


def test_end_of_row_comments_on_long_rows_keep_steps_and_count_lines_below_comment_lines():
    lines = _long_csv()
    lines[3] = lines[3].rstrip("\n") + "   # lr halved\n"
    text = "".join(["# exported by hand\n", lines[0], "# note\n", *lines[1:]])
    parsed = read_run_file(text.encode(), "a.csv")
    _same(parsed, _expected())
    assert "a.csv: skipped 1 '#' comment line(s) below the header (line 3)" in parsed.notes
    assert any(n.endswith("left the comment out (line 6)") for n in parsed.notes)


def test_a_comment_glued_to_a_value_is_refused_naming_its_line() -> None:
    lines = _matrix_lines()
    lines[2] += "#resumed"  # no blank: '0.012#resumed' could be a mangled number
    with pytest.raises(LabError, match=(
        r"^cannot import m.csv: row 2 \(line 3\), column 'edge': '-0.012#resumed' is not a "
        r"number \(an end-of-row '#' comment must be parted from the last value by a blank\)$"
    )):  # fmt: skip
        read_run_file(("\n".join(lines) + "\n").encode(), "m.csv")


def test_hash_cells_inside_a_row_stay_data_labels_marks_and_quoted_text() -> None:
    tasks = ["task #1", "task #2", "#3", "d"]
    m = pd.DataFrame(REF, index=tasks, columns=tasks)
    m.iloc[1, 3] = np.nan
    text = m.to_csv(na_rep="#N/A")  # a label 'task #1', a '#N/A' last cell: no comment
    parsed = read_run_file(text.encode(), "m.csv")
    assert parsed.left_out == 1
    assert not any("comment" in n for n in parsed.notes)
    got = parsed.affinity.set_index(["source", "target"])["affinity"]
    assert got[("task #1", "#3")] == REF[0, 2] and ("task #2", "d") not in got.index
    quoted = b'source,a,b\na,0.1,"0.2  # not a comment"\nb,0.3,0.4\n'
    with pytest.raises(LabError, match=r"row 1 \(line 2\), column 'b': '0.2  # not a comment'"):
        read_run_file(quoted, "q.csv")


# --- round 5 kind: old-Mac '\r' and mixed line ends --------------------------------------------


@pytest.mark.parametrize("ends", ["\r", "\r\n", "mixed"])
@pytest.mark.parametrize("ext", ["csv", "tsv", "txt", "jsonl"])
def test_every_line_end_reads_like_newline_with_comments_and_line_numbers(ends, ext) -> None:
    # before: a '\r' file's comment line, R header or space-separated .txt was refused
    if ext == "jsonl":
        lines = [json.dumps(r) for r in _expected().to_dict("records")]
    else:
        sep = {"csv": ",", "tsv": "\t", "txt": " "}[ext]
        lines = _expected().to_csv(index=False, sep=sep).splitlines()
        lines.insert(4, "# resumed")
    cycle = ["\r", "\n", "\r\n"] if ends == "mixed" else [ends]
    text = "".join(line + cycle[k % len(cycle)] for k, line in enumerate(lines))
    parsed = read_run_file(text.encode(), f"a.{ext}")
    _same(parsed, _expected())
    if ext != "jsonl":
        assert f"a.{ext}: skipped 1 '#' comment line(s) below the header (line 5)" in parsed.notes
    bad = text.replace(repr(float(_expected().affinity[8])), "oops", 1)
    # row 9: the header and the comment line above it in the delimited files
    where = "line 9" if ext == "jsonl" else "row 9 (line 11)"
    with pytest.raises(LabError, match=rf"{re.escape(where)}"):
        read_run_file(bad.encode(), f"a.{ext}")


def test_r_matrix_with_old_mac_line_ends_reads_its_row_names() -> None:
    text = '"seg","depth"\r"seg",0.5,0.25\r"depth",-0.125,1\r'
    parsed = read_run_file(text.encode(), "m.csv")
    want = pd.DataFrame(
        [(0, "seg", "seg", 0.5), (0, "seg", "depth", 0.25), (0, "depth", "seg", -0.125),
         (0, "depth", "depth", 1.0)], columns=["step", "source", "target", "affinity"],
    )  # fmt: skip
    _same(parsed, want)


# --- round 5 kind: space- and tab-aligned .txt tables ----------------------------------------


def _note_ws(name: str) -> str:
    return f"{name}: read as whitespace-separated (a run of spaces or tabs is one separator)"


def test_numpy_savetxt_with_a_field_width_reads_every_cell() -> None:
    buf = io.StringIO()
    np.savetxt(buf, REF, fmt="%12.6f")  # '    0.041000    0.023000 ...'
    parsed = read_run_file(buf.getvalue().encode(), "m.txt")
    _same(parsed, _expected(tasks=["t0", "t1", "t2", "t3"], steps=[0]).assign(affinity=REF.ravel()))
    assert _note_ws("m.txt") in parsed.notes


def test_to_string_and_padded_r_write_table_matrices_read_row_names() -> None:
    frame = pd.DataFrame(REF, index=T, columns=T)
    r_padded = (
        "        " + "  ".join(f'"{t}"'.rjust(9) for t in T) + "\n"
        + "".join(
            f'"{s}"'.ljust(9) + " ".join(f"{v: .3f}".rjust(10) for v in REF[i]) + "\n"
            for i, s in enumerate(T)
        )
    )  # fmt: skip
    for name, text in [("a.txt", frame.to_string()), ("r.txt", r_padded)]:
        parsed = read_run_file(text.encode(), name)
        _same(parsed, _M0)
        assert _note_ws(name) in parsed.notes
        short = "the header is one name short (R's write.table): first column read as row names"
        assert f"{name}: {short}" in parsed.notes


def test_tab_aligned_long_txt_reads_steps_and_a_short_row_is_refused_with_its_line() -> None:
    rows = _expected()
    text = "step\t\tsource\ttarget\taffinity\n" + "".join(
        f"{r.step}\t\t{r.source}\t{r.target}\t\t{r.affinity!r}\n" for r in rows.itertuples()
    )
    parsed = read_run_file(text.encode(), "l.txt")
    _same(parsed, rows)
    assert _note_ws("l.txt") in parsed.notes
    short = text.replace("\tseg\tdepth\t", "\tseg\t", 1)
    with pytest.raises(LabError, match=r"^cannot import l.txt: .*(line 3|Row #3)"):
        read_run_file(short.encode(), "l.txt")


# --- round 5 kind: MLflow run names -----------------------------------------------------------


def _stepped(ts: int, v: float, st: int) -> str:
    return f"{ts} {v!r} {st}\n"


@pytest.mark.parametrize(
    ("meta_line", "name"),
    [
        ("run_name: gentle-owl-42", "gentle-owl-42"),  # MLflow's generated name, plain
        ("run_name: 'seed: 3'", "seed: 3"),  # yaml.safe_dump quotes a name with ': '
        ("run_name: 'it''s'", "it's"),
        ('run_name: "caf\\u00e9 #2"', "café #2"),
    ],
)
def test_mlflow_run_folder_takes_its_meta_yaml_run_name(tmp_path: Path, meta_line, name) -> None:
    run = _mlflow_run(tmp_path, _stepped)
    (run / "meta.yaml").write_text(f"artifact_uri: file:///x\n{meta_line}\nrun_id: r1\n")
    parsed = read_run_file(run)
    _same(parsed, _expected())
    assert parsed.meta["name"] == name


def test_mlflow_run_name_tag_wins_and_a_run_without_either_keeps_the_file_name(tmp_path) -> None:
    run = _mlflow_run(tmp_path, _stepped)
    (run / "tags").mkdir()
    (run / "tags" / "mlflow.runName").write_text("renamed-in-ui")
    assert read_run_file(run).meta["name"] == "renamed-in-ui"
    (run / "tags" / "mlflow.runName").unlink()
    (run / "meta.yaml").write_text("run_id: r1\nrun_name: ''\n")
    assert "name" not in read_run_file(run).meta


def test_mlflow_experiment_folder_names_each_run_by_its_run_name(tmp_path: Path) -> None:
    for rid, rname in [("a1", "lr-0.1"), ("b2", "lr-0.01")]:
        run = _mlflow_run(tmp_path / rid, _stepped)
        (run / "meta.yaml").write_text(f"run_id: {rid}\nrun_name: {rname}\n")
    parsed = read_run_file(tmp_path)
    assert sorted(parsed.runs) == ["lr-0.01", "lr-0.1"]
    assert "name" not in parsed.meta


def test_cli_import_names_the_stored_run_by_mlflow_run_name(tmp_path: Path, capsys) -> None:
    from mtl_core.commands.cli import main
    from mtl_core.store import Store

    run = _mlflow_run(tmp_path / "mlruns", _stepped)
    (run / "meta.yaml").write_text("run_id: r1\nrun_name: bold-fox-7\n")
    store = tmp_path / "s.sqlite"
    assert main(["import", str(run), "--store", str(store)]) == 0
    assert [r.name for r in Store(store).list_runs()] == ["bold-fox-7"]
    assert "imported run 1 'bold-fox-7': 4 tasks, 3 steps" in capsys.readouterr().out
    assert main(["import", str(run), "--store", str(store), "--name", "mine"]) == 0
    assert [r.name for r in Store(store).list_runs()] == ["bold-fox-7", "mine"]


def test_mlflow_stepless_note_names_the_timestamps_as_wall_clock_ms(tmp_path: Path) -> None:
    run = _mlflow_run(tmp_path, lambda ts, v, st: f"{ts} {v!r}\n")
    parsed = read_run_file(run)
    assert (
        "r1: every value is at step 0 (logged without a step): up to 3 values per metric key "
        "ordered by their timestamps (wall-clock ms since the epoch) and read as steps 0..2"
    ) in parsed.notes


# --- round 5 kind: which way a JSON object of objects was read ------------------------------


def test_json_object_note_leads_with_the_reading_and_shows_one_cell_both_ways() -> None:
    data = _json(_MATRIX, "index")  # {source: {target: v}}, the same JSON shape as 'columns'
    plain = read_run_file(data, "m.json")
    # read by pandas' meaning: outer keys = targets, so this file comes out transposed
    _same(plain, _expected(steps=[0]).assign(affinity=REF.T.ravel()))
    assert (
        plain.notes[0]
        == plain.orientation_note()
        == (
            "JSON object of objects: outer keys read as TARGETS, inner keys as sources (pandas' "
            "default to_json(), TAG's notebooks): source 'seg' onto target 'depth' = "
            "file['depth']['seg'] = 0.003; a to_json(orient='index') file has sources outside: "
            "flip it with --rows target (Upload: 'Outer keys are sources')"
        )
    )
    flipped = read_run_file(data, "m.json", rows="target")
    _same(flipped, _expected(steps=[0]))
    assert flipped.orientation_note() == (
        "JSON object of objects: outer keys read as SOURCES, inner keys as targets (declared: "
        "pandas' to_json(orient='index')): source 'seg' onto target 'depth' = "
        "file['seg']['depth'] = 0.023; if the outer keys are targets, import it without "
        "--rows target"
    )
    assert read_run_file(b'[{"step":1,"source":"a","target":"b","affinity":0.5}]', "l.json")
    assert read_run_file(_json(_MATRIX, "split"), "m.json").orientation_note() is None


def test_a_symmetric_json_object_says_it_reads_the_same_either_way() -> None:
    sym = pd.DataFrame(REF + REF.T, index=T, columns=T)
    parsed = read_run_file(_json(sym, "columns"), "s.json")
    assert parsed.orientation_note() == (
        "JSON object of objects: outer keys read as TARGETS, inner keys as sources (pandas' "
        "default to_json(), TAG's notebooks); the matrix is symmetric, so either way reads "
        "the same"
    )


def test_cli_import_line_repeats_how_a_json_object_was_read(tmp_path: Path, capsys) -> None:
    from mtl_core.commands.cli import main

    path = tmp_path / "m.json"
    path.write_bytes(_json(_MATRIX, "index"))
    store = str(tmp_path / "s.sqlite")
    assert main(["import", str(path), "--store", store]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: JSON object of objects: outer keys read as TARGETS")
    assert out.strip() == (
        "imported run 1 'm': 4 tasks, 1 step, lookahead "
        "(JSON outer keys read as TARGETS; --rows target flips it)"
    )
    assert main(["import", str(path), "--store", store, "--rows", "target"]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith("(JSON outer keys read as SOURCES, as --rows target declares)")
    )


def test_na_marks_and_an_end_of_row_comment_in_one_file_read_both_ways() -> None:
    lines = _matrix_lines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",#N/A"
    lines[4] += "  # last row"
    parsed = read_run_file(("\n".join(lines) + "\n").encode(), "m.csv")
    assert parsed.left_out == 1
    assert any(n.endswith("left the comment out (line 5)") for n in parsed.notes)
    got = parsed.affinity.set_index(["source", "target"])["affinity"]
    assert ("seg", "edge") not in got.index and got[("edge", "edge")] == REF[3, 3]
