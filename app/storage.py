"""The process-wide run store handle of the app, shared by the pages (through ``app.data``)
and the sign-in (``app.auth``, which ``app.data`` builds on, so the handle lives below both)."""

from __future__ import annotations

import streamlit as st

from mtl_core.store import Store, default_store_path


def store_path() -> str:
    """The store file this app uses (``$MTL_LAB_STORE`` or ``./.lab/store.sqlite``)."""
    return str(default_store_path().resolve())


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The process-wide store handle (thread-safe; one connection per thread)."""
    return _store(store_path())
