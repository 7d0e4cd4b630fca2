"""The Upload preview's per-file controls: what the user declares about a file the reader
cannot know from its bytes.

- **Orientation** (matrix-shaped files): a "rows are targets" toggle re-reads the file with
  ``rows="target"``; off, the file is read as it says (a corner cell ``target``/``source``),
  else rows = sources. The preview says which way it was read. Never guessed.
- **Measure** (files that name none): one of :data:`mtl_core.measures.REGISTRY` (lookahead,
  the stated default, proximal, cosine) or a name the user types (an alias such as ``TAG`` is
  saved as its measure's name); applied with ``ParsedRun.with_measure`` before saving.
- **TensorBoard tag pattern** (event files, or a file the reader refused for want of a known
  tag convention): ``aff/{source}->{target}`` re-reads with ``tag_pattern=...``.
- **Unit** of the values: fraction (the lab's), percent, or TAG's 1/lr-scaled sums with the
  learning rate: re-reads with ``unit=...``; the preview shows the file's value range.

The widgets are keyed by the uploaded file's id, so their values are read (from session
state) before the parse and rendered after it; a value the user set keeps its widget shown
even when the read it asked for fails, so it can always be undone.
"""

from __future__ import annotations

import streamlit as st

from app.escape import md
from mtl_core import measures as registry
from mtl_core.runfile import ParsedRun

OTHER = "other"
PATTERN_EXAMPLE = "aff/{source}->{target}"
MAX_MEASURE_CHARS = 64


def _key(kind: str, file_id: str) -> str:
    return f"upload_{kind}_{file_id}"


def read_options(file_id: str) -> tuple[str | None, str | None]:
    """``(rows, tag_pattern)`` the user has declared for this file so far (None = not
    declared): the reader's ``rows=`` and ``tag_pattern=`` options."""
    rows = "target" if st.session_state.get(_key("rows", file_id)) else None
    pattern = (st.session_state.get(_key("pattern", file_id)) or "").strip() or None
    return rows, pattern


UNITS = {
    "fraction": "fraction (the lab's: 0.041 = a 4.1% loss fall)",
    "percent": "percent (4.1 = 4.1%)",
    "tag-lr": "TAG's sums of (1 - L'/L) / lr (give the learning rate)",
}


def read_unit(file_id: str) -> str | None:
    """The unit the user declared for this file (the reader's ``unit=``), None = fraction."""
    choice = st.session_state.get(_key("unit", file_id)) or "fraction"
    if choice == "fraction":
        return None
    if choice == "tag-lr":
        lr = st.session_state.get(_key("lr", file_id))
        return f"tag-lr:{lr:g}" if lr else None
    return choice


def unit(file_id: str, raw: tuple[float, float] | None, declared: str | None) -> None:
    """The unit select (and learning rate for TAG's sums), with the file's value range as
    written in it (``raw``: before the unit was applied)."""
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    choice = c1.selectbox(
        "Unit of the file's values",
        list(UNITS),
        key=_key("unit", file_id),
        format_func=UNITS.get,
        help=(
            "Lookahead and proximal affinity are relative loss changes (1 - L'/L): the lab "
            "stores fractions, and a value above 1 is impossible. A matrix printed in percent "
            "reads 100x too big; TAG's notebooks store sums of (1 - L'/L) / lr."
        ),
    )
    if choice == "tag-lr":
        c2.number_input(
            "Learning rate", min_value=0.0, value=None, format="%g", key=_key("lr", file_id)
        )
        if not st.session_state.get(_key("lr", file_id)):
            st.warning("Give the learning rate to convert TAG's sums.", icon=":material/edit:")
    if raw is not None:
        lo, hi = raw
        how = f" (read as {md(declared)})" if declared else " (read as fractions)"
        st.caption(f":material/straighten: Values in the file: {lo:.4g} to {hi:.4g}{how}.")


def is_tensorboard(name: str) -> bool:
    """A TensorBoard event file, by the name the reader dispatches on."""
    return "tfevents" in name


def wants_pattern(error: str | None) -> bool:
    """Whether a reader error is the one a tag pattern can fix (no known tag convention, or
    the pattern given matched nothing or was malformed)."""
    return error is not None and "tag pattern" in error


