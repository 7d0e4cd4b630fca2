"""Issue 23 item 9: Ray clusters with token authentication. The lab passes Ray's own
``RAY_AUTH_MODE`` / ``RAY_AUTH_TOKEN`` through untouched, and a connection refused for want of
them says so and what to set. Fake ``ray.init`` failures (no cluster is started): the words
are the lab's, the exception types are Ray 2.60's."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from mtl_core.errors import LabError
from mtl_core.runner import ray_cluster


class AuthenticationError(Exception):
    """Ray 2.60's ``ray.exceptions.AuthenticationError`` shape: ``message`` plus a long
    ``__str__`` of help."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message + ". Ensure that the token for the cluster is available ..."


def _fake_ray(monkeypatch, exc: BaseException) -> list[dict]:
    calls: list[dict] = []

    def init(**kw):
        calls.append({**kw, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE")})
        raise exc

    fake = SimpleNamespace(is_initialized=lambda: False, init=init)
    monkeypatch.setattr(ray_cluster, "import_ray", lambda: fake)
    return calls


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home without a Ray token and none of Ray's auth variables set."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path


def _connect_error(address: str = "auto") -> str:
    with pytest.raises(LabError) as exc:
        ray_cluster.connect(address)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_an_auth_refusal_without_token_mode_says_to_set_it(home, monkeypatch):
    _fake_ray(monkeypatch, AuthenticationError("Authentication failed: no token provided"))
    assert _connect_error() == (
        "could not connect to the Ray cluster at auto: the cluster requires token "
        "authentication; set RAY_AUTH_MODE=token in the lab's environment, with the "
        "cluster's token in $RAY_AUTH_TOKEN, in the file $RAY_AUTH_TOKEN_PATH names, or in "
        "~/.ray/auth_token (`ray get-auth-token` on the head prints it) (AuthenticationError: "
        "Authentication failed: no token provided)"
    )


def test_a_wrong_token_in_token_mode_says_which_token_to_give(home, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    calls = _fake_ray(monkeypatch, AuthenticationError("Token mismatch"))
    msg = _connect_error()
    assert msg.startswith(
        "could not connect to the Ray cluster at auto: the cluster refused this machine's "
        "token; give the cluster's token in $RAY_AUTH_TOKEN"
    )
    assert calls and calls[0]["RAY_AUTH_MODE"] == "token"  # passed through to Ray untouched


def test_a_grpc_unauthenticated_status_is_read_as_authentication(home, monkeypatch):
    _fake_ray(monkeypatch, ConnectionError("failed to connect to GCS: UNAUTHENTICATED"))
    assert "the cluster requires token authentication; set RAY_AUTH_MODE=token" in (
        _connect_error()
    )


def test_a_plain_failure_on_a_machine_holding_a_token_points_at_token_mode(home, monkeypatch):
    _fake_ray(monkeypatch, ConnectionError("Could not find any running Ray instance."))
    plain = _connect_error()
    assert plain == (
        "could not connect to the Ray cluster at auto: ConnectionError: Could not find any "
        "running Ray instance.; " + ray_cluster.START_HINT
    )
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("secret")
    assert _connect_error() == plain + (
        "; if the cluster uses token authentication (a head started on a machine holding a "
        f"Ray token, as this one does in {home / '.ray' / 'auth_token'}, turns it on), set "
        "RAY_AUTH_MODE=token in the lab's environment"
    )
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # already set: nothing more to suggest
    assert _connect_error() == plain


def test_where_this_machine_holds_a_token(home, monkeypatch):
    assert ray_cluster.local_token() is None
    named = home / "tok"
    named.write_text("x")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(named))
    assert ray_cluster.local_token() == str(named)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "abc")
    assert ray_cluster.local_token() == "$RAY_AUTH_TOKEN"


def test_any_other_ray_init_failure_is_one_line_not_a_traceback(home, monkeypatch):
    class RayError(Exception):
        pass

    _fake_ray(monkeypatch, RayError("the head's GCS is shutting down\nmore"))
    assert _connect_error() == (
        "could not connect to the Ray cluster at auto: RayError: the head's GCS is shutting "
        "down; " + ray_cluster.START_HINT
    )
