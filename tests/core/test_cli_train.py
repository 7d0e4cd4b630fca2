"""The headless `train` and `scenarios` commands: the contract users and other parts rely on."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # every test runs the CLI in a subprocess


def _cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "mtl_core", *args], capture_output=True, text=True, timeout=timeout
    )


def test_scenarios_lists_names_and_knobs():
    r = _cli("scenarios")
    assert r.returncode == 0
    for text in ("synthetic", "digits", "csv", "--set conflict=<float>", "--set targets="):
        assert text in r.stdout


def test_scenarios_text_never_shows_an_empty_default(capsys):
    # a knob with no default once printed "--set table=<str> =   an uploaded table"
    from mtl_core.commands.cli import main

    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "--set table=<str> (optional)  an uploaded table" in out
    assert "--set data_seed=<int> [0, 2147483647] = 0  seed" in out
    assert not any(line.rstrip().endswith("=") or "=   " in line for line in out.splitlines())


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
def test_train_writes_long_form_log(tmp_path, ext):
    out = tmp_path / f"log{ext}"
    r = _cli(
        "train",
        "--scenario",
        "synthetic",
        "--set",
        "tasks=3",
        "--set",
        "samples=300",
        "--steps",
        "12",
        "--every",
        "5",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    df = {
        ".csv": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
    }[ext](out)
    assert list(df.columns)[:5] == ["step", "source", "target", "affinity", "measure"]
    assert sorted(df["step"].unique()) == [1, 6, 11]
    assert len(df) == 3 * 9
    assert set(df["measure"]) == {"lookahead"}
    assert "mean lookahead affinity" in r.stdout and "test loss" in r.stdout


def test_train_sequential_logs_proximal(tmp_path):
    out = tmp_path / "seq.csv"
    r = _cli(
        "train",
        "--scenario",
        "synthetic",
        "--set",
        "samples=300",
        "--mode",
        "sequential",
        "--steps",
        "8",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert set(pd.read_csv(out)["measure"]) == {"proximal"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--scenario", "synthetic", "--set", "colour=red"], "unknown knob 'colour'"),
        (["--scenario", "synthetic", "--steps", "0"], "steps must be a positive integer"),
        (["--scenario", "synthetic", "--steps", "-3"], "steps must be a positive integer"),
        (["--scenario", "synthetic", "--mode", "warp"], "invalid choice: 'warp'"),
        (["--scenario", "synthetic", "--set", "conflict"], "KEY=VALUE"),
        (["--scenario", "synthetic", "--mode", "single", "--affinity", "lookahead"], "share one"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, message):
    r = _cli("train", *args, "--out", str(tmp_path / "x.csv"))
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_cuda_without_gpu_is_exit_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = _cli(
        "train", "--scenario", "synthetic", "--device", "cuda", "--out", str(tmp_path / "x.csv")
    )
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr


def test_diverging_run_keeps_logged_steps(tmp_path):
    out = tmp_path / "nan.csv"
    r = _cli(
        "train",
        "--scenario",
        "synthetic",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--steps",
        "50",
        "--out",
        str(out),
    )
    assert r.returncode == 2 and "loss became" in r.stderr
    assert out.exists() and len(pd.read_csv(out)) > 0


def test_train_with_store_runs_through_the_runner(tmp_path):
    from mtl_core.store import Store

    store = tmp_path / "lab.sqlite"
    out = tmp_path / "a.csv"
    r = _cli(
        "train",
        "--scenario",
        "synthetic",
        "--set",
        "samples=300",
        "--steps",
        "12",
        "--every",
        "5",
        "--store",
        str(store),
        "--out",
        str(out),
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    runs = Store(store).list_runs()
    assert len(runs) == 1 and runs[0].status == "finished" and runs[0].steps_done == 12
    steps, tasks, mats = Store(store).affinity_steps(runs[0].id, "lookahead")
    assert list(steps) == [1, 6, 11] and mats.shape == (3, 6, 6)
    logged = pd.read_csv(out)
    assert len(logged) == 3 * 36


def test_train_without_out_or_store_records_in_the_apps_store(tmp_path):
    import os

    from mtl_core.store import Store

    store = tmp_path / "app.sqlite"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtl_core",
            "train",
            "--scenario",
            "synthetic",
            "--set",
            "samples=300",
            "--steps",
            "6",
            "--name",
            "from the shell",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "MTL_LAB_STORE": str(store)},
    )
    assert r.returncode == 0, r.stderr
    runs = Store(store).list_runs()
    assert [(x.name, x.status, x.steps_done) for x in runs] == [("from the shell", "finished", 6)]
