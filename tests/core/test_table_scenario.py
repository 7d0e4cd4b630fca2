"""The csv scenario on a user's table (issue 10 item 6, issue 13 item 3): the importer's
reading (encodings, delimiters, decimal commas), index-like columns left out and reported,
features listed, constant targets refused by name, uploaded tables reaching the worker
content-addressed, and server files never quoted in a run's error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.accounts import quota as L
from mtl_core.commands.cli import main
from mtl_core.config import RunConfig, TrainConfig
from mtl_core.errors import LabError
from mtl_core.scenarios import load_dataset, table_files
from mtl_core.scenarios.table import plan_table
from mtl_core.scenarios.table_read import index_reason, read_table_bytes
from mtl_core.text.labels import short_labels

ROOT = Path(__file__).resolve().parents[2]
F19 = ROOT / "tests" / "data" / "field" / "F19_energy_like_pandas_index.csv"
F19_FEATURES = ["Relative Compactness", "Surface Area", "Glazing Area", "Höhe (m²)"]
F19_TARGETS = "Heating Load,Cooling Load"


def _csv(tmp_path, text: str, name: str = "t.csv", encoding: str = "utf-8") -> str:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return str(p)


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((n, 3)), columns=["a", "b", "c"])
    df["y1"] = df["a"] * 2 + 0.1 * rng.standard_normal(n)
    df["y2"] = df["b"] - df["c"]
    return df


def test_f19_pandas_index_is_left_out_and_reported():
    ds = load_dataset("csv", {"path": str(F19), "targets": F19_TARGETS})
    assert ds.tasks == ["Heating Load", "Cooling Load"]
    assert ds.info["features"] == F19_FEATURES
    assert list(ds.info["left_out"]) == [""]  # the unnamed first column: pandas' index
    assert "row index" in ds.info["left_out"][""]
    assert ds.input_shape == (4,) and ds.info["rows"] == 300


def test_f19_cli_summary_lists_the_features_and_the_left_out_index(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "aff.csv"
    args = ["train", "--scenario", "csv", "--set", f"path={F19}", "--set"]
    args += [f"targets={F19_TARGETS}", "--steps", "3", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    got = capsys.readouterr()
    feats = "features (4): 'Relative Compactness', 'Surface Area', 'Glazing Area', 'Höhe (m²)'"
    assert feats in got.out and feats in got.err  # said before training and in the summary
    assert "left out (no name): a row index" in got.out
    assert "Heating Load" in got.out and "Cooling Load" in got.out


@pytest.mark.parametrize(
    "name, values, index",
    [
        ("", [5.0, 9.0, 2.0], True),
        ("Unnamed: 0", [5.0, 9.0, 2.0], True),
        ("id", [5.0, 9.0, 2.0], True),
        ("customer_id", None, True),
        ("rank", [2.0, 0.0, 1.0, 3.0], True),  # 0..n-1 in any order
        ("n", [1.0, 2.0, 3.0, 4.0], True),  # 1..n
        ("year", [2001.0, 2002.0, 2003.0], False),
        ("count", [0.0, 1.0, 1.0, 3.0], False),
        ("x", [0.0, 1.5, 2.0], False),
    ],
)
def test_index_like_columns(name, values, index):
    arr = None if values is None else np.array(values)
    assert (index_reason(name, arr) is not None) is index


def test_index_columns_are_features_only_when_listed(tmp_path):
    df = _frame()
    df.insert(0, "id", np.arange(len(df)))
    df["row"] = np.random.default_rng(1).permutation(len(df))
    path = _csv(tmp_path, df.to_csv(index=True))  # pandas' index too
    ds = load_dataset("csv", {"path": path, "targets": "y1,y2"})
    assert ds.info["features"] == ["a", "b", "c"]
    assert set(ds.info["left_out"]) == {"", "id", "row"}
    chosen = load_dataset("csv", {"path": path, "targets": "y1,y2", "features": "id,a"})
    assert chosen.info["features"] == ["id", "a"]


def test_a_european_excel_table(tmp_path):
    """cp1252, ';' and decimal commas: the importer's reading, in the scenario too."""
    rows = ["Größe;Länge;Höhe;Preis"]
    rows += [f"{i % 9},5;{i % 5},25;{(i * 7) % 4},75;{i * 3 % 11},5" for i in range(40)]
    path = _csv(tmp_path, "\r\n".join(rows) + "\r\n", encoding="cp1252")
    ds = load_dataset("csv", {"path": path, "targets": "Höhe,Preis"})
    assert ds.info["features"] == ["Größe", "Länge"]
    X = np.concatenate([ds.X_train, ds.X_val, ds.X_test])
    assert X.shape == (40, 2)  # numbers, not text: the decimal commas were read


