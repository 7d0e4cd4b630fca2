"""Sign-in in a real browser (issue 23.3's done-when): a sign-in outlives a reload (the
signed cookie), sign-out ends it for that browser, and a deep link opened while signed out
lands on its page, with its query, after sign-in. Password login from a settings file
($MTL_LAB_SETTINGS); skipped, with the reason, when Chromium is absent."""

from __future__ import annotations

import time

import pytest

from tests.helpers.browser import E2E_MARKS, sign_in

pytestmark = E2E_MARKS
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need the playwright package"
)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from mtl_core.accounts.passwords import hash_password
    from mtl_core.store import Store
    from tests.helpers.app_fixtures import seed_run
    from tests.helpers.app_server import fake_train_env, running_app

    folder = tmp_path_factory.mktemp("signin")
    store = Store(folder / "store.sqlite")
    run = seed_run(store, name="linked-run")
    settings = folder / "settings.toml"
    settings.write_text(f'login = "password"\n[users]\nann = "{hash_password("pear", log2_n=8)}"\n')
    env = fake_train_env(store.path, settings)
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "store": store, "run": run}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _sign_in(page, name: str = "ann", password: str = "pear") -> None:
    sign_in(page, name, password)


def _title(page) -> str:
    page.locator("h1").first.wait_for(timeout=60000)
    page.wait_for_timeout(1000)  # the page's own title replaces the sign-in title
    return page.locator("h1").first.inner_text()


def test_a_sign_in_outlives_a_reload_until_sign_out(app, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(app["url"] + "/train")
    _sign_in(page)
    page.wait_for_timeout(1000)  # the page's script stores the cookie
    (saved,) = [c for c in ctx.cookies() if c["name"] == "lab_sign_in"]
    assert 11.9 * 3600 < saved["expires"] - time.time() <= 12 * 3600  # session_hours = 12
    assert saved["sameSite"] == "Lax"
    page.reload()
    page.get_by_text("Signed in as").wait_for(timeout=60000)
    assert page.get_by_role("textbox", name="Password").count() == 0
    assert _title(page) == "Train a run"
    # a new tab of the same browser is signed in too
    other = ctx.new_page()
    other.goto(app["url"] + "/compare")
    other.get_by_text("Signed in as").wait_for(timeout=60000)
    other.close()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("textbox", name="Password").wait_for(timeout=60000)
    page.wait_for_timeout(1000)
    assert not [c for c in ctx.cookies() if c["name"] == "lab_sign_in"]
    page.reload()
    page.get_by_role("textbox", name="Password").wait_for(timeout=60000)
    assert page.get_by_text("Signed in as").count() == 0
    ctx.close()


def test_a_deep_link_lands_on_its_page_after_sign_in(app, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    run = app["run"]
    page.goto(f"{app['url']}/explore?run={run}")
    _sign_in(page)
    assert _title(page) == "Explore a run"
    # the address bar says so too (Streamlit changes it with history.pushState, no load)
    # (the page then adds its own selection: measure=..., step=...)
    want = f"{app['url']}/explore?run={run}"
    for _ in range(60):
        if page.url == want or page.url.startswith(want + "&"):
            break
        page.wait_for_timeout(500)
    assert page.url == want or page.url.startswith(want + "&"), page.url
    page.get_by_text("linked-run", exact=False).first.wait_for(timeout=60000)
    ctx.close()
