"""The Upload page's "Follow a live log folder" (AppTest): off unless the settings allow it,
a typed path outside the allowed roots refused (escaped), and a followed folder becomes a run
that Explore shows growing as the folder grows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app import auth, data_follow
from tests.helpers.app_fixtures import open_app, shown
from tests.helpers.live_logs import start_sink, write_steps


def _sink(folder):
    return start_sink(folder, "cluster job")


_write = write_steps


def _expander(at):
    (exp,) = [e for e in at.expander if "Follow a live log folder" in e.label]
    return exp


def _follow(at, path):
    at.text_input(key="follow_path").set_value(path)
    at.button(key="follow_go").click().run()
    assert not at.exception
    return at


@pytest.fixture
def address(monkeypatch):
    """Pretend Streamlit listens on an address (the repo's config says localhost)."""
    return lambda value: monkeypatch.setattr(data_follow, "server_address", lambda: value)


def test_off_where_the_server_listens_beyond_this_machine(store, monkeypatch, address):
    address("0.0.0.0")
    at = open_app("upload", store.path, monkeypatch).run()
    assert not at.exception
    text = shown(" ".join(c.value for c in _expander(at).caption))
    assert "Not available here" in text and "--server.address localhost" in text
    assert "task-affinity-lab watch DIR" in text
    assert not [t for t in at.text_input if t.key == "follow_path"]


def test_on_by_default_for_one_user_on_localhost(store, monkeypatch, address):
    address("localhost")
    at = open_app("upload", store.path, monkeypatch).run()
    assert not at.exception
    text = shown(" ".join(c.value for c in _expander(at).caption))
    assert f"inside {Path.cwd().resolve()}." in text
    assert [t for t in at.text_input if t.key == "follow_path"]


def test_who_may_follow(address):
    local = auth.Deployment(login="none")
    assert "login" in data_follow.follow_refusal(auth.Deployment(login="oidc"))
    assert data_follow.follow_refusal(auth.Deployment(login="oidc", follow_folders=True)) is None
    assert "turn it off" in data_follow.follow_refusal(auth.Deployment(follow_folders=False))
    address("")
    assert "reachable" in data_follow.follow_refusal(local)
    address("127.0.0.1")
    assert data_follow.follow_refusal(local) is None


def test_settings_are_checked():
    from mtl_core.errors import LabError

    with pytest.raises(LabError, match="follow_folders = 'yes': use true or false"):
        auth.Deployment.from_mapping({"follow_folders": "yes"})
    with pytest.raises(LabError, match="follow_roots: use a list"):
        auth.Deployment.from_mapping({"follow_roots": "runs"})
    dep = auth.Deployment.from_mapping({"follow_folders": True, "follow_roots": ["runs"]})
    assert dep.follow_folders is True and dep.follow_roots == ("runs",)


def test_a_followed_folder_opens_in_explore_and_grows(store, tmp_path, monkeypatch):
    roots = tmp_path / "runs"
    sink = _sink(roots / "live1")
    _sink(tmp_path / "elsewhere" / "log")
    at = open_app("upload", store.path, monkeypatch)
    at.secrets["lab"] = {"follow_folders": True, "follow_roots": [str(roots)]}
    at.run()
    assert not at.exception
    outside = str(tmp_path / "elsewhere" / "log") + "/*x*"
    _follow(at, outside)
    (err,) = at.error
    assert "outside the folders this server may follow" in shown(err.value)
    assert "\\*x\\*" in err.value  # the typed path is escaped where shown
    assert store.run_ids() == []
    _follow(at, str(roots / "live1"))
    assert not at.error
    (rid,) = store.run_ids()
    assert any(f"run #{rid}" in s.value for s in at.success)
    info = store.get_run(rid)
    assert (info.status, info.origin, info.name) == ("running", "logged", "cluster job")
    assert info.owner.startswith("browser:")  # this session's user (no login: the browser)
    _write(sink, [1, 2, 3])
    end = time.monotonic() + 10
    while store.get_run(rid).last_step != 3 and time.monotonic() < end:
        time.sleep(0.05)
    explore = open_app("explore", store.path, monkeypatch, query={"run": rid})
    explore.secrets["lab"] = at.secrets["lab"]
    explore.run()
    assert not explore.exception
    title = json.loads(explore.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    assert "steps 1–3" in title
    sink.close()  # the runner's thread imports the close and ends
    end = time.monotonic() + 10
    while store.get_run(rid).status != "finished" and time.monotonic() < end:
        time.sleep(0.05)
    assert store.get_run(rid).status == "finished"
