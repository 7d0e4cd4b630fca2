"""Background jobs other than training runs: the ground-truth evaluation of a grouping.

Placeholder until ``mtl_core.evaluate`` lands; the panel says so instead of failing.
"""

from __future__ import annotations

import importlib.util

import streamlit as st

from mtl_core.store import RunInfo


def available() -> bool:
    return importlib.util.find_spec("mtl_core.evaluate") is not None


def ground_truth_panel(info: RunInfo, k: int) -> None:
    if not available():
        st.info("The ground-truth evaluation is not available in this build.")
        return
