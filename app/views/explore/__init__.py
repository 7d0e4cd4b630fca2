"""Explore one run, live while it trains (the page's ``render`` is in ``page``).

Heatmap at a step (or time-averaged up to it) with smoothing, rows in hierarchical leaf order;
grouping controls that regroup at once and outline the groups on the heatmap; a play
animation on a fixed colour scale; any pair over time; the group timeline with its change
points; per-task loss curves; and the ground-truth evaluation, run in the background.

``page`` lays the page out; ``controls`` draws the control panels and returns their values;
``groups`` regroups the shown matrix; ``tabs`` and ``ground_truth`` fill the tabs.
"""

from app.views.explore.page import render

__all__ = ["render"]
