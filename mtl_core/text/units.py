"""One unit per affinity measure, shared by the CLI, the app, exports and the docs.

Lookahead (TAG) and proximal affinity are *relative loss changes* (``0.0092`` = the target's
loss went down by 0.92%): people read, type and copy them in **percent**. Gradient cosine is a
plain number in [-1, 1] (not a percentage). Stored values (the run store, the open run format,
grouper inputs) always stay in the measure's own units (fractions); only what a person reads or
types (slider, URL, ``--tau``, tables, captions, figure titles) is in the display unit, and
every such number says its unit.

Which measure has which unit is :data:`mtl_core.measures.REGISTRY`'s ``unit``; a measure the
registry does not know (a name typed for an uploaded file) is a plain number.
"""

from __future__ import annotations

from mtl_core import measures


def is_percent(measure: str | None) -> bool:
    """Whether ``measure``'s values are relative loss changes (shown in percent): its
    registry unit is :data:`mtl_core.measures.FRACTION` (an alias such as ``"TAG"`` works)."""
    spec = measures.find(measure)
    return spec is not None and spec.is_percent


def scale(measure: str | None) -> float:
    """Display value = stored value x ``scale`` (100 for percent measures, else 1)."""
    return 100.0 if is_percent(measure) else 1.0


def to_display(value: float, measure: str | None) -> float:
    """A stored value (fraction) in the measure's display unit (percent for loss changes)."""
    return float(value) * scale(measure)


def from_display(value: float, measure: str | None) -> float:
    """A value typed in the display unit (slider, URL, ``--tau``) in stored units."""
    return float(value) / scale(measure)


def suffix(measure: str | None) -> str:
    """What to write right after a displayed number: ``%`` or nothing."""
    return "%" if is_percent(measure) else ""


def unit_name(measure: str | None) -> str:
    """The unit in words, for labels and column headers: ``% loss change`` or ``cosine`` (the
    registry's ``unit_words``), ``affinity units`` for a measure the registry does not know."""
    spec = measures.find(measure)
    return spec.unit_words if spec is not None else "affinity units"


def format_value(value: float, measure: str | None, *, signed: bool = True, digits: int = 3) -> str:
    """``+0.92%`` (loss-change measures) or ``+0.31`` (cosine), ``–`` for NaN/None.

    ``digits`` significant digits, never scientific notation for usual sizes.
    """
    if value is None or value != value:  # NaN
        return "–"
    v = to_display(value, measure)
    text = _sig(abs(v), digits)
    sign = ("+" if v > 0 else "-" if v < 0 else "") if signed else ("-" if v < 0 else "")
    return f"{sign}{text}{suffix(measure)}"


def _sig(x: float, digits: int) -> str:
    """``x`` >= 0 with ``digits`` significant digits, plain (no exponent) for 1e-4..1e6."""
    if x == 0:
        return "0"
    if x < 1e-4 or x >= 1e6:
        return f"{x:.{digits - 1}e}"
    text = f"{x:.{digits}g}"
    if "e" in text:  # e.g. 1e+03
        text = f"{x:.0f}"
    return text


def parse_display(text: str | float, measure: str | None, what: str = "--tau") -> float:
    """A number a person typed in the measure's display unit (``0.5`` or ``0.5%`` for
    lookahead/proximal: percent, as on the page and in its URL; ``0.2`` for cosine), in
    stored units (``0.005``; ``0.2``).

    Raises
    ------
    LabError
        Not a finite number, or a ``%`` on a measure that is not a percentage.
    """
    from mtl_core.errors import LabError

    raw = str(text).strip()
    has_pct = raw.endswith("%")
    if has_pct and not is_percent(measure):
        raise LabError(
            f"{what} {raw}: {measure} affinity is not a percentage; give a plain number, e.g. 0.2"
        )
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise LabError(f"{what} must be a number ({unit_name(measure)}), got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise LabError(f"{what} must be a finite number, got {raw!r}")
    return from_display(value, measure)


def step_rate(steps_per_s: float | None) -> str:
    """A training speed as a person reads it: ``45 step/s``, ``4.5 step/s``, and below one
    step a second the time per step, ``3.2 s/step`` (never ``0 step/s``); ``""`` when
    unknown (None, 0, negative or not finite).

    One function for every place a rate is shown: the CLI's progress bar, the Train queue
    and the run status line.
    """
    if steps_per_s is None or not steps_per_s > 0 or steps_per_s == float("inf"):
        return ""
    r = float(steps_per_s)
    if r >= 9.95:  # would round to 10.0
        return f"{r:.0f} step/s"
    if r >= 0.95:  # 0.95..10: one decimal (0.95 would round to "1.0 step/s")
        return f"{r:.1f} step/s"
    per = 1.0 / r
    return f"{per:.1f} s/step" if per < 100 else f"{per:.0f} s/step"
