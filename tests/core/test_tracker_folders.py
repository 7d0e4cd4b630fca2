"""Issue 21 kinds 1 and 2: tracker exports and log folders (field3 G01, G07, G10, G18, G31b,
G44; MLflow experiment folders, search_runs and metric-history CSVs, W&B runs tables and
wandb-summary.json made here from the reference matrix)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from mtl_core.commands.cli import main
from mtl_core.errors import LabError
from mtl_core.runfile.read import read_run_file
from mtl_core.store import Store

DATA = Path(__file__).resolve().parents[1] / "data" / "field3"
REF = pd.read_csv(DATA / "G00_reference_matrix.csv", index_col=0)
SHORT = {"segment_semantic": "seg", "depth_zbuffer": "depth", "normal": "normal",
         "edge_texture": "edge"}  # fmt: skip
CELLS = {f"affinity/{s}/{t}": float(REF.loc[s, t]) for s in REF.index for t in REF.columns}


def _mean_error(aff: pd.DataFrame) -> float:
    """Largest |time-average - reference| over the 16 cells (names long or short)."""
    mean = aff.groupby(["source", "target"])["affinity"].mean()
    long = {v: k for k, v in SHORT.items()}
    got = {(long.get(s, s), long.get(t, t)): v for (s, t), v in mean.items()}
    assert len(got) == 16
    return max(abs(got[(s, t)] - REF.loc[s, t]) for s in REF.index for t in REF.columns)


def _zip(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(folder).as_posix())
    return out


def test_g01_mlflow_run_folder_and_zipped(tmp_path):
    for source in (DATA / "G01_mlflow_run_folder",
                   _zip(DATA / "G01_mlflow_run_folder", tmp_path / "run.zip")):  # fmt: skip
        parsed = read_run_file(source)
        assert parsed.runs == [""] and parsed.affinity["step"].nunique() == 12
        assert _mean_error(parsed.affinity) < 0.005
        loss = parsed.metrics[parsed.metrics["task"] == "normal"]
        assert len(loss) == 12 and set(loss["metric"]) == {"loss"}
        first = (DATA / "G01_mlflow_run_folder/metrics/affinity/normal/depth_zbuffer").read_text()
        ts, value, step = first.split("\n")[0].split()
        row = parsed.affinity[(parsed.affinity["source"] == "normal")
                              & (parsed.affinity["target"] == "depth_zbuffer")].iloc[0]  # fmt: skip
        assert (row["step"], row["affinity"], row["wall_time"]) == (
            int(step),
            float(value),
            int(ts) / 1000,
        )


def _experiment(tmp_path: Path) -> Path:
    exp = tmp_path / "mlruns" / "1987"
    exp.mkdir(parents=True)
    (exp / "meta.yaml").write_text("name: nyu\n")
    for k in range(2):
        run = exp / f"run{k}id"
        shutil.copytree(DATA / "G01_mlflow_run_folder", run)
        (run / "tags" / "mlflow.runName").write_text(f"seed{k}")
    return tmp_path / "mlruns"


def test_mlflow_experiment_folder_is_one_run_per_run_folder(tmp_path, capsys):
    folder = _experiment(tmp_path)
    parsed = read_run_file(folder)
    assert parsed.runs == ["seed0", "seed1"]
    store = tmp_path / "s.sqlite"
    assert main(["import", str(folder), "--store", str(store)]) == 0
    assert {r.name for r in Store(store).list_runs()} == {"mlruns / seed0", "mlruns / seed1"}
    assert "read 2 runs, each named by its path: seed0, seed1" in capsys.readouterr().err


def test_a_broken_run_refuses_the_whole_folder(tmp_path, capsys):
    folder = _experiment(tmp_path)
    (folder / "1987" / "run1id" / "metrics" / "affinity" / "normal" / "normal").write_text(
        "1 0.1 10 extra\n"
    )
    store = tmp_path / "s.sqlite"
    assert main(["import", str(folder), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run1id" in err and "metrics/affinity/normal/normal" in err
    assert not store.exists() or Store(store).list_runs() == []


@pytest.mark.parametrize("rel", ["G07_lightning_logs", "G10_raytune_trial",
                                 "G10_raytune_trial/result.json"])  # fmt: skip
def test_lightning_and_ray_folders_and_result_json(rel):
    parsed = read_run_file(DATA / rel)
    assert parsed.runs == [""] and parsed.affinity["step"].nunique() == 12
    assert _mean_error(parsed.affinity) < 0.005


def test_mlflow_search_runs_csv(tmp_path):
    rows = []
    for k in range(2):
        row = {"run_id": f"id{k}", "status": "FINISHED", "tags.mlflow.runName": f"seed{k}",
               "params.lr": "0.01", "metrics.train_loss": 0.5}  # fmt: skip
        row.update({f"metrics.{c}": v + 0.01 * k for c, v in CELLS.items()})
        rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    parsed = read_run_file(tmp_path / "runs.csv")
    assert parsed.runs == ["seed0", "seed1"]
    one = parsed.affinity[parsed.affinity["run"] == "seed1"]
    assert len(one) == 16 and set(one["step"]) == {0}
    assert _mean_error(one.assign(affinity=one["affinity"] - 0.01)) < 1e-12
    assert any("read as a runs table" in n for n in parsed.notes)


def test_wandb_runs_table_and_summary(tmp_path):
    rows = [{"Name": f"run-{k}", "State": "finished", "_step": 120, **CELLS} for k in "ab"]
    pd.DataFrame(rows).to_csv(tmp_path / "wandb_export.csv", index=False)
    parsed = read_run_file(tmp_path / "wandb_export.csv")
    assert parsed.runs == ["run-a", "run-b"] and set(parsed.affinity["step"]) == {120}
    summary = {"_step": 120, "_runtime": 3.5, "_wandb": {"runtime": 3}, "train_loss": 0.4,
               "affinity": {s: {t: CELLS[f"affinity/{s}/{t}"] for t in REF.columns}
                            for s in REF.index}}  # fmt: skip
    (tmp_path / "wandb-summary.json").write_text(json.dumps(summary))
    parsed = read_run_file(tmp_path / "wandb-summary.json")
    assert _mean_error(parsed.affinity) < 1e-12 and set(parsed.affinity["step"]) == {120}


def test_mlflow_metric_history_csv(tmp_path):
    rows = [{"key": c, "value": v + step / 1e4, "timestamp": 1_796_605_864_000 + step,
             "step": step} for step in (10, 20) for c, v in CELLS.items()]  # fmt: skip
    rows.append({"key": "train_loss", "value": 0.4, "timestamp": 1, "step": 10})
    pd.DataFrame(rows).to_csv(tmp_path / "history.csv", index=False)
    parsed = read_run_file(tmp_path / "history.csv")
    assert len(parsed.affinity) == 32 and sorted(set(parsed.affinity["step"])) == [10, 20]
    assert abs(_mean_error(parsed.affinity) - 15 / 1e4) < 1e-12
    assert parsed.affinity["wall_time"].min() == (1_796_605_864_000 + 10) / 1000
    assert any("1 other keys ignored" in n for n in parsed.notes)


def test_tracker_table_without_affinity_columns_is_named_plainly():
    with pytest.raises(LabError, match="a tracker table .* no column names an affinity cell"):
        read_run_file(b'{"_step": 3, "loss": 0.2}', "wandb-summary.json")


def test_g18_hydra_multirun_one_run_per_job(tmp_path, capsys):
    parsed = read_run_file(DATA / "G18_hydra_multirun.zip")
    assert parsed.runs == ["multirun/2026-11-30/10-00-00/0", "multirun/2026-11-30/10-00-00/1"]
    for run in parsed.runs:
        assert _mean_error(parsed.run_affinity(run)) < 0.005
    store = tmp_path / "s.sqlite"
    assert main(["import", str(DATA / "G18_hydra_multirun.zip"), "--store", str(store)]) == 0
    assert len(Store(store).list_runs()) == 2
    assert "two files named" not in capsys.readouterr().err


def test_g44_zipped_tensorboard_folder():
    parsed = read_run_file(DATA / "G44_tb_folder.zip")
    assert parsed.affinity["step"].nunique() == 12 and _mean_error(parsed.affinity) < 0.005


def test_g31b_tensorboardx_nested_add_scalars(tmp_path):
    folder = DATA / "G31b_tbx_add_scalars_arrow_keys"
    with pytest.raises(LabError, match=r"found: affinity/depth->depth, affinity/depth->edge"):
        read_run_file(folder)
    parsed = read_run_file(folder, tag_pattern="affinity/{source}->{target}")
    assert parsed.affinity["step"].nunique() == 12 and _mean_error(parsed.affinity) < 0.005
    # torch's layout of the same call (<main_tag>_<key> folders) reads the same
    torch = tmp_path / "torch"
    for sub in sorted((folder / "affinity").iterdir()):
        shutil.copytree(sub, torch / f"affinity_{sub.name}")
    again = read_run_file(torch, tag_pattern="affinity/{source}->{target}")
    key = ["step", "source", "target"]
    pd.testing.assert_frame_equal(
        again.affinity.sort_values(key)[[*key, "affinity"]].reset_index(drop=True),
        parsed.affinity.sort_values(key)[[*key, "affinity"]].reset_index(drop=True),
    )


def test_a_folder_with_nothing_to_read_lists_what_it_holds(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(LabError, match=r"found no run in the folder .*notes\.txt"):
        read_run_file(tmp_path)


def test_an_mlflow_run_folder_without_meta_yaml_says_what_is_missing(tmp_path):
    # A new user's hand-made MLflow folder: metrics/ but no meta.yaml (MLflow always writes one).
    run = tmp_path / "1987" / "abc123"
    for src, tgt, v in [("seg", "seg", 0.04), ("seg", "depth", 0.01), ("depth", "seg", 0.02)]:
        (run / "metrics" / "affinity" / src).mkdir(parents=True, exist_ok=True)
        (run / "metrics" / "affinity" / src / tgt).write_text(f"1796605864467 {v} 10\n")
    with pytest.raises(LabError) as err:
        read_run_file(tmp_path / "1987")
    assert "needs the meta.yaml that MLflow writes beside metrics/, missing in abc123" in str(
        err.value
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in run.rglob("*"):
            if f.is_file():
                z.write(f, f.relative_to(tmp_path / "1987").as_posix())
    with pytest.raises(LabError, match=r"missing in abc123\)$"):
        read_run_file(buf.getvalue(), "mlflow_run.zip")
    (run / "meta.yaml").write_text("run_id: abc123\nexperiment_id: '1987'\n")
    parsed = read_run_file(tmp_path / "1987")
    got = parsed.affinity.set_index(["source", "target"])["affinity"]
    assert got[("seg", "depth")] == pytest.approx(0.01) and got[("depth", "seg")] == 0.02


def test_wandb_dotted_keys_and_lightning_step_epoch_suffixes():
    hist = pd.read_csv(DATA / "G04_wandb_run_history.csv")
    dotted = hist.rename(columns=lambda c: c.replace("/", ".") if c.startswith("affinity") else c)
    parsed = read_run_file(dotted.to_csv(index=False).encode(), "history.csv")
    assert _mean_error(parsed.affinity) < 0.005 and parsed.affinity["step"].nunique() == 12
    light = pd.read_csv(DATA / "G07_lightning_logs/version_0/metrics.csv")
    cells = [c for c in light.columns if c.startswith("affinity/")]
    both = light.rename(columns={c: c + "_step" for c in cells})
    for c in cells:
        both[c + "_epoch"] = 9.0  # epoch means: never read as cells
    parsed = read_run_file(both.to_csv(index=False).encode(), "metrics.csv")
    assert sorted(set(parsed.affinity["target"])) == ["depth", "edge", "normal", "seg"]
    assert _mean_error(parsed.affinity) < 0.005
    assert any("16 '_epoch' mean columns left out" in n for n in parsed.notes)


def test_a_non_finite_mlflow_value_is_named_by_its_metric_file(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(DATA / "G01_mlflow_run_folder", run)
    (run / "metrics" / "affinity" / "normal" / "normal").write_text("1 nan 10\n2 0.5 20\n")
    parsed = read_run_file(run)
    assert parsed.left_out == 1
    assert parsed.first_left_out == "metrics/affinity/normal/normal, step 10"


def _long_csv(shift: float) -> str:
    rows = [f"{step},{s},{t},{REF.loc[s, t] + shift}" for step in (10, 20)
            for s in REF.index for t in REF.columns]  # fmt: skip
    return "step,source,target,affinity\n" + "\n".join(rows) + "\n"


def test_hydra_jobs_laid_out_as_bundles_and_a_folder_of_seed_csvs(tmp_path):
    buf = tmp_path / "multirun.zip"
    with zipfile.ZipFile(buf, "w") as zf:
        for job in (0, 1):
            base = f"multirun/2026-11-30/10-00-00/{job}/"
            zf.writestr(base + "affinity.csv", _long_csv(0.0))
            zf.writestr(
                base + "metrics.csv", "step,task,split,metric,value\n10,normal,val,loss,0.5\n"
            )
            zf.writestr(base + "meta.json", json.dumps({"notes": f"job {job}"}))
            zf.writestr(base + ".hydra/config.yaml", "seed: 0\n")
    parsed = read_run_file(buf)
    assert parsed.runs == ["multirun/2026-11-30/10-00-00/0", "multirun/2026-11-30/10-00-00/1"]
    assert len(parsed.metrics) == 2 and _mean_error(parsed.run_affinity(parsed.runs[1])) < 1e-12
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for k in range(3):
        (seeds / f"seed{k}.csv").write_text(_long_csv(0.001 * k))
    parsed = read_run_file(seeds)
    assert parsed.runs == ["seed0.csv", "seed1.csv", "seed2.csv"]
    assert _mean_error(parsed.run_affinity("seed2.csv")) == pytest.approx(0.002)


def _zip_of(members: dict[str, str]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, text in members.items():
            zf.writestr(path, text)
    return buf.getvalue()


def test_hostile_folders_are_refused_by_count_before_reading():
    import time

    many_runs = {f"r{k}/{f}": "1 0.1 1\n" for k in range(3000)
                 for f in ("meta.yaml", "metrics/affinity/a/b")}  # fmt: skip
    t0 = time.perf_counter()
    with pytest.raises(LabError, match="3,000 runs, over the limit of 100 runs"):
        read_run_file(_zip_of(many_runs), "runs.zip")
    many_tasks = {"r/meta.yaml": "x"} | {f"r/metrics/affinity/a{k}/b": "1 0.1 1\n"
                                         for k in range(1500)}  # fmt: skip
    with pytest.raises(LabError, match=r"r: 1,501 tasks, over the limit of 1,000 tasks"):
        read_run_file(_zip_of(many_tasks), "tasks.zip")
    assert time.perf_counter() - t0 < 5


def test_a_ray_experiment_folder_skips_state_json_but_not_a_broken_trial(tmp_path):
    exp = tmp_path / "exp"
    for k in range(2):
        shutil.copytree(DATA / "G10_raytune_trial", exp / f"train_{k}")
    (exp / "experiment_state-2026-12-07_01-13-00.json").write_text('{"checkpoints": ["x"]}')
    (exp / "basic-variant-state-2026-12-07_01-13-00.json").write_text('{"_uuid": 3}')
    parsed = read_run_file(exp)
    assert parsed.runs == ["train_0", "train_1"]
    assert any("JSON files holding no affinity were not read" in n for n in parsed.notes)
    (exp / "train_1" / "progress.csv").write_text("step,affinity/a/b\n1,oops\n")
    with pytest.raises(LabError, match=r"exp › train_1/progress.csv: row 1 .*'oops' is not"):
        read_run_file(exp)
