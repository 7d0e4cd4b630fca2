"""End-to-end (issue 22, item 2): the lesson's figures on a projector.

At 1024 x 768 with the sidebar open (Streamlit's default) and at 1920 x 1080, measured on the
drawn SVG elements' bounding boxes:

- Learn: the heatmap's plot area is at least 300 px wide with square cells, centred in the
  page's column with its colour bar beside it (not at the far right of a 1920 px screen);
  in every figure drawn (the heatmap, the per-task bars with their error-bar note, the loss
  curves) the plot area, colour bar, axis titles, chart title, legend and notes lie inside
  the figure's box and do not overlap each other, and no two figures' boxes overlap.
- Compare with three runs (one with a long name): every heatmap at least 200 px wide, and
  the same no-overlap rules for its run boxes and the difference heatmap.

Skipped, with the reason, when Chromium is absent.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
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
    names = ["run 0", "run 1", "a run whose name is far longer than its heatmap's box is wide"]
    runs = [seed_run(store, name=name, n_tasks=6, steps=40, config=config_dict()) for name in names]
    # two 3-task runs, one with a cell never logged (its × in the legend, and in B - A's)
    unlogged = np.zeros((40, 3, 3), dtype=bool)
    unlogged[:, 0, 2] = True
    three = [
        seed_run(store, name="three", n_tasks=3, steps=40, config=config_dict()),
        seed_run(store, name="three, gaps", n_tasks=3, steps=40, unlogged=unlogged),
    ]
    env = {
        **os.environ,
        "MTL_LAB_STORE": str(store.path),
        "MTL_LAB_TRAIN_FN": "tests.helpers.app_fixtures:fake_train",
    }
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "runs": runs, "three": three}
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
  // the colour bar's title and its tick labels (every text of the bar outside its title)
  const cb = g.querySelector('.colorbar');
  const texts = cb ? [...cb.querySelectorAll('text')] : [];
  const rect = el => { const r = el.getBoundingClientRect();
                       return [r.left, r.top, r.right, r.bottom]; };
  const cbtitle = texts.filter(t => t.closest('.cbtitle')).map(rect);
  const cbticks = texts.filter(t => !t.closest('.cbtitle') && t.textContent.trim()).map(rect);
  return {plot: box('.nsewdrag'), colorbar: box('.colorbar'), xtitle: box('.g-xtitle text'),
          ytitle: box('.g-ytitle text'), title: box('.g-gtitle text'), legend: box('.legend'),
          cbtitle, cbticks};
}"""

#: Least gap (CSS px) between a colour bar's title and its top tick label.
CB_GAP_PX = 4


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
    _check_colorbar_gap(boxes.pop("cbtitle"), boxes.pop("cbticks"))
    drawn = {k: v for k, v in boxes.items() if v is not None}
    for (ka, a), (kb, b) in itertools.combinations(drawn.items(), 2):
        assert not _overlap(a, b), f"{ka} {a} overlaps {kb} {b}"


def _check_colorbar_gap(titles: list, ticks: list) -> None:
    """The colour bar's title ends at least ``CB_GAP_PX`` above its highest tick label
    (plotly draws a tick at the bar's top end half above the bar, into the title)."""
    assert titles and ticks, f"colour bar title {titles}, ticks {ticks}"
    gap = min(t[1] for t in ticks) - max(t[3] for t in titles)
    print(f"colour bar title to top tick: {gap:.1f} px")
    assert gap >= CB_GAP_PX, f"colour bar title {gap:.1f} px from its top tick label"


