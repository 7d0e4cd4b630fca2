"""The Ground-truth tables page's work in a capped child process: the same answer as in this
process, the readers' one-line messages, and the time cap's message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtl_core.errors import LabError
from mtl_core.groundtruth.uploads import run_select
from mtl_core.runner.select_job import SECONDS_VARIABLE, run_select_capped

pytestmark = pytest.mark.slow  # every call starts a child process
D = Path(__file__).resolve().parents[1] / "data" / "groundtruth"
OPTS = dict(
    tasks=None, direction=None, rule="k", limits=[1, 2, 3], affinity=None, draws=20, time_limit=20
)


def _mtg():
    return {
        "sel": ("gains6_val.txt", (D / "gains6_val.txt").read_bytes()),
        "test": ("gains6_test.txt", (D / "gains6_test.txt").read_bytes()),
        "masks": ("masks6.csv", (D / "masks6.csv").read_bytes()),
        "est": ("estimate6.txt", (D / "estimate6.txt").read_bytes()),
    }


def test_child_gives_the_in_process_answer_and_the_readme_numbers():
    out = run_select_capped("mtg", _mtg(), **OPTS)
    here = run_select("mtg", _mtg(), **OPTS)
    assert out == json.loads(json.dumps(here))  # exactly, through JSON
    scores = [r["optimal"]["score"] for r in out["doc"]["rows"]]
    assert scores == pytest.approx([-0.05757, 0.23079, 0.31974], abs=5e-6)
    assert out["doc"]["agreement"]["estimate"]["cells"] == 186
    assert len([c for c in out["cells"] if c["estimator"] == "estimate"]) == 186


def test_reader_errors_and_the_time_cap_are_one_line(monkeypatch):
    files = _mtg()
    rows = (D / "masks6.csv").read_text().splitlines()
    first = rows[0].split(",")
    first[2] = "2"
    files["masks"] = ("masks6.csv", "\n".join([",".join(first), *rows[1:]]).encode())
    with pytest.raises(LabError, match=r"masks6.csv: line 1, column 3: '2' is not 0 or 1"):
        run_select_capped("mtg", files, **OPTS)
    monkeypatch.setenv(SECONDS_VARIABLE, "0.001")
    with pytest.raises(LabError) as e:
        run_select_capped("mtg", _mtg(), **OPTS)
    msg = str(e.value)
    assert "\n" not in msg and "longer than the 0.001 s the page may take" in msg
    assert SECONDS_VARIABLE in msg
