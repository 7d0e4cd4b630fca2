"""The run store: one SQLite file (WAL mode) holding every trained or uploaded run. Torch-free.

Location: ``Store(path)``; default ``$MTL_LAB_STORE``, else ``./.lab/store.sqlite`` under the
current working directory. Created on first use; the schema is built by named migrations
(:mod:`.migrations`, version = ``PRAGMA user_version``) applied forward on open.

Reader API (what the app uses; :mod:`.runs`, :mod:`.readers`)
-------------------------------------------------------------
``list_runs() -> list[RunInfo]``
    Every run, oldest first.
``get_run(run_id) -> RunInfo``
    Name, origin (``trained``/``uploaded``), status, config dict, tasks, task types, progress
    (steps done/total, steps/s, ETA, current losses), error, created/started/finished.
``measures(run_id) -> list[str]``
    Affinity measures logged for the run.
``affinity_steps(run_id, measure) -> (steps, tasks, A)``
    ``steps`` int64 (S,), ``A`` float64 (S, n, n) with ``A[s, i, j]`` = effect of an update on
    ``tasks[i]``'s loss on ``tasks[j]``'s loss at ``steps[s]``; NaN where a cell was not logged.
``metrics(run_id) -> DataFrame``
    Long form ``step, task, split, metric, value``; the per-step minibatch training loss is
    ``split="batch", metric="loss"``.
``groupings(run_id) -> list[(step, grouping)]``
    The grouping used at each step (sequential mode), a tuple of frozensets.
``snapshot()``
    Context manager: several reads inside it see one consistent state.

Records attached to a run (:mod:`.notes`)
-----------------------------------------
``save_note(run_id, key, value)`` / ``get_note`` / ``list_notes`` / ``open_claims``
    Key-value JSON notes (the lesson's bookkeeping); ``create_run(claim=(run, key))`` inserts a
    follow-up run only while that note holds ``"run_id": null`` and writes the new id into it,
    in one transaction (a compare-and-set: of two racing callers one inserts);
    ``create_run(unique=(key, value, private))`` inserts a run of a kind (a shared lesson) only
    if no usable run the owner may see carries note ``key`` with ``"key": value``
    (``find_keyed`` names that run).
``save_ground_truth(run_id, k, job)`` / ``get_ground_truth`` / ``list_ground_truths``
    The ground-truth evaluation job for group budget k, and its report once done.

Sign-in (:mod:`.signins`)
-------------------------
``reserve_sign_in(limits) -> (attempt, wait_s)`` / ``forget_sign_in(attempt)``: wrong tries
per user name and client, across sessions; ``sign_out(sid, expires)`` / ``is_signed_out``;
``server_secret(name)``: a random key kept in the store (signs the sign-in cookies).

Runs in and out (:mod:`.transfer`)
----------------------------------
``import_parsed(parsed, name) -> run_ids``; ``export_parsed(run_id) -> ParsedRun``.

Writer API (what the training worker uses; :mod:`.runs`)
--------------------------------------------------------
``create_run(..., owner=, limits=, claim=, run_notes=, unique=) -> run_id`` (the owner's queue quota
checked in the same transaction), ``append_step(run_id, event)`` (one transaction per step),
``set_status(run_id, status, error=...)``, ``request_cancel`` / ``cancel_requested``,
``delete_run(run_id)``, ``rename_run``; the last three take ``actor=`` and refuse anyone but
the run's owner or an admin (``accounts.access``). ``claim_queued`` and ``queue_order`` order
the queue fairly between owners (:data:`~mtl_core.store.notes.FAIR_ORDER`).

Concurrency (:mod:`.base`): WAL lets readers run while a writer commits, and a reader only
ever sees committed steps (each step is one transaction; a multi-query read can use
``snapshot()``). Writers take the lock up front (``BEGIN IMMEDIATE``), wait on a busy timeout,
and retry with backoff, so "database is locked" never reaches a user. Each thread gets its own
connection.

Faults of the file (:mod:`.faults`): a full disk, a read-only file or folder, a damaged
database or a disk error is raised as a ``StoreFault`` (a ``LabError``: one line naming the
file, the problem and the next step), never retried; before its first write each process
runs ``PRAGMA quick_check`` once, so nothing is written into a damaged file.
"""

from __future__ import annotations

from mtl_core.store.base import BUSY_TIMEOUT_S, RETRY_FOR_S, default_store_path
from mtl_core.store.migrations import SCHEMA_VERSION
from mtl_core.store.notes import GroundTruthMixin, NotesMixin
from mtl_core.store.records import ACTIVE, ORIGINS, STATUSES, TERMINAL, RunInfo
from mtl_core.store.signins import SignInMixin
from mtl_core.store.transfer import TransferMixin

__all__ = [
    "ACTIVE",
    "BUSY_TIMEOUT_S",
    "ORIGINS",
    "RETRY_FOR_S",
    "SCHEMA_VERSION",
    "STATUSES",
    "TERMINAL",
    "RunInfo",
    "Store",
    "default_store_path",
]


class Store(TransferMixin, NotesMixin, GroundTruthMixin, SignInMixin):
    """Handle on one run store file; cheap to create, safe to share between threads and to
    pickle (the copy reopens the file by path).

    Assembled from one part per concern, all over :class:`~.base.StoreBase` (connection and
    transactions): :class:`~.runs.RunsMixin` (lifecycle and step writes),
    :class:`~.readers.ReadersMixin`, :class:`~.notes.NotesMixin`,
    :class:`~.notes.GroundTruthMixin`, :class:`~.transfer.TransferMixin` (import/export,
    which builds on the first two) and :class:`~.signins.SignInMixin` (the app's sign-in).

    Parameters
    ----------
    path : the SQLite file; default :func:`default_store_path`. Parent folders are created.

    Raises
    ------
    LabError : the folder cannot be created, the file is not a run store, its schema is newer
        than this version understands, or it stays locked too long.
    """
