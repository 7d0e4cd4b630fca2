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
    [lab.sign_in]             # mtl_core.accounts.signin.SignInPolicy (defaults shown)
    tries_per_name = 5        # wrong tries a minute per user name, across sessions
    tries_per_client = 20     # wrong tries a minute per client address
    session_hours = 12        # a sign-in lasts this long in the browser (a signed cookie)
    proxy_hops = 0            # reverse proxies that append X-Forwarded-For (0: ignore it)
    follow_folders = true     # Upload may follow a live log folder on the server (default:
                              # only with login = "none" and --server.address localhost)
    follow_roots = ["runs"]   # the folders it may follow inside (default: the working folder)

Login modes: ``none`` (the owner is the browser: Streamlit's XSRF cookie, hashed, so a reload
keeps one's runs; another browser is someone else), ``password`` (per-user passwords),
``shared`` (a class password and a name of one's choice; the teacher's own password gives the
admin role) and ``oidc`` (Streamlit's built-in ``st.login`` against the identity provider in
the ``[auth]`` table; the e-mail is the user).

Sign-in (password and shared modes, issue 23.2-3): wrong tries are counted in the run store
per user name and per client address (:mod:`mtl_core.accounts.signin`), so a reload or a
new session gets no new tries; a name that does not exist costs one scrypt check like a real
one. A sign-in is kept in the browser by a signed, expiring cookie (:mod:`app.cookie`);
"Sign out" revokes it. A link opened while signed out lands on its page after sign-in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from app import cookie, storage
from app.escape import md
from mtl_core.accounts.access import VISIBILITIES, Actor, can_modify, can_see
from mtl_core.accounts.passwords import dummy_hash, verify_password
from mtl_core.accounts.quota import Limits
from mtl_core.accounts.signin import SignInPolicy, client_address, wait_words
from mtl_core.errors import LabError
from mtl_core.store import RunInfo

LOGIN_MODES = ("none", "password", "shared", "oidc")
USER_KEY = "lab_user"  # session_state: (user name, admin) after a password login
COOKIE_KEY = "lab_cookie"  # session_state: (token, max age s) to store in the browser
CRED_KEY = "lab_credential"  # session_state: digest of the hash the user signed in against
SID_KEY = "lab_sid"  # session_state: (session id, expires) of this session's cookie
WANTED_KEY = "lab_wanted"  # session_state: (page, query) a signed-out visit asked for
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,39}$")
log = logging.getLogger("task_affinity_lab.app")


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
    sign_in: SignInPolicy = field(default_factory=SignInPolicy)
    follow_folders: bool | None = None  # None: only a local, login-free server (app.data_follow)
    follow_roots: tuple[str, ...] = ()  # empty: the server's working folder

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
        follow = lab.get("follow_folders")
        if follow is not None and not isinstance(follow, bool):
            raise LabError(f"[lab] follow_folders = {follow!r}: use true or false")
        roots = lab.get("follow_roots", ())
        if isinstance(roots, str) or not all(isinstance(r, str) and r for r in roots or ()):
            raise LabError('[lab] follow_roots: use a list of folder paths, e.g. ["runs"]')
        return cls(
            follow_folders=follow,
            follow_roots=tuple(roots or ()),
            login=login,
            visibility=visibility,
            admins=tuple(str(a) for a in lab.get("admins", ()) or ()),
            users={str(k): str(v) for k, v in dict(lab.get("users") or {}).items()},
            class_password=lab.get("class_password"),
            admin_password=lab.get("admin_password"),
            limits=Limits.from_mapping(lab.get("limits")),
            sign_in=SignInPolicy.from_mapping(lab.get("sign_in")),
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
    ``login = "none"``); afterwards a sign-out button in the sidebar. A valid sign-in
    cookie (:func:`restore_sign_in`) signs the session in without the form."""
    dep = deployment()
    if dep.login in ("password", "shared"):
        if st.session_state.get(USER_KEY) and not _credential_unchanged(dep):
            sign_out()  # the user was removed or their password changed meanwhile
        if not logged_in(dep):
            restore_sign_in(dep)
    if logged_in(dep):
        if dep.login != "none":
            _signed_in_box(dep)
        return dep
    _remember_wanted_page()
    st.title("Task Affinity Lab")
    if dep.login == "oidc":
        st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")
    else:
        if st.session_state.get("lab_clear_cookie"):
            st.html(cookie.clear_script(), unsafe_allow_javascript=True)
        _password_form(dep)
    st.stop()
    return dep  # not reached


def _remember_wanted_page() -> None:
    """Keep the page and query a signed-out visit asked for (``/explore?run=3``), for
    :func:`wanted_page` to open after sign-in; the first ask of the session counts."""
    if WANTED_KEY in st.session_state:
        return
    try:
        page = str(st.context.url or "").split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    except Exception:  # noqa: BLE001 - no request context (tests)
        page = ""
    st.session_state[WANTED_KEY] = (page, st.query_params.to_dict())


def wanted_page() -> tuple[str, dict[str, str]] | None:
    """``(page url path, query)`` a signed-out visit of this session asked for, once (the
    router opens it after sign-in); None when there is none."""
    wanted = st.session_state.pop(WANTED_KEY, None)
    return tuple(wanted) if wanted and wanted[0] else None  # type: ignore[return-value]


def _signed_in_box(dep: Deployment) -> None:
    actor = current_actor(dep)
    with st.sidebar:
        st.caption(f"Signed in as **{md(actor.name)}**" + (" · teacher" if actor.admin else ""))
        pending = st.session_state.get(COOKIE_KEY)
        if pending:  # keep the sign-in in this browser (the script is idempotent)
            st.html(cookie.set_script(*pending), unsafe_allow_javascript=True)
        if st.button("Sign out", key="lab_sign_out", icon=":material/logout:"):
            if dep.login == "oidc":
                st.logout()
            sign_out()
            st.rerun()


def sign_out() -> None:
    """End this session's sign-in: its cookie's session id is refused from now on (in every
    session and server process), and the browser is told to drop the cookie."""
    sid = st.session_state.pop(SID_KEY, None)
    if sid:
        # this page load's cookie stays in st.context.cookies: never restore it here again,
        # even if the store cannot record the sign-out
        st.session_state["lab_no_restore"] = sid[0]
        try:
            storage.get_store().sign_out(*sid)
        except LabError as exc:
            log.warning("could not record the sign-out: %s", exc)
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(CRED_KEY, None)
    st.session_state.pop(COOKIE_KEY, None)
    st.session_state["lab_clear_cookie"] = True


def credential(dep: Deployment, user: str, admin: bool) -> str | None:
    """The stored hash ``user`` signs in against under ``dep`` (None: no such user): a
    cookie signed in against another hash (a changed password) is refused."""
    if dep.login == "password":
        return dep.users.get(user)
    if dep.login == "shared":
        return (dep.admin_password if admin else dep.class_password) or None
    return None


def browser_cookie() -> str | None:
    """The sign-in cookie this browser sent when the page loaded (``st.context.cookies``),
    or None."""
    try:
        token = st.context.cookies.get(cookie.COOKIE)
    except Exception:  # noqa: BLE001 - no request context (tests)
        return None
    return token if isinstance(token, str) and token else None


def _credential_digest(cred: str) -> str:
    return hashlib.sha256(cred.encode()).hexdigest()


def _credential_unchanged(dep: Deployment) -> bool:
    """Whether this session's user still signs in against the hash they signed in with
    (``secrets.toml`` is read on every run: a removed user or a new password ends the
    sessions signed in before, at their next click)."""
    user, admin = st.session_state[USER_KEY]
    cred = credential(dep, user, admin)
    if cred is None:
        return False
    seen = st.session_state.setdefault(CRED_KEY, _credential_digest(cred))
    return seen == _credential_digest(cred)


def restore_sign_in(dep: Deployment) -> bool:
    """Sign this session in from the browser's sign-in cookie (:mod:`app.cookie`) when it is
    validly signed, younger than ``session_hours``, not signed out, and its credential is
    unchanged; returns whether it did. Never raises (a store problem: no restore)."""
    policy = dep.sign_in
    if policy.session_s <= 0:
        return False
    token = browser_cookie()
    if not token:
        return False
    try:
        store = storage.get_store()
        secret = store.server_secret("sign_in_cookie")
        got = cookie.read_token(secret, token, policy.session_s)
        if got is None or got.sid == st.session_state.get("lab_no_restore"):
            return False
        if store.is_signed_out(got.sid):
            return False
    except LabError as exc:
        log.warning("could not check a sign-in cookie: %s", exc)
        return False
    cred = credential(dep, got.user, got.admin)
    if cred is None or cookie.fingerprint(secret, cred) != got.fingerprint:
        return False
    if dep.login == "shared" and not NAME_RE.match(got.user):
        return False
    admin = got.admin if dep.login == "shared" else got.user in dep.admins
    st.session_state[USER_KEY] = (got.user, admin)
    st.session_state[CRED_KEY] = _credential_digest(cred)
    st.session_state[SID_KEY] = (got.sid, got.issued + policy.session_s)
    return True


def _issue_cookie(dep: Deployment, user: str, admin: bool) -> None:
    """After a sign-in with the form: a new signed cookie for this browser (none with
    ``session_hours = 0``, or when the store cannot keep the key: the sign-in then lasts
    this page load)."""
    policy = dep.sign_in
    cred = credential(dep, user, admin)
    if policy.session_s <= 0 or cred is None:
        return
    try:
        secret = storage.get_store().server_secret("sign_in_cookie")
    except LabError as exc:
        log.warning("no sign-in cookie: %s", exc)
        return
    token = cookie.make_token(secret, user, admin, cred)
    got = cookie.read_token(secret, token, policy.session_s)
    if got is not None:
        st.session_state[COOKIE_KEY] = (token, policy.session_s)
        st.session_state[SID_KEY] = (got.sid, got.issued + policy.session_s)


def client_id(policy: SignInPolicy) -> str:
    """This session's client address for the try limits (:func:`client_address`: the TCP
    peer, or ``X-Forwarded-For`` behind ``proxy_hops`` configured proxies)."""
    try:
        peer = st.context.ip_address
        forwarded = st.context.headers.get("X-Forwarded-For") if policy.proxy_hops else None
    except Exception:  # noqa: BLE001 - no request context (tests)
        peer, forwarded = None, None
    return client_address(peer, forwarded, policy.proxy_hops)


def _password_form(dep: Deployment) -> None:
    with st.form("lab_login"):
        name = st.text_input("Name" if dep.login == "shared" else "User name", key="lab_login_name")
        password = st.text_input("Password", type="password", key="lab_login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    name, password = str(name).strip(), str(password)
    if not name or not password:
        st.error("Enter a name and a password.")
        return
    policy = dep.sign_in
    try:
        attempt, wait = storage.get_store().reserve_sign_in(policy.limits(name, client_id(policy)))
    except LabError as exc:  # fail closed: no count, no sign-in
        st.error(f"Cannot sign in now: {md(exc)}")
        return
    if attempt is None:
        st.error(
            f"Too many wrong tries for this name or from this address: wait {wait_words(wait)} "
            f"(at most {policy.tries_per_name} a minute per name, "
            f"{policy.tries_per_client} per address)."
        )
        return
    who = check_password(dep, name, password)
    if who is None:
        st.error(
            "Wrong name or password."
            if dep.login == "password"
            else "Wrong password, or a name with characters other than letters, digits and "
            "._@- (at most 40)."
        )
        return
    try:
        storage.get_store().forget_sign_in(attempt)
    except LabError as exc:
        log.warning("could not clear a right sign-in try: %s", exc)
    st.session_state[USER_KEY] = who
    cred = credential(dep, *who)
    if cred is not None:
        st.session_state[CRED_KEY] = _credential_digest(cred)
    st.session_state.pop("lab_clear_cookie", None)
    _issue_cookie(dep, *who)
    st.rerun()


def check_password(dep: Deployment, name: str, password: str) -> tuple[str, bool] | None:
    """``(user name, admin)`` when ``name`` and ``password`` sign in under ``dep``, else None.

    Every non-empty try costs the same scrypt work whether or not the name exists (a name
    not in ``[lab.users]`` is checked against :func:`~mtl_core.accounts.passwords.dummy_hash`
    with the real hashes' parameters; a shared-mode name that breaks the name rule is
    refused only after the password checks), so timing does not tell which names exist.
    """
    if not name or not password:
        return None
    if dep.login == "password":
        stored = dep.users.get(name)
        like = stored if stored is not None else next(iter(dep.users.values()), None)
        ok = verify_password(password, stored if stored is not None else dummy_hash(like))
        return (name, name in dep.admins) if ok and stored is not None else None
    if dep.login == "shared":
        admin = bool(dep.admin_password) and verify_password(password, dep.admin_password)
        member = (
            not admin and bool(dep.class_password) and verify_password(password, dep.class_password)
        )
        if NAME_RE.match(name) and (admin or member):
            return name, admin
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
