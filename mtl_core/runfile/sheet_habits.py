"""What spreadsheets and R write around a table, undone before the table is read (issue 21,
kind 5). Torch-free.

- ``#`` comment lines above the header (TAG-style notes, ``np.savetxt(header=...)`` dumps),
  and Excel's ``sep=,`` first line (it declares the delimiter): skipped, and said so;
- ``#`` comment lines below the header and between data rows (a note written when a run was
  resumed, a trailing ``# done``): skipped, said so with their line numbers, and rows still
  named by their line in the file (:func:`strip_comment_lines`);
- ``#`` end-of-row comments (``a,0.1,0.2  # resumed``): the cells read, the comment dropped,
  and its lines named in a note (:func:`strip_comment_lines`); the header line's too
  (``step,source,target,affinity  # logged by X``), by the same rule;
- old-Mac ``\r`` line ends, alone or mixed with ``\n`` and ``\r\n``: read as ``\n``
  (:func:`unify_line_ends`);
- space- or tab-aligned ``.txt`` tables (R's ``write.table(sep=" ")`` of padded columns,
  ``np.savetxt(fmt="%10.6f")``, ``df.to_string()``): runs of blanks are one separator
  (:func:`collapse_blanks`); a tab-separated ``.txt`` (one tab between cells on every line,
  :func:`tab_separated`) reads as a ``.tsv``, an empty cell unmeasured;
- R's ``write.table(m)`` header, one name short (no corner cell): the first column is row
  names;
- Excel's trailing empty columns (``,,`` at the end of every line, header included) and
  trailing empty rows: dropped;
- missing-value marks: pandas' ``read_csv`` defaults (``NA``, ``N/A``, ``null``, ``None``,
  ``#N/A`` ...) and Excel's error values (``#DIV/0!``, ``#VALUE!`` ...) read as unmeasured
  cells wherever a number may be missing (:data:`MISSING_MARKS`, used by
  :func:`mtl_core.runfile.cells.to_numbers`).
"""

from __future__ import annotations

import csv
import io
import itertools
import re

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.coded import arrow_text, equals_text, head, numbers_first
from mtl_core.runfile.messages import Locate, show
from mtl_core.runfile.report import note

Columns = dict[str, np.ndarray]

#: pandas' ``read_csv`` default NA strings (``pandas._libs.parsers.STR_NA_VALUES``, pandas
#: 2.x; a test checks this is still a superset) plus Excel's error values.
PANDAS_NA = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
EXCEL_ERRORS = frozenset(
    {"#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#N/A", "#SPILL!", "#CALC!"}
)
MISSING_MARKS = PANDAS_NA | EXCEL_ERRORS

_SEP_LINE = re.compile(r"^sep=(.)\s*$")
#: Placeholder names for header cells left blank after the last named column.
_BLANK = "\x00blank"


def strip_preamble(text: str, name: str) -> tuple[str, str | None, int]:
    """Drop ``#`` comment lines and an Excel ``sep=X`` line above the header.

    Returns ``(text from the header on, declared delimiter or None, lines skipped)``; notes
    what was skipped.
    """
    if not text.startswith(("#", "sep=")):
        return text, None, 0
    lines = text.splitlines(keepends=True)
    skipped, declared, comments = 0, None, 0
    for line in lines:
        m = _SEP_LINE.match(line) if skipped == 0 else None
        if m:
            declared = m.group(1)
        elif line.lstrip().startswith("#") or not line.strip():
            comments += line.lstrip().startswith("#")
        else:
            break
        skipped += 1
    if declared is not None:
        note(f"{name}: Excel's first line 'sep={declared}' honoured (delimiter {declared!r})")
    if comments:
        note(f"{name}: skipped {comments} '#' comment line(s) above the header")
    rest = "".join(lines[skipped:])
    if not rest.strip():
        raise LabError(f"{name}: the file holds only comment lines")
    return rest, declared, skipped


#: A line whose first non-blank character is ``#`` (a candidate comment line).
_COMMENT_LINE = re.compile(r"(?m)^[ \t]*#")
#: A ``#`` that does not start an Excel error or ``#N/A`` (a file full of ``,#N/A`` cells is
#: not looked at line by line for end-of-row comments).
_NOT_A_MARK = (
    "#(?!" + "|".join(re.escape(m[1:]) for m in sorted(MISSING_MARKS) if m[:1] == "#") + ")"
)
#: A ``\r`` that is not the first half of ``\r\n`` (an old-Mac line end).
_LONE_CR = re.compile(r"\r(?!\n)")


