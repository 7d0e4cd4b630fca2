"""mtl_core.text.units: one display unit per measure (percent for loss changes, plain cosine)."""

from __future__ import annotations

import math

import pytest

from mtl_core.errors import LabError
from mtl_core.text import units


@pytest.mark.parametrize(
    "measure, shown", [("lookahead", 0.92), ("proximal", 0.92), ("cosine", 0.0092)]
)
def test_display_round_trip(measure, shown):
    assert units.to_display(0.0092, measure) == pytest.approx(shown)
    assert units.from_display(shown, measure) == pytest.approx(0.0092)


def test_format_value_signs_units_and_digits():
    assert units.format_value(0.0092, "lookahead") == "+0.92%"
    assert units.format_value(-0.0025, "proximal") == "-0.25%"
    assert units.format_value(0.0, "lookahead") == "0%"
    assert units.format_value(0.31, "cosine") == "+0.31"
    assert units.format_value(-0.31, "cosine", signed=False) == "-0.31"
    assert units.format_value(0.0101, "lookahead", signed=False, digits=2) == "1%"
    assert units.format_value(0.002866, "lookahead") == "+0.287%"
    assert units.format_value(float("nan"), "lookahead") == "–"
    assert units.format_value(None, "cosine") == "–"


def test_unit_names_say_what_the_number_is():
    assert units.unit_name("lookahead") == "% loss change"
    assert units.unit_name("cosine") == "cosine"
    assert units.suffix("proximal") == "%" and units.suffix("cosine") == ""


@pytest.mark.parametrize(
    "text, measure, value",
    [
        ("0.5", "lookahead", 0.005),
        ("0.5%", "proximal", 0.005),
        (" -1.2 % ", "lookahead", -0.012),
        ("0.2", "cosine", 0.2),
        (0.027, "lookahead", 0.00027),
    ],
)
def test_parse_display(text, measure, value):
    assert units.parse_display(text, measure) == pytest.approx(value)


@pytest.mark.parametrize(
    "text, measure, words",
    [
        ("50%", "cosine", "not a percentage"),
        ("abc", "lookahead", "must be a number"),
        ("nan", "lookahead", "finite"),
        ("inf", "cosine", "finite"),
    ],
)
def test_parse_display_errors(text, measure, words):
    with pytest.raises(LabError, match=words):
        units.parse_display(text, measure)
    assert not math.isnan(units.from_display(1.0, measure))


@pytest.mark.parametrize(
    "rate, text",
    [
        (45.4, "45 step/s"),
        (12.0, "12 step/s"),
        (4.54, "4.5 step/s"),
        (1.0, "1.0 step/s"),
        (0.3125, "3.2 s/step"),  # slow runs: the time per step, not "0 step/s"
        (0.1, "10.0 s/step"),
        (0.004, "250 s/step"),
        (None, ""),
        (0.0, ""),
        (float("nan"), ""),
        (float("inf"), ""),
    ],
)
def test_step_rate_never_says_zero_steps_a_second(rate, text):
    assert units.step_rate(rate) == text
