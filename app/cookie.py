"""The sign-in cookie (issue 23.3): a sign-in lasts for the browser, not one page load.

The cookie ``lab_sign_in`` holds a token signed with HMAC-SHA256 by itsdangerous
(``URLSafeTimedSerializer``, the Pallets library Flask signs its sessions with; Streamlit
depends on it) under a random server key kept in the run store (``Store.server_secret``,
never in the repository). The token says who signed in, with which role, when, a session id
and a fingerprint of the credential it was signed in with. It is refused when

- its signature does not match (edited, or signed with another server's key);
- it is older than ``[lab.sign_in] session_hours`` (default 12);
- its session id was signed out (``Store.sign_out``: the browser clicked "Sign out");
- the credential changed: the user's hash in ``[lab.users]`` (or the class or teacher
  password in shared mode) is not the one it was signed in with, or the user is gone.

Streamlit 1.67 has no server-side way to set a cookie from a script (``st.context.cookies``
is read-only; ``st.login`` is for OpenID Connect only), so the page sets it with a small
script in ``st.html(..., unsafe_allow_javascript=True)`` (Streamlit's own element, no
third-party component); the server reads it back from ``st.context.cookies`` on the next
page load. The script only writes a value made here (base64url and dots). Being set by a
script, the cookie cannot be ``HttpOnly``; it is ``SameSite=Lax`` and ``Secure`` on https.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "lab_sign_in"
_SALT = "task-affinity-lab sign-in cookie"


@dataclass(frozen=True)
class SignIn:
    """What a valid cookie says: the user, the admin role, its session id and credential
    fingerprint, and when it was issued (Unix seconds)."""

    user: str
    admin: bool
    sid: str
    fingerprint: str
    issued: float


def fingerprint(secret: bytes, credential: str) -> str:
    """A short HMAC of the stored hash a user signed in against: it changes when the hash
    does (a new password), and says nothing about the hash without the server key."""
    return hmac.new(secret, credential.encode(), hashlib.sha256).hexdigest()[:24]


def _serializer(secret: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def make_token(secret: bytes, user: str, admin: bool, credential: str) -> str:
    """A new signed token for ``user`` (with a fresh random session id)."""
    payload = {
        "u": user,
        "a": bool(admin),
        "s": secrets.token_urlsafe(12),
        "f": fingerprint(secret, credential),
    }
    return _serializer(secret).dumps(payload)


def read_token(secret: bytes, token: str | None, max_age_s: float) -> SignIn | None:
    """The sign-in a token holds, or None when it is missing, malformed, badly signed or
    older than ``max_age_s`` seconds (checks of session id and credential are the caller's:
    :func:`app.auth.restore_sign_in`)."""
    if not token or not isinstance(token, str) or len(token) > 4096 or max_age_s <= 0:
        return None
    try:
        payload, issued = _serializer(secret).loads(
            token, max_age=int(max_age_s), return_timestamp=True
        )
    except (BadSignature, ValueError, TypeError):  # SignatureExpired is a BadSignature
        return None
    if not isinstance(payload, dict):
        return None
    user, admin, sid, fp = (payload.get(k) for k in ("u", "a", "s", "f"))
    if not (isinstance(user, str) and isinstance(sid, str) and isinstance(fp, str)):
        return None
    return SignIn(user, admin is True, sid, fp, issued.timestamp())


def set_script(token: str, max_age_s: float) -> str:
    """The ``<script>`` that stores ``token`` in the browser for ``max_age_s`` seconds."""
    value = json.dumps(f"{COOKIE}={token}; Max-Age={int(max_age_s)}; Path=/; SameSite=Lax")
    return (
        f"<script>document.cookie = {value} + "
        '(location.protocol === "https:" ? "; Secure" : "");</script>'
    )


def clear_script() -> str:
    """The ``<script>`` that removes the cookie (sign-out)."""
    return f'<script>document.cookie = "{COOKIE}=; Max-Age=0; Path=/; SameSite=Lax";</script>'
