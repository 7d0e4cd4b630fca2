"""Who is using this browser session: the deployment's settings, the optional login, and the
:class:`~mtl_core.accounts.access.Actor` every page acts as (owner of what it queues or uploads).

Settings come from the ``[lab]`` table of ``.streamlit/secrets.toml`` (or, where that file
cannot be used, a TOML file named by ``$MTL_LAB_SETTINGS`` holding the same keys at its top
level); every key is optional and the defaults are a single user's laptop::

    [lab]
    login = "none"            # none | password | shared | oidc
    visibility = "class"      # class: everyone sees every run; private: own runs only
    admins = ["teacher"]      # user names (password mode) or e-mails (oidc) with the admin role
    class_password = "scrypt$..."   # shared mode: one password for the class
    admin_password = "scrypt$..."   # shared mode: the teacher's password (admin role)
    [lab.users]               # password mode: python -m mtl_core.accounts.passwords
    alice = "scrypt$..."
    [lab.limits]              # mtl_core.accounts.quota.Limits: steps, batch_size, width, ...
    steps = 5000

Login modes: ``none`` (the owner is the browser: Streamlit's XSRF cookie, hashed, so a reload
keeps one's runs; another browser is someone else), ``password`` (per-user passwords),
``shared`` (a class password and a name of one's choice; the teacher's own password gives the
admin role) and ``oidc`` (Streamlit's built-in ``st.login`` against the identity provider in
the ``[auth]`` table; the e-mail is the user).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from app.escape import md
from mtl_core.accounts.access import VISIBILITIES, Actor, can_modify, can_see
from mtl_core.accounts.passwords import verify_password
from mtl_core.accounts.quota import Limits
from mtl_core.errors import LabError
from mtl_core.store import RunInfo

LOGIN_MODES = ("none", "password", "shared", "oidc")
USER_KEY = "lab_user"  # session_state: (user name, admin) after a password login
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,39}$")
MAX_TRIES, LOCK_S = 5, 60.0


@dataclass(frozen=True)
class Deployment:
    """The ``[lab]`` settings, parsed and checked (LabError names the bad key)."""

    login: str = "none"
    visibility: str = "class"
    admins: tuple[str, ...] = ()
    users: Mapping[str, str] = field(default_factory=dict)
    class_password: str | None = None
    admin_password: str | None = None
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_mapping(cls, lab: Mapping[str, Any] | None) -> Deployment:
        lab = dict(lab or {})
        login = str(lab.get("login", "none")).lower()
        visibility = str(lab.get("visibility", "class")).lower()
        if login not in LOGIN_MODES:
            raise LabError(f"[lab] login = {login!r}: use one of {', '.join(LOGIN_MODES)}")
        if visibility not in VISIBILITIES:
            raise LabError(
                f"[lab] visibility = {visibility!r}: use one of {', '.join(VISIBILITIES)}"
            )
        if login == "password" and not lab.get("users"):
            raise LabError("[lab] login = 'password' needs a [lab.users] table of hashes")
        if login == "shared" and not lab.get("class_password"):
            raise LabError("[lab] login = 'shared' needs class_password (a hash)")
        return cls(
            login=login,
            visibility=visibility,
            admins=tuple(str(a) for a in lab.get("admins", ()) or ()),
            users={str(k): str(v) for k, v in dict(lab.get("users") or {}).items()},
            class_password=lab.get("class_password"),
            admin_password=lab.get("admin_password"),
            limits=Limits.from_mapping(lab.get("limits")),
        )


def _settings() -> Mapping[str, Any]:
    path = os.environ.get("MTL_LAB_SETTINGS", "").strip()
    if path:
        try:
            return tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise LabError(
                f"cannot read the settings file {path} ($MTL_LAB_SETTINGS): {exc}"
            ) from None
    try:
        return st.secrets.to_dict().get("lab", {}) if "lab" in st.secrets else {}
    except Exception:  # noqa: BLE001 - no secrets.toml at all: the defaults
        return {}


def deployment() -> Deployment:
    """This server's settings (read each time: ``secrets.toml`` may change while it runs)."""
    return Deployment.from_mapping(_settings())


# ----------------------------------------------------------------------------- identity


def browser_id() -> str:
    """``browser:<hash>`` for this browser (its XSRF token, hashed: stable across reloads,
    different in another browser); a random id per session where there is no cookie."""
    if "lab_browser" not in st.session_state:
        try:
            cookie = st.context.cookies.get("_streamlit_xsrf")
        except Exception:  # noqa: BLE001 - no request context (tests): a session id
            cookie = None
        st.session_state["lab_browser"] = (
            owner_of_cookie(cookie)
            if isinstance(cookie, str) and cookie
            else f"browser:{uuid.uuid4().hex[:20]}"
        )
    return st.session_state["lab_browser"]