def unify_line_ends(text: str) -> tuple[str, bool]:
    """``text`` with every line end as ``\n`` when it holds an old-Mac ``\r`` line end
    (alone, or mixed with ``\n`` and ``\r\n``); ``(text, rewritten)``.

    A file of ``\n`` or ``\r\n`` ends only is returned as is (no copy): every reader below
    takes those. Lines keep their numbers (each ``\r``, ``\n`` or ``\r\n`` ends one line).
    """
    if "\r" not in text or _LONE_CR.search(text) is None:
        return text, False
    return re.sub(r"\r\n?", "\n", text), True


#: A quoted cell on one line, or a run of blanks.
_BLANK_RUN = re.compile(r'"[^"\n]*"|[ \t]+')
_EDGE_BLANKS = re.compile(r"(?m)^ | $")


def collapse_blanks(text: str, delim: str, name: str) -> tuple[str, bool]:
    """A whitespace-separated table (``delim`` a space; else ``text`` as is): every run of
    spaces and tabs outside quotes becomes one space and each line's leading and trailing
    blanks are dropped, so padded columns (R's ``write.table(sep=" ")`` after ``format()``,
    ``np.savetxt`` with a field width, ``df.to_string()``) read as one cell per column;
    ``(text, rewritten)``.

    A header indented over a row-label column comes out one name short, which
    :func:`r_row_names` reads as row names. Notes the rewrite. An empty cell cannot be
    written in such a file (R writes ``NA``): a row with one cell fewer is refused later
    with its line.
    """
    if delim != " " or "\t" not in text and "  " not in text and not _EDGE_BLANKS.search(text):
        return text, False  # single spaces only: read as it is
    if '"' in text:
        out = _BLANK_RUN.sub(lambda m: m.group() if m.group()[0] == '"' else " ", text)
    else:
        out = re.sub(r"[ \t]+", " ", text)
    out = _EDGE_BLANKS.sub("", out)
    if out == text:
        return text, False
    note(f"{name}: read as whitespace-separated (a run of spaces or tabs is one separator)")
    return out, True


def tab_separated(text: str) -> bool:
    """Whether a ``.txt`` table whose header holds tabs is tab-separated (a tab between
    every two cells, an empty cell where nothing was measured, as a ``.tsv``), not aligned
    with runs of tabs (:func:`collapse_blanks`): every header name but the corner is
    non-empty, and the first data lines (up to 200; blank and ``#`` lines aside) all hold
    the header's count of tabs, or one more (R's ``write.table(sep="\t")`` header, one
    name short)."""
    lines = text[: 1 << 16].split("\n")
    header = lines[0].rstrip("\r")
    tabs = header.count("\t")
    if not tabs or any(not c.strip() for c in header.split("\t")[1:]):
        return False
    counts = {
        line.count("\t")
        for line in lines[1:201]
        if line.strip() and not line.lstrip().startswith("#")
    }
    return len(counts) == 1 and counts <= {tabs, tabs + 1}


def _outside_quotes(prefix: str) -> str | None:
    """``prefix`` with quoted text masked (same length), or None when it ends inside quotes."""
    if '"' not in prefix:
        return prefix
    if prefix.count('"') % 2:
        return None
    return re.sub(r'"[^"]*"', lambda m: "x" * len(m.group()), prefix)


