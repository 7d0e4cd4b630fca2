"""Figure export: PNG through kaleido with the system Chromium, HTML self-contained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import charts
from app.figures import heatmaps
from mtl_core.errors import LabError


def _fig():
    A = np.array([[0.03, 0.01, -0.02], [0.012, 0.025, -0.01], [-0.015, -0.02, 0.04]])
    return heatmaps.heatmap(
        A,
        ["a", "b", "c"],
        measure="lookahead",
        zmax=0.04,
        order=[0, 1, 2],
        grouping=None,
        hide_diagonal=False,
        title="t",
    )


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="PNG export needs Chromium")
def test_heatmap_exports_as_png_of_the_requested_size():
    png = charts.figure_png(_fig().update_layout(width=400, height=300), scale=1.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (400, 300)


def test_html_export_is_self_contained_and_free_of_streamlit_placeholder_colours():
    html = charts.figure_html(_fig())
    assert "cdn.plot.ly/plotly" not in html.split("<body>")[-1][:500]  # plotly.js inlined
    spec = html[html.index("Plotly.newPlot(") :]
    assert '"type":"heatmap"' in spec
    assert "#000011" not in spec  # Streamlit's template placeholders would render near-black
    assert "A step on task c raises task a" in spec  # the hover words travel with the file


def test_png_export_without_a_browser_says_what_to_do(monkeypatch):
    import plotly.graph_objects as go

    def broken(self, *a, **k):
        raise RuntimeError("no browser")

    monkeypatch.setattr(go.Figure, "to_image", broken)
    with pytest.raises(LabError, match="PNG export needs Chromium"):
        charts.figure_png(_fig())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="PNG export needs Chromium")
def test_heatmap_png_has_its_title_and_no_blank_half():
    import io

    from PIL import Image

    from app import captions

    title = captions.export_title(
        "Affinity averaged over the run", "#3 calm", "lookahead", "steps 1–80"
    )
    assert "#3 calm" in title and "lookahead (" in title and "steps 1–80" in title
    fig = _fig()
    assert charts.for_export(fig, title).layout.title.text.endswith("steps 1–80")
    img = np.asarray(
        Image.open(io.BytesIO(charts.figure_png(fig, scale=1.0, title=title))).convert("L")
    )
    inked = img < 200  # drawn pixels (white page is 255)
    w = img.shape[1]
    for half in (inked[:, : w // 2], inked[:, w // 2 :]):
        assert half.any(axis=0).mean() > 0.3, "a half of the PNG is (almost) blank"
    rows = inked.any(axis=1)
    assert rows[: len(rows) // 2].mean() > 0.3 and rows[len(rows) // 2 :].mean() > 0.3
