"""Task Affinity Lab — the Streamlit entry point, started from the project folder with
``python -m streamlit run app/streamlit_app.py`` (``python -m`` puts the working folder, the
project root, on ``sys.path``, so ``app`` and ``mtl_core`` import as packages).

A router only: ``run()`` registers one function per page with ``st.navigation`` and runs the
chosen one. Pages read from the run store and submit work to the runner; nothing trains in
the script run, and ``app/`` never imports torch.

Page modules live in ``app/views/``, not ``app/pages/``: Streamlit treats a ``pages/`` folder
next to the main script as a file-based multipage app, which would bypass this router.

Imports live inside ``run()`` on purpose: the runner starts workers with ``spawn``, which
re-executes this main script (as ``__mp_main__``) in every worker; keeping the module body
stdlib-only saves each worker ~1.5 s of importing Streamlit and the pages.
"""

from __future__ import annotations

#: url path -> (title, icon, module of the page). The first is the landing page.
PAGES = {
    "learn": ("Learn: negative transfer", ":material/school:", "app.views.learn"),
    "train": ("Train", ":material/model_training:", "app.views.train"),
    "explore": ("Explore a run", ":material/grid_on:", "app.views.explore"),
    "compare": ("Compare runs", ":material/compare:", "app.views.compare"),
    "groundtruth": ("Ground-truth tables", ":material/fact_check:", "app.views.ground_truth"),
    "upload": ("Upload & download", ":material/upload_file:", "app.views.upload"),
}


def run(start: str | None = None) -> None:
    """Build the navigation and run the selected page.

    ``start`` makes another page the default (tests use it to open one page directly).
    """
    import importlib
    import logging

    import streamlit as st

    from app import auth, data, nav
    from app.escape import md
    from app.guard import guard
    from mtl_core.errors import LabError

    # An emoji icon: a material icon would be fetched from Google Fonts (fails offline).
    st.set_page_config(
        page_title="Task Affinity Lab",
        page_icon="🧩",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        auth.require_login()  # stops here with a sign-in form until signed in (if required)
    except LabError as exc:  # bad [lab] settings: say which, serve nothing
        st.error(f"This server's settings are wrong: {md(exc)}")
        st.stop()
    default = start if start in PAGES else "learn"
    pages = []
    for name, (title, icon, module) in PAGES.items():
        fn = importlib.import_module(module).render
        p = st.Page(guard(fn, name), title=title, icon=icon, url_path=name, default=name == default)
        nav.register(name, p)
        pages.append(p)
    current = st.navigation(pages, position="sidebar")
    wanted = auth.wanted_page()  # a link opened while signed out: its page, after sign-in
    if wanted is not None and wanted[0] in PAGES and wanted[0] != current.url_path:
        st.switch_page(nav.page(wanted[0]), query_params=wanted[1] or None)
    with st.sidebar:
        st.caption("Task Affinity Lab — how tasks help or hurt each other when trained together.")
        st.caption("Heatmaps: rows = source task, columns = target task; blue helps, red hurts.")
    try:
        data.get_runner()  # start the background runner once per server process
    except Exception:  # the pages report store problems themselves
        logging.getLogger("task_affinity_lab.app").exception("runner did not start")
    current.run()


if __name__ == "__main__":
    try:
        run()
    except ModuleNotFoundError as exc:
        # A bare `streamlit run` puts app/ on sys.path, not the project root: say how to start.
        if exc.name not in ("app", "mtl_core"):
            raise
        import streamlit as st

        st.error(
            "Start the app from the project folder with "
            "`python -m streamlit run app/streamlit_app.py` "
            f"(cannot import {exc.name!r} otherwise)."
        )