def _end_comment(line: str, delim: str, n: int, header: bool = False) -> int:
    """Where an end-of-row ``#`` comment starts in data ``line``, or -1.

    It is one when the ``#`` (outside quotes) comes after the row's ``n`` cells: inside the
    n-th (or a later) cell after its value and a blank (``0.2  # note``), or starting a cell
    after the n-th (``0.2<TAB># note``). A ``#`` starting a missing-value mark (``#N/A``) is
    data, and a ``#`` within the first cells (a label ``task #1``) is left to the cells.

    ``header``: ``line`` is the header line (``n``: the cells of the data rows below it);
    column names may hold a ``#`` (``task #2``, ``#params``), so there the ``#`` must also
    be followed by a blank or end the line (``affinity  # logged by X``).
    """
    start = 0
    while (p := line.find("#", start)) >= 0:
        start = p + 1
        masked = _outside_quotes(line[:p])
        if masked is None:
            continue
        if header and line[p + 1 : p + 2] not in ("", " ", "\t", "\r"):
            continue
        word = re.split(r"[ \t" + re.escape(delim) + "]", line[p:], maxsplit=1)[0]
        if word.strip('"') in MISSING_MARKS:
            continue
        cell = masked.count(delim)  # the index of the cell holding the '#'
        before = masked[masked.rfind(delim) + 1 :]
        if before.strip(" \t"):  # after a value in the same cell: a blank must part them
            if before[-1] in " \t" and cell + 1 >= n:
                return len(line[:p].rstrip(" \t"))
        elif cell >= n:  # the '#' starts a cell after the row's cells
            return len(line[: masked.rfind(delim)].rstrip(" \t"))
    return -1


def strip_comment_lines(
    text: str, delim: str, name: str, above: int = 0
) -> tuple[str, np.ndarray, bool]:
    """Drop the ``#`` comment lines below the header (``text`` starts at the header line),
    and the ``#`` end-of-row comments of data rows (:func:`_end_comment`).

    A line is a comment when its first non-blank character is ``#`` and its first cell is
    neither a missing-value mark (``#N/A``, ``#DIV/0!`` ... are data, :data:`MISSING_MARKS`)
    nor a header name (a matrix's row label, a task named ``#1``).
    A quoted cell spanning lines is not looked into (such a continuation line starting with
    ``#`` would be dropped).

    Parameters
    ----------
    text : the table's text from its header line on.
    delim : its delimiter (the first cell of a candidate line is read up to it).
    name : the file's name for messages.
    above : lines of the file above ``text`` (skipped by :func:`strip_preamble`), so the note
        names lines as the file numbers them.

    Returns
    -------
    ``(text without them, removed, cut)``: ``removed`` holds the dropped lines' numbers
    counted within ``text`` (int64, 1 = the header line, ascending); ``cut`` says whether an
    end-of-row comment was dropped. With neither, ``text`` is returned as is (no copy).
    Notes the counts and the first lines (numbered as in the file).

    Raises ``LabError`` when only comment lines follow the header.
    """
    none = np.empty(0, dtype=np.int64)
    text, header_cut = _header_comment(text, delim, name, above)
    first = text.find("\n")
    # (a plain find first: 1 ms on 45 MB, against 140 ms for the line regex)
    if first < 0 or text.find("#", first) < 0:
        return text, none, header_cut
    if (
        _COMMENT_LINE.search(text, first + 1) is None
        and re.compile(r"[ \t" + re.escape(delim) + "]" + _NOT_A_MARK).search(text, first) is None
    ):
        return text, none, header_cut  # every '#' is glued to a value: the cells say so
    lines = text.split("\n")  # (not splitlines: a cell may hold \x0b, \u2028 ...)
    header = lines[0].split(delim)
    # a first cell naming a header column is a matrix row label (a task named '#1'): data
    data_marks = MISSING_MARKS | {h.strip().strip('"') for h in header}
    n = len(header)
    kept, removed, cut = [lines[0]], [], []
    for k, line in enumerate(lines[1:], start=2):
        if "#" not in line:
            kept.append(line)
            continue
        body = line.lstrip(" \t")
        first_cell = body.split(delim, 1)[0].strip().strip('"')
        if body.startswith("#") and first_cell not in data_marks:
            removed.append(k)
            continue
        end = _end_comment(line, delim, n)
        if end >= 0:
            line = line[:end]
            cut.append(k)
        kept.append(line)
    if not removed and not cut:
        return text, none, header_cut
    if not "".join(kept[1:]).strip():
        raise LabError(f"{name}: only '#' comment lines follow the header (no data rows)")
    if removed:
        note(
            f"{name}: skipped {len(removed)} '#' comment line(s) below the header "
            f"({_lines(removed, above)})"
        )
    if cut:
        note(
            f"{name}: read the values before an end-of-row '#' comment on {len(cut)} "
            f"row(s) and left the comment out ({_lines(cut, above)})"
        )
    return "\n".join(kept), np.asarray(removed, dtype=np.int64), bool(cut) or header_cut


