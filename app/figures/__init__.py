"""Plotly figure builders for every page (no Streamlit here, so they are easy to test and time).

One module per kind of figure: ``heatmaps`` (affinity matrices, their animation and
difference), ``lines`` (a pair over time, loss curves), ``timeline`` (groups over training),
``approaches`` (the lesson's bars); ``colours`` holds every palette and the heatmap colour
range, ``style`` the shared layout. Every sentence a figure shows comes from ``app.words``.

Reading aids shared by all affinity figures:

- one diverging, colour-blind-safe scale centred on zero: **blue helps, red hurts**;
- rows are the **source** task (whose training step), columns the **target** task (whose loss
  changes), both axes labelled so;
- hovering a cell says it in words ("a step on task t0 lowers task t3's loss by 3.1%");
- animations and side-by-side views use one fixed colour range, so colours are comparable;
- long runs are downsampled (evenly spaced steps, always keeping the last), never truncated.
"""
