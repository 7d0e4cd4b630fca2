"""What the app's sign-in keeps in the store, so that it holds across browser sessions, reloads
and server processes (issue 23, items 2 and 3; tables from migration ``m004_sign_in``):

``sign_in_tries``
    One row per sign-in try and throttle key (a user name, a client address), so the limit
    of wrong tries per minute counts every session. Keys are stored as SHA-256 digests (a
    name field may hold a mistyped password); rows older than the window are dropped.
``signed_out``
    Session ids of sign-in cookies whose browser signed out: such a cookie is refused even
    if the browser kept it. Dropped once the cookie would have expired anyway.
``server_secrets``
    Random keys made on first use (``secrets.token_bytes``), e.g. the key that signs the
    sign-in cookies: they live with the store on the server, never in the repository.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Mapping

from mtl_core.store.base import StoreBase


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class SignInMixin(StoreBase):
    """Sign-in tries, signed-out cookies and server secrets (tables above)."""

    def reserve_sign_in(
        self, limits: Mapping[str, int], *, window_s: float = 60.0, now: float | None = None
    ) -> tuple[str | None, float]:
        """Count one sign-in try against every key of ``limits`` (``{key: most tries per
        window}``, e.g. ``{"name:ann": 5, "client:10.0.0.7": 20}``), in one write transaction.

        Returns ``(attempt, 0.0)`` when no key is at its limit: the try is recorded for each
        key (before the password is checked, so parallel guesses count too); call
        :meth:`forget_sign_in` with ``attempt`` when the password was right. Returns
        ``(None, wait_s)`` when some key already had its most tries in the last ``window_s``
        seconds: nothing is recorded, and ``wait_s`` > 0 is how long until the next try is
        allowed (sliding window). Raises LabError when the store cannot be written.
        """
        t = time.time() if now is None else float(now)
        keys = {_digest(k): int(n) for k, n in limits.items()}

        def tx(con: sqlite3.Connection) -> tuple[str | None, float]:
            con.execute("DELETE FROM sign_in_tries WHERE at <= ?", (t - window_s,))
            wait = 0.0
            for key, most in keys.items():
                times = [
                    r[0]
                    for r in con.execute(
                        "SELECT at FROM sign_in_tries WHERE key = ? ORDER BY at", (key,)
                    )
                ]
                if len(times) >= most:
                    # allowed again once all but most - 1 of them have left the window
                    oldest_needed = times[len(times) - most] if most > 0 else t
                    wait = max(wait, oldest_needed + window_s - t, 0.001)
            if wait > 0:
                return None, wait
            attempt = secrets.token_hex(16)
            con.executemany(
                "INSERT INTO sign_in_tries (key, at, attempt) VALUES (?, ?, ?)",
                [(key, t, attempt) for key in keys],
            )
            return attempt, 0.0

        return self._write(tx)

    def forget_sign_in(self, attempt: str) -> None:
        """Drop the tries recorded as ``attempt`` (its password was right: it is no wrong try)."""
        self._write(
            lambda con: con.execute("DELETE FROM sign_in_tries WHERE attempt = ?", (attempt,))
        )

    def server_secret(self, name: str, nbytes: int = 32) -> bytes:
        """The store's random secret ``name`` (``nbytes`` bytes from ``secrets``), made on
        first use and the same for every process afterwards. Raises LabError when it does not
        exist yet and the store cannot be written."""

        def get(con: sqlite3.Connection) -> bytes | None:
            row = con.execute("SELECT value FROM server_secrets WHERE name = ?", (name,)).fetchone()
            return None if row is None else bytes(row[0])

        value = self._read(get)
        if value is not None:
            return value

        def make(con: sqlite3.Connection) -> bytes:
            con.execute(
                "INSERT OR IGNORE INTO server_secrets (name, value, created) VALUES (?, ?, ?)",
                (name, secrets.token_bytes(nbytes), time.time()),
            )
            return get(con) or b""

        return self._write(make)

    def sign_out(self, sid: str, expires: float) -> None:
        """Refuse the sign-in cookie with session id ``sid`` from now on (kept until
        ``expires``, a Unix time after which the cookie is refused anyway)."""

        def tx(con: sqlite3.Connection) -> None:
            con.execute("DELETE FROM signed_out WHERE expires < ?", (time.time(),))
            con.execute(
                "INSERT OR REPLACE INTO signed_out (sid, expires) VALUES (?, ?)",
                (str(sid), float(expires)),
            )

        self._write(tx)

    def is_signed_out(self, sid: str) -> bool:
        """Whether the cookie with session id ``sid`` was signed out (:meth:`sign_out`)."""
        sql = "SELECT 1 FROM signed_out WHERE sid = ?"
        row = self._read(lambda con: con.execute(sql, (str(sid),)).fetchone())
        return row is not None
