"""End-to-end (issue 22, item 2): the Learn heatmap on a projector.

At 1024 x 768 with the sidebar open (Streamlit's default) and at 1920 x 1080, the drawn
heatmap's plot area is at least 300 px wide with square cells, and the colour bar, the axis
titles, the legend and the chart title do not overlap each other or the plot area (bounding
boxes of the drawn SVG elements). Compare with two runs keeps each heatmap at least 200 px.
Skipped, with the reason, when Chromium is absent.
"""

from __future__ import annotations

import itertools
import os

import pytest

from tests.helpers.browser import E2E_MARKS

pytestmark = E2E_MARKS
pytest.importorskip("playwright.sync_api", reason="end-to-end tests need the playwright package")

VIEWPORTS = ((1024, 768), (1920, 1080))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mtl_core.store import Store
    from tests.helpers.app_fixtures import config_dict, seed_run
    from tests.helpers.app_server import running_app

    folder = tmp_path_factory.mktemp("e2e_projector")
    store = Store(folder / "store.sqlite")
    runs = [
        seed_run(store, name=f"run {k}", n_tasks=6, steps=40, config=config_dict())
        for k in range(3)
    ]
    env = {
        **os.environ,
        "MTL_LAB_STORE": str(store.path),
        "MTL_LAB_TRAIN_FN": "tests.helpers.app_fixtures:fake_train",
    }
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "runs": runs}
    except RuntimeError as exc:
        pytest.fail(str(exc))


#: Bounding boxes (CSS px) of the drawn parts of the first heatmap whose first trace is
#: ``name``: plot area, colour bar, axis titles, chart title, legend (absent parts: null).
BOXES_JS = """(name) => {
  const g = [...document.querySelectorAll('.js-plotly-plot')]
      .find(p => p.data && p.data[0] && p.data[0].name === name);
  if (!g) return null;
  const box = sel => {
    const el = g.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 ? [r.left, r.top, r.right, r.bottom] : null;
  };
  return {plot: box('.nsewdrag'), colorbar: box('.colorbar'), xtitle: box('.g-xtitle text'),
          ytitle: box('.g-ytitle text'), title: box('.g-gtitle text'), legend: box('.legend')};
}"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _check_layout(boxes: dict, min_width: float) -> None:
    plot = boxes["plot"]
    w, h = plot[2] - plot[0], plot[3] - plot[1]
    print(f"plot area {w:.0f} x {h:.0f} px")
    assert w >= min_width, f"plot area {w:.0f} x {h:.0f} px"
    assert abs(w - h) <= 2, f"cells not square: plot area {w:.0f} x {h:.0f} px"
    for part in ("colorbar", "xtitle", "ytitle", "title"):
        assert boxes[part] is not None, f"{part} not drawn: {boxes}"
    drawn = {k: v for k, v in boxes.items() if v is not None}
    for (ka, a), (kb, b) in itertools.combinations(drawn.items(), 2):
        assert not _overlap(a, b), f"{ka} {a} overlaps {kb} {b}"


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_learn_heatmap_is_large_square_and_nothing_overlaps(server, browser, viewport):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page.goto(server["url"] + "/")
        page.get_by_role("button", name="Train").click()
        page.wait_for_function(f"({BOXES_JS})('affinity') !== null", timeout=60000)
        # the sidebar is open (the default): the heatmap shares the screen with it
        assert page.locator("[data-testid='stSidebar']").first.bounding_box()["width"] > 150
        page.wait_for_timeout(1500)
        _check_layout(page.evaluate(BOXES_JS, "affinity"), 300)
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        page.close()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_compare_heatmaps_never_shrink_below_200_px(server, browser, viewport):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        ids = ",".join(str(r) for r in server["runs"])
        page.goto(f"{server['url']}/compare?runs={ids}")
        js = """() => [...document.querySelectorAll('.js-plotly-plot')]
            .filter(p => p.data && p.data[0] && p.data[0].name === 'affinity')
            .map(p => p.querySelector('.nsewdrag').getBoundingClientRect().width)"""
        page.wait_for_function(f"({js})().length >= 3", timeout=60000)
        page.wait_for_timeout(1500)
        widths = page.evaluate(js)
        print(f"compare plot widths {widths}")
        assert min(widths) >= 200, widths
    finally:
        page.close()
