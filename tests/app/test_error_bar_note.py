"""The lesson's loss chart says on the chart what its whiskers are (issue 22, item 2)."""

from __future__ import annotations

import math

from app.figures import approaches
from mtl_core.lesson.report import Interval, interval


def _notes(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_whiskers_are_the_t_interval_and_the_chart_says_so():
    iv = interval([1.0, 1.2, 1.4, 1.6])  # four replicas
    fig = approaches.lesson_losses({"together": {"a": iv, "b": iv}}, ["a", "b"], title="t")
    assert _notes(fig) == [
        "whiskers: 95% t-interval of the mean<br>over 4 replicas (random init, batch order)"
    ]
    # two lines short enough for a 300 px chart (the one line ran past a 270 px column)
    assert max(len(line) for line in _notes(fig)[0].split("<br>")) <= 45
    bar = fig.data[0]
    assert math.isclose(bar.error_y.array[0], iv.high - iv.mean)
    assert math.isclose(bar.error_y.arrayminus[0], iv.mean - iv.low)


def test_a_run_without_replicas_gets_no_note():
    one = Interval(1.0, math.nan, math.nan, 1)
    fig = approaches.lesson_losses({"together": {"a": one}}, ["a"])
    assert _notes(fig) == []
