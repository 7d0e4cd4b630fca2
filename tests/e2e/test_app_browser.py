"""End-to-end: the real app (``streamlit run``) in headless Chromium driven by Playwright.

Starts the server on a free port over a temporary store (two seeded runs), waits for
``/_stcore/health``, then: runs the real lesson and sees the heatmap appear and change, moves
the threshold and sees the groups change, uploads a good and a bad file, compares two runs.
A screenshot of each page goes to ``test-artifacts/`` (and to ``docs/screenshots/`` when
``MTL_LAB_UPDATE_SCREENSHOTS=1``). Skipped, with the reason, when Chromium is absent.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers.browser import E2E_MARKS, heatmap_cell_centre, slider, wait_slider_value

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SHOTS = ROOT / "docs" / "screenshots"

pytestmark = E2E_MARKS
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need the playwright package"
)

NAMES = ("alpha", "beta", "nu", "xi")
GOOD = "step,source,target,affinity\n" + "".join(
    f"{s},{a},{b},{0.02 if a == b else (0.01 if (a < 'm') == (b < 'm') else -0.005)}\n"
    for s in range(1, 6)
    for a in NAMES
    for b in NAMES
)
BAD = "step,source,target,affinity\n1,a,b,not-a-number\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mtl_core.store import Store
    from tests.helpers.app_fixtures import config_dict, seed_run
    from tests.helpers.app_server import running_app

    folder = tmp_path_factory.mktemp("e2e")
    store = Store(folder / "store.sqlite")
    a = seed_run(
        store, name="calm", n_tasks=6, steps=120, config=config_dict(knobs={"conflict": 0.2})
    )
    b = seed_run(
        store,
        name="switching",
        n_tasks=6,
        steps=120,
        switch_at=30,
        config=config_dict(knobs={"conflict": 1.0}),
    )
    env = {**os.environ, "MTL_LAB_STORE": str(store.path)}
    env.pop("MTL_LAB_TRAIN_FN", None)  # the lesson trains for real
    env.pop("MTL_LAB_WARM_WORKERS", None)  # with standby workers, as a user's app does
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "store": store, "runs": (a, b), "folder": folder}
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 2000})
    yield pg
    pg.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(800)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("MTL_LAB_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SHOTS / f"{name}.png")


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def _plot_z(page, index: int = 0):
    return page.evaluate(
        "i => { const g = document.querySelectorAll('.js-plotly-plot')[i];"
        " return g && g.data ? JSON.stringify(g.data[0].z) : null; }",
        index,
    )


def _groups_text(page) -> str:
    loc = page.locator("[data-testid='stMarkdownContainer'] p", has_text="{").first
    loc.wait_for(timeout=20000)
    return loc.inner_text()


def test_lesson_heatmap_appears_then_changes(server, page):
    page.goto(server["url"] + "/")
    page.get_by_role("button", name="Train").click()
    t0 = time.time()
    caption = page.get_by_text("Affinity so far: step", exact=False)
    caption.wait_for(timeout=60000)
    first = time.time() - t0
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0", timeout=30000
    )
    z1, text1 = _plot_z(page), caption.inner_text()
    page.wait_for_function(
        "t => { const el = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
        ".find(e => e.innerText.startsWith('Affinity so far')); return el && el.innerText !== t; }",
        arg=text1,
        timeout=60000,
    )
    z2 = _plot_z(page)
    assert z1 != z2, "the heatmap did not change while training"
    # all three approaches finish and the explanation reports the held-out losses
    page.get_by_text("At the end,", exact=False).first.wait_for(timeout=90000)
    total = time.time() - t0
    _no_exception(page)
    print(f"\nlesson in the browser: first heatmap {first:.1f} s, finished {total:.1f} s")
    _shot(page, "learn")


def test_threshold_moves_regroup(server, page):
    _, b = server["runs"]
    page.goto(f"{server['url']}/explore?run={b}")
    before = _groups_text(page)
    assert before.count("{") == 2, before
    tau = slider(page, "threshold")
    tau.focus()
    tau.press("End")  # the highest threshold: no pair is linked
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMarkdownContainer] p')]"
        ".some(p => p.innerText.startsWith('{t') && p.innerText.split('{').length === 7)",
        timeout=20000,
    )
    assert "tau=" in page.url and f"run={b}" in page.url
    _no_exception(page)
    tau.press("Home")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMarkdownContainer] p')]"
        ".some(p => p.innerText.startsWith('{t') && p.innerText.split('{').length === 2)",
        timeout=20000,
    )
    slider(page, "threshold").focus()
    for _ in range(3):  # back near the middle for the screenshot
        page.keyboard.press("PageUp")
    _shot(page, "explore")


def test_bound_widgets_write_the_url_and_the_link_reopens_them(server, page):
    """``bind="query-params"`` (issue 19): moving the k and step sliders writes ``?k=`` and
    ``?step=`` in the browser; the URL the page made opens the same view."""
    _, b = server["runs"]
    page.goto(f"{server['url']}/explore?run={b}&method=hierarchical&k=3")
    wait_slider_value(page, "k (number of groups)", "3", timeout=30000)
    k = slider(page, "k (number of groups)")
    k.focus()
    k.press("ArrowRight")
    page.wait_for_function("() => /[?&]k=4(&|$)/.test(location.search)", timeout=20000)
    step = slider(page, "Step")
    step.focus()
    step.press("Home")  # the first logged step
    page.wait_for_function("() => /[?&]step=1(&|$)/.test(location.search)", timeout=20000)
    link = page.url
    assert f"run={b}" in link and "method=hierarchical" in link
    page.goto(link)
    wait_slider_value(page, "Step", "1", timeout=30000)
    wait_slider_value(page, "k (number of groups)", "4")
    _no_exception(page)


def test_clicking_a_heatmap_cell_opens_that_pair_over_time(server, page):
    _, b = server["runs"]
    page.goto(f"{server['url']}/explore?run={b}")
    # the centre of the cell row t3 (source), column t4 (target), in page pixels: a helpful
    # pair, so not the pair the tab shows by default (the most harmful one)
    x, y = heatmap_cell_centre(page, "t3", "t4")
    page.mouse.click(x, y)
    page.get_by_role("tab", name="A pair over time", selected=True).wait_for(timeout=20000)
    caption = page.get_by_text("on average over the run", exact=False).first
    caption.wait_for(timeout=20000)
    assert "task t3 lowers task t4" in caption.inner_text(), caption.inner_text()
    _no_exception(page)


def test_upload_good_and_bad_files(server, page, tmp_path):
    good, bad = tmp_path / "mine.csv", tmp_path / "broken.csv"
    good.write_text(GOOD)
    bad.write_text(BAD)
    page.goto(server["url"] + "/upload")
    page.locator("input[type=file]").set_input_files([str(good), str(bad)])
    err = page.locator("[data-testid='stAlertContentError']").first
    err.wait_for(timeout=20000)
    assert "broken.csv" in err.inner_text() and "affinity" in err.inner_text()
    page.get_by_role("button", name="Save this run").click()
    page.get_by_text("Saved as run #", exact=False).wait_for(timeout=20000)
    _no_exception(page)
    _shot(page, "upload")
    page.get_by_text("in Explore", exact=False).first.click()
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0", timeout=30000
    )
    assert "/explore" in page.url
    assert "{alpha, beta} · {nu, xi}" in _groups_text(page)


def test_compare_two_runs(server, page):
    a, b = server["runs"]
    page.goto(f"{server['url']}/compare?runs={a},{b}")
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=30000
    )
    _no_exception(page)
    _shot(page, "compare")
    page.get_by_role("tab", name="Groupings").click()
    page.get_by_text("Agreement", exact=False).wait_for(timeout=20000)
    page.get_by_role("tab", name="Config diff").click()
    # dataframes draw on a canvas; their cells exist for screen readers (attached, hidden)
    page.get_by_text("knobs.conflict", exact=False).first.wait_for(state="attached", timeout=20000)


def test_train_page(server, page):
    page.goto(server["url"] + "/train")
    page.get_by_text("Scenario knobs").wait_for(timeout=20000)
    page.get_by_role("button", name="Queue run").wait_for()
    _no_exception(page)
    _shot(page, "train")
