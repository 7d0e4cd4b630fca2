"""Stored script injection (issue 13, item 1): markup in every user string renders as text.

Run names, task names, file names and error text quoting a file are put into the store with
HTML, Markdown, Streamlit directives, LaTeX and autolinks in them; every page that shows them
is opened with AppTest, and every text element (Markdown, captions, alerts, progress text,
widget labels) is rendered with a CommonMark parser to check that nothing but text came out
of the user's part; every plotly figure is checked for unescaped markup.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from app.escape import md
from app.figures.escape import escape_figure, unescape
from mtl_core.runfile import METRIC_FRAME, ParsedRun, matrices_to_long
from mtl_core.store import Store
from tests.helpers.app_fixtures import metrics_frame, open_app, planted_stack

markdown_it = pytest.importorskip("markdown_it")

EVIL_RUN = (
    "<img src=x onerror=alert(1)><iframe srcdoc='<script>alert(2)</script>'></iframe>"
    " [click](https://evil.example) **bold** :red[red] $x^2$ :material/home: "
    "http://auto.example user@mail.example `code` # heading"
)
EVIL_TASKS = [
    "<b>t0</b>",
    "[t1](javascript:alert(1))",
    "**t2**",
    "t3 :blue[x]",
    "$t4$",
    "<a href='https://e.x'>t5</a>",
]
EVIL_ERROR = "cannot read row 3: '<script>alert(3)</script>' is not a number [x](https://e.x)"

#: What a rendered user string may never produce.
#: (the app's own ``**bold**`` is allowed; a user's ``**bold**`` is caught by the text checks)
TAGS = re.compile(r"<(img|iframe|script|a|h\d|b|span|ul|ol|li|pre)\b", re.I)
#: (the directives the test's strings use; the app's own status icons are allowed)
DIRECTIVE = re.compile(r"(?<!\\):(?!\u2060)(red\[|blue\[|material/home)")


def _parser():
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")


def assert_renders_as_text(body: str, where: str) -> None:
    """``body`` (a Markdown string an element shows) yields no tag, link, directive or maths
    from user text (the app's own ``<span style=color>●</span>`` run dots are allowed)."""
    own = re.sub(r"<span style='color:[^']*'>●</span>", "", body)
    html = _parser().render(own)
    found = TAGS.search(html)
    assert found is None, f"{where}: markup rendered: {html[:300]}"
    assert DIRECTIVE.search(own) is None, f"{where}: Streamlit directive left active: {own}"
    assert re.search(r"(?<!\\)\$", own) is None, f"{where}: unescaped $ (LaTeX): {own}"
    assert re.search(r"(?i)https?:(?!\u2060)//", own) is None, f"{where}: autolink: {own}"


def _texts(at) -> list[tuple[str, str]]:
    """Every Markdown-rendered string on the page: element bodies and widget labels."""
    out = []
    for kind in (
        "markdown",
        "caption",
        "error",
        "warning",
        "info",
        "success",
        "toast",
        "title",
        "subheader",
        "header",
    ):
        for el in at.get(kind):
            out.append((kind, str(getattr(el, "value", "") or getattr(el, "body", ""))))
    for el in at.get("progress"):
        out.append(("progress", el.proto.text))
    for kind in ("checkbox", "button", "toggle", "selectbox", "text_input", "number_input"):
        for el in at.get(kind):
            out.append((f"{kind} label", str(el.label)))
    return out


def _figure_strings(at) -> list[str]:
    out: list[str] = []

    def walk(node):
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for c in at.get("plotly_chart"):
        walk(json.loads(c.proto.spec))
    return out


def assert_page_safe(at, must_show: str) -> None:
    assert not at.exception, at.exception
    texts = _texts(at)
    for kind, body in texts:
        if any(
            mark in body for mark in ("img", "iframe", "t0", "t1", "t2", "evil", "script", "click")
        ):
            assert_renders_as_text(body, kind)
    shown = " ".join(_parser().render(b) for _, b in texts)
    assert must_show in shown.replace("\u2060", "").replace("&lt;", "<").replace(
        "&gt;", ">"
    ).replace("&quot;", '"').replace("&amp;", "&").replace("&#39;", "'"), (
        f"{must_show!r} is not shown as text"
    )
    for s in _figure_strings(at):
        left = re.sub(r"<br>|</?extra>", "", s)
        assert "<" not in left, f"unescaped markup in a figure: {s[:200]}"


def _evil_store(tmp_path) -> tuple[Store, int, int, int]:
    store = Store(tmp_path / "s.sqlite")
    steps, _, A = planted_stack(6, 20)
    aff = matrices_to_long(steps, EVIL_TASKS, A, "lookahead")
    parsed = ParsedRun(
        tasks=EVIL_TASKS,
        task_types={t: "regression" for t in EVIL_TASKS},
        affinity=aff,
        metrics=metrics_frame(EVIL_TASKS, 20),
        meta={},
        runs=[""],
        tasks_declared=True,
    )
    (a,) = store.import_parsed(parsed, name=EVIL_RUN, origin="uploaded")
    (b,) = store.import_parsed(parsed, name="plain", origin="uploaded")
    (failed,) = store.import_parsed(parsed, name=EVIL_RUN, origin="uploaded")
    store.set_status(failed, "failed", error=EVIL_ERROR)
    return store, a, b, failed


def test_md_renders_every_kind_of_markup_as_the_same_text():
    for s in (EVIL_RUN, *EVIL_TASKS, EVIL_ERROR, "a\\b", "line\nbreak"):
        body = md(s)
        assert_renders_as_text(body, "md")
        text = _parser().render(body)
        plain = (
            text.removeprefix("<p>")
            .removesuffix("</p>\n")
            .replace("\u2060", "")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", '"')
            .replace("&amp;", "&")
        )
        assert plain == s.replace("\n", " ")


def test_figure_escape_round_trips_clicked_names():
    from app.figures.heatmaps import heatmap

    steps, _, A = planted_stack(6, 2)
    fig = escape_figure(heatmap(A[-1], EVIL_TASKS, clickable=True, title=EVIL_RUN))
    assert [unescape(x) for x in fig.data[0].x] == EVIL_TASKS
    traces = fig.to_plotly_json()["data"]
    with_names = [t["customdata"] for t in traces if "customdata" in t]
    assert with_names, "the clickable heatmap carries names in customdata"
    assert "<" not in json.dumps(with_names)
    assert fig.layout.title.text.startswith("&lt;img")


def test_explore_shows_markup_in_run_and_task_names_as_text(tmp_path, monkeypatch):
    store, a, _, _ = _evil_store(tmp_path)
    at = open_app("explore", store.path, monkeypatch, query={"run": a}).run()
    assert_page_safe(at, "<img src=x onerror=alert(1)>")
    # the groups line names the tasks: as text
    assert any(md("<b>t0</b>") in m.value for m in at.markdown)


def test_explore_shows_a_failed_runs_error_text_as_text(tmp_path, monkeypatch):
    store, _, _, failed = _evil_store(tmp_path)
    at = open_app("explore", store.path, monkeypatch, query={"run": failed}).run()
    assert_page_safe(at, "'<script>alert(3)</script>' is not a number")


def test_compare_and_train_show_markup_as_text(tmp_path, monkeypatch):
    store, a, b, _ = _evil_store(tmp_path)
    at = open_app("compare", store.path, monkeypatch, query={"runs": f"{a},{b}"}).run()
    assert_page_safe(at, "[click](https://evil.example)")
    running = store.create_run(
        name=EVIL_RUN,
        origin="trained",
        status="queued",
        config={"scenario": "synthetic"},
        steps_total=10,
    )
    assert running
    at = open_app("train", store.path, monkeypatch).run()
    assert_page_safe(at, "**bold** :red[red] $x^2$")


def test_upload_page_shows_markup_in_run_names_as_text(tmp_path, monkeypatch):
    store, a, _, _ = _evil_store(tmp_path)
    at = open_app("upload", store.path, monkeypatch).run()
    at.selectbox(key="download_run").set_value(a).run()
    assert_page_safe(at, "<iframe srcdoc='<script>alert(2)</script>'></iframe>")


def test_metric_frame_columns_unchanged():
    # the fixture writes metrics in the file format's long form
    assert list(pd.DataFrame(columns=METRIC_FRAME).columns) == list(METRIC_FRAME)
