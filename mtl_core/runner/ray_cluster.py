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

What a training run asks the cluster for (:func:`run_resources`): one CPU, and one GPU when
its config asks for CUDA (``device="cuda"``, or ``"auto"`` on a cluster that has GPUs).
"""

from __future__ import annotations

import os
import socket
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
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = target or "a new local instance"
        raise LabError(
            f"could not connect to the Ray cluster at {where}: {first_line(exc)}; {START_HINT}"
        ) from None
    return ray, True


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
    "INSTALL_HINT",
    "RUNNER_RAY_ENV",
    "cluster_gpus",
    "connect",
    "first_line",
    "import_ray",
    "run_resources",
    "runner_ray_address",
]
