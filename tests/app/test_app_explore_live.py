"""A run trained in this process with AffinityLogger(live=store) while the Explore page
(AppTest) follows it: the heatmap's step range grows as steps are flushed."""

from __future__ import annotations

import json
import re
import time

import pytest
import torch

from app import data
from mtl_core.train.logger import AffinityLogger
from tests.core.test_live import _losses, _Net, _train
from tests.helpers.app_fixtures import open_app


def _last_step(at) -> int:
    title = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    found = re.findall(r"steps? (\d+)\D+(\d+)", title)
    assert found, title
    return int(found[0][1])


@pytest.mark.slow
def test_explore_follows_a_live_logger_while_it_trains(store, monkeypatch):
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    lg = AffinityLogger(
        model, ["a", "b", "c"], _losses, opt, "encoder", every=2, live=store, name="live",
        flush_every=1, flush_s=3600,
    )  # fmt: skip
    _train(lg, model, opt, 6)  # measured (and flushed) at 1, 3, 5
    at = open_app("explore", store.path, monkeypatch).run()
    assert not at.exception
    assert _last_step(at) == 5
    assert any("running" in m.value for m in at.markdown)
    _train(lg, model, opt, 12, start=7)  # 7, 9, 11 land while the page is open
    time.sleep(data.LIVE_REFRESH_S)
    at.run()
    assert not at.exception
    assert _last_step(at) == 11
    lg.close()
    time.sleep(data.LIVE_REFRESH_S)
    at.run()
    status = [m.value for m in at.markdown if "**" in m.value and "·" in m.value]
    assert status and "finished" in status[0] and "running" not in status[0], status
