"""CLI: runs, import, export, delete (each with --store); errors are one line, exit 2."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mtl_core.commands.cli import main
from mtl_core.runfile import read_run_file
from mtl_core.store import Store

ROOT = Path(__file__).resolve().parents[2]


def example_zip(tmp_path: Path) -> Path:
    out = tmp_path / "retail.zip"
    with zipfile.ZipFile(out, "w") as z:
        for f in (ROOT / "examples" / "run-format").iterdir():
            z.write(f, f.name)
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_list_export_delete(tmp_path, capsys):
    s = str(tmp_path / "store.sqlite")
    assert run(capsys, "runs", "--store", s)[1].startswith("no runs")
    code, out, _ = run(capsys, "import", str(example_zip(tmp_path)), "--store", s)
    assert code == 0 and "imported run 1 'retail example': 3 tasks" in out
    code, out, _ = run(
        capsys,
        "import",
        str(ROOT / "examples/run-format/affinity.csv"),
        "--name",
        "csv only",
        "--store",
        s,
    )
    assert code == 0 and "run 2 'csv only'" in out
    code, out, _ = run(capsys, "runs", "--store", s)
    assert "retail example" in out and "csv only" in out and "uploaded" in out
    for ext in (".zip", ".csv", ".parquet", ".jsonl"):
        code, out, err = run(
            capsys, "export", "1", "--out", str(tmp_path / f"r{ext}"), "--store", s
        )
        assert code == 0 and "wrote run 1" in out
        assert ("use .zip" in err) == (ext != ".zip")
        back = read_run_file(tmp_path / f"r{ext}")
        st = Store(s)
        np.testing.assert_array_equal(
            back.matrices("", "lookahead")[2], st.affinity_steps(1, "lookahead")[2]
        )
    code, out, _ = run(capsys, "delete", "2", "--store", s)
    assert code == 0 and "deleted run 2" in out
    assert [r.id for r in Store(s).list_runs()] == [1]


def test_errors_are_one_line_exit_2(tmp_path, capsys):
    s = str(tmp_path / "store.sqlite")
    bad = tmp_path / "bad.csv"
    bad.write_text("step,source,target,affinty\n0,a,b,1\n")
    for argv, needle in [
        (["import", str(bad)], "missing column 'affinity'; found 'affinty'"),
        (["import", str(tmp_path / "nope.csv")], "file not found"),
        (["export", "9", "--out", str(tmp_path / "x.zip")], "no run with id 9"),
        (["export", "9", "--out", str(tmp_path / "x.xlsx")], "use one of the extensions"),
        (["delete", "9"], "no run with id 9"),
    ]:
        code, out, err = run(capsys, *argv, "--store", s)
        assert code == 2, argv
        assert err.count("\n") == 1 and needle in err and "Traceback" not in err, err
    assert Store(s).list_runs() == []  # the bad import wrote nothing
    st = Store(s)
    rid = st.create_run(status="running")
    code, _, err = run(capsys, "delete", str(rid), "--store", s)
    assert code == 2 and "cancel it" in err


def test_store_from_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MTL_LAB_STORE", str(tmp_path / "env.sqlite"))
    code, out, _ = run(capsys, "import", str(ROOT / "examples/run-format/affinity.csv"))
    assert code == 0 and (tmp_path / "env.sqlite").exists()
    listed = run(capsys, "runs")[1].splitlines()
    assert any(ln.rstrip().endswith(" affinity") for ln in listed), listed  # named as on Upload


def test_import_measure_alias_is_saved_as_the_registered_name(tmp_path, capsys):
    s = str(tmp_path / "store.sqlite")
    bare = tmp_path / "m.csv"
    bare.write_text(",a,b\na,0.5,-0.25\nb,0.125,1\n")
    code, _, err = run(capsys, "import", str(bare), "--measure", " TAG ", "--store", s)
    assert code == 0 and "names no measure" not in err
    code, _, _ = run(capsys, "import", str(bare), "--measure", "grad  sim", "--store", s)
    assert code == 0
    assert [Store(s).measures(r) for r in (1, 2)] == [["lookahead"], ["grad sim"]]
