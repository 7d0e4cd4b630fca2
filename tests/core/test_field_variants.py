"""Issues 20/21, round 4: new variants of the handed field-case kinds (tests/data/field3,
tests/data/groundtruth), written as their producers write them, read back cell by cell.

Each variant either reads faithfully (rows = source, the logged steps, the written values) or
is refused with one line naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile.read import read_run_file

T = ["seg", "depth", "normal", "edge"]
REF = np.array(
    [[0.041, 0.023, -0.015, 0.002], [0.003, 0.038, 0.021, -0.012],
     [-0.017, 0.019, 0.035, 0.024], [0.018, -0.014, 0.001, 0.033]]
)  # fmt: skip
STEPS = [10, 20, 30]


def _mat(step: int) -> np.ndarray:
    """The matrix logged at ``step``: distinct per step, so a step mix-up shows."""
    return np.round(REF + step * 1e-4, 6)


def _expected(tasks: list[str] = T, steps: list[int] = STEPS) -> pd.DataFrame:
    rows = [
        (s, a, b, float(_mat(s)[i, j]))
        for s in steps
        for i, a in enumerate(tasks)
        for j, b in enumerate(tasks)
    ]
    return pd.DataFrame(rows, columns=["step", "source", "target", "affinity"])


def _same(parsed, expected: pd.DataFrame) -> None:
    got = parsed.affinity[["step", "source", "target", "affinity"]]
    key = ["step", "source", "target"]
    got = got.sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    assert got[key].astype(str).equals(expected[key].astype(str))
    np.testing.assert_allclose(got["affinity"].to_numpy(float), expected["affinity"], atol=1e-12)


def _wide(fmt: str, tasks: list[str] = T) -> bytes:
    d = pd.DataFrame({"step": STEPS})
    for i, s in enumerate(tasks):
        for j, t in enumerate(tasks):
            d[fmt.format(source=s, target=t)] = [_mat(st)[i, j] for st in STEPS]
    return d.to_csv(index=False).encode()


# --- kind: per-step columns named by a tag pattern (G08) -----------------------------------


@pytest.mark.parametrize(
    "fmt", ["{source}→{target}", "aff[{source},{target}]", "aff.{source}|{target}+"]
)
def test_pattern_with_unicode_or_regex_characters_reads_every_cell(fmt: str) -> None:
    _same(read_run_file(_wide(fmt), "w.csv", tag_pattern=fmt), _expected())


def test_pattern_fitting_a_column_two_ways_is_refused_never_split_at_a_guess() -> None:
    # before: 'aff_seg_a_seg' read as seg -> a_seg: 48 of 192 cells under wrong task names
    tasks = ["seg_a", "seg", "normal", "edge"]
    with pytest.raises(LabError, match=r"fits the tag pattern 'aff_\{source\}_\{target\}' more"):
        read_run_file(_wide("aff_{source}_{target}", tasks), "w.csv",
                      tag_pattern="aff_{source}_{target}")  # fmt: skip


def test_pattern_fitting_an_mlflow_key_two_ways_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run1"
    for s in ("a", "a_b", "b"):
        for t in ("a", "a_b", "b"):
            p = run / "metrics" / f"aff_{s}_{t}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("1796600000000 0.01 10\n")
    (run / "meta.yaml").write_text("run_id: run1\nrun_name: r\n")
    with pytest.raises(LabError, match="more than one way"):
        read_run_file(run, tag_pattern="aff_{source}_{target}")
