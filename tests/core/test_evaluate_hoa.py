"""HOA's approach in ``evaluate`` (pair losses -> higher-order estimate -> exact selection),
the per-seed counts against random groupings and the rank correlation in words."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from mtl_core.errors import LabError
from mtl_core.experiments.hoa import hoa_estimate, hoa_select, pair_jobs
from mtl_core.experiments.report import spearman_sentence, versus_random

TASKS = ["a", "b", "c", "d"]


def _pairs(rng):
    """Random pair losses: task t's loss beside u."""
    return {
        frozenset(p): {t: float(rng.uniform(0.1, 1.0)) for t in p} for p in combinations(TASKS, 2)
    }


def _hoa_loss(pair_loss, group, t):
    """Task t's HOA estimate in ``group``, written out from the paper's definition."""
    others = [u for u in group if u != t]
    return float(np.mean([pair_loss[frozenset((t, u))][t] for u in others]))


def _brute(pair_loss, k, min_size=2):
    """The best grouping by brute force over every selection of <= k candidate groups
    (overlap allowed, each task served by its best chosen group)."""
    cands = [g for r in range(min_size, len(TASKS) + 1) for g in combinations(TASKS, r)]
    best, best_v = None, np.inf
    for m in range(1, k + 1):
        for sel in combinations(cands, m):
            if {t for g in sel for t in g} != set(TASKS):
                continue
            v = sum(min(_hoa_loss(pair_loss, g, t) for g in sel if t in g) for t in TASKS)
            if v < best_v - 1e-12:
                best, best_v = sel, v
    return best, best_v


def test_hoa_estimate_is_the_mean_of_pair_losses():
    rng = np.random.default_rng(0)
    pl = _pairs(rng)
    scores, table = hoa_estimate(TASKS, pl)
    m = 0b0111  # {a, b, c}
    for i, t in enumerate("abc"):
        assert -scores[m, i] == pytest.approx(_hoa_loss(pl, "abc", t))
    assert scores[m, 3] == -np.inf  # d not in the group
    assert -scores[0b0011, 0] == pl[frozenset("ab")]["a"]  # a pair keeps its measured loss
    assert np.all(scores[[1, 2, 4, 8]] == -np.inf)  # no singletons without allow_singletons
    assert len(table.members) == 11


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_hoa_selection_matches_brute_force(seed, k):
    pl = _pairs(np.random.default_rng(seed))
    groups, pred, _ = hoa_select(TASKS, pl, k)
    want, want_v = _brute(pl, k)
    assert pred == pytest.approx(want_v)
    assert len(groups) <= k and all(len(g) >= 2 for g in groups)
    served = sum(min(_hoa_loss(pl, g, t) for g in groups if t in g) for t in TASKS)
    assert served == pytest.approx(want_v)


def test_hoa_chooses_the_planted_split():
    # a,b help each other; c,d help each other; across the split every pair is worse.
    pl = {}
    for p in combinations(TASKS, 2):
        same = set(p) in ({"a", "b"}, {"c", "d"})
        pl[frozenset(p)] = {t: 0.2 if same else 0.9 for t in p}
    groups, pred, _ = hoa_select(TASKS, pl, 2)
    assert sorted(sorted(g) for g in groups) == [["a", "b"], ["c", "d"]]
    assert pred == pytest.approx(0.8)
    # with one network allowed, everything together: each task's mean of (0.2, 0.9, 0.9)
    groups, pred, _ = hoa_select(TASKS, pl, 1)
    assert [sorted(g) for g in groups] == [TASKS]
    assert pred == pytest.approx(4 * (0.2 + 0.9 + 0.9) / 3)


def test_hoa_with_singletons_uses_the_single_losses():
    pl = {frozenset(p): {t: 0.5 for t in p} for p in combinations(TASKS, 2)}
    single = {"a": 0.1, "b": 0.6, "c": 0.6, "d": 0.6}
    groups, pred, _ = hoa_select(TASKS, pl, 2, single_loss=single, min_size=1)
    assert frozenset("a") in groups
    assert pred == pytest.approx(0.1 + 3 * 0.5)


def test_hoa_missing_pair_is_a_lab_error():
    pl = _pairs(np.random.default_rng(1))
    del pl[frozenset("cd")]
    with pytest.raises(LabError, match=r"every pair; c\+d is missing"):
        hoa_select(TASKS, pl, 2)


def test_pair_jobs_train_every_pair_once():
    from tests.core.test_evaluate import _spec

    for n, runs in ((4, 3), (5, 10)):
        spec = _spec(knobs={"tasks": n})
        jobs = pair_jobs(spec, 0)
        pairs = [m for masks, _ in jobs for m in masks if m.bit_count() == 2]
        assert sorted(pairs) == [m for m in range(1 << n) if m.bit_count() == 2]
        assert len(jobs) == runs  # 4 tasks: {a,b}|{c,d} shares one run


def _run(approach, seed, loss):
    return {"approach": approach, "seed": seed, "total_test_loss": loss}