def test_a_constant_target_is_refused_by_name(tmp_path):
    df = _frame().assign(flat=3.5, empty=np.nan)
    path = _csv(tmp_path, df.to_csv(index=False))
    with pytest.raises(LabError, match="target 'flat' has the same value in every row"):
        load_dataset("csv", {"path": path, "targets": "y1,flat"})
    # a constant feature column is left out and said
    ds = load_dataset("csv", {"path": path, "targets": "y1,y2"})
    assert ds.info["left_out"] == {"flat": "one value in every row", "empty": "no values"}


def test_binary_text_target_and_missing_tokens(tmp_path):
    df = _frame()
    df["label"] = np.where(df["a"] > 0, "yes", "no")
    df.loc[3, "label"] = "NA"
    df["note"] = "free text"
    path = _csv(tmp_path, df.to_csv(index=False))
    ds = load_dataset("csv", {"path": path, "targets": "label,y2"})
    assert ds.task_types == ["binary", "regression"]
    assert ds.info["features"] == ["a", "b", "c", "y1"]
    assert ds.info["left_out"] == {"note": "not numbers"}
    Y = np.concatenate([ds.Y_train, ds.Y_val, ds.Y_test])
    assert np.isnan(Y[:, 0]).sum() == 1 and set(np.unique(Y[~np.isnan(Y[:, 0]), 0])) == {0, 1}


def test_messages_never_quote_the_file(tmp_path):
    """A server file's first line (a secret) never reaches an error: not a missing column's
    message, not an unreadable table's."""
    secret = "API_TOKEN = s3cr3t-value"
    path = _csv(tmp_path, secret + "\nhello\nworld\n" * 30, name="config.env")
    with pytest.raises(LabError) as err:
        load_dataset("csv", {"path": path, "targets": "a,b"})
    assert "s3cr3t" not in str(err.value) and "API_TOKEN" not in str(err.value)
    ragged = _csv(tmp_path, secret + ",x\n1,2,3,4\n" + "1,2\n" * 30, name="ragged.csv")
    with pytest.raises(LabError) as err:
        load_dataset("csv", {"path": ragged, "targets": "a,b"})
    assert "s3cr3t" not in str(err.value) and "API_TOKEN" not in str(err.value)


