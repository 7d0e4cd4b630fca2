"""The evaluation's training jobs on a Ray cluster: :class:`RayExecutor`, a
``concurrent.futures.Executor`` whose every job is a Ray task with its own CPU/GPU request.

::

    spec = EvalSpec.for_scenario("synthetic", {"tasks": 6}, k=2, seeds=3, threads=1)
    with RayExecutor("10.0.0.5:6379") as ex:    # None: $RAY_ADDRESS, else a local instance
        report = evaluate(spec, ex, on_progress=print)

Each job asks for ``num_cpus`` CPUs (default 1) and one GPU when its run asks for CUDA
(see ``ray_cluster.run_resources``). Results come back as the jobs finish (progress
lines as with local processes) and are the same numbers as the local executor's for the same
spec: a job is a seeded training run, and ``spec.threads`` fixes its torch threads wherever
it runs. Ray retries a job whose worker process died (``max_retries`` times); a job that
still fails is reported by the evaluation and the sweep goes on. Ray is imported only when
the executor connects.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import Any

from mtl_core.runner.ray_cluster import cluster_gpus, connect, run_resources


class RayExecutor(cf.Executor):
    """Run jobs as Ray tasks on the cluster at ``address``.

    Parameters
    ----------
    address : ``HOST:PORT`` of a Ray head, ``auto``, or None (``$RAY_ADDRESS``, else a Ray
        instance started on this machine for the executor's lifetime).
    num_cpus : CPUs each job asks for (Ray also sets the job's ``OMP_NUM_THREADS`` to it).
    max_retries : how often Ray re-runs a job whose worker died (a seeded job gives the same
        result again).

    Connects on ``__enter__`` or the first :meth:`submit` (LabError when Ray is missing or
    the cluster unreachable); :meth:`shutdown` disconnects only a connection it opened.
    """

    def __init__(
        self, address: str | None = None, *, num_cpus: float = 1.0, max_retries: int = 2
    ) -> None:
        self.address = address
        self.num_cpus = float(num_cpus)
        self.max_retries = int(max_retries)
        self._ray: Any = None
        self._started = False
        self._gpus = 0.0
        self._remote: Any = None  # the Ray task that runs a job: _call(fn, *args)
        self._pending: dict[cf.Future, Any] = {}  # future -> ObjectRef, until done
        self._lock = threading.Lock()

    def __enter__(self) -> RayExecutor:
        self.connect()
        return self

    def connect(self) -> None:
        """Connect to the cluster now (idempotent); LabError when that fails."""
        if self._ray is None:
            self._ray, self._started = connect(self.address)
            self._gpus = cluster_gpus(self._ray)

    def cluster_cpus(self) -> float:
        """CPUs in the cluster (connects first)."""
        self.connect()
        return float(self._ray.cluster_resources().get("CPU", 0.0))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        """Start ``fn(*args, **kwargs)`` as a Ray task; its future resolves with the result
        (or the job's exception, or a Ray error when its worker died)."""
        self.connect()
        with self._lock:
            if self._remote is None:
                self._remote = self._ray.remote(_call)
        job = args[0] if args else None
        opts = run_resources(getattr(job, "config", None), self._gpus, self.num_cpus)
        task = self._remote.options(max_retries=self.max_retries, **opts)
        ref = task.remote(fn, *args, **kwargs)
        fut = ref.future()
        with self._lock:
            self._pending[fut] = ref
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: cf.Future) -> None:
        with self._lock:
            self._pending.pop(fut, None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """With ``cancel_futures`` stop the jobs still queued or running on the cluster;
        with ``wait`` wait for the others; then disconnect if this executor connected."""
        if self._ray is None:
            return
        with self._lock:
            pending = list(self._pending.items())
        for fut, ref in pending:
            if cancel_futures:
                self._ray.cancel(ref, force=True)
            elif wait:
                cf.wait([fut])
        if self._started:
            self._ray.shutdown()
        self._ray, self._started, self._remote = None, False, None


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The Ray task: run one job (``fn`` travels with it, pickled by Ray)."""
    return fn(*args, **kwargs)


__all__ = ["RayExecutor"]
