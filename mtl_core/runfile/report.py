"""What a read tells its user besides the data: notes and left-out cells, and how it was asked.

A reader deep inside a container (a wide matrix, a TensorBoard tag) can say "I made up task
names" or "I left out 3 non-finite cells, the first at row 2, column 'b'" without threading a
list through every call: :func:`note` and :func:`left_out` write into the report of the read in
progress (a :class:`contextvars.ContextVar`, so concurrent reads in the app's threads never mix),
which :func:`mtl_core.runfile.read_run_file` opens with :func:`collecting` and attaches to the
:class:`~mtl_core.runfile.model.ParsedRun` (``notes``, ``left_out``).

:class:`ReadOptions` is what the user declared about the file (never guessed): which way a
matrix's rows run, the measure of a table that does not name one, a TensorBoard tag pattern.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from mtl_core.errors import LabError

#: Values of ``ReadOptions.rows``: a matrix's rows are sources (the lab's orientation) or
#: targets (TAG's code: recipient-major), i.e. transposed.
ROWS = ("source", "target")


@dataclass(frozen=True)
class ReadOptions:
    """What the user declares about a file (CLI flags, the Upload page's controls).

    Attributes
    ----------
    rows : ``"source"`` or ``"target"``: which way a matrix's rows run; None = as the file
        says (a corner cell ``source``/``target``/``recipient``), else sources.
    measure : the measure of a table that does not name one (no ``measure`` column, a matrix,
        an array); None = ``lookahead``, and the read says it assumed it.
    tag_pattern : a TensorBoard scalar-tag pattern with ``{source}`` and ``{target}`` (and
        optionally ``{measure}``), e.g. ``aff/{source}->{target}``; None = the known conventions.
    """

    rows: str | None = None
    measure: str | None = None
    tag_pattern: str | None = None

    def __post_init__(self) -> None:
        if self.rows is not None and self.rows not in ROWS:
            raise LabError(f"rows must be 'source' or 'target', got {self.rows!r}")
        if self.measure is not None and (not self.measure.strip() or "/" in self.measure):
            raise LabError(f"a measure name must be non-empty text without '/': {self.measure!r}")


@dataclass
class Report:
    """Notes of one read, and the cells it left out as unmeasured."""

    notes: list[str] = field(default_factory=list)
    left_out: int = 0
    first_left_out: str | None = None
    measure_assumed: bool = False
    matrix: bool = False
    json_object: bool = False
    pattern_used: bool = False
    percent: bool = False


_CURRENT: ContextVar[Report | None] = ContextVar("mtl_runfile_report", default=None)


@contextmanager
def collecting() -> Iterator[Report]:
    """Open a report for the read in this context; nested reads share the outer one."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    report = Report()
    token = _CURRENT.set(report)
    try:
        yield report
    finally:
        _CURRENT.reset(token)


def note(text: str) -> None:
    """Tell the user something about the read (a made-up name, a transposition, ...)."""
    report = _CURRENT.get()
    if report is not None and text not in report.notes:
        report.notes.append(text)


def left_out(count: int, first: str) -> None:
    """Record ``count`` non-finite cells left out as unmeasured, the first at ``first``."""
    report = _CURRENT.get()
    if report is None or count <= 0:
        return
    report.left_out += int(count)
    if report.first_left_out is None:
        report.first_left_out = first


def measure_assumed() -> None:
    """The table names no measure and the user gave none: the default was used."""
    report = _CURRENT.get()
    if report is not None:
        report.measure_assumed = True


def matrix_read() -> None:
    """The affinity came as a matrix (so ``rows`` applies and a "rows are targets" choice
    is worth offering)."""
    report = _CURRENT.get()
    if report is not None:
        report.matrix = True


def pattern_used() -> None:
    """The user's tag pattern named some cells (so it was not silently ignored)."""
    report = _CURRENT.get()
    if report is not None:
        report.pattern_used = True


def percent_read() -> None:
    """The values were written as percent text (``4.1%``) and read as fractions."""
    report = _CURRENT.get()
    if report is not None:
        report.percent = True


def json_object_read() -> None:
    """The matrix came as a JSON object of objects (its outer keys' meaning is declared)."""
    report = _CURRENT.get()
    if report is not None:
        report.json_object = True


#: What the note on a JSON object of objects' reading starts with.
JSON_OBJECT_NOTE = "JSON object of objects: "


def json_object_text(
    rows: str | None,
    cell: tuple[str, str, float] | None = None,
    symmetric: bool = False,
    matrices: int = 1,
    step: int | None = None,
) -> str:
    """How a JSON object of objects was read, and the flip (``--rows``, the Upload toggle).

    ``{a: {b: v}}`` is ambiguous: pandas' ``to_json()`` (orient ``columns``) and TAG's
    notebooks put targets outside, ``to_json(orient="index")`` sources; the two are the same
    JSON for a square matrix, so the reader never guesses (issue 21, kind 4). The text starts
    with the reading (``outer keys read as targets``), shows one cell both ways (``cell``:
    ``(source, target, value)`` of an off-diagonal cell), and names the flip; a ``symmetric``
    matrix reads the same either way and says so instead. A file of several ``matrices``
    (one per step or epoch) has each read the same way round and flipped together: the
    text says so, and at which ``step`` the cell shown is.
    """
    declared = rows == "target"
    outer, inner = ("sources", "targets") if declared else ("targets", "sources")
    head = f"{JSON_OBJECT_NOTE}outer keys read as {outer.upper()}, inner keys as {inner}"
    if matrices > 1:
        head += f" in each of its {matrices} matrices"
    why = (
        " (declared: pandas' to_json(orient='index'))"
        if declared
        else " (pandas' default to_json(), TAG's notebooks)"
    )
    if symmetric:
        which = "every matrix is" if matrices > 1 else "the matrix is"
        return head + why + f"; {which} symmetric, so either way reads the same"
    example = ""
    if cell is not None:
        s, t, v = cell
        key = f"[{s!r}][{t!r}]" if declared else f"[{t!r}][{s!r}]"
        where = f" at step {step}" if matrices > 1 and step is not None else ""
        inside = "that step's matrix" if where else "file"
        example = f": source {s!r} onto target {t!r}{where} = {inside}{key} = {v:.6g}"
    flip = (
        "; if the outer keys are targets, import it without --rows target"
        if declared
        else "; a to_json(orient='index') file has sources outside: flip it with --rows "
        "target (Upload: 'Outer keys are sources')"
    )
    if matrices > 1:
        flip += " (it flips every matrix)"
    return head + why + example + flip


def left_out_text(count: int, first: str | None) -> str:
    """The one sentence every surface (preview, CLI warning, import summary) uses."""
    cells = "1 cell" if count == 1 else f"{count} cells"
    where = f"; the first at {first}" if first else ""
    what = "is not a finite number" if count == 1 else "are not finite numbers"
    return (
        f"left out {cells} that {what} (NaN, inf, "
        f"empty, or a missing-value mark such as NA, #N/A, #DIV/0!) as unmeasured{where}"
    )
