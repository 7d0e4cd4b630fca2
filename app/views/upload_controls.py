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


def is_tensorboard(name: str) -> bool:
    """A TensorBoard event file, by the name the reader dispatches on."""
    return "tfevents" in name


def wants_pattern(error: str | None) -> bool:
    """Whether a reader error is the one a tag pattern can fix (no known tag convention, or
    the pattern given matched nothing or was malformed)."""
    return error is not None and "tag pattern" in error


def orientation(file_id: str, parsed: ParsedRun | None, name: str = "") -> None:
    """The "rows are targets" toggle (matrix-shaped tables and arrays, or once switched on)
    and, after a read, which way the matrix was read. A JSON object of objects gets none: its
    keys say which is which (pandas' meaning, outer key = target), so TAG's
    ``d[recipient][source]`` dicts already read the right way round."""
    key = _key("rows", file_id)
    shaped = parsed is not None and parsed.is_matrix and not name.lower().endswith(".json")
    if not shaped and not st.session_state.get(key):
        return
    st.toggle(
        "Rows are targets (a table or array pasted from TAG's code, which is recipient-major)",
        key=key,
        help=(
            "The lab's matrices have rows = sources: A[i, j] is the effect of a step on "
            "source i on target j. A matrix copied out of TAG's notebooks as a table or array "
            "has rows = targets (recipients): switch this on to read it transposed. A corner "
            "cell reading 'target' or 'source' is honoured without it; a JSON object of "
            "objects is read by its keys and needs no toggle."
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