def orientation(file_id: str, parsed: ParsedRun | None, name: str = "") -> None:
    """The "rows are targets" toggle (matrix-shaped tables and arrays, or once switched on)
    and, after a read, which way the matrix was read. A JSON object of objects gets the same
    flip worded for its keys: its outer keys are targets by pandas' meaning (``to_json()``,
    TAG's ``d[recipient][source]``), sources in ``to_json(orient="index")``."""
    key = _key("rows", file_id)
    shaped = parsed is not None and parsed.is_matrix
    if not shaped and not st.session_state.get(key):
        return
    if parsed is not None and parsed.json_object:
        st.toggle(
            "Outer keys are sources (pandas' to_json(orient='index'))",
            key=key,
            help=(
                "A JSON object of objects is read as {target: {source: value}}: pandas' "
                "default to_json() and TAG's notebooks put targets outside. "
                "DataFrame.to_json(orient='index') of a rows = sources matrix puts sources "
                "outside, and is the same JSON for a square matrix: switch this on to read "
                "it that way (the CLI's --rows target)."
            ),
        )
        # a warning box, not a caption: the reading cannot be told from the file
        st.warning(md(parsed.orientation_note() or ""), icon=":material/swap_horiz:")
        return
    st.toggle(
        "Rows are targets (a table or array pasted from TAG's code, which is recipient-major)",
        key=key,
        help=(
            "The lab's matrices have rows = sources: A[i, j] is the effect of a step on "
            "source i on target j. A matrix copied out of TAG's notebooks as a table or array "
            "has rows = targets (recipients): switch this on to read it transposed. A corner "
            "cell reading 'target' or 'source' is honoured without it."
        ),
    )
    if parsed is None:
        return
    transposed = [n for n in parsed.notes if n.startswith("rows are targets")]
    if transposed:
        st.caption(f":material/swap_horiz: Read as {md(transposed[0])}.")
    else:
        st.caption(
            ":material/east: Read with rows = sources (A[i, j] = source i → target j); "
            "switch the toggle on if this file's rows are targets."
        )


def tag_pattern(file_id: str, name: str, error: str | None) -> None:
    """The tag-pattern input: always for TensorBoard files, else when the reader asked for
    one (or a pattern was already given)."""
    key = _key("pattern", file_id)
    if not (is_tensorboard(name) or wants_pattern(error) or st.session_state.get(key)):
        return
    st.text_input(
        f"Tag pattern, e.g. {PATTERN_EXAMPLE}",
        key=key,
        max_chars=200,
        placeholder=PATTERN_EXAMPLE,
        help=(
            "For logs that name their affinity scalars another way: {source} and {target} "
            "(and optionally {measure}) stand for the names in each tag. Empty = the "
            "conventions the lab knows (docs/run-format.md)."
        ),
    )
    pattern = (st.session_state.get(key) or "").strip()
    if pattern and error is None:
        st.caption(f"Read with the tag pattern {md(pattern)}.")


def measure(file_id: str, parsed: ParsedRun) -> ParsedRun | None:
    """The measure select for a file that names none; returns the run with the chosen
    measure applied (``with_measure``), ``parsed`` itself when the file names its measures,
    or None while "other" has no name yet (the file cannot be saved)."""
    if not parsed.measure_assumed:
        return parsed
    default = registry.DEFAULT_MEASURE
    choice = st.selectbox(
        f"Measure (the file names none; default {default})",
        [*registry.names(), OTHER],
        index=registry.names().index(default),
        key=_key("measure", file_id),
        format_func=lambda m: "other (type its name)" if m == OTHER else registry.get(m).label,
        help=(
            "Which affinity this file holds: "
            + ", ".join(m.label for m in registry.REGISTRY)
            + ", or another name you type."
        ),
    )
    if choice != OTHER:
        return parsed.with_measure(choice)
    typed = st.text_input(
        "Measure name", key=_key("measure_other", file_id), max_chars=MAX_MEASURE_CHARS
    )
    name = registry.canonical(typed or "")
    if not name:
        st.warning("Type the measure's name to save this file.", icon=":material/edit:")
        return None
    return parsed.with_measure(name)
