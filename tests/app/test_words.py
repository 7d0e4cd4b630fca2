"""app.words: every prose builder says what its numbers say (signs, lower/higher, ratios, the
unit), and the time formatter rounds once at its boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from app import captions, words
from app.regroup import GroupResult


@pytest.mark.parametrize(
    "secs, text",
    [
        (0, "0 s"),
        (0.4, "0 s"),
        (44.6, "45 s"),
        (59.4, "59 s"),
        (59.6, "1 min 00 s"),
        (60, "1 min 00 s"),
        (65, "1 min 05 s"),
        (239.4, "3 min 59 s"),
        (239.7, "4 min 00 s"),
        (3599.4, "59 min 59 s"),
        (3599.7, "1 h 00 min"),
        (3629, "1 h 00 min"),
        (3631, "1 h 01 min"),
        (7199, "2 h 00 min"),
        (16560, "4 h 36 min"),
        (-3, "0 s"),
        (None, "–"),
        (float("nan"), "–"),
        (float("inf"), "–"),
    ],
)
def test_format_seconds_rounds_once(secs, text):
    assert words.format_seconds(secs) == text


@pytest.mark.parametrize(
    "done, rate, eta, text",
    [
        (0, None, None, "estimating…"),
        (1, 0.06, 16560.0, "estimating…"),  # first step: no rate
        (4, 2.0, 120.0, "estimating…"),
        (5, 2.0, 239.7, "4 min 00 s"),
        (50, 0.0, 10.0, "estimating…"),
        (50, 3.0, None, "estimating…"),
        (50, 3.0, 59.6, "1 min 00 s"),
    ],
)
def test_eta_says_estimating_until_there_is_a_rate(done, rate, eta, text):
    assert words.eta_text(done, rate, eta) == text


def test_describe_cell_signs_and_words():
    assert words.describe_cell("a", "b", 0.031) == "A step on task a lowers task b's loss by 3.1%"
    assert (
        words.describe_cell("a", "b", -0.0025, "proximal")
        == "A step on task a raises task b's loss by 0.25%"
    )
    assert "lowers its own loss by 1.9%" in words.describe_cell("a", "a", 0.019)
    assert "points with task b's (cosine +0.40)" in words.describe_cell("a", "b", 0.4, "cosine")
    assert "against" in words.describe_cell("a", "b", -0.4, "cosine")
    assert "not zero" in words.describe_cell("a", "b", float("nan"))


def test_hidden_diagonal_says_it_is_off_the_scale():
    S = words.cell_sentences(
        np.array([[0.019, 0.0], [0.01, 0.02]]), ["a", "b"], "lookahead", hide_diagonal=True
    )
    assert "grey" in S[0, 0] and "lowers its own loss by 1.9%" in S[0, 0]
    assert "grey" not in S[0, 1]


def test_pair_caption_says_which_pair_from_its_numbers():
    clicked = captions.pair_caption("t2", "t0", 0.0025, "lookahead", default=False, worst=-0.01)
    assert clicked.startswith("Selected pair: t2 → t0.")
    assert "harmful" not in clicked and "lowers task t0's loss by 0.25%" in clicked
    default = captions.pair_caption("t1", "t3", -0.01, "lookahead", default=True, worst=-0.01)
    assert default.startswith("Default pair: the most harmful") and "raises" in default
    calm = captions.pair_caption("t1", "t3", 0.001, "lookahead", default=True, worst=0.001)
    assert "least helpful" in calm and "lowers" in calm


def test_group_numbers_carry_the_measures_unit():
    assert words.group_mean(0.0092) == "+0.92%"
    assert words.group_mean(-0.31, "cosine") == "-0.31"
    assert words.group_mean(None) == "– (alone)"
    res = GroupResult(((frozenset("ab")),), 0.002866, True, 0.0, 0.01)
    cap = words.groups_caption(res, "tag", "lookahead")
    assert "+0.287%" in cap and "% loss change" in cap and "proven optimal" in cap
    res = GroupResult(((frozenset("ab")),), 0.3, False, 0.05, 0.01)
    cap = words.groups_caption(res, "tag", "cosine")
    assert "+0.3 " in cap and "at most 0.05 better" in cap and "%" not in cap


def test_compare_caption_uses_the_colour_bar_unit():
    cap = captions.scale_caption(0.0101, "lookahead")
    assert "±1%" in cap and "% loss change" in cap and "0.0101" not in cap
    assert "±0.5" in captions.scale_caption(0.5, "cosine")


def test_difference_sentence_in_the_measures_unit():
    assert (
        words.describe_difference("a", "b", 0.01, 0.03, "#1", "#2")
        == "a → b: #2 +3% vs #1 +1% (difference +2%)"
    )
    assert "(difference -0.2)" in words.describe_difference(
        "a", "b", 0.5, 0.3, "#1", "#2", "cosine"
    )


def test_heatmap_caption_explains_grey_and_missing():
    cap = captions.heatmap_caption(True, 3)
    assert "Grey diagonal" in cap and "3 cells marked × had nothing logged" in cap
    assert "not zero" in cap
    assert "Grey" not in captions.heatmap_caption(False, 0)
    assert "1 cell marked" in captions.heatmap_caption(False, 1)


def test_timeline_cell_names_every_group_of_a_task():
    assert (
        words.timeline_cell(5, "t3", [["t3", "t4"], ["t2", "t3"]])
        == "step 5: t3 in {t3, t4} and {t2, t3}"
    )
    assert words.timeline_cell(5, "t3", []) == "step 5: t3 in no group"


def test_export_title_and_name_keep_run_measure_steps_and_unit():
    title = captions.export_title(
        "Averaged over steps 1–1300", "#3 calm", "lookahead", captions.steps_range(1, 1300)
    )
    assert title == (
        "Averaged over steps 1–1300 · #3 calm · lookahead (% loss change) · steps 1–1300"
    )
    name = captions.export_name("run3", "calm run", "lookahead", "steps-1–1300", "%")
    assert name == "run3_calm_run_lookahead_steps-1-1300_pct"
    assert captions.steps_range(7, 7) == "step 7"


def test_no_losses_says_not_yet_only_while_running():
    assert "yet" in captions.no_losses("running", "trained", True)
    assert "holds no losses" in captions.no_losses("finished", "uploaded", False)
    assert "yet" not in captions.no_losses("finished", "trained", False)


def test_separation_caveat_only_when_affinity_cannot_separate():
    # all positive, inside ~ across: not a finding
    text = captions.separation_caveat(0.011, 0.010, True, "proximal")
    assert text and "does not separate" in text and "+1.1% vs +1%" in text
    assert captions.separation_caveat(0.03, 0.002, True, "lookahead") is None  # clear blocks
    assert captions.separation_caveat(0.01, -0.01, False, "lookahead") is None  # harm across
    assert captions.separation_caveat(float("nan"), 0.01, True, "lookahead") is None


def test_default_threshold_note_says_why_for_either_sign():
    """All pairs help: 0 would link every pair; all pairs hurt (TAG notebook values): none."""
    helps = captions.default_tau_note(0.004, "lookahead")
    assert "+0.4%" in helps and "0 would link every pair here" in helps
    hurts = captions.default_tau_note(-54.78, "lookahead")
    assert "-5478%" in hurts and "0 would link no pair here" in hurts
    assert "every pair" not in hurts


@pytest.mark.parametrize(
    "file_name, meta, taken, name",
    [
        ("a.csv", None, [], "a"),
        ("run.v2.parquet", "", [], "run.v2"),  # only the known extension goes
        ("bundle.zip", "cluster job 17", [], "cluster job 17"),  # the file's own name first
        ("events.out.tfevents.17.vm.11.0", None, [], "events.out.tfevents.17.vm.11.0"),
        ("a.csv", None, ["a"], "a (2)"),
        ("a.csv", None, ["a", "a (2)"], "a (3)"),
        ("x.tfevents", None, [], "x"),
    ],
)
def test_upload_names_are_the_files_own_and_distinct(file_name, meta, taken, name):
    assert words.upload_name(file_name, meta, taken) == name


def test_file_sizes_in_the_uploaders_decimal_units():
    """The Upload card's size matches the uploader chip above it (decimal kilobytes)."""
    assert words.file_size(376) == "376 bytes"
    assert words.file_size(2600) == "2.6 KB"
    assert words.file_size(4100) == "4.1 KB"
    assert words.file_size(1_400_000) == "1.4 MB"
