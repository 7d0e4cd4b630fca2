"""Issue 21 kind 1: per-step tracker tables (W&B history, Lightning CSVLogger, Ray Tune
progress.csv, a hand-rolled per-step logger with --tag-pattern) read through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile.read import read_run_file

DATA = Path(__file__).resolve().parents[1] / "data" / "field3"
SHORT = {"segment_semantic": "seg", "depth_zbuffer": "depth", "normal": "normal",
         "edge_texture": "edge"}  # fmt: skip


def _reference() -> pd.Series:
    ref = pd.read_csv(DATA / "G00_reference_matrix.csv", index_col=0)
    ref = ref.rename(index=SHORT, columns=SHORT)
    return ref.stack().rename_axis(["source", "target"])


@pytest.mark.parametrize(
    ("rel", "pattern", "step_col"),
    [
        ("G04_wandb_run_history.csv", None, "_step"),
        ("G07_lightning_logs/version_0/metrics.csv", None, "step"),
        ("G10_raytune_trial/progress.csv", None, "step"),
        ("G08_wide_arrow_columns.csv", "{source}->{target}", "step"),
    ],
)
def test_tracker_table_reads_per_step(rel: str, pattern: str | None, step_col: str) -> None:
    parsed = read_run_file(DATA / rel, tag_pattern=pattern)
    aff = parsed.affinity
    assert aff["step"].nunique() == 12 and len(aff) == 12 * 16
    mean = aff.groupby(["source", "target"])["affinity"].mean()
    ref = _reference().reindex(mean.index)
    assert np.abs(mean.to_numpy() - ref.to_numpy()).max() < 0.005
    assert any(f"steps from {step_col!r}" in n for n in parsed.notes)


def test_wandb_history_never_advises_row_labels() -> None:
    parsed = read_run_file(DATA / "G04_wandb_run_history.csv")
    assert not any("row labels" in n for n in parsed.notes)


def test_tag_pattern_matching_no_column_is_refused() -> None:
    with pytest.raises(LabError, match="matches none of the columns"):
        read_run_file(DATA / "G04_wandb_run_history.csv", tag_pattern="aff/{source}=>{target}")


def test_text_in_a_cell_column_is_refused_never_skipped_as_not_logged():
    data = b'_step,affinity/a/b,affinity/b/a\n1,0.1,NA\n2,"0,5",0.2\n'
    with pytest.raises(LabError, match=r"row 2 \(line 3\), column 'affinity/a/b': '0,5' is not"):
        read_run_file(data, "h.csv")
    parsed = read_run_file(b"_step,affinity/a/b,affinity/b/a\n1,0.1,NA\n,0.3,0.2\n", "h.csv")
    assert parsed.affinity["affinity"].tolist() == [0.1]
    assert any("2 logged values in rows with an empty '_step' left out" in n for n in parsed.notes)


def test_a_tag_pattern_a_file_does_not_use_is_refused_never_ignored():
    with pytest.raises(LabError, match="the tag pattern '{source}->{target}' named no cell"):
        read_run_file(DATA / "G00_reference_matrix.csv", tag_pattern="{source}->{target}")
