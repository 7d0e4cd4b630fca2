"""Entry script for AppTest: opens the page named by ``MTL_LAB_TEST_PAGE`` (default: learn).

The ``__main__`` guard matters: runner workers are spawned and re-execute the main script as
``__mp_main__``, where nothing may run.
"""

import os

if __name__ == "__main__":
    from app.streamlit_app import run

    run(os.environ.get("MTL_LAB_TEST_PAGE") or None)
