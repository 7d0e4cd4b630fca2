"""End-to-end (issue 12): the visual language in headless Chromium at projector width (1024 px)
and on a 1920 px screen.

For runs of 6 and 20 tasks: square heatmap cells and every task label on both axes, the hidden
diagonal drawn grey and named in the legend; the threshold's unit identical in the slider,
the URL and the CLI (the URL's ``tau`` given to ``group --tau`` gives the page's groups); one
colour per group on the heatmap and the group timeline. A screenshot of every page at both
widths goes to ``test-artifacts/`` (and to ``docs/screenshots/`` with
``MTL_LAB_UPDATE_SCREENSHOTS=1``). Skipped, with the reason, when Chromium is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.helpers.browser import E2E_MARKS, slider

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
WIDTHS = (1024, 1920)

pytestmark = E2E_MARKS
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need the playwright package"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mtl_core.store import Store
    from tests.helpers.app_fixtures import config_dict, seed_run
    from tests.helpers.app_server import running_app

    folder = tmp_path_factory.mktemp("e2e_visual")
    store = Store(folder / "store.sqlite")
    six = seed_run(
        store,
        name="six tasks",
        n_tasks=6,
        steps=80,
        switch_at=30,
        config=config_dict(knobs={"conflict": 1.0}),
    )
    twenty = seed_run(
        store, name="twenty tasks", n_tasks=20, steps=40, config=config_dict(knobs={"tasks": 20})
    )
    env = {
        **os.environ,
        "MTL_LAB_STORE": str(store.path),
        "MTL_LAB_TRAIN_FN": "tests.helpers.app_fixtures:fake_train",
    }
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "store": store, "runs": {6: six, 20: twenty}, "folder": folder}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _page(browser, width):
    return browser.new_page(viewport={"width": width, "height": 1100})


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1000)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("MTL_LAB_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SHOTS / f"{name}.png")


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def _wait_plot(page, count: int = 1) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}", timeout=60000
    )


#: What the browser drew of the first heatmap: plot area size, tick labels, trace names.
HEATMAP_JS = """() => {
  const g = [...document.querySelectorAll('.js-plotly-plot')]
      .find(p => p.data && p.data[0] && p.data[0].name === 'affinity');
  if (!g) return null;
  const L = g._fullLayout;
  const text = sel => [...g.querySelectorAll(sel)].map(t => t.textContent).filter(t => t);
  return {w: L.xaxis._length, h: L.yaxis._length, xt: text('.xtick text'), yt: text('.ytick text'),
          names: g.data.map(t => t.name), legend: text('.legendtext'),
          diag: (g.data.find(t => t.name === 'diagonal') || {}).colorscale,
          ticks: L.xaxis.tickvals,
          shapes: (L.shapes || []).filter(s => s.line && s.line.width === 3)
              .map(s => ({x0: s.x0, x1: s.x1, colour: s.line.color}))};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("n", [6, 20])
def test_heatmap_cells_are_square_with_every_label(server, browser, width, n):
    page = _page(browser, width)
    try:
        page.goto(f"{server['url']}/explore?run={server['runs'][n]}")
        _wait_plot(page)
        page.wait_for_function(f"({HEATMAP_JS})() !== null", timeout=30000)
        page.wait_for_timeout(500)
        got = page.evaluate(HEATMAP_JS)
        assert abs(got["w"] - got["h"]) <= 1.5, got  # square plot area: square cells
        assert got["w"] / n >= 14, f"cells of {got['w'] / n:.1f} px at {width} px"
        names = [f"t{i}" for i in range(n)]
        assert sorted(got["xt"]) == sorted(names) and sorted(got["yt"]) == sorted(names)
        # the diagonal: grey, its own trace, named in the legend (not the white of zero)
        assert "diagonal" in got["names"]
        assert {c for _, c in got["diag"]} == {"#9e9e9e"}
        assert any("diagonal" in t for t in got["legend"]), got["legend"]
        caption = page.get_by_text("Grey diagonal", exact=False).first
        caption.wait_for(timeout=10000)
        _no_exception(page)
        _shot(page, f"explore-{n}tasks-{width}")
    finally:
        page.close()


def test_threshold_unit_is_the_same_in_slider_url_and_cli(server, browser, tmp_path):
    rid = server["runs"][6]
    page = _page(browser, 1920)
    try:
        page.goto(f"{server['url']}/explore?run={rid}")
        _wait_plot(page)
        label = page.get_by_text("threshold (% loss change)", exact=False).first
        label.wait_for(timeout=20000)
        tau = slider(page, "threshold")
        tau.focus()
        for _ in range(20):
            tau.press("ArrowRight")
        page.wait_for_function("() => location.search.includes('tau=')", timeout=20000)
        page.wait_for_timeout(1500)
        thumb = (
            page.locator("[data-testid='stSlider']", has_text="threshold")
            .locator("[data-testid='stSliderThumbValue']")
            .inner_text()
        )
        assert thumb.endswith("%"), thumb  # the slider says its unit next to the number
        shown = float(thumb.rstrip("%"))
        tau_url = float(parse_qs(urlparse(page.url).query)["tau"][0])
        assert tau_url == pytest.approx(shown, abs=0.0005)  # the slider shows 3 decimals
        groups = page.locator("[data-testid='stMarkdownContainer'] p", has_text="{").first
        page_groups = sorted(g.strip("{} ") for g in groups.inner_text().split("·"))
        _no_exception(page)
    finally:
        page.close()
    # the same number on the CLI gives the same groups (the run's average over its steps)
    out = tmp_path / "run.zip"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    store = str(server["store"].path)
    r = subprocess.run(
        [sys.executable, "-m", "mtl_core", "export", str(rid), "--out", str(out), "--store", store],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtl_core",
            "group",
            str(out),
            "--method",
            "threshold",
            "--tau",
            str(tau_url),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    cli = sorted(", ".join(sorted(g)) for g in json.loads(r.stdout)["groups"])
    assert cli == page_groups, (tau_url, cli, page_groups)


TIMELINE_JS = """() => {
  const g = [...document.querySelectorAll('.js-plotly-plot')]
      .find(p => p.data && p.data[0] && p.data[0].name === 'groups');
  if (!g) return null;
  const d = g._fullData[0], scale = d.colorscale;
  const last = d.x.length - 1, out = {};
  d.y.forEach((task, r) => { const z = d.z[r][last];
    out[task] = z === null || z === undefined ? null : scale[2 * z][1]; });
  return out;
}"""


def test_one_colour_per_group_on_heatmap_and_timeline(server, browser):
    rid = server["runs"][6]
    page = _page(browser, 1920)
    try:
        page.goto(f"{server['url']}/explore?run={rid}&method=tag&k=2&tab=timeline")
        _wait_plot(page, 2)
        page.wait_for_function(f"({TIMELINE_JS})() !== null", timeout=60000)
        page.wait_for_timeout(800)
        heat = page.evaluate(HEATMAP_JS)
        timeline = page.evaluate(TIMELINE_JS)
        assert heat["shapes"], "no group outlines on the heatmap"
        outline: dict[str, set] = {}
        for s in heat["shapes"]:
            lo, hi = round(s["x0"] + 0.5), round(s["x1"] - 0.5)
            for t in heat["ticks"][lo : hi + 1]:
                outline.setdefault(t, set()).add(s["colour"])
        assert len({c for cs in outline.values() for c in cs}) >= 2
        for task, colours in outline.items():
            assert timeline[task] in colours, (task, timeline[task], colours)
        assert "tab=timeline" in page.url and "method=tag" in page.url
        _no_exception(page)
        _shot(page, "explore-timeline-1920")
    finally:
        page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_at_both_widths(server, browser, width):
    six, twenty = server["runs"][6], server["runs"][20]
    page = _page(browser, width)
    try:
        for name, path, ready in (
            ("learn", "/", "Negative transfer in one minute"),
            ("train", "/train", "Will queue"),
            ("explore", f"/explore?run={six}", "Grey diagonal"),
            ("compare", f"/compare?runs={six},{twenty}", "Whole-run averages"),
            ("upload", "/upload", "Upload"),
        ):
            page.goto(server["url"] + path)
            page.get_by_text(ready, exact=False).first.wait_for(timeout=60000)
            if name in ("explore", "compare"):
                _wait_plot(page)
            _no_exception(page)
            # Streamlit's Deploy button is hidden (toolbarMode = viewer)
            assert page.get_by_role("button", name="Deploy").count() == 0
            _shot(page, f"{name}-{width}")
    finally:
        page.close()
