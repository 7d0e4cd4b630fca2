"""Background runner: queue training runs and execute them in worker processes. Torch-free.

``supervisor`` holds :class:`Runner` (queue, launch, reap, cancel, standbys), ``worker`` the
process mains that train one run each, ``procs`` the process helpers (pid liveness, exit
descriptions, worker count, niceness, stopping a process).

::

    from mtl_core.runner import Runner
    runner = Runner(store_path)
    run_id = runner.submit(cfg)
    info = runner.wait(run_id, on_progress=print)
"""

from mtl_core.runner.procs import check_finished, default_max_workers, pid_alive
from mtl_core.runner.supervisor import Runner
from mtl_core.runner.worker import DEFAULT_TRAIN

__all__ = ["DEFAULT_TRAIN", "Runner", "check_finished", "default_max_workers", "pid_alive"]
