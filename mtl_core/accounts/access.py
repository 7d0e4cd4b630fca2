"""Who may see and change which run: owners, the admin (teacher) role, and visibility.

Every run records an ``owner`` (``runs.owner``): ``user:<name>`` when the app has a login,
``browser:<id>`` for a browser session when it has none, and None for runs from the command
line and from stores older than the owner column. An :class:`Actor` is whoever asks: the app
builds one per browser session (``app.auth``); the command line acts as None, the machine's
operator, who may do anything (they can open the store file anyway).

Rules (one place, used by the runner and the app):

- cancel, delete, rename: the owner, or an admin; a run with no owner only by an admin, or
  by anyone where the deployment has no login (``Actor.manage_unowned``: a single-user
  laptop must be able to tidy its own older runs);
- see (list, explore, compare, download): everything with ``visibility = "class"``; with
  ``"private"`` only one's own runs and the runs with no owner (the teacher's shared
  examples), admins everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtl_core.errors import LabError

#: Deployment settings for who sees whose runs.
VISIBILITIES = ("class", "private")


@dataclass(frozen=True)
class Actor:
    """Whoever asks for a change: ``id`` is the owner key their runs carry (``user:alice``,
    ``browser:3f2a...``); ``admin`` is the teacher role (may change every run);
    ``manage_unowned`` lets them change runs that have no owner; ``name`` is for messages."""

    id: str
    admin: bool = False
    manage_unowned: bool = False
    name: str = ""


def can_modify(owner: str | None, actor: Actor | None) -> bool:
    """Whether ``actor`` may cancel, delete or rename a run owned by ``owner``
    (``actor`` None: the command line, which may)."""
    if actor is None or actor.admin:
        return True
    if owner is None:
        return actor.manage_unowned
    return owner == actor.id


def check_modify(run_id: int, owner: str | None, actor: Actor | None, action: str) -> None:
    """Raise LabError (one line, what to do) unless ``actor`` may ``action`` run ``run_id``."""
    if not can_modify(owner, actor):
        whose = "nobody's (it came from the command line)" if owner is None else "another user's"
        raise LabError(
            f"you cannot {action} run #{run_id}: it is {whose}; only its owner or "
            "a teacher (admin) can"
        )


def can_see(owner: str | None, actor: Actor | None, visibility: str = "class") -> bool:
    """Whether ``actor`` may see a run owned by ``owner`` under the deployment's
    ``visibility`` (``"class"``: everyone sees every run; ``"private"``: own and unowned)."""
    if visibility not in VISIBILITIES:
        raise LabError(f"unknown visibility {visibility!r}; use one of {', '.join(VISIBILITIES)}")
    if actor is None or actor.admin or visibility == "class" or owner is None:
        return True
    return owner == actor.id
