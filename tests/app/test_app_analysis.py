"""The app's pure helpers: agreement, group order, the lesson's sentences, the heatmap
builder's reading aids. No Streamlit, no torch. (Smoothing and downsampling are
``mtl_core.series``: tests/core/test_series.py.)"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from app import colours, lesson_words, regroup
from app.figures import animation, heatmaps
from mtl_core.lesson.report import Interval


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


def _iv(mean: float, half: float = 0.01) -> Interval:
    return Interval(mean, mean - half, mean + half, 16)


def _diff(grp=None, sgl=None, half: float = 0.002) -> dict[str, Interval]:
    """Paired differences together minus groups / single, centred on the given means."""
    return {k: _iv(v, half) for k, v in (("groups", grp), ("single", sgl)) if v is not None}


def test_lesson_sentences_follow_the_numbers():
    tasks = ["t0", "t1", "t2", "t3"]
    clusters = (frozenset({"t0", "t1"}), frozenset({"t2", "t3"}))
    hurt = " ".join(
        lesson_words.explain_lesson(
            _block(0.01, -0.004),
            tasks,
            clusters,
            {"together": _iv(0.30), "groups": _iv(0.20), "single": _iv(0.22)},
            True,
            diff=_diff(0.1, 0.08),
        )
    )
    assert "lowers the others' loss by 1%" in hurt
    assert "raises the loss" in hurt and "0.4%" in hurt
    assert "All together is 50% higher than the groups'" in hurt
    assert (
        "the difference, paired over the 16 replicas, is +0.100 (95% interval +0.098 to "
        "+0.102), above 0: that gap is negative transfer." in hurt
    )
    helps = " ".join(
        lesson_words.explain_lesson(
            _block(0.01, 0.005),
            tasks,
            clusters,
            {"together": _iv(0.10), "groups": _iv(0.125), "single": _iv(0.15)},
            True,
            diff=_diff(-0.025, -0.05),
        )
    )
    assert "all six tasks help each other" in helps
    assert "20% lower than the groups' and 33% lower than each task alone" in helps
    assert (
        "the differences, paired over the 16 replicas, are -0.025 (95% interval -0.027 to "
        "-0.023) and -0.050 (95% interval -0.052 to -0.048), below 0: positive transfer" in helps
    )


def test_lesson_verdict_follows_the_paired_difference_not_the_own_intervals():
    """Own intervals overlapping (0.20 -+ 0.03 against 0.17 -+ 0.03) do not stop a verdict
    whose paired difference is clear of 0, and own intervals far apart give none when the
    paired difference covers 0: the sentence always shows the difference it rests on."""
    tasks = ["t0", "t1", "t2", "t3"]
    clusters = (frozenset({"t0", "t1"}), frozenset({"t2", "t3"}))
    loss = {"together": _iv(0.20, 0.03), "groups": _iv(0.17, 0.03), "single": _iv(0.22, 0.03)}
    clear = " ".join(
        lesson_words.explain_lesson(None, tasks, clusters, loss, True, diff=_diff(0.03, -0.02))
    )
    assert "All together is 18% higher than the groups'" in clear
    assert "+0.030 (95% interval +0.028 to +0.032), above 0" in clear
    assert "negative transfer" in clear
    close = " ".join(
        lesson_words.explain_lesson(
            None, tasks, clusters, loss, True, diff=_diff(0.001, -0.02, half=0.004)
        )
    )
    assert (
        "All together minus the groups, paired over the 16 replicas: +0.001 (95% interval "
        "-0.003 to +0.005), which covers 0: no clear difference between sharing every task "
        "and training in groups at this conflict level." in close
    )
    assert "negative transfer" not in close and "positive transfer" not in close
    # beats the groups, but not clearly each task alone: the sentence says between what
    alone = " ".join(
        lesson_words.explain_lesson(
            None, tasks, clusters, loss, False, diff=_diff(-0.02, 0.001, half=0.004)
        )
    )
    assert "All together minus each task alone, paired over the 16 replicas" in alone
    assert "and training each task alone at this conflict level yet." in alone


def test_lesson_gives_no_verdict_when_runs_or_intervals_are_missing():
    tasks = ["t0", "t1", "t2", "t3"]
    clusters = (frozenset({"t0", "t1"}), frozenset({"t2", "t3"}))
    no_groups = " ".join(
        lesson_words.explain_lesson(
            None,
            tasks,
            clusters,
            {"together": _iv(0.10), "single": _iv(0.15)},
            False,
            diff=_diff(sgl=-0.05),
        )
    )
    assert "The grouped run has no held-out loss yet, so no verdict yet." in no_groups
    one = " ".join(
        lesson_words.explain_lesson(
            None,
            tasks,
            clusters,
            {
                "together": Interval(0.3, np.nan, np.nan, 1),
                "groups": Interval(0.1, np.nan, np.nan, 1),
            },
            True,
            diff={"groups": Interval(0.2, np.nan, np.nan, 1)},
        )
    )
    assert "no verdict" in one and "negative transfer" not in one


def test_lesson_heatmap_caption_marks_the_settling_steps_and_the_fixed_scale():
    early = lesson_words.lesson_heatmap_caption(12, 300, 0.02, settling=True)
    assert early.startswith("Affinity so far: step 12 of 300 · **still settling**")
    assert "fixed at ±2% for the whole lesson" in early
    assert "still settling" not in lesson_words.lesson_heatmap_caption(120, 300, 0.02, False)


_RATIO = re.compile(r"([\d.]+)% (higher|lower) than")
_NUMBER = re.compile(r"(all together|in groups|each alone) ([\d.e-]+)")


def test_every_ratio_in_the_lesson_prose_matches_the_numbers_it_shows():
    """The old page said "372% better" where the numbers meant 79% lower: every "N% higher
    /lower than" must be (a - b) / b of the two numbers the sentence itself shows."""
    rng = np.random.default_rng(0)
    tasks = ["t0", "t1", "t2", "t3"]
    clusters = (frozenset({"t0", "t1"}), frozenset({"t2", "t3"}))
    checked = 0
    for _ in range(300):
        tog, grp, sgl = rng.uniform(0.05, 1.0, size=3)
        loss = {"together": _iv(tog, 0.004), "groups": _iv(grp, 0.004), "single": _iv(sgl, 0.004)}
        diff = _diff(tog - grp, tog - sgl, half=0.004)
        for sentence in lesson_words.explain_lesson(
            _block(0.01, -0.002), tasks, clusters, loss, True, diff=diff
        ):
            found = _RATIO.search(sentence)
            if not found:
                continue
            shown = {k: float(v) for k, v in _NUMBER.findall(sentence)}
            a = shown["all together"]
            b = shown["in groups"] if "groups'" in sentence[found.end() :] else shown["each alone"]
            want = abs(a - b) / b * 100
            got = float(found.group(1))
            assert found.group(2) == ("higher" if a > b else "lower")
            assert got == pytest.approx(want, rel=0.06, abs=0.06), sentence
            checked += 1
    assert checked > 100
    assert lesson_words.relative(0.1, 0.472) == "79% lower"  # the case
    assert lesson_words.relative(0.472, 0.1) == "372% higher"


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
    fig = animation.animated_heatmap(steps, stack, ["a", "b", "c"], zmax=2.0, max_frames=40)
    assert len(fig.frames) <= 40 and fig.frames[-1].name == "500"
    assert fig.data[0].zmin == -2.0 and all(f.data[0].zmin is None for f in fig.frames)


