"""Declared units on ``import`` (issue 21 kind 3): the field3 G16 matrix printed in percent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.commands.cli import main
from mtl_core.errors import LabError
from mtl_core.runfile.units import unit_factor
from mtl_core.store import Store

DATA = Path(__file__).resolve().parents[1] / "data" / "field3_units"


def test_percent_import_gives_reference(tmp_path, capsys):
    ref = pd.read_csv(DATA / "G00_reference_matrix.csv", index_col=0)
    store = tmp_path / "s.sqlite"
    assert main(["import", str(DATA / "G16_matrix_in_percent.csv"), "--store", str(store),
                 "--unit", "percent"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "impossible" not in err
    out = tmp_path / "back.csv"
    (info,) = Store(store).list_runs()
    assert main(["export", str(info.id), "--out", str(out), "--store", str(store)]) == 0
    back = pd.read_csv(out)
    got = back.pivot_table(index="source", columns="target", values="affinity")
    got = got.loc[ref.index, ref.columns]
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), atol=1e-12)


def test_without_unit_warns_with_count(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["import", str(DATA / "G16_matrix_in_percent.csv"), "--store", str(store)]) == 0
    err = capsys.readouterr().err
    n = int((pd.read_csv(DATA / "G16_matrix_in_percent.csv", index_col=0).to_numpy() > 1).sum())
    assert n > 0 and f"{n} values are impossible" in err and "--unit percent" in err


def test_unit_factor():
    assert unit_factor("percent") == 0.01 and unit_factor("tag-lr:0.0005") == 0.0005
    with pytest.raises(LabError, match="positive"):
        unit_factor("tag-lr:x")
