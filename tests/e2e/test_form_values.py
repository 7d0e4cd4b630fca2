"""End-to-end: every form field shows its whole value at 1024 px with the sidebar open (the
default) and at 1920 px.

Measured in the browser on the drawn fields (``CUT_VALUES_JS``): a select's value text
wider than the box it is drawn in (the ellipsis of "together — c", "paper (offici"), or a
number input's value wider than the input. Plain ``st.columns(4)`` gave each field about
130 px at 1024 px; the rows now wrap below 240 px a field (``app.layout``). The learning
rate shows 4 significant digits (``%.4f`` drew 2e-05 as "0.0000").

Skipped, with the reason, when Chromium is absent.
"""

from __future__ import annotations

import pytest

from tests.helpers.browser import CUT_VALUES_JS, E2E_MARKS, SELECT_VALUES_JS

pytestmark = E2E_MARKS
pytest.importorskip("playwright.sync_api", reason="end-to-end tests need the playwright package")

VIEWPORTS = ((1024, 768), (1920, 1080))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mtl_core.store import Store
    from tests.helpers.app_fixtures import config_dict, seed_run
    from tests.helpers.app_server import fake_train_env, running_app

    folder = tmp_path_factory.mktemp("e2e_form_values")
    store = Store(folder / "store.sqlite")
    run = seed_run(store, name="seeded", n_tasks=3, steps=40, config=config_dict())
    try:
        with running_app(fake_train_env(store.path), folder / "server.log") as url:
            yield {"url": url, "run": run}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _open(page, url: str, text: str) -> None:
    page.goto(url)
    page.get_by_text(text).first.wait_for(timeout=60000)
    page.wait_for_timeout(1500)  # every row drawn and laid out
    assert page.locator("[data-testid='stSidebar']").first.bounding_box()["width"] > 150


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_train_form_shows_every_value_whole(server, browser, viewport):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        _open(page, server["url"] + "/train", "Queue run")
        assert page.evaluate(CUT_VALUES_JS) == []
        # the chosen mode and preset are there, in words (not only "together"/"paper")
        shown = page.evaluate(SELECT_VALUES_JS)
        assert shown["mode"] == "together (affinity)", shown
        assert shown["sequential settings"] == "paper (official code's settings)", shown
        # a small learning rate is shown as typed, not rounded to 0.0000
        lr = page.get_by_role("spinbutton", name="learning rate")
        assert lr.input_value() == "0"
        lr.fill("0.00002")
        lr.press("Enter")
        page.wait_for_function(
            """() => { const i = [...document.querySelectorAll("[data-testid='stNumberInput']")]
                .find(w => w.innerText.includes('learning rate')).querySelector('input');
                return parseFloat(i.value) === 2e-5; }""",
            timeout=20000,
        )
        print("learning rate shown as", lr.input_value())
        assert page.evaluate(CUT_VALUES_JS) == []
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        page.close()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_explore_controls_show_every_value_whole(server, browser, viewport):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        _open(page, f"{server['url']}/explore?run={server['run']}", "Smoothing")
        # the text "Smoothing" can be drawn before its select box (a loaded machine): wait for
        # both boxes themselves
        shown = page.wait_for_function(
            f"() => {{ const s = ({SELECT_VALUES_JS})(); "
            "return 'Smoothing' in s && 'Grouping' in s ? s : null; }",
            timeout=60000,
        ).json_value()
        assert shown["Smoothing"] == "none (as logged)", shown
        assert shown["Grouping"] == "threshold on affinity", shown
        assert page.evaluate(CUT_VALUES_JS) == []
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        page.close()
