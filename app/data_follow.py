"""Following a live log folder on the server from the Upload page: who may, where, and the
hand-over to the runner (``Runner.follow_folder``: ``watch``'s import in a runner thread).

Reading a folder on the server is a server-side power, so it is off unless the settings allow
it (``[lab]`` table, see :mod:`app.auth`): ``follow_folders = true`` allows it,
``follow_folders = false`` forbids it, and unset allows it only on a single user's machine:
``login = "none"`` and Streamlit bound to the loopback address (``--server.address
localhost``). A typed path is untrusted: it is resolved (``..`` and symbolic links) and
refused unless it lies inside ``follow_roots`` (default: the server's working folder).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import auth
from mtl_core.errors import LabError

#: Streamlit ``server.address`` values that only this machine can reach.
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def follow_refusal(dep: auth.Deployment | None = None) -> str | None:
    """Why this server may not follow folders (one sentence), or None when it may."""
    dep = dep or auth.deployment()
    if dep.follow_folders is not None:
        return None if dep.follow_folders else "this server's settings turn it off"
    if dep.login != "none":
        return "this server has a login; its settings may allow it (follow_folders = true)"
    if server_address().strip("[]") not in LOOPBACK:
        return (
            "this server may be reachable from other machines; start it with "
            "--server.address localhost, or allow it in its settings (follow_folders = true)"
        )
    return None


def server_address() -> str:
    """The address Streamlit listens on (``server.address``; "" when unset: every interface).
    The repository's ``.streamlit/config.toml`` sets ``localhost``."""
    return str(st.get_option("server.address") or "")


def follow_roots(dep: auth.Deployment | None = None) -> list[Path]:
    """The folders a followed folder must lie inside, resolved."""
    dep = dep or auth.deployment()
    return [Path(r).resolve() for r in dep.follow_roots] or [Path.cwd().resolve()]


def follow_folder(text: str) -> int:
    """Follow the live log folder at the typed path ``text`` (relative to the server's working
    folder) in the runner; returns its store run's id (created now, owned by this session's
    user). LabError, one line naming the path as typed, when following is not allowed here,
    the path lies outside the allowed roots, or it is no live log folder."""
    from app.data import get_runner
    from mtl_core.live.importer import allowed_folder

    dep = auth.deployment()
    why = follow_refusal(dep)
    if why is not None:
        raise LabError(f"following a folder is not available here: {why}")
    folder = allowed_folder(text, follow_roots(dep), Path.cwd())
    return get_runner().follow_folder(folder)
