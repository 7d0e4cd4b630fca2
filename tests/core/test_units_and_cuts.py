"""Issue 21 kinds 3 and 4 through the CLI: ``--unit`` on ``group`` and ``select`` (G16),
measure aliases, TensorBoard scalars without ``global_step`` (G37), and how a JSON object of
objects was read (G22)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.commands.cli import main
from mtl_core.errors import LabError
from mtl_core.runfile.read import read_run_file
from mtl_core.runfile.units import canonical_measure

DATA = Path(__file__).resolve().parents[1] / "data" / "field3"
REF = pd.read_csv(DATA / "G00_reference_matrix.csv", index_col=0)
G16 = DATA / "G16_matrix_in_percent.csv"


def _group(args, capsys) -> tuple[dict, str]:
    assert main(["group", *args, "--method", "tag", "--k", "2", "--json"]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_group_unit_percent_gives_the_reference_value(capsys):
    ref, _ = _group([str(DATA / "G00_reference_matrix.csv")], capsys)
    raw, err = _group([str(G16)], capsys)
    assert "values are impossible" in err and "--unit percent" in err
    assert raw["value"] == pytest.approx(100 * ref["value"])  # read 100x too big
    fixed, err = _group([str(G16), "--unit", "percent"], capsys)
    assert "impossible" not in err and "values declared in percent" in err
    assert fixed["value"] == pytest.approx(ref["value"], abs=1e-12)
    assert fixed["groups"] == ref["groups"]


def test_tag_lr_unit_multiplies_by_the_learning_rate(tmp_path):
    sums = REF / 0.05  # TAG's notebooks: sums of (1 - L'/L) / lr
    sums.to_csv(tmp_path / "tag.csv")
    parsed = read_run_file(tmp_path / "tag.csv", unit="tag-lr:0.05")
    got = parsed.affinity.pivot_table(index="source", columns="target", values="affinity")
    np.testing.assert_allclose(got.loc[REF.index, REF.columns].to_numpy(), REF.to_numpy())


def test_select_unit_on_an_affinity_file_and_refused_for_a_store_run(tmp_path, capsys):
    from mtl_core.commands.select import load_affinity_arg

    tasks, A = load_affinity_arg(str(G16), unit="percent")
    np.testing.assert_allclose(A, REF.loc[tasks, tasks].to_numpy(), atol=1e-12)
    with pytest.raises(LabError, match="--unit is for an --affinity file"):
        load_affinity_arg("3", unit="percent", store=str(tmp_path / "s.sqlite"))
    assert main(["group", str(G16), "--unit", "percent!", "--method", "tag", "--k", "2"]) == 2
    assert capsys.readouterr().err.startswith("error: --unit must be fraction, percent")


@pytest.mark.parametrize("alias", ["TAG", "tag", "lookahead_affinity", "Lookahead-Affinity"])
def test_measure_aliases(alias, tmp_path):
    assert canonical_measure(alias) == "lookahead"
    data = f"step,source,target,affinity,measure\n1,a,b,0.5,{alias}\n1,b,a,0.25,{alias}\n"
    parsed = read_run_file(data.encode(), "l.csv")
    assert set(parsed.affinity["measure"]) == {"lookahead"}
    assert f"measure {alias!r} read as 'lookahead' (a common name for it)" in parsed.notes
    assert read_run_file(b",a,b\na,1,2\nb,3,4\n", "m.csv", measure=alias).measures("") == [
        "lookahead"
    ]


def test_unknown_measure_is_shown_as_plain_numbers():
    data = b"step,source,target,affinity,measure\n1,a,b,0.5,gradsim\n"
    notes = read_run_file(data, "l.csv").notes
    assert any("'gradsim' is not one the lab knows" in n and "plain numbers" in n for n in notes)


def test_g37_tensorboard_without_global_step_is_ordered_by_wall_time(capsys, tmp_path):
    parsed = read_run_file(DATA / "G37_tb_no_global_step")
    aff = parsed.affinity
    assert sorted(aff["step"].unique()) == list(range(12)) and len(aff) == 12 * 16
    one = aff[(aff["source"] == "seg") & (aff["target"] == "depth")]
    assert one["wall_time"].is_monotonic_increasing
    assert any("logged without global_step" in n and "12 values per tag" in n
               for n in parsed.notes)  # fmt: skip
    mean = aff.groupby(["source", "target"])["affinity"].mean()
    assert abs(mean[("seg", "depth")] - REF.loc["segment_semantic", "depth_zbuffer"]) < 0.005
    assert main(["import", str(DATA / "G37_tb_no_global_step"), "--store",
                 str(tmp_path / "s.sqlite")]) == 0  # fmt: skip
    assert "12 steps" in capsys.readouterr().out


def test_g22_json_object_read_way_is_said_and_rows_flip_it():
    path = DATA / "G22_pandas_orient_index.json"
    for rows, want in ((None, REF.T), ("target", REF)):
        parsed = read_run_file(path, rows=rows)
        got = parsed.affinity.pivot_table(index="source", columns="target", values="affinity")
        np.testing.assert_allclose(got.loc[REF.index, REF.columns].to_numpy(), want.to_numpy())
        assert parsed.json_object
    assert "outer keys read as TARGETS" in read_run_file(path).notes[0]
    assert "outer keys read as SOURCES" in read_run_file(path, rows="target").notes[0]


def test_tags_without_global_step_beside_stepped_ones_are_counted(tmp_path):
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(tmp_path))
    for k in range(5):
        for tag, step in (("affinity/a/b", 10 * (k + 1)), ("affinity/b/a", 0)):
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=0.1 * k)])
            w.add_event(Event(step=step, wall_time=1.7e9 + k, summary=summary))
    w.close()
    parsed = read_run_file(tmp_path)
    assert any("1 tag(s) logged without global_step" in n and "4 earlier values" in n
               for n in parsed.notes)  # fmt: skip
