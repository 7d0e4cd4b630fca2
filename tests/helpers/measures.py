"""A measure the lab does not ship, for the tests that adding a measure is one registry
entry (tests/core/test_measures.py, the app's Upload and Train selects)."""

from mtl_core import measures

#: A measure nobody ships: a plain-number, shared-step measure for the "one entry" tests.
GRADNORM = measures.Measure(
    name="gradnorm",
    label="gradnorm (test measure)",
    unit=measures.PLAIN,
    unit_words="norm ratio",
    logged_by=measures.SHARED_STEP,
    modes=("together",),
    default_in=(),
    needs_gradients=True,
    needs_lookahead=False,
    bounds=(0.0, None),
    aliases=("gn",),
    source="a test",
)
