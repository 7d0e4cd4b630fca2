"""Task Affinity Lab's Streamlit app: a thin UI over ``mtl_core`` (never imports torch).

One job per module:

- ``streamlit_app``: the router (``st.navigation``); ``nav``: links between pages.
- ``views/``: one module (or package) per page; each page's ``render`` reads top to bottom.
- ``data``: the cached store and runner, and cached reads of runs (the store is the truth).
- ``session``: the URL's query parameters, ``st.session_state``, remembered widgets.
- ``regroup``: groupings of a matrix, the group timeline, numbers about groupings.
- ``words``: every sentence, caption and label built from numbers.
- ``figures/``: plotly figure builders and colours (no Streamlit); ``charts``: showing and
  exporting them.
- ``guard``: the error boundary (a message, never a traceback).
- ``jobs``: the ground-truth evaluation as a background job; ``lesson``: the lesson's runs.

Smoothing over steps is ``mtl_core.series``, shared with the core.
"""
