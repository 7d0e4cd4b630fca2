"""Accounts, ownership and limits in the app (AppTest; issue 13, items 2 and 4): one session
cannot cancel, rename or delete another's run; private visibility hides other users' runs;
the password login; the Train form's limits."""

from __future__ import annotations

import os

from mtl_core.accounts.passwords import hash_password
from mtl_core.store import Store
from tests.helpers.app_fixtures import append_steps, open_app, seed_run, shown


def _running(store: Store, owner: str | None, name: str = "live") -> int:
    """A running run owned by ``owner``, its worker this (alive) process."""
    rid = store.create_run(
        name=name,
        origin="trained",
        status="running",
        steps_total=100,
        owner=owner,
        config={"scenario": "synthetic"},
    )
    store.set_worker(rid, os.getpid())
    append_steps(store, rid, 1, 5, 100)
    return rid


def _buttons(at) -> set[str]:
    return {b.key for b in at.button if b.key}


def test_one_browser_cannot_cancel_or_delete_anothers_run(store, monkeypatch):
    a = open_app("train", store.path, monkeypatch).run()
    owner_a = a.session_state["lab_browser"]
    rid = _running(store, owner_a, "a's run")
    done = seed_run(store, name="a's upload")
    store.set_owner(done, owner_a)
    a.run()
    assert f"cancel_{rid}" in _buttons(a)
    b = open_app("train", store.path, monkeypatch).run()
    assert b.session_state["lab_browser"] != owner_a
    assert not b.exception
    assert f"cancel_{rid}" not in _buttons(b)
    assert any(c.value == "not yours" for c in b.caption)
    # the download page offers b no delete or rename of a's finished upload
    b = open_app("upload", store.path, monkeypatch).run()
    b.selectbox(key="download_run").set_value(done).run()
    assert "download_delete" not in _buttons(b)
    assert any("Only its owner or a teacher" in c.value for c in b.caption)
    a = open_app("upload", store.path, monkeypatch).run()
    a.session_state["lab_browser"] = owner_a
    a.run()
    a.selectbox(key="download_run").set_value(done).run()
    assert "download_delete" in _buttons(a)


def test_private_visibility_hides_other_users_runs(store, monkeypatch):
    shared = seed_run(store, name="teacher's example")  # no owner: everyone sees it
    other = seed_run(store, name="someone else's")
    store.set_owner(other, "browser:x")
    at = open_app("explore", store.path, monkeypatch)
    at.secrets["lab"] = {"visibility": "private"}
    at.run()
    assert not at.exception
    assert at.selectbox(key="explore_run").options == [f"#{shared} teacher's example — finished"]
    at = open_app("explore", store.path, monkeypatch, query={"run": other})
    at.secrets["lab"] = {"visibility": "private"}
    at.run()
    assert any("cannot be shown" in shown(w.value) for w in at.warning)


def test_password_login_and_the_teachers_role(store, monkeypatch):
    rid = _running(store, "user:bob", "bob's run")
    lab = {
        "login": "password",
        "admins": ["teach"],
        "users": {"teach": hash_password("apple pie"), "ann": hash_password("pear")},
    }
    at = open_app("train", store.path, monkeypatch)
    at.secrets["lab"] = lab
    at.run()
    assert not at.exception and not at.get("plotly_chart")
    assert "Train a run" not in [t.value for t in at.title]
    at.text_input(key="lab_login_name").input("teach")
    at.text_input(key="lab_login_password").input("wrong")
    at.button(key="FormSubmitter:lab_login-Sign in").click().run()
    assert any("Wrong name or password" in e.value for e in at.error)
    at.text_input(key="lab_login_password").input("apple pie")
    at.button(key="FormSubmitter:lab_login-Sign in").click().run()
    assert not at.exception
    assert "Train a run" in [t.value for t in at.title]
    assert any("Signed in as **teach** · teacher" in c.value for c in at.sidebar.caption)
    assert f"cancel_{rid}" in _buttons(at)  # the teacher may cancel anyone's run
    ann = open_app("train", store.path, monkeypatch)
    ann.secrets["lab"] = lab
    ann.session_state["lab_user"] = ("ann", False)
    ann.run()
    assert f"cancel_{rid}" not in _buttons(ann)


def test_train_form_limits_come_from_the_settings(store, monkeypatch):
    at = open_app("train", store.path, monkeypatch)
    at.secrets["lab"] = {"limits": {"steps": 200, "width": 64, "tasks": 8}}
    at.run()
    assert at.number_input(key="train_steps").max == 200
    assert at.number_input(key="train_knob_synthetic_tasks").max == 8
    at.text_input(key="train_hidden_synthetic").input("64,1000")
    at.button(key="train_queue").click().run()
    assert not at.exception
    assert any(
        "layer width 1000 is over this lab's limit of 64" in shown(e.value) for e in at.error
    )
    assert store.list_runs() == []
    # the csv scenario takes an uploaded table in the app, never a path on the server
    at.selectbox(key="train_scenario").set_value("csv").run()
    assert at.file_uploader(key="train_table_file") is not None
    assert not [t for t in at.text_input if "path" in (t.key or "")]


def test_learn_link_to_a_private_lesson_shows_nothing_and_queues_nothing(store, monkeypatch):
    """Issue 23.1: ``/learn?lesson=<another user's private run>,,`` neither shows that run
    (its name, tasks or heatmap) nor queues a grouped run as the visitor."""
    private = seed_run(store, name="secret-lesson-of-a")
    store.set_owner(private, "browser:a")
    before = {r.id for r in store.list_runs()}
    at = open_app("learn", store.path, monkeypatch, query={"lesson": f"{private},,"})
    at.secrets["lab"] = {"visibility": "private"}
    at.run()
    assert not at.exception
    page = " ".join(shown(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.error])
    assert "secret-lesson-of-a" not in page
    assert f"no run with id {private} here" in page
    assert {r.id for r in store.list_runs()} == before  # viewing submitted nothing
