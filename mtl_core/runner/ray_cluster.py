"""Connecting to a Ray cluster, shared by the experiments' :class:`RayExecutor` and the
runner's Ray backend. Ray is optional (``pip install .[ray]``) and imported only here, only
when a caller asks for a cluster: without one configured, nothing imports Ray.

Settings:

- ``RAY_ADDRESS`` (Ray's own variable): where ``evaluate --executor ray`` connects when no
  ``--ray-address`` is given; with neither, a Ray instance is started on this machine for the
  sweep and stopped after it.
- ``MTL_LAB_RAY_ADDRESS``: makes the runner (the app's Train queue, ``train --store``) send
  queued runs to the cluster at that address (``HOST:PORT`` of the head, or ``auto`` for a
  cluster already running on this machine).

- ``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` (Ray's own): a cluster with
  token authentication (Ray 2.60's ``ray start --head`` turns it on by itself on a machine
  holding a token, ``~/.ray/auth_token``) needs ``RAY_AUTH_MODE=token`` and the cluster's
  token in the lab's environment; the lab passes them to Ray untouched, and a connection
  refused for want of them says so and what to set (:func:`auth_advice`).

What a training run asks the cluster for (:func:`run_resources`): one CPU, and one GPU when
its config asks for CUDA (``device="cuda"``, or ``"auto"`` on a cluster that has GPUs).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

from mtl_core.errors import LabError

#: The runner sends queued runs to the Ray cluster at this address when set.
RUNNER_RAY_ENV = "MTL_LAB_RAY_ADDRESS"
INSTALL_HINT = "pip install 'task-affinity-lab[ray]' (or pip install ray==2.60.0)"


def import_ray() -> ModuleType:
    """Import Ray; LabError with the install command when it is not installed."""
    try:
        import ray
    except ImportError as exc:
        raise LabError(f"Ray is not installed ({exc}); {INSTALL_HINT}") from None
    return ray


def runner_ray_address() -> str | None:
    """``$MTL_LAB_RAY_ADDRESS`` stripped, or None when unset or empty (runs stay local)."""
    raw = os.environ.get(RUNNER_RAY_ENV, "").strip()
    return raw or None


def connect(address: str | None) -> tuple[ModuleType, bool]:
    """Connect this process to the Ray cluster at ``address`` (``HOST:PORT``, ``auto``, or
    None = ``$RAY_ADDRESS``, else start a Ray instance on this machine).

    Returns ``(ray, started)``: ``started`` is True when this call connected (the caller then
    disconnects with ``ray.shutdown()`` when done); an existing connection is reused as is.
    Raises LabError when Ray is missing or the cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    target = address or os.environ.get("RAY_ADDRESS") or None
    opts: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
    if target is None:  # a new instance on this machine: no dashboard server
        opts["include_dashboard"] = False
    else:
        _probe(target)
    try:
        ray.init(address=target, **opts)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds (RayError, gRPC, ...)
        raise LabError(connect_failure(target, exc)) from None
    return ray, True


def connect_failure(target: str | None, exc: BaseException) -> str:
    """The one line for a failed ``ray.init``: where, Ray's first line, and what to do (the
    authentication set-up when that is the cause, :func:`auth_advice`)."""
    where = target or "a new local instance"
    auth = auth_advice(exc)
    if auth:
        # Ray's AuthenticationError appends a paragraph of help to its message: its own words
        said = getattr(exc, "message", None)
        said = f"{type(exc).__name__}: {said}" if isinstance(said, str) else first_line(exc)
        return f"could not connect to the Ray cluster at {where}: {auth} ({said})"
    hint = START_HINT
    if target is not None and _auth_mode() == "" and local_token() is not None:
        hint += (
            f"; if the cluster uses token authentication (a head started on a machine "
            f"holding a Ray token, as this one does in {local_token()}, turns it on), set "
            f"{AUTH_MODE_ENV}=token in the lab's environment"
        )
    return f"could not connect to the Ray cluster at {where}: {first_line(exc)}; {hint}"


#: Ray's variables for token authentication (Ray 2.60), passed through untouched.
AUTH_MODE_ENV, AUTH_TOKEN_ENV, AUTH_TOKEN_PATH_ENV = (
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
)
_AUTH_WORDS = ("authentication", "unauthenticated", "auth token", "auth_token")


def _auth_mode() -> str:
    return os.environ.get(AUTH_MODE_ENV, "").strip().lower()


def local_token() -> str | None:
    """Where this machine holds a Ray token (``$RAY_AUTH_TOKEN``, the file named by
    ``$RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``), or None."""
    if os.environ.get(AUTH_TOKEN_ENV, "").strip():
        return f"${AUTH_TOKEN_ENV}"
    named = os.environ.get(AUTH_TOKEN_PATH_ENV, "").strip()
    for path in ([Path(named).expanduser()] if named else []) + [
        Path.home() / ".ray" / "auth_token"
    ]:
        if path.is_file():
            return str(path)
    return None


def auth_advice(exc: BaseException) -> str | None:
    """What to set when ``exc`` (from ``ray.init``) says the cluster refused this process
    for its authentication, else None.

    Ray 2.60 raises ``ray.exceptions.AuthenticationError`` (or a gRPC ``UNAUTHENTICATED``
    status) when the cluster wants a token this process does not send or that does not match.
    """
    text = f"{type(exc).__name__} {exc}".lower()
    if type(exc).__name__ != "AuthenticationError" and not any(w in text for w in _AUTH_WORDS):
        return None
    token = (
        f"the cluster's token in ${AUTH_TOKEN_ENV}, in the file ${AUTH_TOKEN_PATH_ENV} names, "
        "or in ~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
    )
    if _auth_mode() != "token":
        return (
            f"the cluster requires token authentication; set {AUTH_MODE_ENV}=token in the "
            f"lab's environment, with {token}"
        )
    return f"the cluster refused this machine's token; give {token}"


START_HINT = "start one with `ray start --head --port PORT` and pass HOST:PORT"


def _probe(address: str) -> None:
    """Fail fast (LabError) when ``HOST:PORT`` refuses connections; Ray itself retries
    for minutes. Other forms (``auto``, ``ray://...``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise LabError(
            f"could not connect to the Ray cluster at {address}: {exc}; {START_HINT}"
        ) from None


def cluster_gpus(ray: ModuleType) -> float:
    """GPUs in the connected cluster (0 when none)."""
    return float(ray.cluster_resources().get("GPU", 0.0))


def run_resources(
    config: dict[str, Any] | None, gpus_in_cluster: float, cpus: float = 1.0
) -> dict[str, float]:
    """Ray task options ``{"num_cpus", "num_gpus"}`` for a training run with ``config`` (a
    ``RunConfig.to_dict()``): ``num_gpus=1`` when it asks for CUDA (``device="cuda"``, or
    ``"auto"`` when the cluster has GPUs), else 0 (Ray then hides the GPUs from the task)."""
    device = str(((config or {}).get("train") or {}).get("device", "auto"))
    gpu = device == "cuda" or (device == "auto" and gpus_in_cluster > 0)
    return {"num_cpus": float(cpus), "num_gpus": 1.0 if gpu else 0.0}


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of a (Ray) exception, for a one-line reason."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


__all__ = [
    "AUTH_MODE_ENV",
    "INSTALL_HINT",
    "auth_advice",
    "connect_failure",
    "local_token",
    "RUNNER_RAY_ENV",
    "cluster_gpus",
    "connect",
    "first_line",
    "import_ray",
    "run_resources",
    "runner_ray_address",
]