@pytest.mark.slow
def test_app_never_imports_torch():
    code = (
        "import sys; import app.streamlit_app, app.views.learn, app.views.train, "
        "app.views.explore, app.views.compare, app.views.upload, app.jobs; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


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


def test_conflict_help_names_the_lesson_scenarios_angle():
    """The knob's help said "a fraction of 90 degrees ... orthogonal" while the lesson's
    rotation stops at its scenario's ``max_angle`` (60 degrees)."""
    from mtl_core.scenarios import get_scenario, resolve_knobs

    max_angle = resolve_knobs(get_scenario("lesson"), {})["max_angle"]
    assert f"as a fraction of {max_angle:g} degrees" in lesson_words.LESSON_CONFLICT_HELP
    assert f"they are {max_angle:g} degrees apart" in lesson_words.LESSON_CONFLICT_HELP


def test_intervals_show_their_ends_apart_at_one_precision():
    """A narrow interval is never printed as ``+0.27 to +0.27`` (new-user finding): mean and
    ends share the decimal places of the half-width's first significant digit."""
    assert lesson_words.paired_text(Interval(0.2712, 0.2690, 0.2734)) == (
        "+0.271 (95% interval +0.269 to +0.273)"
    )
    assert lesson_words.paired_text(Interval(0.27123, 0.27103, 0.27143)) == (
        "+0.2712 (95% interval +0.2710 to +0.2714)"
    )
    assert lesson_words.loss_interval(Interval(0.3901, 0.385, 0.397)) == (
        "0.390 (95% interval 0.385–0.397)"
    )
    assert lesson_words.loss_interval(Interval(0.39, float("nan"), float("nan"))) == "0.39"
    assert lesson_words.paired_text(Interval(0.1, 0.1, 0.1)) == "+0.1 (95% interval +0.1 to +0.1)"
