"""Small things a class hits on the command line (issue 22 item 4): ``--out runs/a.csv`` on a
fresh clone (one missing folder level is made, and said), and the summary matrix in the
unit the app, the exports and ``--tau`` use."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mtl_core.commands.cli import main
from mtl_core.commands.train import summary
from mtl_core.errors import LabError
from mtl_core.events import MetricRow
from mtl_core.runfile import prepare_out_path


def test_train_out_into_one_missing_folder_makes_it_and_says_so(tmp_path, monkeypatch, capsys):
    """The README's ``--out runs/a.csv``, verbatim, in a fresh clone (no ``runs/``)."""
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--scenario", "synthetic", "--set", "tasks=3", "--steps", "2"]
    assert main([*argv, "--out", "runs/a.csv"]) == 0
    err = capsys.readouterr().err
    assert "note: created the folder runs for --out" in err
    assert (tmp_path / "runs" / "a.csv").read_text().startswith("step,source,target,affinity")
    assert main([*argv, "--out", "runs/b.csv"]) == 0  # there now: nothing to say
    assert "created the folder" not in capsys.readouterr().err


def test_two_missing_levels_are_still_refused_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["evaluate", "--scenario", "synthetic", "--k", "2", "--out", "a/b/eval.json"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == "error: --out a/b/eval.json: the folder a/b does not exist; create it first\n"
    assert not (tmp_path / "a").exists()


def test_prepare_out_path_makes_one_level_only(tmp_path):
    p, made = prepare_out_path(tmp_path / "runs" / "a.csv")
    assert made == tmp_path / "runs" and made.is_dir() and p == tmp_path / "runs" / "a.csv"
    assert prepare_out_path(tmp_path / "runs" / "b.csv")[1] is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(LabError, match=r"^--out .*: .*file is not a folder$"):
        prepare_out_path(tmp_path / "file" / "a.csv")


def test_export_into_a_missing_folder_makes_it(tmp_path, monkeypatch, capsys, seeded_run, store):
    rid = seeded_run(steps=3)
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(rid), "--out", "out/run.zip", "--store", str(store.path)]) == 0
    assert "note: created the folder out for --out" in capsys.readouterr().err
    assert (tmp_path / "out" / "run.zip").stat().st_size > 0
    # a run that is not there: nothing made
    assert main(["export", "99", "--out", "none/run.zip", "--store", str(store.path)]) == 2
    assert not (tmp_path / "none").exists()


def _result(measure: str, A: np.ndarray) -> SimpleNamespace:
    tasks = ["a", "b"]
    return SimpleNamespace(
        tasks=tasks,
        steps=10,
        seconds=1.5,
        device="cpu",
        parameters=1234,
        metrics=[MetricRow(t, s, "loss", 0.5) for t in tasks for s in ("val", "test")],
        mean_affinity={measure: A},
        loss=lambda split: {t: 0.5 for t in tasks},
        info={},
    )


def test_summary_matrix_is_in_the_measures_unit():
    A = np.array([[0.03, 0.0092], [-0.0025, 0.01]])
    text = summary(_result("lookahead", A))
    assert "mean lookahead affinity, in % loss change (row = source" in text
    row_a = next(ln for ln in text.splitlines() if ln.strip().startswith("a ") and "3.000" in ln)
    assert row_a.split()[1:] == ["3.000", "0.920"]  # percent, not fractions
    row_b = next(ln for ln in text.splitlines() if ln.strip().startswith("b ") and "-0.250" in ln)
    assert row_b.split()[1:] == ["-0.250", "1.000"]
    text = summary(_result("cosine", np.array([[1.0, 0.31], [0.31, 1.0]])))
    assert "mean cosine affinity, in cosine (row = source" in text
    assert any(ln.split()[1:] == ["1.0000", "0.3100"] for ln in text.splitlines())


def test_readme_csv_train_command_reads_a_table_that_ships_with_the_repo(tmp_path, monkeypatch):
    """The README's ``train --scenario csv --set path=...`` names a file a fresh clone has."""
    import re
    import shlex

    root = Path(__file__).resolve().parents[2]
    line = next(
        ln for ln in (root / "README.md").read_text().splitlines() if "--scenario csv" in ln
    )
    argv = shlex.split(line.split("#")[0])[3:]  # after "python -m mtl_core"
    path = re.search(r"path=(\S+)", line).group(1)
    assert (root / path).is_file(), path
    monkeypatch.chdir(root)
    out = tmp_path / "c.jsonl"
    argv = [a if not a.startswith("runs/") else str(out) for a in argv]
    assert main([*argv, "--steps", "2"]) == 0
    assert out.read_text().count("\n") > 0


def test_readme_import_group_export_delete_lines_run_verbatim_on_a_fresh_store(
    tmp_path, monkeypatch, capsys
):
    """The README's run-store lines (``import`` of a zipped folder and an MLflow run,
    ``group --unit percent``, ``export 1``, ``delete 1``) name files a fresh clone has and
    run in order on an empty store, each exit code 0."""
    import shlex
    import shutil

    root = Path(__file__).resolve().parents[2]
    lines = [
        ln.split("  #")[0]
        for ln in (root / "README.md").read_text().splitlines()
        if ln.startswith(("python -m mtl_core import ", "python -m mtl_core group examples/"))
        or ln.startswith(("python -m mtl_core export ", "python -m mtl_core delete "))
    ]
    assert len(lines) == 5, lines
    shutil.copytree(root / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MTL_LAB_STORE", str(tmp_path / "store.sqlite"))
    for line in lines:
        assert main(shlex.split(line)[3:]) == 0, (line, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "imported run 1 'cluster job 17 / multirun/" in out
    assert "imported run 3 'tag-seed0'" in out
    assert "1. depth_zbuffer, normal" in out  # the percent matrix's TAG groups
    assert (tmp_path / "run1.zip").stat().st_size > 0
    assert "deleted run 1 " in out


def test_import_names_a_run_as_the_upload_page_does(tmp_path, monkeypatch, capsys):
    """One file, one default name: ``import matrix_percent.csv`` names the run
    ``matrix_percent``, as Upload does (new-user finding: the CLI kept the extension)."""
    from app.words import upload_name

    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("MTL_LAB_STORE", str(tmp_path / "store.sqlite"))
    src = root / "examples" / "run-format" / "affinity_matrix_percent.csv"
    assert main(["import", str(src), "--unit", "percent"]) == 0
    assert "imported run 1 'affinity_matrix_percent': 4 tasks" in capsys.readouterr().out
    assert upload_name(src.name, None) == "affinity_matrix_percent"
