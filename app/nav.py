"""Page registry shared by the router and the pages (so a page can open another page)."""

from __future__ import annotations

import streamlit as st

_registry: dict[str, st.Page] = {}


def register(name: str, page: st.Page) -> None:
    _registry[name] = page


def clear() -> None:
    _registry.clear()


def page(name: str) -> st.Page:
    """The registered page object for ``name`` (for ``st.switch_page`` / ``st.page_link``)."""
    return _registry[name]


def open_page(name: str, **query: object) -> None:
    """Switch to another page carrying a selection in the URL (e.g. ``run=3``)."""
    st.switch_page(page(name), query_params={k: str(v) for k, v in query.items()})


def link(name: str, label: str, icon: str | None = None, **query: object) -> None:
    """A link to another page that carries a selection in the URL."""
    if name in _registry:
        st.page_link(
            _registry[name],
            label=label,
            icon=icon,
            query_params={k: str(v) for k, v in query.items()} or None,
        )
