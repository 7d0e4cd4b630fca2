"""The app's sign-in policy (issue 23, items 2 and 3): how many wrong tries a user name and a
client get per minute, how long a sign-in lasts in the browser, and which address a client
has. Torch- and Streamlit-free; the app (``app.auth``) applies it, the store keeps the tries
(``Store.reserve_sign_in``) so that a reload or a new session gets no new tries.

Settings, the ``[lab.sign_in]`` table of the deployment (every key optional)::

    [lab.sign_in]
    tries_per_name = 5      # wrong tries a minute for one user name, from all clients together
    tries_per_client = 20   # wrong tries a minute from one client address, all names together
    session_hours = 12      # a sign-in lasts this long in the browser (0: this page load only)
    proxy_hops = 0          # reverse proxies in front of the app that append X-Forwarded-For

The client address is the TCP peer Streamlit reports (``st.context.ip_address``; loopback
is ``local``). Behind a reverse proxy every browser has the proxy's address, so a class
would share one client limit: set ``proxy_hops`` to the number of proxies you run, and the
address is read from ``X-Forwarded-For``, that many entries from its right end (the entries
your proxies appended; the ones to their left are the client's to forge). The header is
ignored with ``proxy_hops = 0``, the default: a client could write anything in it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtl_core.errors import LabError

#: The window the try limits count in, seconds.
WINDOW_S = 60.0


@dataclass(frozen=True)
class SignInPolicy:
    """The ``[lab.sign_in]`` settings (defaults above). ``session_hours`` may be fractional;
    0 keeps a sign-in for one page load (no cookie)."""

    tries_per_name: int = 5
    tries_per_client: int = 20
    session_hours: float = 12.0
    proxy_hops: int = 0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> SignInPolicy:
        """Parse and check the table; LabError names the bad key (one line)."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            known = ", ".join(cls.__dataclass_fields__)
            raise LabError(f"[lab.sign_in] has no setting {unknown[0]!r}; use {known}")
        out: dict[str, Any] = {}
        for key, (lo, hi) in {
            "tries_per_name": (1, 1000),
            "tries_per_client": (1, 100_000),
            "session_hours": (0, 24 * 90),
            "proxy_hops": (0, 10),
        }.items():
            if key not in raw:
                continue
            value = raw[key]
            kind = float if key == "session_hours" else int
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LabError(f"[lab.sign_in] {key} = {value!r}: give a number from {lo} to {hi}")
            if kind is int and value != int(value):
                raise LabError(f"[lab.sign_in] {key} = {value!r}: give a whole number")
            if not lo <= value <= hi:
                raise LabError(f"[lab.sign_in] {key} = {value!r}: give a number from {lo} to {hi}")
            out[key] = kind(value)
        return cls(**out)

    @property
    def session_s(self) -> float:
        """How long a sign-in cookie is valid, seconds."""
        return self.session_hours * 3600.0

    def limits(self, name: str, client: str) -> dict[str, int]:
        """The throttle keys of one try and their most tries per :data:`WINDOW_S`, for
        ``Store.reserve_sign_in``: the user name as typed (case-folded, so ``Ann`` and
        ``ann`` share one count) and the client address."""
        return {
            f"name:{name.strip().casefold()}": self.tries_per_name,
            f"client:{client}": self.tries_per_client,
        }


def client_address(peer: str | None, forwarded_for: str | None = None, proxy_hops: int = 0) -> str:
    """The address a client's tries are counted under.

    ``peer`` is the TCP peer (``st.context.ip_address``; None for loopback, which gives
    ``"local"``); ``forwarded_for`` the ``X-Forwarded-For`` header, used only when
    ``proxy_hops`` > 0: its ``proxy_hops``-th entry from the right, the one the outermost of
    your proxies wrote. A missing, short or malformed header falls back to the peer (a
    request that did not come through the proxies). Addresses are normalised
    (``ipaddress``), so ``::ffff:10.0.0.1`` and ``10.0.0.1`` are one client.
    """
    if proxy_hops > 0 and forwarded_for:
        entries = [e.strip() for e in str(forwarded_for).split(",")]
        if len(entries) >= proxy_hops:
            ip = _normal(entries[-proxy_hops])
            if ip is not None:
                return ip
    if not peer:
        return "local"
    return _normal(peer) or str(peer)


def _normal(text: str) -> str | None:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return "local" if ip.is_loopback else str(ip)


def wait_words(wait_s: float) -> str:
    """``"12 s"`` for a wait of 11.2 s (rounded up; at least 1 s)."""
    return f"{max(1, int(-(-wait_s // 1)))} s"