#: Every visible figure on the page: its box and the boxes of its drawn parts (plot areas,
#: colour bars, axis titles, chart title, legend, annotations), in CSS px.
FIGURES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => {
  const r = g.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return null;
  const boxes = sel => [...g.querySelectorAll(sel)].map(el => el.getBoundingClientRect())
      .filter(b => b.width > 0 && b.height > 0).map(b => [b.left, b.top, b.right, b.bottom]);
  const parts = {plot: boxes('.nsewdrag'), colorbar: boxes('.colorbar'),
      xtitle: boxes('.g-xtitle text'), ytitle: boxes('.g-ytitle text'),
      title: boxes('.g-gtitle text'), legend: boxes('.legend'), note: boxes('.annotation')};
  return {name: (g.data && g.data[0] && g.data[0].name) || '',
          box: [r.left, r.top, r.right, r.bottom],
          parts: Object.fromEntries(Object.entries(parts).filter(([k, v]) => v.length))};
}).filter(f => f)"""


def _check_figures(figures: list[dict]) -> None:
    """Each figure's parts inside its own box and apart from each other; no two figures'
    boxes overlap (so no part of one figure reaches a neighbour's)."""
    assert figures, "no figure drawn"
    for fig in figures:
        parts = [(f"{k}{i}", b) for k, bs in fig["parts"].items() for i, b in enumerate(bs)]
        x0, y0, x1, y1 = fig["box"]
        for name, (a0, b0, a1, b1) in parts:
            assert a0 >= x0 - 1 and b0 >= y0 - 1 and a1 <= x1 + 1 and b1 <= y1 + 1, (
                f"{fig['name']}: {name} {[a0, b0, a1, b1]} runs out of its figure {fig['box']}"
            )
        for (ka, a), (kb, b) in itertools.combinations(parts, 2):
            assert not _overlap(a, b), f"{fig['name']}: {ka} {a} overlaps {kb} {b}"
    for fa, fb in itertools.combinations(figures, 2):
        assert not _overlap(fa["box"], fb["box"]), (
            f"figure {fa['name']} {fa['box']} overlaps figure {fb['name']} {fb['box']}"
        )


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_learn_heatmap_is_large_square_centred_and_nothing_overlaps(server, browser, viewport):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page.goto(server["url"] + "/")
        page.get_by_role("button", name="Train").click()
        # the heatmap, and the per-task bars with their error-bar note (16 replicas)
        page.wait_for_function(
            f"""() => {{ const f = ({FIGURES_JS})();
                return f.some(x => x.name === 'affinity')
                    && f.some(x => x.name === 'all together' && x.parts.note); }}""",
            timeout=90000,
        )
        # the sidebar is open (the default): the heatmap shares the screen with it
        assert page.locator("[data-testid='stSidebar']").first.bounding_box()["width"] > 150
        page.wait_for_timeout(1500)
        _check_layout(page.evaluate(BOXES_JS, "affinity"), 300)
        figures = page.evaluate(FIGURES_JS)
        print({f["name"]: [round(v) for v in f["box"]] for f in figures})
        _check_figures(figures)
        assert sum(f["name"] == "all together" for f in figures) == 2  # bars and curves
        # centred in the page's column, its colour bar next to the plot area
        heat = next(f for f in figures if f["name"] == "affinity")
        col = page.locator("[data-testid='stMainBlockContainer']").first.bounding_box()
        centre = (heat["box"][0] + heat["box"][2]) / 2
        assert abs(centre - (col["x"] + col["width"] / 2)) <= 4, (heat["box"], col)
        gap = heat["parts"]["colorbar"][0][0] - heat["parts"]["plot"][0][2]
        assert 0 < gap <= 40, f"colour bar {gap:.0f} px right of the plot area"
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        page.close()


def _compare_heatmaps(page, url: str, runs: list[int], at_least: int) -> list[dict]:
    """Open Compare on ``runs``, wait for ``at_least`` heatmaps (figures with a colour bar)
    and a settled layout, and return those figures' measured parts (``FIGURES_JS``)."""
    page.goto(f"{url}/compare?runs={','.join(str(r) for r in runs)}")
    page.wait_for_function(
        f"() => ({FIGURES_JS})().filter(f => f.parts.colorbar).length >= {at_least}",
        timeout=60000,
    )
    page.wait_for_timeout(1500)
    return [f for f in page.evaluate(FIGURES_JS) if "colorbar" in f["parts"]]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_compare_heatmaps_keep_200_px_and_nothing_overlaps(server, browser, viewport):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        # three run heatmaps and the difference heatmap (B - A)
        figures = _compare_heatmaps(page, server["url"], server["runs"], 4)
        widths = [f["parts"]["plot"][0][2] - f["parts"]["plot"][0][0] for f in figures]
        print(f"compare plot widths {[round(w) for w in widths]}")
        assert len(figures) == 4 and min(widths) >= 200, widths
        _check_figures(figures)
        if viewport[0] >= 1920:  # three 460 px boxes fit side by side in one row
            assert len({round(f["box"][1]) for f in figures[:3]}) == 1, figures
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        page.close()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_compare_three_task_heatmaps_keep_every_part_apart(server, browser, viewport):
    """3 tasks, a cell not logged: each heatmap's axis titles, legend and colour bar inside
    its box and apart (the difference heatmap's legend lay over its colour bar at 1024 px)."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        figures = _compare_heatmaps(page, server["url"], server["three"], 3)
        assert len(figures) == 3, figures
        assert all("ytitle" in f["parts"] for f in figures), figures
        # the run with a gap and the difference draw the legend of the × (plotly draws a
        # legend only with two entries: the run without gaps has none)
        assert ["legend" in f["parts"] for f in figures] == [False, True, True], figures
        _check_figures(figures)
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        page.close()
