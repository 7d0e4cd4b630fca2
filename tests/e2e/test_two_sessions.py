"""Two browsers against one app (issue 13's done-when): markup in run, task and file names
renders as text; browser B cannot cancel or delete browser A's run, A can; the csv scenario
(a path on the server) is not offered in the app.

Login is off (the default), so each browser is its own owner: the app hashes its XSRF cookie.
The test computes A's owner key from A's cookie the same way and seeds A's runs with it.
Skipped, with the reason, when Chromium is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.app_fixtures import append_steps, metrics_frame, planted_stack
from tests.helpers.browser import E2E_MARKS

F19 = Path(__file__).resolve().parents[1] / "data" / "field" / "F19_energy_like_pandas_index.csv"
pytestmark = E2E_MARKS
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need the playwright package"
)

EVIL = (
    '<img src=x onerror="document.title=\'pwned\'"><iframe srcdoc="<script>'
    "parent.document.title='pwned'</script>\"></iframe>**bold** [link](https://e.x)"
)
TASKS = ["<b>t0</b>", "<i>t1</i>", "t2 [x](https://e.x)", "t3", "t4", "t5"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from mtl_core.store import Store
    from tests.helpers.app_server import fake_train_env, running_app

    folder = tmp_path_factory.mktemp("two")
    store = Store(folder / "store.sqlite")
    env = fake_train_env(store.path)
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "store": store}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _owner(context) -> str:
    """The owner key the app gives this browser (``app.auth.browser_id``)."""
    from app.auth import owner_of_cookie

    return owner_of_cookie(
        next(c["value"] for c in context.cookies() if c["name"] == "_streamlit_xsrf")
    )


def _seed(store, owner: str) -> tuple[int, int]:
    """A's running run and A's finished upload, both with markup in their names."""
    from mtl_core.runfile import ParsedRun, matrices_to_long

    live = store.create_run(
        name=EVIL,
        origin="trained",
        status="running",
        steps_total=1000,
        owner=owner,
        config={"scenario": "synthetic"},
    )
    store.set_worker(live, os.getpid())  # alive: the runner leaves it running
    append_steps(store, live, 1, 3, 1000)
    steps, _, A = planted_stack(6, 10)
    parsed = ParsedRun(
        tasks=TASKS,
        task_types={t: "regression" for t in TASKS},
        affinity=matrices_to_long(steps, TASKS, A, "lookahead"),
        metrics=metrics_frame(TASKS, 10),
        meta={},
        runs=[""],
        tasks_declared=True,
    )
    (done,) = store.import_parsed(parsed, name=EVIL, owner=owner)
    return live, done


def _open(page, url: str, text: str) -> None:
    page.goto(url)
    page.get_by_text(text, exact=False).first.wait_for(timeout=60000)
    page.wait_for_timeout(1500)  # the fragments settle


def _assert_nothing_rendered(page, dialogs: list) -> None:
    main = page.locator("[data-testid='stMain']")
    for tag in ("img[src='x']", "iframe", "a[href='https://e.x']", "b", "i"):
        assert main.locator(tag).count() == 0, f"{tag} rendered from a name"
    assert page.title() != "pwned" and not dialogs
    assert page.locator("[data-testid='stException']").count() == 0


def test_two_browsers_markup_ownership_and_no_csv(app, browser):
    url, store = app["url"], app["store"]
    ctx_a, ctx_b = browser.new_context(), browser.new_context()
    a, b = ctx_a.new_page(), ctx_b.new_page()
    dialogs: list = []
    for p in (a, b):
        p.set_viewport_size({"width": 1400, "height": 1800})
        p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _open(a, url + "/train", "Scenario knobs")
    _open(b, url + "/train", "Scenario knobs")
    owner_a = _owner(ctx_a)
    assert owner_a != _owner(ctx_b)
    live, done = _seed(store, owner_a)

    # A sees its run, named as written, with a Cancel button; nothing in the name renders
    _open(a, url + "/train", "**bold**")
    _assert_nothing_rendered(a, dialogs)
    assert a.get_by_text("<img src=x", exact=False).count() >= 1
    assert a.get_by_role("button", name="Cancel").count() == 1
    # B sees it too (class visibility) but may not cancel it
    _open(b, url + "/train", "**bold**")
    _assert_nothing_rendered(b, dialogs)
    assert b.get_by_role("button", name="Cancel").count() == 0
    assert b.get_by_text("not yours").count() == 1
    # the csv scenario takes an uploaded table in the app, never a path on the server
    b.get_by_text("Scenario", exact=True).first.wait_for()
    b.locator("[data-testid='stSelectbox']").first.click()
    b.get_by_role("option", name="csv", exact=False).first.click()
    b.get_by_text("Table file", exact=False).first.wait_for(timeout=20000)
    assert b.get_by_label("path", exact=True).count() == 0
    b.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(F19))
    b.get_by_text("300 rows · 7 columns", exact=False).first.wait_for(timeout=20000)

    # B may not delete A's upload; its task names render as text on Explore and Download
    _open(b, f"{url}/explore?run={done}", "Groups")
    _assert_nothing_rendered(b, dialogs)
    assert b.get_by_text("<b>t0</b>", exact=False).count() >= 1
    _open(b, url + "/upload", "Download a run")
    b.locator("[data-testid='stSelectbox']").first.click()
    b.get_by_role("option", name=f"#{done} ", exact=False).first.click()
    b.get_by_text("Only its owner or a teacher", exact=False).wait_for(timeout=20000)
    assert b.get_by_text("Delete this run", exact=True).count() == 0
    _assert_nothing_rendered(b, dialogs)

    # A, the owner, may delete it
    _open(a, url + "/upload", "Download a run")
    a.locator("[data-testid='stSelectbox']").first.click()
    a.get_by_role("option", name=f"#{done} ", exact=False).first.click()
    a.get_by_text("Delete this run", exact=True).wait_for(timeout=20000)

    # A cancels its own run
    _open(a, url + "/train", "**bold**")
    a.get_by_role("button", name="Cancel").click()
    a.wait_for_timeout(3000)
    assert store.get_run(live).cancel_requested
    assert store.get_run(done).status == "finished"
    _assert_nothing_rendered(a, dialogs)
    ctx_a.close()
    ctx_b.close()
