"""Scenario definitions, determinism, splits, and the csv scenario's errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.scenarios import get_scenario, list_scenarios, load_dataset, resolve_knobs


def test_shipped_scenarios_are_listed_from_files():
    names = set(list_scenarios())
    assert {"synthetic", "digits", "csv", "lesson"} <= names


def test_synthetic_is_deterministic_by_data_seed_and_standardized_on_train():
    a = load_dataset("synthetic", {"data_seed": 3})
    b = load_dataset("synthetic", {"data_seed": 3})
    c = load_dataset("synthetic", {"data_seed": 4})
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.Y_test, b.Y_test)
    assert not np.array_equal(a.X_train, c.X_train)
    assert np.allclose(a.X_train.mean(0), 0, atol=1e-5)
    assert np.allclose(a.X_train.std(0), 1, atol=1e-4)
    assert abs(a.X_test.mean()) < 0.2  # test uses train statistics, not its own
    n = 2000
    assert len(a.X_train) + len(a.X_val) + len(a.X_test) == n
    assert len(a.X_train) == 1200


def test_synthetic_clusters_correlate_within_and_conflict_knob_works():
    def within_cross(conflict, ctype):
        d = load_dataset("synthetic", {"conflict": conflict, "conflict_type": ctype})
        C = np.corrcoef(d.Y_train.T)
        cl = np.array([d.info["clusters"][t] for t in d.tasks])
        same = cl[:, None] == cl[None, :]
        off = ~np.eye(len(cl), dtype=bool)
        return C[same & off].mean(), C[~same].mean()

    w0, c0 = within_cross(0.0, "opposing")
    w1, c1 = within_cross(1.0, "opposing")
    _, c_orth = within_cross(1.0, "orthogonal")
    assert w1 > 0.7 and c0 > 0.7  # no conflict: all tasks alike
    assert c1 < -0.3  # opposing clusters anti-correlate
    assert abs(c_orth) < 0.15  # orthogonal clusters are unrelated


def test_binary_synthetic_and_label_noise():
    clean = load_dataset("synthetic", {"task_type": "binary", "noise": 0.0})
    noisy = load_dataset("synthetic", {"task_type": "binary", "noise": 0.3})
    assert set(np.unique(clean.Y_train)) == {0.0, 1.0}
    flipped = (clean.Y_train != noisy.Y_train).mean()
    assert 0.25 < flipped < 0.35


def test_digits_tasks_and_image_shape():
    d = load_dataset("digits", {"random_tasks": 3})
    assert d.input_shape == (1, 8, 8)
    assert d.X_train.shape[1:] == (1, 8, 8)
    assert len(d.tasks) == 8 + 3 and d.tasks[-1] == "random2"
    assert set(d.task_types) == {"binary"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"tasks": "1"}, "out of range"),
        ({"conflict": "lots"}, "expected float"),
        ({"conflict_type": "sideways"}, "not one of"),
        ({"clustrs": 2}, "did you mean 'clusters'"),
    ],
)
def test_bad_knobs_are_clear_errors(overrides, message):
    with pytest.raises(LabError, match=message):
        resolve_knobs(get_scenario("synthetic"), overrides)


def test_unknown_scenario_suggests_a_name():
    with pytest.raises(LabError, match="did you mean 'digits'"):
        get_scenario("digit")


def _table(tmp_path, df, name="t.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return str(p)


def test_csv_scenario_infers_task_types_and_masks_missing_labels(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((100, 3)), columns=["a", "b", "c"])
    df["label"] = np.where(df["a"] > 0, "yes", "no")
    df["price"] = df["b"] * 3 + 1
    df.loc[5, "price"] = np.nan
    df["comment"] = "text"  # non-numeric feature columns are ignored
    d = load_dataset("csv", {"path": _table(tmp_path, df), "targets": "label,price"})
    assert d.tasks == ["label", "price"]
    assert d.task_types == ["binary", "regression"]
    assert d.info["features"] == ["a", "b", "c"]
    allY = np.concatenate([d.Y_train, d.Y_val, d.Y_test])
    assert np.isnan(allY[:, 1]).sum() == 1
    forced = load_dataset(
        "csv",
        {"path": _table(tmp_path, df), "targets": "a,price", "task_types": "a=regression"},
    )
    assert forced.task_types == ["regression", "regression"]


@pytest.mark.parametrize(
    "make, targets, message",
    [
        (lambda df: df, "nope,b", "'nope' not in t.csv .it has 3 columns"),
        (lambda df: df, "a", "at least two"),
        (lambda df: df.assign(cat=list("xyz") * 33 + ["x"]), "cat,a", "not numeric"),
        (lambda df: df[["a", "b"]], "a,b", "no numeric feature"),
        (lambda df: df.head(10), "a,b", "10 rows with a target value; at least 20"),
    ],
)
def test_csv_scenario_errors(tmp_path, make, targets, message):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((100, 3)), columns=["a", "b", "c"])
    path = _table(tmp_path, make(df))
    with pytest.raises(LabError, match=message):
        load_dataset("csv", {"path": path, "targets": targets})


def test_csv_scenario_requires_a_table():
    with pytest.raises(LabError, match="needs a table: upload one.*--set path=FILE"):
        load_dataset("csv", {"targets": "a,b"})
    with pytest.raises(LabError, match="cannot read /nonexistent.csv"):
        load_dataset("csv", {"path": "/nonexistent.csv", "targets": "a,b"})


def test_lesson_scenario_ships_its_narrow_model():
    from mtl_core.config import default_model_config

    lesson = default_model_config("lesson")
    assert lesson.hidden == (32, 1) and lesson.linear_bottleneck and lesson.head_scale == 0.1
    assert default_model_config("synthetic").hidden == (64, 32)


def test_rank_knob_sets_the_latent_directions_per_cluster():
    ds1 = load_dataset(
        "synthetic", {"rank": 1, "relatedness": 1.0, "noise": 0.0, "conflict": 0.0, "samples": 300}
    )
    # rank 1, identical tasks, no noise: every task is the same function of the input
    assert np.allclose(ds1.Y_train, ds1.Y_train[:, :1], atol=1e-5)
    assert load_dataset("lesson", {}).X_train.shape == (240, 12)  # 400 examples, 60% train
    with pytest.raises(LabError, match="features must be at least 8 .* rank 4"):
        load_dataset("synthetic", {"rank": 4, "features": 6})
