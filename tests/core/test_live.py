"""Live mode of AffinityLogger: a store run and a log folder grow while training; the folder
follower reads only what is new."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mtl_core.errors import LabError
from mtl_core.live import FolderFollower
from mtl_core.runfile import read_run_file
from mtl_core.store import Store
from mtl_core.train.logger import AffinityLogger


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, 4)
        self.heads = nn.ModuleList([nn.Linear(4, 1) for _ in range(3)])

    def forward(self, x):
        h = torch.relu(self.encoder(x))
        return [head(h).squeeze(-1) for head in self.heads]


def _losses(model, batch):
    x, y = batch
    return torch.stack([((o - y[:, k]) ** 2).mean() for k, o in enumerate(model(x))])


def _train(logger, model, opt, steps, start=1):
    g = torch.Generator().manual_seed(start)
    for step in range(start, steps + 1):
        x = torch.randn(8, 3, generator=g)
        batch = (x, torch.stack([x[:, 0], x[:, 0] + 0.1 * x[:, 1], -x[:, 2]], 1))
        losses = _losses(model, batch)
        logger.measure(step, batch, losses)
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        logger.log_losses(step, losses)


def _setup(live, **kw):
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    lg = AffinityLogger(
        model, ["a", "b", "c"], _losses, opt, "encoder", every=2, live=live, name="live", **kw
    )
    return lg, model, opt


def test_store_run_grows_while_training_and_finishes(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    lg, model, opt = _setup(store, flush_every=2, flush_s=3600)
    _train(lg, model, opt, 8)  # measured at 1,3,5,7: flushed after 3 and 7
    (rid,) = store.run_ids()
    info = store.get_run(rid)
    assert (info.status, info.origin, info.last_step) == ("running", "logged", 7)
    steps, tasks, a = store.affinity_steps(rid, "lookahead")
    assert list(steps) == [1, 3, 5, 7] and tasks == ["a", "b", "c"]
    np.testing.assert_allclose(a, lg.matrices()[1])
    lg.close()
    assert store.get_run(rid).status == "finished"
    lg.close()  # idempotent


def test_folder_log_reads_with_the_lab_reader_and_follows_incrementally(tmp_path):
    folder = tmp_path / "live1"
    lg, model, opt = _setup(folder, flush_every=1, flush_s=3600)
    _train(lg, model, opt, 4)  # measured at 1, 3
    follower = FolderFollower(folder)
    first = follower.poll()
    assert [e.step for e in first.events] == [1, 3] and not first.closed
    np.testing.assert_allclose(first.events[1].affinity["lookahead"], lg.matrices()[1][1])
    assert set(first.events[0].train_loss) == {"a", "b", "c"}
    assert follower.poll().events == []  # nothing new: nothing re-read
    _train(lg, model, opt, 8, start=5)  # the run goes on: measured at 5, 7
    lg.close()
    later = follower.poll()
    assert later.closed and later.status == "finished"
    assert [e.step for e in later.events] == [5, 7]  # only what is new
    parsed = read_run_file(folder)  # the lab's own folder reader reads the live log
    assert parsed.tasks == ["a", "b", "c"]
    assert sorted(set(parsed.affinity["step"])) == [1, 3, 5, 7]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["live"] is False and meta["tasks"] == ["a", "b", "c"]


def test_follower_leaves_a_half_written_line_for_the_next_poll(tmp_path):
    folder = tmp_path / "f"
    lg, model, opt = _setup(folder, flush_every=1, flush_s=3600)
    _train(lg, model, opt, 1)
    f = FolderFollower(folder)
    assert [e.step for e in f.poll().events] == [1]
    with open(folder / "affinity.csv", "a") as fh:
        fh.write("9,lookahead,a,a,0.5")  # no newline yet, and 8 cells missing
    assert f.poll().events == []
    with open(folder / "affinity.csv", "a") as fh:
        fh.write(",1.0\n")
        for s in "abc":
            for t in "abc":
                if (s, t) != ("a", "a"):
                    fh.write(f"9,lookahead,{s},{t},0.25,1.0\n")
    (ev,) = f.poll().events
    assert ev.step == 9 and ev.affinity["lookahead"][0, 0] == 0.5
    assert ev.affinity["lookahead"][2, 1] == 0.25


def test_a_folder_holding_a_log_is_refused(tmp_path):
    folder = tmp_path / "f"
    lg, model, opt = _setup(folder, flush_every=1)
    _train(lg, model, opt, 1)
    lg2, model, opt = _setup(folder, flush_every=1)
    with pytest.raises(LabError, match="already holds a log"):
        _train(lg2, model, opt, 1)


def test_bad_live_argument_is_one_clear_error():
    with pytest.raises(LabError, match="live= takes a store"):
        _setup(42)


def test_watch_imports_once_and_again_idempotently(tmp_path, capsys):
    from mtl_core.commands.cli import main

    folder, store_path = tmp_path / "log", tmp_path / "s.sqlite"
    lg, model, opt = _setup(folder, flush_every=1, flush_s=3600)
    _train(lg, model, opt, 4)  # 1, 3
    assert main(["watch", str(folder), "--store", str(store_path), "--once"]) == 0
    assert "2 new steps (1..3)" in capsys.readouterr().out
    _train(lg, model, opt, 6, start=5)  # 5
    lg.close()
    assert main(["watch", str(folder), "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "1 new steps (5..5)" in out and "log closed" in out
    store = Store(store_path)
    (rid,) = store.run_ids()
    assert store.get_run(rid).status == "finished"
    assert list(store.affinity_steps(rid, "lookahead")[0]) == [1, 3, 5]


def test_watch_refuses_a_folder_that_is_no_live_log(tmp_path, capsys):
    from mtl_core.commands.cli import main

    assert main(["watch", str(tmp_path), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "not a live log folder" in capsys.readouterr().err


def test_app_command_runs_streamlit_on_the_app_script(monkeypatch, capsys, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from mtl_core.commands.cli import main

    seen = {}
    monkeypatch.setattr(subprocess, "call", lambda cmd, env: seen.update(cmd=cmd, env=env) or 0)
    assert main(["app", "--port", "8600", "--store", str(tmp_path / "s.sqlite")]) == 0
    root = Path(__file__).resolve().parents[2]
    assert seen["cmd"] == [
        sys.executable, "-m", "streamlit", "run", str(root / "app" / "streamlit_app.py"),
        "--server.port", "8600",
    ]  # fmt: skip
    assert seen["env"]["MTL_LAB_STORE"] == str((tmp_path / "s.sqlite").resolve())
    assert main(["app", "--port", "0"]) == 2
    assert "--port must be 1..65535" in capsys.readouterr().err


def test_watch_ctrl_c_leaves_the_run_interrupted_and_a_rerun_resumes_it(
    tmp_path, monkeypatch, capsys
):
    import mtl_core.commands.watch as watch
    from mtl_core.commands.cli import main

    folder, store_path = tmp_path / "log", tmp_path / "s.sqlite"
    lg, model, opt = _setup(folder, flush_every=1, flush_s=3600)
    _train(lg, model, opt, 2)  # 1

    def ctrl_c(_s):
        raise KeyboardInterrupt

    monkeypatch.setattr(watch.time, "sleep", ctrl_c)
    assert main(["watch", str(folder), "--store", str(store_path)]) == 130
    err = capsys.readouterr().err
    assert err == "interrupted\n"  # one line, no traceback
    store = Store(store_path)
    (rid,) = store.run_ids()
    assert store.get_run(rid).status == "interrupted"
    _train(lg, model, opt, 4, start=3)  # 3
    lg.close()
    assert main(["watch", str(folder), "--store", str(store_path)]) == 0
    assert store.run_ids() == [rid] and store.get_run(rid).status == "finished"
    assert list(store.affinity_steps(rid, "lookahead")[0]) == [1, 3]


def test_watch_names_a_missing_folder(tmp_path, capsys):
    from mtl_core.commands.cli import main

    missing = tmp_path / "runs" / "live1"
    assert main(["watch", str(missing), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert f"{missing}: no such folder" in capsys.readouterr().err