def test_versus_random_counts_per_seed():
    runs = [
        _run("tag", 0, 1.0),
        _run("random", 0, 1.5),
        _run("random", 0, 0.9),
        _run("random", 0, 1.0),  # a tie is not a win
        _run("tag", 1, 2.0),
        _run("random", 1, 2.5),
        _run("random", 1, 3.0),
        _run("random", 1, 2.1),
        _run("tag", 2, 5.0),  # no random run of seed 2: not compared
    ]
    v = versus_random(runs, "tag")
    assert v["per_seed"] == [
        {"seed": 0, "beat": 1, "random": 3, "loss": 1.0},
        {"seed": 1, "beat": 3, "random": 3, "loss": 2.0},
    ]
    assert (v["beat"], v["pairs"], v["seeds_beating_all"], v["seeds"]) == (4, 6, 1, 2)
    assert versus_random(runs, "hoa") is None


@pytest.mark.parametrize(
    "rho, words",
    [
        (
            0.5,
            "= +0.50 over 9 trained groupings: a moderate tendency for higher predicted "
            "affinity to go with HIGHER loss - the estimate ranked groupings the wrong way",
        ),
        (
            -0.72,
            "= -0.72 over 9 trained groupings: a strong tendency for higher predicted "
            "affinity to go with LOWER loss - the estimate ranked groupings the right way",
        ),
        (0.05, "no relation"),
        (-0.2, "a weak tendency"),
        (None, "undefined"),
    ],
)
def test_spearman_sentence_explains_the_sign(rho, words):
    assert words in spearman_sentence(rho, 9)


def test_finds_best_counts_exact_matches_with_wilson_interval():
    from scipy.stats import binomtest

    from mtl_core.experiments.report import finds_best

    best0, best1 = [["a", "b"], ["c", "d"]], [["a", "c"], ["b", "d"]]
    runs = [
        {"approach": "exhaustive", "seed": 0, "grouping": best0},
        {"approach": "exhaustive", "seed": 1, "grouping": best1},
        {"approach": "tag", "seed": 0, "grouping": [["d", "c"], ["b", "a"]]},  # same, reordered
        {"approach": "tag", "seed": 1, "grouping": best0},  # seed 0's best, not seed 1's
        {"approach": "hoa", "seed": 0, "grouping": [["a", "b", "c", "d"]]},
        {"approach": "random", "seed": 1, "grouping": best1},
    ]
    fb = finds_best(runs)
    assert {a: (v["found"], v["of"]) for a, v in fb.items()} == {
        "tag": (1, 2),
        "hoa": (0, 1),
        "random": (1, 1),
    }
    ci = binomtest(1, 2).proportion_ci(method="wilson")
    assert fb["tag"]["ci95"] == pytest.approx([ci.low, ci.high])
    assert 0 < fb["tag"]["ci95"][0] < 0.5 < fb["tag"]["ci95"][1] < 1
    assert finds_best(runs[2:]) == {}


def test_a_loss_to_random_groups_reads_as_higher_loss():
    """A negative gain is said as HIGHER loss, never as a negative "lower" (issue 20)."""
    from mtl_core.experiments.report import _lower

    assert _lower(0.14) == "14.0% lower"
    assert _lower(-0.051) == "5.1% HIGHER"


@pytest.mark.parametrize("exhaustive", [False, True])
def test_no_hoa_submits_no_pair_runs(exhaustive):
    from mtl_core.experiments import evaluate, format_report
    from tests.core.test_evaluate import CountingExecutor, _spec

    ex = CountingExecutor()
    rep = evaluate(_spec(seeds=1, random_groupings=1, exhaustive=exhaustive, hoa=False), ex)
    assert not [lab for lab in ex.labels if lab.startswith("hoa/")]  # no pair, no HOA groups
    assert "hoa" not in {r["approach"] for r in rep["runs"]}
    assert "hoa" not in rep["approaches"] and "tag" in rep["approaches"]
    assert rep["spec"]["hoa"] is False
    if exhaustive:  # the candidates still train every pair beside its complement
        ex_rec = next(r for r in rep["runs"] if r["approach"] == "exhaustive")
        assert "hoa_from_candidates" not in ex_rec
    assert "HOA" not in format_report(rep)
    # the same spec with HOA on submits the 3 pair runs of 4 tasks (or reuses the candidates)
    ex_on = CountingExecutor()
    evaluate(_spec(seeds=1, random_groupings=1, exhaustive=exhaustive), ex_on)
    extra = sorted(set(ex_on.labels) - set(ex.labels))
    want = (
        ["hoa/seed0"]
        if exhaustive
        else ["hoa/seed0"] + sorted(lab for lab in ex_on.labels if lab.startswith("hoa/seed0/"))
    )
    assert extra == sorted(want) and len(extra) == (1 if exhaustive else 4)


def test_no_hoa_on_the_command_line():
    from mtl_core.commands.cli import build_parser

    args = build_parser().parse_args(
        ["evaluate", "--scenario", "synthetic", "--k", "2", "--no-hoa", "--out", "x.json"]
    )
    assert args.hoa is False
    args = build_parser().parse_args(
        ["evaluate", "--scenario", "synthetic", "--k", "2", "--out", "x.json"]
    )
    assert args.hoa is True
