"""Password hashes for the app's classroom login, with the standard library's scrypt.

A deployment stores only hashes (``.streamlit/secrets.toml``); make one with::

    python -m mtl_core.accounts.passwords            # asks twice, prints the line to paste

Format: ``scrypt$<log2 n>$<r>$<p>$<salt, base64>$<key, base64>`` (memory-hard scrypt,
RFC 7914, through ``hashlib.scrypt``; 16-byte random salt, 32-byte key; n = 2**14, r = 8,
p = 1 uses 16 MiB and tens of milliseconds per check). Comparison is constant-time.

A sign-in with a user name that does not exist checks the password against
:func:`dummy_hash` (same scrypt parameters as the real hashes), so it takes as long as one
with a real name: timing does not tell which names exist (issue 23.2).
"""

from __future__ import annotations

import base64
import functools
import getpass
import hashlib
import hmac
import os
import secrets
import sys

LOG2_N, R, P = 14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str, *, log2_n: int = LOG2_N, r: int = R, p: int = P) -> str:
    """A new salted scrypt hash of ``password`` in the format above."""
    salt = os.urandom(16)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=2**log2_n, r=r, p=p, dklen=32, maxmem=_MAXMEM
    )
    b64 = base64.b64encode
    return f"scrypt${log2_n}${r}${p}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (False for a malformed hash, never raises)."""
    try:
        kind, log2_n, r, p, salt, key = str(stored).split("$")
        if kind != "scrypt" or not 1 <= int(log2_n) <= 20:
            return False
        want = base64.b64decode(key, validate=True)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=2 ** int(log2_n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def hash_params(stored: str | None) -> tuple[int, int, int] | None:
    """``(log2 n, r, p)`` of a stored hash in the format above; None for anything else."""
    try:
        kind, log2_n, r, p, _salt, _key = str(stored).split("$")
        params = int(log2_n), int(r), int(p)
    except (ValueError, TypeError):
        return None
    if kind != "scrypt" or not 1 <= params[0] <= 20 or not 1 <= params[1] <= 64:
        return None
    return params if 1 <= params[2] <= 16 else None


@functools.lru_cache(maxsize=8)
def _dummy(log2_n: int, r: int, p: int) -> str:
    return hash_password(secrets.token_urlsafe(32), log2_n=log2_n, r=r, p=p)


def dummy_hash(like: str | None = None) -> str:
    """A hash that no password matches (of a random 32-byte secret, made once per process),
    with the scrypt parameters of ``like`` (a real stored hash) or the defaults: checking a
    password against it costs what checking against ``like`` costs."""
    return _dummy(*(hash_params(like) or (LOG2_N, R, P)))


def main() -> int:
    """Ask for a password twice and print its hash (exit 2 when they differ or it is empty)."""
    first = getpass.getpass("password: ")
    if not first:
        print("error: empty password", file=sys.stderr)
        return 2
    if getpass.getpass("again: ") != first:
        print("error: the two passwords differ", file=sys.stderr)
        return 2
    print(hash_password(first))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
