"""Two browsers, one lesson (issue 22 item 3): two sessions (two owners: login is off, so
each browser context is its own user) press Train on the Learn page at the same knob; the
store holds one lesson's runs, the second page says it follows (or replays) the first's run
and shows the same lesson, and both draw the finished verdict. A third press at another knob
trains a lesson of its own. Runs trained by the fast fake (``fake_train_env``).
Skipped, with the reason, when Chromium is absent.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.helpers.browser import E2E_MARKS, slider, wait_slider_value

pytestmark = E2E_MARKS
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need the playwright package"
)
KNOB = "How much do the two task clusters conflict?"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from mtl_core.store import Store
    from tests.helpers.app_server import fake_train_env, running_app

    folder = tmp_path_factory.mktemp("shared")
    store = Store(folder / "store.sqlite")
    try:
        with running_app(fake_train_env(store.path), folder / "server.log") as url:
            yield {"url": url, "store": store}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _learn(browser, url: str):
    page = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
    page.goto(url + "/")
    slider(page, KNOB, timeout=60000)
    return page


def _lesson_param(page) -> str:
    page.wait_for_function("() => /[?&]lesson=/.test(location.search)", timeout=30000)
    return re.search(r"[?&]lesson=([^&]+)", page.url).group(1)


def _finished(page) -> None:
    page.get_by_text("At the end,", exact=False).first.wait_for(timeout=60000)
    assert page.locator("[data-testid='stException']").count() == 0


def test_second_browser_follows_the_first_lesson_and_another_knob_trains(app, browser):
    url, store = app["url"], app["store"]
    a, b = _learn(browser, url), _learn(browser, url)
    a.get_by_role("button", name="Train").click()
    lesson_a = _lesson_param(a)
    b.get_by_role("button", name="Train").click()
    lesson_b = _lesson_param(b)
    assert lesson_b == lesson_a
    together = int(lesson_a.replace("%2C", ",").split(",")[0])
    # B found A's lesson: followed live or, if it had already finished, replayed
    note = b.get_by_text(re.compile(r"^(Shared|Replay): this exact lesson")).first
    note.wait_for(timeout=30000)
    assert f"(run #{together})" in note.inner_text()
    assert a.get_by_text("this exact lesson", exact=False).count() == 0  # A trained it
    _finished(a)
    _finished(b)
    runs = store.list_runs()
    assert sorted(r.config["train"]["mode"] for r in runs) == ["groups", "single", "together"]
    assert len({r.owner for r in runs}) == 1  # all three are A's

    # B moves the knob: a lesson of its own, trained, not followed
    thumb = slider(b, KNOB)
    thumb.focus()
    thumb.press("Home")
    wait_slider_value(b, KNOB, "0")
    b.wait_for_timeout(500)
    b.get_by_role("button", name="Train").click()
    b.get_by_text("The lesson at conflict 0.00", exact=False).first.wait_for(timeout=30000)
    b.wait_for_function(
        "(old) => { const m = /[?&]lesson=([^&]+)/.exec(location.search);"
        " return m && m[1] !== old; }",
        arg=lesson_a,
        timeout=30000,
    )
    # B's grouped run is created only when its together run has finished, and until the page
    # reruns the old lesson's "At the end," stays drawn: wait for the store's three new runs
    # to finish, then for the page to say so of B's own lesson
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if len(runs) == 6 and all(r.status == "finished" for r in runs):
            break
        time.sleep(0.5)
    runs = store.list_runs()
    assert len(runs) == 6, [(r.id, r.config["train"]["mode"], r.status) for r in runs]
    assert len({r.owner for r in runs}) == 2  # A's lesson and B's own
    _finished(b)
    # the follow sentence of A's lesson goes once the page has drawn B's own (not at once on
    # a loaded machine: the old element stays until the rerun replaces it)
    b.get_by_text("this exact lesson", exact=False).first.wait_for(state="detached", timeout=20000)


@pytest.fixture(scope="module")
def slow_app(tmp_path_factory):
    """A server whose fake lesson runs take about 15 s (50 ms a step): still training when a
    second browser opens the page."""
    from mtl_core.store import Store
    from tests.helpers.app_server import fake_train_env, running_app

    folder = tmp_path_factory.mktemp("shared_slow")
    store = Store(folder / "store.sqlite")
    env = {**fake_train_env(store.path), "MTL_LAB_FAKE_SLEEP_S": "0.05"}
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "store": store}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_a_new_browser_shows_the_lesson_already_training_for_its_knob(slow_app, browser):
    """A student who opens Learn while a classmate's lesson at the same (default) knob trains
    sees that lesson live at once, told so, without pressing Train; nothing is queued."""
    url, store = slow_app["url"], slow_app["store"]
    a = _learn(browser, url)
    a.get_by_role("button", name="Train").click()
    together = int(_lesson_param(a).replace("%2C", ",").split(",")[0])
    deadline = time.monotonic() + 30
    while store.get_run(together).status != "running":
        assert time.monotonic() < deadline, store.get_run(together).status
        time.sleep(0.2)
    b = _learn(browser, url)  # a new context: another user, no Train pressed
    note = b.get_by_text(re.compile(r"^Live: this exact lesson")).first
    note.wait_for(timeout=30000)
    assert f"(run #{together})" in note.inner_text()
    assert _lesson_param(b).replace("%2C", ",").split(",")[0] == str(together)
    b.locator(".js-plotly-plot").first.wait_for(timeout=30000)  # its heatmap, live
    runs = store.list_runs()  # A's together and single (and grouped, once together ends)
    assert len(runs) <= 3 and len({r.owner for r in runs}) == 1, runs  # nothing for B
    assert b.locator("[data-testid='stException']").count() == 0
