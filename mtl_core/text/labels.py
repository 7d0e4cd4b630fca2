"""Short labels for fixed-width text (the CLI's summaries) that never collide.

Cutting names to a width can turn two tasks into one label (``Heating Load`` and ``Heating
Loss`` both become ``Heating``), and a matrix with two equal row labels is read wrong. These
helpers shorten only as much as needed and keep every label distinct.
"""

from __future__ import annotations

from collections.abc import Sequence


def short_labels(names: Sequence[str], width: int) -> list[str]:
    """``names`` shortened to at most ``width`` characters, all distinct.

    Tries, in order: the names as they are; the start and an ellipsis; the start, an
    ellipsis and the end (``Heati…Load``, ``Heati…Loss``); finally a running number in front
    (``1:Heat…``), which is always distinct. Names that are equal to begin with get numbers.
    ``width`` must be at least 4.
    """
    names = [str(n) for n in names]
    width = max(4, int(width))
    if all(len(n) <= width for n in names) and _distinct(names):
        return names
    cut = [n if len(n) <= width else n[: width - 1] + "…" for n in names]
    if _distinct(cut):
        return cut
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    ends = [n if len(n) <= width else n[:head] + "…" + n[len(n) - tail :] for n in names]
    if _distinct(ends):
        return ends
    out = []
    for k, n in enumerate(names, 1):
        prefix = f"{k}:"
        room = width - len(prefix)
        out.append(prefix + (n if len(n) <= room else n[: max(0, room - 1)] + "…"))
    return out


def column_label(name: str) -> str:
    """A table column's name for a sentence: quoted, ``(no name)`` when empty."""
    return f"'{name}'" if str(name).strip() else "(no name)"


def _distinct(labels: list[str]) -> bool:
    return len(set(labels)) == len(labels)
