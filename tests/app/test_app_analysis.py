"""The app's pure helpers: agreement, group order, the lesson's sentences, the heatmap
builder's reading aids. No Streamlit, no torch. (Smoothing and downsampling are
``mtl_core.series``: tests/core/test_series.py.)"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app import regroup, words
from app.figures import colours, heatmaps


def test_adjusted_rand_index():
    tasks = list("abcdef")
    g1 = (frozenset("abc"), frozenset("def"))
    assert regroup.agreement(g1, (frozenset("def"), frozenset("abc")), tasks) == 1.0
    assert regroup.agreement(g1, (frozenset("ad"), frozenset("be"), frozenset("cf")), tasks) < 0
    # sklearn's value for this pair of partitions
    assert regroup.agreement(g1, (frozenset("abcd"), frozenset("ef")), tasks) == pytest.approx(
        0.3243243, abs=1e-6
    )


def test_group_order_keeps_groups_contiguous():
    tasks = ["a", "b", "c", "d"]
    order = regroup.group_order(tasks, [0, 1, 2, 3], (frozenset("ac"), frozenset("bd")))
    assert [tasks[i] for i in order] == ["a", "c", "b", "d"]


def _block(within: float, between: float) -> np.ndarray:
    A = np.full((4, 4), between)
    A[:2, :2] = A[2:, 2:] = within
    return A


def test_lesson_sentences_follow_the_numbers():
    tasks = ["t0", "t1", "t2", "t3"]
    groups = (frozenset({"t0", "t1"}), frozenset({"t2", "t3"}))
    hurt = words.explain_lesson(
        _block(0.01, -0.004),
        tasks,
        groups,
        {"together": 0.30, "groups": 0.20, "single": 0.22},
        True,
    )
    text = " ".join(hurt)
    assert "lowers the others' loss by 1%" in text
    assert "raises the loss" in text and "0.4%" in text
    assert "33% lower held-out loss" in text and "negative transfer" in text
    calm = " ".join(
        words.explain_lesson(
            _block(0.01, 0.005), tasks, groups, {"together": 0.20, "groups": 0.25}, True
        )
    )
    assert "still lowers" in calm and "no negative transfer" in calm


def test_heatmap_reading_aids():
    A = np.array([[0.03, -0.031], [0.02, 0.01]])
    fig = heatmaps.heatmap(A, ["x", "y"], zmax=0.05)
    hm = fig.data[0]
    assert hm.zmid == 0 and hm.zmin == -0.05 and hm.zmax == 0.05
    assert hm.colorscale[0][1] == "#b2182b" and hm.colorscale[-1][1] == "#2166ac"  # red..blue
    assert hm.customdata[0][1] == "A step on task x raises task y's loss by 3.1%"
    assert hm.customdata[1][0] == "A step on task y lowers task x's loss by 2%"
    assert np.isnan(hm.z[0][0])  # diagonal hidden from the colour scale
    assert "source" in fig.layout.yaxis.title.text and "target" in fig.layout.xaxis.title.text


def test_animation_uses_fixed_scale_and_downsamples():
    steps = np.arange(1, 501)
    stack = np.random.default_rng(0).normal(size=(500, 3, 3))
    fig = heatmaps.animated_heatmap(steps, stack, ["a", "b", "c"], zmax=2.0, max_frames=40)
    assert len(fig.frames) <= 40 and fig.frames[-1].name == "500"
    assert fig.data[0].zmin == -2.0 and all(f.data[0].zmin is None for f in fig.frames)


def test_app_never_imports_torch():
    code = (
        "import sys; import app.streamlit_app, app.views.learn, app.views.train, "
        "app.views.explore, app.views.compare, app.views.upload, app.jobs; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_lesson_does_not_call_a_loss_gap_negative_transfer_against_the_affinity():
    tasks = ["t0", "t1", "t2", "t3"]
    groups = (frozenset({"t0", "t1"}), frozenset({"t2", "t3"}))
    # groups better by 47% while every cross-group cell helps: a noisy run, not interference
    noisy = " ".join(
        words.explain_lesson(
            _block(0.01, 0.003), tasks, groups, {"together": 0.096, "groups": 0.051}, True
        )
    )
    assert "That gap is negative transfer" not in noisy
    assert "not negative transfer" in noisy and "seed" in noisy
    # together better while the cross-group cells hurt: also flagged as noise
    odd = " ".join(
        words.explain_lesson(
            _block(0.01, -0.004), tasks, groups, {"together": 0.10, "groups": 0.20}, True
        )
    )
    assert "noisy" in odd and "no negative transfer to avoid" not in odd


def test_runs_shown_together_never_share_a_colour():
    ids = [1, 9, 17, 4, 12, 2]
    got = colours.distinct_run_colours(ids)
    assert len(set(got.values())) == len(ids)
    assert got[1] == colours.run_colour(1) and got[4] == colours.run_colour(4)


def test_ground_truth_table_signs_and_single_seed_spread():
    from app import jobs

    report = {
        "spec": {"seeds": 1},
        "approaches": {
            "together": {"name": "all together", "total_test_loss": {"mean": 2.0, "std": 0.0}},
            "tag": {"name": "TAG groups", "total_test_loss": {"mean": 1.5, "std": 0.0}},
        },
    }
    df = jobs.report_frame(report).set_index("approach")
    assert df.loc["TAG groups", "vs all together"] == pytest.approx(-0.25)  # lower = negative
    assert df["± std"].isna().all()  # one seed has no spread
    report["spec"]["seeds"] = 3
    assert jobs.report_frame(report)["± std"].notna().all()
