"""Long form <-> matrices (mtl_core.runfile.long) and the one rule for picking a measure
(mtl_core.measures), as every caller uses them: the reader's ParsedRun, group and the store."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import (
    ParsedRun,
    affinity_rows,
    long_to_matrices,
    matrices_to_long,
    mean_matrix,
    measure_matrices,
    pick_measure,
    read_run_file,
    run_file_bytes,
)

TASKS = ["a", "b", "c"]


def _stack(seed: int = 0, steps: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(steps, 3, 3))


def test_pick_measure_rules_and_messages():
    assert pick_measure(["cosine"], None, "the log") == "cosine"
    assert pick_measure(["lookahead", "cosine"], "cosine", "the log") == "cosine"
    with pytest.raises(
        LabError,
        match=r"^run 3 holds several measures \(lookahead, cosine\); "
        r"pick one$",
    ):
        pick_measure(["lookahead", "cosine"], None, "run 3")
    with pytest.raises(LabError, match=r"^measure 'x' not in f.csv; it has: lookahead$"):
        pick_measure(["lookahead"], "x", "f.csv")
    with pytest.raises(LabError, match=r"^f.csv has no affinity rows$"):
        pick_measure([], None, "f.csv")


def test_measure_matrices_round_trips_matrices_to_long():
    X = _stack()
    X[1, 0, 2] = np.nan  # an unmeasured cell stays NaN
    df = pd.concat(
        [
            matrices_to_long(np.array([0, 5, 7, 9]), TASKS, X, "lookahead"),
            matrices_to_long(np.array([5]), TASKS, -X[:1], "cosine"),
        ]
    )
    steps, tasks, got = measure_matrices(df, "lookahead")
    assert steps.tolist() == [0, 5, 7, 9] and tasks == TASKS
    assert np.array_equal(got, X, equal_nan=True)
    steps, _, cos = measure_matrices(df, "cosine")
    assert steps.tolist() == [5] and np.array_equal(cos, -X[:1])
    with pytest.raises(LabError, match="several measures"):
        measure_matrices(df)


def test_measure_matrices_subset_and_default_measure():
    X = _stack(1, 2)
    df = pd.concat([affinity_rows(s, TASKS, X[s], "lookahead") for s in range(2)])
    _, tasks, sub = measure_matrices(df, tasks=["c", "a"])  # a sub-matrix, in that order
    assert tasks == ["c", "a"]
    np.testing.assert_array_equal(sub, X[:, [2, 0]][:, :, [2, 0]])
    plain = df.drop(columns=["measure"])  # no measure column: lookahead, as the reader says
    np.testing.assert_array_equal(measure_matrices(plain)[2], X)
    np.testing.assert_array_equal(measure_matrices(plain, "lookahead")[2], X)
    with pytest.raises(LabError, match=r"^measure 'cosine' not in the log; it has: lookahead$"):
        measure_matrices(plain, "cosine")
    with pytest.raises(LabError, match=r"^affinity log lacks column\(s\): affinity$"):
        measure_matrices(df.drop(columns=["affinity"]))


def test_long_to_matrices_refuses_a_task_outside_the_list():
    df = affinity_rows(0, TASKS, np.eye(3), "lookahead")
    with pytest.raises(LabError, match=r"outside the run's task list: source 'c'"):
        long_to_matrices(df, ["a", "b"])


def test_mean_matrix_is_the_mean_over_logged_steps_without_warnings():
    X = _stack(2, 3)
    X[0, 1, 1] = np.nan  # logged at steps 1 and 2 only
    X[:, 2, 0] = np.nan  # never logged
    df = matrices_to_long(np.arange(3), TASKS, X, "lookahead")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        tasks, A = mean_matrix(df)
    assert tasks == TASKS
    expect = X.sum(axis=0) / 3
    expect[1, 1] = (X[1, 1, 1] + X[2, 1, 1]) / 2
    expect[2, 0] = np.nan
    assert np.allclose(A, expect, equal_nan=True, rtol=0, atol=1e-15)


def test_parsed_run_matrices_go_through_the_same_rule():
    X = _stack(3, 2)
    parsed = read_run_file(
        run_file_bytes(
            ParsedRun(
                tasks=TASKS, affinity=matrices_to_long(np.array([1, 2]), TASKS, X, "lookahead")
            ),
            "r.csv",
        ),
        "r.csv",
    )
    steps, tasks, got = parsed.matrices("", "lookahead")
    assert steps.tolist() == [1, 2] and tasks == TASKS and np.array_equal(got, X)
    with pytest.raises(LabError, match=r"^measure 'cosine' not in the file; it has: lookahead$"):
        parsed.matrices("", "cosine")


def test_store_picks_measures_with_the_same_rule(store):
    X = _stack(4, 2)
    aff = pd.concat(
        [
            matrices_to_long(np.array([0, 1]), TASKS, X, "lookahead"),
            matrices_to_long(np.array([0, 1]), TASKS, -X, "cosine"),
        ],
        ignore_index=True,
    )
    (rid,) = store.import_parsed(ParsedRun(tasks=TASKS, affinity=aff, tasks_declared=True), "r")
    with pytest.raises(LabError, match=rf"^run {rid} holds several measures"):
        store.affinity_steps(rid)
    with pytest.raises(LabError, match=rf"^measure 'proximal' not in run {rid}; it has: "):
        store.affinity_steps(rid, "proximal")
    np.testing.assert_array_equal(store.affinity_steps(rid, "cosine")[2], -X)


def test_matrices_from_text_and_integer_names_and_a_missing_measure():
    """Task positions are looked up per distinct name: Arrow text, integer names compared as
    text, a row without a measure left out of the picked one."""
    rows = {
        "step": [0, 0, 1, 1],
        "source": ["a", "b", "a", "b"],
        "target": ["b", "a", "b", "a"],
        "affinity": [0.1, 0.2, 0.3, 0.4],
        "measure": ["lookahead", "lookahead", None, "lookahead"],
    }
    df = pd.DataFrame(rows).astype({"source": "str", "target": "str"})
    steps, tasks, a = measure_matrices(df, "lookahead")
    assert steps.tolist() == [0, 1] and tasks == ["a", "b"]
    assert a[0, 0, 1] == 0.1 and a[0, 1, 0] == 0.2 and np.isnan(a[1, 0, 1]) and a[1, 1, 0] == 0.4
    ints = pd.DataFrame({**rows, "source": [1, 2, 1, 2], "target": [2, 1, 2, 1]})
    _, tasks, a = measure_matrices(ints, "lookahead", tasks=["1", "2"])
    assert tasks == ["1", "2"] and a[0, 0, 1] == 0.1 and a[1, 1, 0] == 0.4
