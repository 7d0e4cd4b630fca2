"""A writer process appends steps while reader processes poll: no lost or half-visible steps,
no lock errors."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from mtl_core.store import Store
from tests.helpers import runner_fakes  # spawned children import it by this name

pytestmark = pytest.mark.slow  # writer and reader processes


def test_writer_and_polling_readers(tmp_path):
    path = tmp_path / "store.sqlite"
    store = Store(path)
    rid = store.create_run(name="conc", status="running", steps_total=300)
    ctx = mp.get_context("spawn")
    outs = [tmp_path / f"reader{i}.json" for i in range(2)]
    readers = [
        ctx.Process(target=runner_fakes.conc_reader, args=(str(path), rid, str(o))) for o in outs
    ]
    for r in readers:
        r.start()
    end = time.monotonic() + 60
    while not all(Path(f"{o}.ready").exists() for o in outs):
        assert time.monotonic() < end and all(r.is_alive() for r in readers)
        time.sleep(0.01)
    writer = ctx.Process(target=runner_fakes.conc_writer, args=(str(path), rid, 300))
    writer.start()
    writer.join(120)
    for r in readers:
        r.join(120)
    assert writer.exitcode == 0
    assert [r.exitcode for r in readers] == [0, 0]
    for o in outs:
        res = json.loads(o.read_text())
        assert res["last"] == 300
        assert res["distinct"] > 1  # the readers really saw the run grow
    assert len(store.affinity_steps(rid, "lookahead")[0]) == 300