def _header_comment(text: str, delim: str, name: str, above: int) -> tuple[str, bool]:
    """``text`` (from its header line on) without an end-of-line ``#`` comment on the header
    line, by :func:`_end_comment`'s rule with the cells of the first data row;
    ``(text, cut)``. Notes the cut (the header line numbered as in the file)."""
    end = text.find("\n")
    line = text if end < 0 else text[:end]
    if "#" not in line:
        return text, False
    masked = _outside_quotes(line)
    if masked is None:
        return text, False
    cells = _data_cells(text, end, delim) or masked.count(delim) + 1
    at = _end_comment(line, delim, cells, header=True)
    if at < 0:
        return text, False
    note(
        f"{name}: read the header before its end-of-line '#' comment and left the comment "
        f"out ({_lines([1], above)})"
    )
    return line[:at] + ("\r" if line.endswith("\r") else "") + text[len(line) :], True


def _data_cells(text: str, end: int, delim: str) -> int:
    """The cells of the first data row below the header (the first of the next lines that
    is neither blank nor a ``#`` line; an end-of-row comment after a blank not counted), or
    0 when none is near."""
    if end < 0:
        return 0
    for line in text[end + 1 : end + 1 + (1 << 16)].split("\n")[:50]:
        body = line.strip(" \t\r")
        if not body or body.startswith("#"):
            continue
        masked = _outside_quotes(re.split(r"[ \t]#", line, maxsplit=1)[0])
        return 0 if masked is None else masked.count(delim) + 1
    return 0


def _lines(numbers: list[int], above: int) -> str:
    """``line 4`` or ``lines 4, 7, ...``: the first five, numbered as in the file."""
    shown = ", ".join(str(k + above) for k in numbers[:5]) + (", ..." if len(numbers) > 5 else "")
    return f"{'lines' if len(numbers) > 1 else 'line'} {shown}"


def line_shift(removed: np.ndarray, line: int) -> int:
    """How many removed lines come before kept line ``line`` (numbered without them), so the
    line's number in the file is ``line + line_shift(removed, line)``."""
    if not len(removed):
        return 0
    return int(np.searchsorted(removed - np.arange(len(removed)), line, side="right"))


def numeric_header(header: list[str]) -> list[str] | None:
    """Names ``t0..t{n-1}`` when every header cell is a number (``np.savetxt`` writes no
    header), else None."""
    cells = [h.strip() for h in header]
    if not cells or not all(cells):
        return None
    try:
        [float(c) for c in cells]
    except ValueError:
        return None
    return [f"t{k}" for k in range(len(cells))]


_R_SPACED = re.compile(r'^\s*"[^"]*"(?: +"[^"]*")+\s*$')


def r_space_delimited(text: str) -> bool:
    """Whether the header is R's ``write.table`` default: quoted names separated by spaces
    (``"a" "b"``), so the delimiter is a space."""
    end = min((k for k in (text.find("\n"), text.find("\r")) if k >= 0), default=len(text))
    return _R_SPACED.match(text[:end]) is not None


def r_row_names(text: str, delim: str, header: list[str], name: str) -> list[str]:
    """R's ``write.table(m)`` writes one name fewer than each row has cells (the row names'
    column has none): give that column the empty name (pandas' unnamed index).

    Only when the first rows (up to 5) all have one cell more than the header and their first
    cells are R's row names: the header's own names (a square matrix) or R's ``1, 2, 3``.
    """
    if not header or header[0].strip() == "":
        return header
    try:
        rows = list(itertools.islice(csv.reader(io.StringIO(text), delimiter=delim), 1, 6))
    except csv.Error:
        return header
    if not rows or any(len(r) != len(header) + 1 for r in rows):
        return header
    labels = [r[0].strip() for r in rows]
    names = {h.strip() for h in header}
    numbered = len(rows) > 1 and labels == [str(k) for k in range(1, len(rows) + 1)]
    if not (numbered or set(labels) <= names):
        return header
    note(f"{name}: the header is one name short (R's write.table): first column read as row names")
    return ["", *header]


def name_blank_tail(header: list[str]) -> tuple[list[str], list[str]]:
    """Give placeholder names to the empty header cells after the last named column (Excel
    writes ``a,b,,``), so they can be read and then dropped; ``(header, placeholders)``."""
    cells = [h.strip() for h in header]
    last = max((k for k, h in enumerate(cells) if h), default=-1)
    if last < 0 or last == len(cells) - 1:
        return header, []
    tail = [f"{_BLANK}{k}" for k in range(len(cells) - last - 1)]
    return [*header[: last + 1], *tail], tail


