"""Formulas through Streamlit's own table download (issue 23.7), in a real browser: runs whose
task names, run names and config values are spreadsheet formulas (``=HYPERLINK(...)``,
``+cmd``, ``-1+2``, ``@SUM(A1)``) are shown in the Explore groups table, the Compare config
diff, the Train queue and the Upload preview; each grid's toolbar "Download as CSV" is
clicked and the downloaded file read: every cell holding one of those names starts with
``'`` and no cell starts with a raw ``=``, ``+``, ``-`` or ``@`` (plain numbers aside).

How the download is driven: Streamlit writes the file through the File System Access API
(``window.showSaveFilePicker``) where the browser has it, and headless Chromium cannot answer
that save dialog (no download event ever comes: tried). The pages here are opened with that
API removed, so Streamlit takes the path it takes in Firefox, Safari and embedded apps (a
blob link): the same CSV text, then a real download that ``page.expect_download`` catches.
Chromium's own path is checked once too, with a stand-in save dialog that keeps what
Streamlit writes into the chosen file. Skipped, with the reason, when Chromium is absent."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.helpers.browser import E2E_MARKS

pytestmark = E2E_MARKS
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need the playwright package"
)

FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd", "-1+2", "@SUM(A1)"]
TASKS = [*FORMULAS, "plain a", "plain b"]
#: A cell a spreadsheet reads as a number, not a formula (``-0.5``, ``+3``, ``1e-3``).
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?\Z")
NO_PICKER = "delete window.showSaveFilePicker; window.showSaveFilePicker = undefined;"
#: A save dialog that "chooses" a file and keeps what is written into it (``window.__saved``).
FAKE_PICKER = """
  window.__saved = []; window.__closed = false;
  window.showSaveFilePicker = async () => ({ createWritable: async () => ({
    write: async (d) => { window.__saved.push(d instanceof Blob ? await d.text()
        : typeof d === "string" ? d : new TextDecoder().decode(d)); },
    close: async () => { window.__closed = true; } }) });"""


def _seed(store, name: str, scenario: str) -> int:
    """A finished run of :data:`TASKS` (planted blocks) whose config names ``scenario``
    (an uploaded bundle's ``meta.json`` may claim any config)."""
    from tests.helpers.app_fixtures import seed_run

    return seed_run(store, name=name, tasks=TASKS, steps=30, config={"scenario": scenario})


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from mtl_core.store import Store
    from tests.helpers.app_server import fake_train_env, running_app

    folder = tmp_path_factory.mktemp("download")
    store = Store(folder / "store.sqlite")
    ids = [_seed(store, FORMULAS[0], FORMULAS[0]), _seed(store, FORMULAS[3], FORMULAS[1])]
    upload = folder / "formulas.csv"
    with open(upload, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "step", "source", "target", "affinity"])
        for step in (1, 2):
            for a in TASKS:
                for b in TASKS:
                    w.writerow([FORMULAS[0], step, a, b, 0.01 if a == b else -0.002])
    try:
        with running_app(fake_train_env(store.path), folder / "server.log") as url:
            yield {"url": url, "ids": ids, "upload": upload}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _context(browser, script: str):
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1600})
    ctx.add_init_script(script)
    return ctx


@pytest.fixture
def page(browser):
    ctx = _context(browser, NO_PICKER)
    yield ctx.new_page()
    ctx.close()


def _download(page, grid) -> list[list[str]]:
    """Hover ``grid``, click its toolbar's "Download as CSV"; the file's rows."""
    grid.wait_for(timeout=60000)
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # the grid's canvas drawn
    grid.hover()
    button = grid.locator("xpath=..").locator("[data-testid=stElementToolbar]").first
    with page.expect_download(timeout=20000) as got:
        button.get_by_role("button", name="Download as CSV").click()
    text = open(got.value.path(), encoding="utf-8-sig").read()
    return list(csv.reader(io.StringIO(text)))


def _assert_escaped(rows: list[list[str]], where: str) -> None:
    cells = [c for row in rows for c in row]
    raw = [c for c in cells if c and c[0] in "=+-@" and not NUMBER.match(c)]
    assert not raw, (where, raw)
    quoted = [c for c in cells if any(c.startswith("'" + f) for f in FORMULAS)]
    assert quoted, (where, rows)  # the names are there, escaped (so the check can fail)


def _grid(page, has_text: str | None = None):
    grids = page.locator("[data-testid=stDataFrame]")
    return grids.first if has_text is None else grids.filter(has_text=has_text).first


def test_explore_groups_table_downloads_escaped(app, page):
    page.goto(f"{app['url']}/explore?run={app['ids'][0]}")
    rows = _download(page, _grid(page))
    assert rows[0][:2] == ["group", "tasks"], rows[0]
    _assert_escaped(rows, "explore groups")
    assert {r[1] for r in rows[1:]} >= {'\'+cmd, -1+2, =HYPERLINK("http://x","y")'}, rows
    means = [r[3] for r in rows[1:]]  # "+0.99%": a number to a spreadsheet, shown as it is
    assert means and all(NUMBER.match(m) for m in means), rows


def test_chromiums_save_dialog_gets_the_same_escaped_file(app, browser):
    ctx = _context(browser, FAKE_PICKER)
    try:
        page = ctx.new_page()
        page.goto(f"{app['url']}/explore?run={app['ids'][0]}")
        grid = _grid(page)
        grid.wait_for(timeout=60000)
        grid.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        grid.hover()
        toolbar = grid.locator("xpath=..").locator("[data-testid=stElementToolbar]").first
        toolbar.get_by_role("button", name="Download as CSV").click()
        page.wait_for_function("window.__closed", timeout=20000)
        text = page.evaluate("window.__saved.join('')").lstrip("\ufeff")
    finally:
        ctx.close()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["group", "tasks"], rows
    _assert_escaped(rows, "explore groups, save dialog")


def test_compare_config_diff_downloads_escaped(app, page):
    a, b = app["ids"]
    page.goto(f"{app['url']}/compare?runs={a},{b}")
    page.get_by_role("tab", name="Config diff").click()
    panel = page.get_by_role("tabpanel", name="Config diff")
    rows = _download(page, panel.locator("[data-testid=stDataFrame]").first)
    (scenario,) = [r for r in rows if r[0] == "scenario"]
    assert scenario[1:] == ["'" + FORMULAS[0], "'" + FORMULAS[1]], rows
    _assert_escaped(rows, "compare config diff")


def test_train_queue_downloads_escaped(app, page):
    page.goto(f"{app['url']}/train")
    rows = _download(page, _grid(page, "status"))
    col = rows[0].index("scenario")
    assert sorted(r[col] for r in rows[1:]) == sorted("'" + f for f in FORMULAS[:2]), rows
    _assert_escaped(rows, "train queue")


def test_upload_preview_downloads_escaped(app, page):
    page.goto(f"{app['url']}/upload")
    page.locator("input[type=file]").set_input_files(str(app["upload"]))
    rows = _download(page, _grid(page))
    assert rows[0][:3] == ["run", "tasks", "task names"], rows[0]
    assert rows[1][0] == "'" + FORMULAS[0] and rows[1][2].startswith("'" + FORMULAS[0]), rows
    _assert_escaped(rows, "upload preview")