def owner_of_cookie(cookie: str) -> str:
    """The owner key of a browser from its ``_streamlit_xsrf`` cookie. Tornado writes the
    token masked (``2|mask|masked token|time``) with a new mask on every page load, so the
    token is unmasked (XOR with the repeated 4-byte mask) before it is hashed."""
    token = cookie.encode()
    parts = cookie.split("|")
    if len(parts) == 4 and parts[0] == "2":
        try:
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            token = bytes(b ^ mask[i % 4] for i, b in enumerate(masked)) if mask else masked
        except ValueError:
            pass
    return "browser:" + hashlib.sha256(token).hexdigest()[:20]


def current_actor(dep: Deployment | None = None) -> Actor:
    """Who this session acts as (call after :func:`require_login`)."""
    dep = dep or deployment()
    if dep.login == "none":
        return Actor(browser_id(), manage_unowned=True, name="this browser")
    if dep.login == "oidc":
        email = str(getattr(st.user, "email", "") or "")
        return Actor(f"user:{email}", admin=email in dep.admins, name=email)
    name, admin = st.session_state.get(USER_KEY) or ("", False)
    return Actor(f"user:{name}", admin=bool(admin), name=name)


def logged_in(dep: Deployment) -> bool:
    if dep.login == "none":
        return True
    if dep.login == "oidc":
        return bool(getattr(st.user, "is_logged_in", False))
    return bool(st.session_state.get(USER_KEY))


def require_login() -> Deployment:
    """Show the login form and stop the page until this session is signed in (no-op for
    ``login = "none"``); afterwards a sign-out button in the sidebar."""
    dep = deployment()
    if logged_in(dep):
        if dep.login != "none":
            _signed_in_box(dep)
        return dep
    st.title("Task Affinity Lab")
    if dep.login == "oidc":
        st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")
    else:
        _password_form(dep)
    st.stop()
    return dep  # not reached


def _signed_in_box(dep: Deployment) -> None:
    actor = current_actor(dep)
    with st.sidebar:
        st.caption(f"Signed in as **{md(actor.name)}**" + (" · teacher" if actor.admin else ""))
        if st.button("Sign out", key="lab_sign_out", icon=":material/logout:"):
            if dep.login == "oidc":
                st.logout()
            st.session_state.pop(USER_KEY, None)
            st.rerun()


def _password_form(dep: Deployment) -> None:
    with st.form("lab_login"):
        name = st.text_input("Name" if dep.login == "shared" else "User name", key="lab_login_name")
        password = st.text_input("Password", type="password", key="lab_login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    tries = st.session_state.setdefault("lab_login_tries", [])
    now = time.time()
    tries[:] = [t for t in tries if now - t < LOCK_S]
    if len(tries) >= MAX_TRIES:
        st.error(f"Too many attempts: wait a minute (at most {MAX_TRIES} a minute).")
        return
    who = check_password(dep, str(name).strip(), str(password))
    if who is None:
        tries.append(now)
        time.sleep(0.5)  # slows guessing; the hash check itself takes tens of ms
        st.error(
            "Wrong name or password."
            if dep.login == "password"
            else "Wrong password, or a name with characters other than letters, digits and "
            "._@- (at most 40)."
        )
        return
    st.session_state[USER_KEY] = who
    st.rerun()


def check_password(dep: Deployment, name: str, password: str) -> tuple[str, bool] | None:
    """``(user name, admin)`` when ``name`` and ``password`` sign in under ``dep``, else None."""
    if not name or not password:
        return None
    if dep.login == "password":
        stored = dep.users.get(name)
        ok = stored is not None and verify_password(password, stored)
        return (name, name in dep.admins) if ok else None
    if dep.login == "shared" and NAME_RE.match(name):
        if dep.admin_password and verify_password(password, dep.admin_password):
            return name, True
        if dep.class_password and verify_password(password, dep.class_password):
            return name, False
    return None


# ----------------------------------------------------------------------------- runs


def visible(runs: Iterable[RunInfo], dep: Deployment | None = None) -> list[RunInfo]:
    """The runs this session may see under the deployment's visibility."""
    dep = dep or deployment()
    actor = current_actor(dep)
    return [r for r in runs if can_see(r.owner, actor, dep.visibility)]


def may_change(info: RunInfo) -> bool:
    """Whether this session may cancel, delete or rename ``info`` (``mtl_core.accounts.access``)."""
    return can_modify(info.owner, current_actor())


def is_mine(info: RunInfo) -> bool:
    """Whether ``info`` belongs to this session's user (or browser)."""
    return info.owner is not None and info.owner == current_actor().id