def drop_blank_edges(
    cols: dict[str, np.ndarray], blank: list[str], name: str
) -> dict[str, np.ndarray]:
    """Drop the placeholder-named columns (they must hold no value) and the trailing rows
    whose every cell is empty, as Excel leaves them; say how many.

    Raises ``LabError`` when a column without a header name holds values.
    """
    for k, c in enumerate(blank):
        filled = np.flatnonzero(~equals_text(cols[c], ""))
        if filled.size:
            pos = len(cols) - len(blank) + k + 1
            raise LabError(
                f"{name}: column {pos} has no name in the header but holds values (first at "
                f"row {filled[0] + 1}); name it or delete it"
            )
    out = {c: v for c, v in cols.items() if c not in blank}
    if not out:
        return out
    n_tail = 0
    if all(_last_empty(v) for v in out.values()):  # else no row at the end is all empty
        empty = np.ones(len(next(iter(out.values()))), dtype=bool)
        for v in out.values():
            empty &= equals_text(v, "")
        n_tail = len(empty) - (np.flatnonzero(~empty)[-1] + 1 if (~empty).any() else 0)
    if n_tail:
        out = {c: head(v, len(v) - n_tail) for c, v in out.items()}
    if blank or n_tail:
        parts = [f"{len(blank)} empty column(s)"] if blank else []
        parts += [f"{n_tail} empty row(s)"] if n_tail else []
        note(f"{name}: dropped {' and '.join(parts)} at the end (as spreadsheets save them)")
    if n_tail and not len(next(iter(out.values()))):
        raise LabError(f"{name}: has a header but no rows")
    return out


def _last_empty(v: np.ndarray) -> bool:
    """Whether the last cell of a parsed CSV column is ``""`` (a numbers-first column: by its
    text's empty mask), looked at alone."""
    if not len(v):
        return True
    if numbers_first(v) is not None:
        return bool(equals_text(v, "")[-1])
    return isinstance(v[-1], str) and v[-1] == ""


def note_cut_end(cols: Columns, last: str, locate: Locate) -> None:
    """A file that stops without a line break may have been cut off mid-value (an
    interrupted download, a partial copy): when its very last value is shorter than every
    other value of its column (``0.03`` below ``0.0412``, ``0.0187``), say so."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = arrow_text(cols[last])
    if text is None:
        text = pa.array(cols[last], type=pa.string())
    if len(text) < 2 or not text[-1].as_py():
        return
    end = text[-1].as_py()
    others = pc.utf8_length(text.slice(0, len(text) - 1))
    shortest = pc.min(others.filter(pc.greater(others, 0))).as_py()  # empty = unmeasured
    if shortest is not None and len(end) < shortest:
        row = len(text) - 1
        note(
            f"the file does not end with a line break and its last value {show(end)} "
            f"({locate(row)}, column {last!r}) is shorter than every other value of that "
            "column: the file may have been cut off; check its end"
        )


#: A number written with a decimal comma and no thousands separator (``-0,25``, ``1,5e-3``).
_COMMA_NUMBER = r"^[+-]?\d*,\d+([eE][+-]?\d+)?$"
_INT_OR_EMPTY = r"^([+-]?\d+)?$"


def decimal_commas(cols: Columns) -> Columns:
    """In a semicolon-separated file (European spreadsheets), a column whose cells are all
    decimal-comma numbers (or whole numbers, or empty) is read with decimal points."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out, changed = {}, []
    for c, v in cols.items():
        if numbers_first(v) is not None:  # numbers with decimal points already
            out[c] = v
            continue
        arr = pa.array(v, type=pa.string())
        comma = pc.match_substring_regex(arr, _COMMA_NUMBER)
        if (
            pc.any(comma).as_py()
            and pc.all(pc.or_(comma, pc.match_substring_regex(arr, _INT_OR_EMPTY))).as_py()
        ):
            v = pc.replace_substring(arr, ",", ".").to_numpy(zero_copy_only=False)
            changed.append(c)
        out[c] = v
    if changed:
        note(f"decimal commas read as decimal points in {len(changed)} column(s) (a ';' file)")
    return out
