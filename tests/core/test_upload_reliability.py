"""Damaged and adversarial uploads (issue 13, items 7-10): one clear line, or a faithful import.

The files in tests/data/reliability/ are copies of the handed cases (README in
../shared/cases/reliability/): each refused one must give one ``LabError`` line naming what is
wrong (and, for a limit, the limit and how to raise it), exit 2 through the CLI with the store
unchanged, and never reach the reader's last net; the valid ones import with their values and
say what they could not read.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mtl_core.commands.cli import main
from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file
from mtl_core.runfile.read import UNREADABLE

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "reliability"
GOOD_CSV = b"step,source,target,affinity\n0,a,a,0.1\n0,a,b,0.2\n0,b,a,0.3\n0,b,b,0.4\n"

#: case file -> what its one error line must say
REFUSED = {
    "crash_bad_deflate.zip": "cannot unpack affinity.csv (Error -3 while decompressing data",
    "crash_deep_nesting.jsonl": "line 1: JSON nested too deeply to read",
    "crash_int_5000_digits.jsonl": "line 1: a whole number with 5001 digits (at most 308",
    "crash_lone_surrogate.jsonl": "holds a lone surrogate escape (\\udc00)",
    "crash_encrypted.zip": "affinity.csv is encrypted (password-protected)",
    "crash_groupings_step_inf.zip": "groupings.jsonl: line 1: step inf is not a whole number",
    "crash_npy_header_cut.npy": "not a readable .npy array (damaged header",
    "crash_string_tensor.tfevents": "holds a tensor of dtype DT_STRING, not a number",
    "crash_dense_bomb_3000rows.csv": (
        "3,000 tasks, over the limit of 1,000 tasks per run (raise it with MTL_LAB_MAX_TASKS)"
    ),
    "memory_npz_150MB_zeros.npz": "affinity: 4,400 tasks, over the limit of 1,000 tasks",
    "memory_forged_shape_1e9.tfevents": "holds a tensor of shape (1000000000,), not one number",
    "hang_meta_40k_tasks.zip": "meta.json: 40,001 tasks, over the limit of 1,000 tasks",
    # 97 KB unpacking to 5,000,000 rows (2 GB and 113 s before they were counted first)
    "memory_zip_5M_rows.zip": (
        "affinity.csv: 5,000,001 lines, more than the 2,000,000 matrix cells a run may hold"
    ),
}


def refusal(source, name: str | None = None) -> str:
    with pytest.raises(LabError) as info:
        read_run_file(source, name)
    msg = str(info.value)
    assert "\n" not in msg and "\r" not in msg
    assert UNREADABLE not in msg  # guarded at its root, not caught by the last net
    return msg


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_refused_case_gives_its_one_line_from_a_path_and_from_bytes(case):
    path = DATA / case
    msg = refusal(path)
    assert msg.startswith(f"cannot import {case}") and REFUSED[case] in msg
    assert refusal(path.read_bytes(), case) == msg  # the Upload page reads bytes


def _digest(store_path: Path) -> str:
    import sqlite3

    con = sqlite3.connect(store_path)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


def test_cli_refusals_exit_2_with_one_error_line_and_leave_the_store_unchanged(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    (tmp_path / "good.csv").write_bytes(GOOD_CSV)
    assert main(["import", str(tmp_path / "good.csv"), "--store", str(store)]) == 0
    before = _digest(store)
    capsys.readouterr()
    for case in sorted(REFUSED):
        code = main(["import", str(DATA / case), "--store", str(store)])
        err = capsys.readouterr().err
        assert code == 2, case
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: cannot import {case}"), err
        assert "Traceback" not in err
    assert _digest(store) == before


def test_limits_name_the_cells_when_more_tasks_are_allowed(monkeypatch):
    monkeypatch.setenv("MTL_LAB_MAX_TASKS", "100000")
    cells = "over the limit of 2,000,000 (raise it with MTL_LAB_MAX_CELLS)"
    msg = refusal(DATA / "crash_dense_bomb_3000rows.csv")
    assert "3,000 steps x 3,000 x 3,000 tasks = 27,000,000,000 matrix cells, " + cells in msg
    msg = refusal(DATA / "hang_meta_40k_tasks.zip")
    assert "1 step x 40,001 x 40,001 tasks = 1,600,080,001 matrix cells" in msg
    msg = refusal(DATA / "memory_npz_150MB_zeros.npz")
    assert "the array holds 1 step x 4,400 x 4,400 tasks = 19,360,000 matrix cells" in msg


def test_limits_are_read_from_the_environment_and_0_lifts_them(monkeypatch):
    # 6 rows (the diagonal at 2 steps) that ask for 2 x 3 x 3 = 18 matrix cells
    three = b"step,source,target,affinity\n" + b"".join(
        f"{s},{a},{a},0.5\n".encode() for s in (0, 1) for a in "xyz"
    )
    monkeypatch.setenv("MTL_LAB_MAX_CELLS", "17")  # 2 steps x 3 x 3 = 18
    assert "2 steps x 3 x 3 tasks = 18 matrix cells, over the limit of 17" in refusal(
        three, "t.csv"
    )
    monkeypatch.setenv("MTL_LAB_MAX_CELLS", "18")
    assert len(read_run_file(three, "t.csv").affinity) == 6
    monkeypatch.setenv("MTL_LAB_MAX_TASKS", "2")
    assert "3 tasks, over the limit of 2 tasks per run" in refusal(three, "t.csv")
    monkeypatch.setenv("MTL_LAB_MAX_TASKS", "0")
    monkeypatch.setenv("MTL_LAB_MAX_CELLS", "0")
    assert read_run_file(three, "t.csv").tasks == ["x", "y", "z"]
    # a matrix object of objects is refused before its dense table is built
    monkeypatch.setenv("MTL_LAB_MAX_CELLS", "4")
    doc = {f"c{k}": {f"r{k}": 1.0} for k in range(3)}
    assert "3 rows x 3 columns = 9 matrix cells" in refusal(json.dumps(doc).encode(), "m.json")


def test_cr_only_line_endings_import_faithfully():
    parsed = read_run_file(DATA / "crash_cr_line_endings.csv")
    aff = parsed.affinity
    assert list(zip(aff["source"], aff["target"], aff["affinity"])) == [
        ("a", "a", 0.1),
        ("a", "b", 0.2),
        ("b", "a", 0.3),
        ("b", "b", 0.4),
    ]
    # a wide matrix and a TSV with old-Mac line endings too
    wide = read_run_file(b",a,b\ra,1,2\rb,3,4\r", "m.csv")
    assert wide.matrices("", "lookahead")[2].tolist() == [[[1.0, 2.0], [3.0, 4.0]]]
    tsv = read_run_file(GOOD_CSV.replace(b",", b"\t").replace(b"\n", b"\r"), "t.tsv")
    assert len(tsv.affinity) == 4


def test_a_value_cut_off_at_the_end_is_reported_not_silent():
    parsed = read_run_file(DATA / "silent_truncated_matrix.csv")
    assert parsed.matrices("", "lookahead")[2][0, 1, 1] == 0.03  # what the file holds ...
    (cut,) = [w for w in parsed.warnings() if "cut off" in w]  # ... and that it looks cut
    assert "its last value '0.03' (row 2 (line 3), column 'demand')" in cut
    whole = (DATA / "silent_truncated_matrix.csv").read_bytes() + b"77\n"
    assert not [w for w in read_run_file(whole, "m.csv").warnings() if "cut off" in w]
    # no final line break but a last value as long as its column's: nothing to say
    assert not [w for w in read_run_file(GOOD_CSV[:-1], "g.csv").warnings() if "cut" in w]


def test_tensorboard_crc_damage_is_reported_with_what_was_read():
    parsed = read_run_file(DATA / "silent_tb_bitflip.tfevents")
    (damage,) = [w for w in parsed.warnings() if "CRC" in w]
    assert "3 records failed their CRC check and were left out" in damage
    assert "the values they held are missing" in damage
    assert len(parsed.affinity) > 0 and parsed.tasks


def test_meta_nan_imports_and_exports_and_reimports(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    out = tmp_path / "back.zip"
    assert main(["import", str(DATA / "export_crash_meta_nan.zip"), "--store", str(store)]) == 0
    assert main(["export", "1", "--out", str(out), "--store", str(store)]) == 0
    back = read_run_file(out)
    assert math.isnan(back.meta["config"]["lr"])
    orig = read_run_file(DATA / "export_crash_meta_nan.zip")
    assert back.affinity["affinity"].tolist() == orig.affinity["affinity"].tolist()
    assert main(["import", str(out), "--store", str(store)]) == 0


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_numpy_files_with_extra_bytes_or_huge_shapes_are_refused_before_loading():
    buf = io.BytesIO()
    np.save(buf, np.eye(2))
    assert "8 bytes more than its header declares" in refusal(buf.getvalue() + bytes(8), "a.npy")
    member = buf.getvalue() + bytes(16)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("affinity.npy", member)
    assert "16 bytes more than its header declares" in refusal(zbuf.getvalue(), "a.npz")
    huge = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        huge, {"descr": "<f8", "fortran_order": False, "shape": (30, 300, 300)}
    )
    data = huge.getvalue() + bytes(30 * 300 * 300 * 8)  # a valid file, over the cell limit
    assert "30 steps x 300 x 300 tasks = 2,700,000 matrix cells" in refusal(data, "h.npy")
    names = np.array(["a", "\udc00"])
    assert "lone surrogate" in refusal(_npz(affinity=np.eye(2), tasks=names), "s.npz")


@pytest.mark.parametrize(
    "step", ["NaN", "Infinity", "-Infinity", "1e300", str(2**70), "1.5", "-1", "true", '"3"']
)
def test_grouping_steps_must_be_whole_finite_numbers(step):
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("affinity.csv", GOOD_CSV)
        z.writestr("groupings.jsonl", f'{{"step": {step}, "groups": [["a"], ["b"]]}}\n')
    msg = refusal(zbuf.getvalue(), "g.zip")
    assert "groupings.jsonl: line 1: step" in msg and "is not a whole number" in msg


GUARDS = {
    "deep": ("[" * 5000 + "]" * 5000, "nested too deeply"),
    "int": ("9" * 400, "a whole number with 400 digits"),
    "surrogate": ('"\\udc00"', "lone surrogate"),
}


def _json_paths(value: str) -> dict[str, tuple[bytes, str]]:
    """The value placed in every JSON path of the reader: (file bytes, file name)."""

    def bundle(**members: str) -> bytes:
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w") as z:
            z.writestr("affinity.csv", GOOD_CSV)
            for k, v in members.items():
                z.writestr(k.replace("_", "."), v)
        return zbuf.getvalue()

    row = '{"step": 0, "source": "a", "target": "b", "affinity": V}'
    texts = {
        "jsonl": (row.replace("V", "0.5") + "\n" + row + "\n", "r.jsonl"),
        "json rows": ("[" + row + "]", "r.json"),
        "json matrix": ('{"a": {"a": 1, "b": V}, "b": {"a": 2}}', "m.json"),
    }
    out = {k: (text.replace("V", value).encode(), name) for k, (text, name) in texts.items()}
    out["meta.json"] = (bundle(meta_json='{"config": {"x": V}}'.replace("V", value)), "b.zip")
    grouping = '{"step": 0, "groups": [["a"]], "x": V}'.replace("V", value)
    out["groupings"] = (bundle(groupings_jsonl=grouping), "g.zip")
    return out


@pytest.mark.parametrize("guard", sorted(GUARDS))
def test_json_guards_hold_in_every_json_path(guard):
    value, said = GUARDS[guard]
    for where, (data, name) in _json_paths(value).items():
        assert said in refusal(data, name), where


def test_meta_config_depth_is_bounded():
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("affinity.csv", GOOD_CSV)
        z.writestr("meta.json", '{"config": {"x": ' + "[" * 200 + "]" * 200 + "}}")
    assert "meta.json: nested deeper than 64 levels" in refusal(zbuf.getvalue(), "d.zip")


@pytest.mark.slow
def test_reading_every_case_stays_well_under_a_gigabyte():
    """Peak memory of one process reading every case file (each refused or read)."""
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from mtl_core.errors import LabError\n"
        "from mtl_core.runfile import read_run_file\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for f in sorted(Path(sys.argv[1]).iterdir()):\n"
        "    try:\n"
        "        read_run_file(f)\n"
        "    except LabError:\n"
        "        pass\n"
        "print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(DATA)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    base_kb, peak_kb = map(int, out.stdout.split())
    assert peak_kb - base_kb < 300_000, (base_kb, peak_kb)  # kilobytes


def test_row_and_column_counts_are_checked_before_values_are_converted(monkeypatch, tmp_path):
    import pandas as pd

    monkeypatch.setenv("MTL_LAB_MAX_CELLS", "10")
    long = pd.DataFrame(
        {"step": range(12), "source": "a", "target": "b", "affinity": 0.5}, columns=None
    )
    over = "more than the 10 matrix cells a run may hold (raise it with MTL_LAB_MAX_CELLS)"
    assert "13 lines, " + over in refusal(long.to_csv(index=False).encode(), "r.csv")
    jsonl = "".join(json.dumps(r) + "\n" for r in long.to_dict("records")).encode()
    assert "12 lines, " + over in refusal(jsonl, "r.jsonl")
    rows = json.dumps(long.to_dict("records")).encode()
    assert "12 rows, " + over in refusal(rows, "r.json")
    assert "about 99 JSON values" in refusal(("[" + "1," * 99 + "1]").encode(), "v.json")
    buf = io.BytesIO()
    long.to_parquet(buf, index=False)
    assert "12 rows, " + over in refusal(buf.getvalue(), "r.parquet")
    from tests.core.test_fileformat import write_events

    write_events(tmp_path, [(s, "affinity/a/b", 0.5) for s in range(12)])
    (events,) = tmp_path.glob("*tfevents*")
    assert "12 affinity and loss scalars, " + over in refusal(events)
    monkeypatch.setenv("MTL_LAB_MAX_TASKS", "2")
    wide = ",".join(f"t{k}" for k in range(20)).encode() + b"\n" + b"1," * 19 + b"1\n"
    assert "20 columns, more than a run's 2 tasks (raise it with MTL_LAB_MAX_TASKS)" in (
        refusal(wide, "w.csv")
    )


def test_zips_listing_thousands_of_files_are_refused_before_they_are_opened():
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("affinity.csv", GOOD_CSV)
        for k in range(1200):
            z.writestr(f"junk/{k}", b"")
    for name in ("many.zip", "many.npz"):
        assert "lists about 1,201 files; a run file holds a few" in refusal(zbuf.getvalue(), name)


def test_messages_stay_one_short_line_whatever_the_file_holds():
    long_name = "x" * 5000
    msg = refusal(f",a,b\na,1,2\n{long_name},3,4\n".encode(), "m.csv")
    assert len(msg) <= 600 and " ... " in msg and msg.startswith("cannot import m.csv: ")
    assert "is not one of the matrix's columns (a, b)" in msg  # the end survives
    assert "\n" not in refusal(b"\x00", "two\nlines.csv")
