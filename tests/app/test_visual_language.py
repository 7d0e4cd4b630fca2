"""One visual language (issue 12): square heatmap cells with every label, the diagonal and
unlogged cells drawn distinctly, one colour per group across heatmap, table and timeline,
the timeline's current step and overlapping groups, exports titled, named and >= 2x."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import captions, charts, regroup
from app.colours import GROUP_COLOURS, group_colours
from app.figures import animation, heatmaps, timeline
from app.views.explore.groups import coloured, groups_frame


def _matrix(n, seed=0):
    return np.random.default_rng(seed).normal(0, 0.01, (n, n))


@pytest.mark.parametrize("n", [5, 6, 20, 40])
def test_cells_are_square_and_every_task_is_labelled(n):
    tasks = [f"task_{i}" for i in range(n)]
    fig = heatmaps.heatmap(_matrix(n), tasks, clickable=True)
    lay = fig.layout
    assert lay.yaxis.scaleanchor == "x" and lay.yaxis.scaleratio == 1
    for ax in (lay.xaxis, lay.yaxis):
        assert ax.tickmode == "array" and list(ax.tickvals) == tasks  # no label skipped
        assert ax.tickfont.size == heatmaps.label_font_size(n)
    assert heatmaps.label_font_size(40) < heatmaps.label_font_size(6)
    # the difference heatmap (Compare) too
    d = heatmaps.difference_heatmap(_matrix(n), _matrix(n, 1), tasks, label_a="#1", label_b="#2")
    assert d.layout.yaxis.scaleanchor == "x" and list(d.layout.xaxis.tickvals) == tasks


def test_hidden_diagonal_is_grey_in_the_legend_and_unlogged_cells_are_marked():
    A = _matrix(4)
    A[0, 2] = np.nan
    fig = heatmaps.heatmap(A, list("abcd"))
    names = [t.name for t in fig.data]
    assert captions.DIAGONAL_LEGEND in names and captions.MISSING_LEGEND in names
    diag = next(t for t in fig.data if t.name == "diagonal")
    assert np.isfinite(np.asarray(diag.z, dtype=float)).sum() == 4  # exactly the diagonal
    assert {c for _, c in diag.colorscale} == {heatmaps.DIAGONAL_GREY}
    assert heatmaps.DIAGONAL_GREY.lower() not in ("#ffffff", "#f7f7f7")  # not zero's white
    miss = next(t for t in fig.data if t.name == captions.MISSING_LEGEND)
    assert list(miss.x) == ["c"] and list(miss.y) == ["a"]
    assert np.isnan(fig.data[0].z[0][0])  # the diagonal is off the colour scale
    shown = heatmaps.heatmap(_matrix(4), list("abcd"), hide_diagonal=False)
    assert captions.DIAGONAL_LEGEND not in [t.name for t in shown.data]
    assert len([s for s in shown.layout.shapes if s.line.dash == "dot"]) == 4  # outlined


def test_animation_keeps_one_heatmap_trace_first_and_no_stale_missing_marks():
    stack = np.stack([_matrix(3, s) for s in range(5)])
    stack[0, 0, 1] = np.nan
    fig = animation.animated_heatmap(np.arange(5), stack, list("abc"), zmax=0.02)
    assert fig.data[0].type == "heatmap"
    assert captions.MISSING_LEGEND not in [t.name for t in fig.data]


def test_one_colour_per_group_across_heatmap_table_and_timeline():
    tasks = ["t0", "t1", "t2", "t3", "t4"]
    shown = (frozenset({"t3", "t4"}), frozenset({"t0", "t1", "t2"}))
    earlier = (frozenset({"t0", "t1"}), frozenset({"t2", "t3", "t4"}))
    colours = group_colours(shown, earlier, shown)
    assert colours[shown[0]] == GROUP_COLOURS[0] and colours[shown[1]] == GROUP_COLOURS[1]
    A = _matrix(5)
    hm = heatmaps.heatmap(A, tasks, grouping=shown)
    outline = {s.line.color for s in hm.layout.shapes if s.x0 == 2.5}  # the {t3, t4} block
    assert outline == {colours[shown[0]]}
    result = regroup.GroupResult(shown, 0.0, None, None, 0.0)
    styled = coloured(groups_frame(result, A, tasks), shown)
    css = styled._compute().ctx
    assert f"background-color: {colours[shown[0]]}" in " ".join(f"{p}: {v}" for p, v in css[(0, 0)])
    tl = timeline.group_timeline(
        [10, 20, 30], [earlier, shown, shown], tasks, colours=colours, current_step=20
    )
    z = np.asarray(tl.data[0].z, dtype=float)
    scale = [c for _, c in tl.data[0].colorscale]
    t4 = tasks.index("t4")
    # t4's cell at the steps where it is in {t3, t4} has that group's colour
    k = len(scale) // 2
    assert scale[int(z[t4, 1]) * 2] == colours[shown[0]] and int(z[t4, 1]) < k
    assert any(s.x0 == 20 and s.line.width > 2 for s in tl.layout.shapes)  # current step


def test_timeline_marks_a_task_in_two_overlapping_groups():
    g = (frozenset({"a", "b"}), frozenset({"b", "c"}))
    fig = timeline.group_timeline([1, 2], [g, g], ["a", "b", "c"])
    dots = [t for t in fig.data if t.type == "scatter"]
    assert dots and set(dots[0].y) == {"b"}
    assert dots[0].marker.color[0] == group_colours(g)[g[1]]
    assert "and" in fig.data[0].customdata[1][0]


def test_exports_carry_title_and_name_at_twice_the_scale():
    fig = heatmaps.heatmap(_matrix(3), list("abc"), title="Step 5")
    title = captions.export_title("Step 5", "#3 calm", "lookahead", "step 5")
    out = charts.for_export(fig, title)
    assert out.layout.title.text == title
    # a square heatmap: as wide as it is tall plus labels and colour bar, no blank half
    assert out.layout.height <= out.layout.width <= out.layout.height + 400
    cfg = charts.chart_config("run3_calm_lookahead_steps-1-1300_pct")
    assert cfg["toImageButtonOptions"]["scale"] >= 2
    assert cfg["toImageButtonOptions"]["filename"] == "run3_calm_lookahead_steps-1-1300_pct"
    assert charts.safe_filename("averaged over steps 1–1300") == "averaged_over_steps_1-1300"
    assert title in charts.figure_html(fig, title)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="PNG export needs Chromium")
def test_png_export_is_at_least_twice_the_figure_size():
    fig = heatmaps.heatmap(_matrix(3), list("abc"), title="Step 5")
    layout = charts.for_export(fig, "Step 5 · #3 calm · lookahead (% loss change)").layout
    png = charts.figure_png(fig, title="Step 5 · #3 calm · lookahead (% loss change)")
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    assert width >= charts.EXPORT_SCALE * layout.width >= 2 * 600
    assert height >= charts.EXPORT_SCALE * layout.height


def test_default_threshold_splits_an_all_positive_matrix():
    A = np.full((4, 4), 0.01)
    A[:2, :2] = A[2:, 2:] = 0.03
    tau = regroup.default_tau(A)
    assert 0.01 < tau < 0.03
    assert len(regroup.regroup(A, list("abcd"), "threshold", 2, tau).groups) == 2
    assert len(regroup.regroup(A, list("abcd"), "threshold", 2, 0.0).groups) == 1
    A[0, 3] = A[3, 0] = -0.02  # mixed signs: 0 says something already
    assert regroup.default_tau(A) is None


def test_separation_reports_an_all_positive_matrix():
    A = np.full((4, 4), 0.01) + np.eye(4) * 0.02
    within, between, positive = regroup.separation(A, list("abcd"), [["a", "b"], ["c", "d"]])
    assert positive and within == pytest.approx(between)
    assert captions.separation_caveat(within, between, positive, "proximal")