def test_the_cli_names_the_columns_to_its_own_user(tmp_path, capsys):
    path = _csv(tmp_path, _frame().to_csv(index=False))
    args = ["train", "--scenario", "csv", "--set", f"path={path}", "--set", "targets=y1,nope"]
    assert main([*args, "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "'nope' not in t.csv" in err and "its columns: 'a', 'b', 'c', 'y1', 'y2'" in err


def test_the_app_takes_no_server_path_and_a_data_folder_bounds_it(tmp_path):
    path = _csv(tmp_path, _frame().to_csv(index=False))
    cfg = RunConfig.for_scenario("csv", {"path": path, "targets": "y1,y2"})
    with pytest.raises(LabError, match="server is for the command line only; upload"):
        L.check_config(cfg, L.Limits())
    with pytest.raises(LabError, match="command line only"):  # a forged meta.json too
        L.check_evaluation(cfg.to_dict(), 2, L.Limits())
    inside = L.Limits.from_mapping({"data_folder": str(tmp_path)})
    L.check_config(cfg, inside)
    other = L.Limits.from_mapping({"data_folder": str(tmp_path / "sub")})
    escape = RunConfig.for_scenario(
        "csv", {"path": str(tmp_path / "sub" / ".." / "t.csv"), "targets": "y1,y2"}
    )
    with pytest.raises(LabError, match="inside this lab's data folder"):
        L.check_config(escape, other)
    L.check_config(cfg, L.Limits.none())  # the command line reads any path


def test_table_references_are_never_paths(tmp_path):
    data = _frame().to_csv(index=False).encode()
    ref = table_files.save_table(data, "mine.csv", "user:ann", tmp_path)
    assert (tmp_path / ref).read_bytes() == data and ref.endswith(".csv") and len(ref) == 68
    assert table_files.save_table(data, "again.csv", "user:bob", tmp_path) == ref
    assert table_files.owners_of(ref, tmp_path) == ["user:ann", "user:bob"]
    for bad in ("../../etc/passwd", "/etc/passwd", ref.upper(), ref + "/x", "a" * 64 + ".sh"):
        with pytest.raises(LabError, match="not a file path"):
            table_files.table_bytes(bad, tmp_path)
    table_files.check_owner({"table": ref}, "user:ann", tmp_path)
    table_files.check_owner({"table": ref}, None, tmp_path)  # the command line
    with pytest.raises(LabError, match="not uploaded by you"):
        table_files.check_owner({"table": ref}, "user:eve", tmp_path)


def test_plan_counts_rows_with_a_target_and_refuses_too_few():
    df = _frame(25)
    df.loc[:9, ["y1", "y2"]] = np.nan
    table = read_table_bytes(df.to_csv(index=False).encode(), "t.csv")
    with pytest.raises(LabError, match="15 rows with a target value; at least 20"):
        plan_table(table, ["y1", "y2"])


def test_short_labels_never_collide():
    names = ["Heating Load", "Heating Loss", "Heating Load (kWh)", "c"]
    for width in (4, 7, 10, 14):
        labels = short_labels(names, width)
        assert len(set(labels)) == len(names) and all(len(s) <= width for s in labels)
    assert short_labels(["a", "b"], 7) == ["a", "b"]


@pytest.mark.slow
def test_the_worker_trains_on_an_uploaded_table(tmp_path):
    """A table saved as the Train page saves it reaches the worker through the store's
    folder; the run records the features it used."""
    pytest.importorskip("torch")
    from mtl_core.runner import Runner, check_finished
    from mtl_core.runner.worker import TABLE_NOTE

    store_path = tmp_path / "store.sqlite"
    ref = table_files.save_table(
        F19.read_bytes(), F19.name, "user:ann", table_files.tables_dir(store_path)
    )
    cfg = RunConfig.for_scenario(
        "csv", {"table": ref, "targets": F19_TARGETS}, {"train.steps": 4, "train.device": "cpu"}
    )
    assert isinstance(cfg.train, TrainConfig)
    runner = Runner(store_path, poll_s=0.05, warm=0)
    try:
        with pytest.raises(LabError, match="not uploaded by you"):
            runner.submit(cfg, owner="user:eve", limits=L.Limits())
        rid = runner.submit(cfg, owner="user:ann", limits=L.Limits())
        # a server file (only the command line may name one) never reaches the run's error,
        # which the queue shows to everyone
        secret = tmp_path / "settings.py"
        secret.write_text("API_TOKEN = s3cr3t\nDEBUG = 1,2\n" + "x,y\n" * 40)
        leak = RunConfig.for_scenario("csv", {"path": str(secret), "targets": "x,API_TOKEN"})
        with pytest.raises(LabError, match="command line only"):
            runner.submit(leak, owner="user:eve", limits=L.Limits())
        bad = runner.submit(leak, limits=L.Limits.none())
        info = check_finished(runner.wait(rid, timeout=300))
        failed = runner.wait(bad, timeout=300)
    finally:
        runner.shutdown(timeout=5)
    assert info.tasks == ["Heating Load", "Cooling Load"] and info.steps_done == 4
    assert failed.status == "failed" and failed.error
    for run in runner.store.list_runs():
        assert "s3cr3t" not in f"{run.error} {run.error_detail} {run.name} {run.config}"
    note = runner.store.get_note(rid, TABLE_NOTE)
    assert note["features"] == F19_FEATURES and list(note["left_out"]) == [""]


@pytest.mark.ray
def test_an_uploaded_table_travels_with_a_ray_task(tmp_path, ray_cluster):
    """On Ray the node may not have the store's folder: the table's bytes go with the task."""
    pytest.importorskip("torch")
    from mtl_core.runner import Runner, check_finished

    store_path = tmp_path / "store.sqlite"
    ref = table_files.save_table(F19.read_bytes(), F19.name, None, tmp_path / "elsewhere")
    # the store's own tables folder does not have it yet: launching says so, in one line
    cfg = RunConfig.for_scenario(
        "csv", {"table": ref, "targets": F19_TARGETS}, {"train.steps": 3, "train.device": "cpu"}
    )
    runner = Runner(store_path, poll_s=0.05, warm=0, ray_address=ray_cluster)
    try:
        missing = runner.wait(runner.submit(cfg), timeout=120)
        table_files.save_table(F19.read_bytes(), F19.name, None, table_files.tables_dir(store_path))
        info = check_finished(runner.wait(runner.submit(cfg), timeout=300))
    finally:
        runner.shutdown(timeout=5)
    assert missing.status == "failed" and "no longer in the run store" in missing.error
    assert info.tasks == ["Heating Load", "Cooling Load"] and info.steps_done == 3
