"""Which scalar tags of a TensorBoard log hold affinity and losses: the conventions read.

Each convention turns a tag into ``(measure, source, target)`` for an affinity cell, or
``(split, metric, task)`` for a metrics row:

- ``lab``: ``affinity/<source>/<target>`` (measure lookahead),
  ``affinity/<measure>/<source>/<target>``, ``metrics/<split>/<metric>/<task>``;
- ``selective-group-update``: the official code of selective task-group updates (Jeong &
  Yoon, ICLR 2025) logs ``Affinity/<source>_to_<target>`` (its proximal affinity) and
  ``Train_Loss/<task>`` (``Train_Loss/total`` is the summed loss, not a task);
- ``pattern``: the user's pattern, e.g. ``aff/{source}->{target}`` (``{measure}`` optional);
  the measure is the declared one, else lookahead (noted as assumed).

``add_scalars`` layouts (PyTorch writes one sub-folder per curve, ``<main_tag>_<key>``, each
holding the main tag) are turned back into ``<main_tag>/<key>`` tags before matching, by
:func:`curve_tag`. Per-task losses in the common tag shapes (``loss/<task>``,
``<task>/train_loss``, ``Loss/val/<task>``, ...) are read when the task is one of the
affinity's tasks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mtl_core.errors import LabError
from mtl_core.runfile.schema import DEFAULT_MEASURE

LAB = "lab"
SELUPDATE = "selective-group-update"
PATTERN = "pattern"
DESCRIPTIONS = {
    LAB: "the lab's affinity/<source>/<target> and affinity/<measure>/<source>/<target>",
    SELUPDATE: "the selective-group-update code's Affinity/<source>_to_<target> "
    "(proximal affinity) and Train_Loss/<task>",
    PATTERN: "your tag pattern",
}
SELUPDATE_MEASURE = "proximal"
_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
           "validation": "val", "test": "test", "eval": "val"}  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """One affinity tag read: ``measure``, ``source``, ``target``."""

    measure: str
    source: str
    target: str


class TagPattern:
    """A compiled user tag pattern: :meth:`fullmatch` as ``re.Pattern.fullmatch``, except that
    a name the pattern splits more than one way (``aff_{source}_{target}`` on
    ``aff_seg_a_seg``: ``seg`` -> ``a_seg`` or ``seg_a`` -> ``seg``) is refused, never split
    at a guess."""

    def __init__(self, pattern: str, lazy: re.Pattern[str], greedy: re.Pattern[str]) -> None:
        self.pattern = pattern
        self._lazy = lazy
        self._greedy = greedy

    def fullmatch(self, name: str) -> re.Match[str] | None:
        """The match of ``name`` (groups ``source``, ``target``, optional ``measure``), or
        None.

        Raises ``LabError`` when the pattern fits ``name`` more than one way: the shortest
        and the longest reading of each field differ exactly when two readings exist.
        """
        m = self._lazy.fullmatch(name)
        if m is None:
            return None
        g = self._greedy.fullmatch(name)
        if g is not None and g.groupdict() != m.groupdict():
            a, b = m.groupdict(), g.groupdict()
            raise LabError(
                f"{name!r} fits the tag pattern {self.pattern!r} more than one way "
                f"(source {a['source']!r}, target {a['target']!r} or source {b['source']!r}, "
                f"target {b['target']!r}): the text between the fields is inside a task "
                "name; log with a separator no task name holds"
            )
        return m


def compile_pattern(pattern: str) -> TagPattern:
    """A user tag pattern (``aff/{source}->{target}``) as a full-match pattern
    (:class:`TagPattern`: a name it splits more than one way is refused).

    Raises ``LabError`` when the pattern lacks ``{source}`` or ``{target}``, or names a field
    twice or one the lab does not know.
    """
    fields = re.findall(r"\{(\w*)\}", pattern)
    unknown = [f for f in fields if f not in ("source", "target", "measure")]
    if (
        unknown
        or "source" not in fields
        or "target" not in fields
        or len(set(fields)) < len(fields)
    ):
        raise LabError(
            f"tag pattern {pattern!r}: use {{source}} and {{target}} once each (and optionally "
            "{measure}), e.g. 'aff/{source}->{target}'"
        )
    regexes = []
    for field in (".+?", ".+"):
        out, pos = [], 0
        for m in re.finditer(r"\{(\w+)\}", pattern):
            out.append(re.escape(pattern[pos : m.start()]))
            out.append(f"(?P<{m.group(1)}>{field})")
            pos = m.end()
        out.append(re.escape(pattern[pos:]))
        regexes.append(re.compile("".join(out)))
    return TagPattern(pattern, *regexes)


def lab_cell(tag: str) -> Cell | None:
    parts = tag.split("/")
    if parts[0] != "affinity" or len(parts) not in (3, 4) or not all(parts):
        return None
    measure = parts[1] if len(parts) == 4 else DEFAULT_MEASURE
    return Cell(measure, parts[-2], parts[-1])


def lab_metric(tag: str) -> tuple[str, str, str] | None:
    parts = tag.split("/")
    if parts[0] == "metrics" and len(parts) == 4 and all(parts):
        return parts[1], parts[2], parts[3]
    return None


def selupdate_pair(tag: str) -> str | None:
    """``<source>_to_<target>`` of an ``Affinity/...`` tag (split later, once the tasks are
    known, since task names may hold ``_to_``)."""
    if tag.startswith("Affinity/") and "_to_" in tag[9:] and "/" not in tag[9:]:
        return tag[9:]
    return None


def split_pairs(pairs: list[str], loss_tasks: set[str]) -> dict[str, tuple[str, str]]:
    """``<source>_to_<target>`` names -> ``(source, target)``.

    A name with one ``_to_`` splits there; one with several splits where both sides are
    tasks known from the unambiguous names or the loss tags.

    Raises ``LabError`` for a name that splits no way or several ways.
    """
    out: dict[str, tuple[str, str]] = {}
    known = set(loss_tasks)
    for p in pairs:
        if p.count("_to_") == 1:
            s, t = p.split("_to_")
            out[p] = (s, t)
            known.update((s, t))
    for p in pairs:
        if p in out:
            continue
        cuts = [m.start() for m in re.finditer("(?=_to_)", p)]
        ok = [(p[:c], p[c + 4 :]) for c in cuts if p[:c] in known and p[c + 4 :] in known]
        if len(ok) != 1:
            raise LabError(
                f"tag 'Affinity/{p}': cannot tell where the source ends and the target begins "
                "(task names hold '_to_'); give a --tag-pattern"
            )
        out[p] = ok[0]
    return out


def loss_metric(tag: str, tasks: set[str]) -> tuple[str, str, str] | None:
    """``(split, "loss", task)`` for a per-task loss tag of a known task, else None."""
    parts = [p for p in re.split(r"[/]", tag) if p]
    task_parts = [p for p in parts if p in tasks]
    if len(task_parts) != 1:
        return None
    rest = [p.lower() for p in parts if p != task_parts[0]]
    if not any("loss" in p for p in rest):
        return None
    split = "train"
    for p in rest:
        for word in re.split(r"[_\-\s]", p):
            if word in _SPLITS:
                split = _SPLITS[word]
    return split, "loss", task_parts[0]


def curve_tag(folder: str, tag: str) -> str | None:
    """The ``<main_tag>/<key>`` an ``add_scalars`` curve folder stands for, or None.

    PyTorch's ``add_scalars(main_tag, {key: value})`` writes ``main_tag`` into the folder
    ``<main_tag with '/' as '_'>_<key>``.
    """
    prefix = tag.replace("/", "_") + "_"
    if folder.startswith(prefix) and len(folder) > len(prefix):
        return f"{tag}/{folder[len(prefix) :]}"
    return None


def nested_curve(folder: str, tag: str) -> tuple[str, str] | None:
    """``(run folder, "<main_tag>/<key>")`` for tensorboardX's ``add_scalars`` layout, which
    writes ``main_tag`` into the nested folder ``<run>/<main_tag>/<key>`` (``folder`` is the
    path relative to the log folder); None when ``folder`` is not such a curve folder."""
    if "/" not in folder:
        return None
    head, key = folder.rsplit("/", 1)
    if not key or not (head == tag or head.endswith("/" + tag)):
        return None
    return head[: len(head) - len(tag)].rstrip("/"), f"{tag}/{key}"
