"""Sign-in limits and the sign-in cookie's building blocks (issue 23, items 2 and 3): tries
counted in the store per key with a sliding one-minute window, the policy's settings, the
client address (X-Forwarded-For only behind configured proxies), the dummy hash, the
migration, and the signed cookie token (expiry, tampering, another server's key)."""

from __future__ import annotations

import sqlite3

import pytest

from app import cookie
from mtl_core.accounts.passwords import dummy_hash, hash_params, hash_password, verify_password
from mtl_core.accounts.signin import SignInPolicy, client_address, wait_words
from mtl_core.errors import LabError
from mtl_core.store import Store
from tests.core.test_store_migrations import old_store


def test_tries_are_limited_per_key_with_a_sliding_window(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    limits = {"name:ann": 3, "client:local": 10}
    for k in range(3):
        attempt, wait = store.reserve_sign_in(limits, now=1000.0 + k)
        assert attempt is not None and wait == 0.0
    # the 4th try within the minute is refused until the first try (t = 1000) is 60 s old
    assert store.reserve_sign_in(limits, now=1030.0) == (None, pytest.approx(30.0))
    # a refused try is not counted: the window still frees at 1060
    assert store.reserve_sign_in(limits, now=1059.5) == (None, pytest.approx(0.5))
    attempt, wait = store.reserve_sign_in(limits, now=1060.5)
    assert attempt is not None and wait == 0.0
    # another name from the same client is not held by ann's count
    assert store.reserve_sign_in({"name:bob": 3, "client:local": 10}, now=1061.0)[0]
    # a right password (forget_sign_in) gives its try back
    attempt, _ = store.reserve_sign_in({"name:cy": 1, "client:local": 10}, now=1062.0)
    store.forget_sign_in(attempt)
    assert store.reserve_sign_in({"name:cy": 1, "client:local": 10}, now=1062.5)[0]
    # the client limit counts every name: ann's at 1060.5, bob's, cy's second (the older
    # ones have left the window), so at most 3 holds dee until ann's try is 60 s old
    wait = store.reserve_sign_in({"name:dee": 5, "client:local": 3}, now=1063.0)[1]
    assert wait == pytest.approx(1060.5 - 1063.0 + 60.0)


def test_tries_are_shared_by_every_handle_and_keys_are_not_stored_in_clear(tmp_path):
    path = tmp_path / "s.sqlite"
    limits = {"name:secret-typo-pw": 2}
    Store(path).reserve_sign_in(limits, now=5.0)
    Store(path).reserve_sign_in(limits, now=6.0)
    assert Store(path).reserve_sign_in(limits, now=7.0)[0] is None  # another process's view
    raw = sqlite3.connect(path).execute("SELECT key FROM sign_in_tries").fetchall()
    assert len(raw) == 2 and all("secret" not in k for (k,) in raw)


def test_signed_out_ids_and_server_secret(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    key = store.server_secret("sign_in_cookie")
    assert len(key) == 32 and Store(store.path).server_secret("sign_in_cookie") == key
    assert store.server_secret("other") != key
    assert not store.is_signed_out("abc")
    store.sign_out("abc", expires=1e12)
    assert store.is_signed_out("abc") and not store.is_signed_out("abd")


def test_migration_adds_the_sign_in_tables_to_an_old_store(tmp_path):
    path = tmp_path / "old.sqlite"
    old_store(path)
    store = Store(path)
    assert store.reserve_sign_in({"name:a": 1}, now=1.0)[0] is not None
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"sign_in_tries", "signed_out", "server_secrets"} <= names
    assert [r.name for r in store.list_runs()] == ["together", "groups"]


def test_policy_settings_and_their_errors():
    p = SignInPolicy.from_mapping({"tries_per_name": 3, "session_hours": 0.5})
    assert (p.tries_per_name, p.tries_per_client, p.session_s, p.proxy_hops) == (3, 20, 1800, 0)
    assert p.limits(" Ann ", "10.0.0.1") == {"name:ann": 3, "client:10.0.0.1": 20}
    for bad, words in [
        ({"tries_per_name": 0}, "tries_per_name = 0: give a number from 1 to 1000"),
        ({"tries_per_name": 2.5}, "tries_per_name = 2.5: give a whole number"),
        ({"session_hours": "12"}, "session_hours = '12': give a number from 0 to 2160"),
        ({"proxy_hops": True}, "proxy_hops = True: give a number"),
        ({"tries": 5}, "[lab.sign_in] has no setting 'tries'"),
    ]:
        with pytest.raises(LabError, match=r"^\[lab\.sign_in\] ") as exc:
            SignInPolicy.from_mapping(bad)
        assert words in str(exc.value)


def test_client_address_trusts_x_forwarded_for_only_behind_configured_proxies():
    assert client_address(None) == "local"
    assert client_address("10.0.0.7", "1.2.3.4") == "10.0.0.7"  # header ignored by default
    assert client_address("::ffff:10.0.0.7") == "10.0.0.7"
    # one proxy: the entry it appended (the right-most); the client's own entries are forgeable
    assert client_address("10.0.0.1", "6.6.6.6, 203.0.113.9", proxy_hops=1) == "203.0.113.9"
    assert client_address("10.0.0.1", "203.0.113.9, 10.0.0.2", proxy_hops=2) == "203.0.113.9"
    assert client_address("10.0.0.1", "garbage", proxy_hops=1) == "10.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4", proxy_hops=2) == "10.0.0.1"  # too short
    assert wait_words(0.2) == "1 s" and wait_words(29.1) == "30 s"


def test_dummy_hash_matches_no_password_and_has_the_real_parameters():
    real = hash_password("pear", log2_n=9, r=4, p=2)
    dummy = dummy_hash(real)
    assert hash_params(dummy) == (9, 4, 2) == hash_params(real)
    assert hash_params(dummy_hash(None)) == (14, 8, 1)
    assert not verify_password("pear", dummy) and not verify_password("", dummy)
    assert hash_params("scrypt$40$8$1$x$y") is None and hash_params("bcrypt") is None


def test_cookie_token_round_trip_expiry_tampering_and_key(monkeypatch):
    key, other = b"k" * 32, b"o" * 32
    token = cookie.make_token(key, "ann", False, "scrypt$hash-1")
    got = cookie.read_token(key, token, 3600)
    assert (got.user, got.admin) == ("ann", False)
    assert got.fingerprint == cookie.fingerprint(key, "scrypt$hash-1")
    assert got.fingerprint != cookie.fingerprint(key, "scrypt$hash-2")
    assert cookie.make_token(key, "ann", False, "h") != cookie.make_token(key, "ann", False, "h")
    assert cookie.read_token(other, token, 3600) is None  # another server's key
    assert cookie.read_token(key, token[:-2] + "xx", 3600) is None  # edited
    assert cookie.read_token(key, "not.a.token", 3600) is None
    assert cookie.read_token(key, token, 0) is None  # session_hours = 0: no cookie sign-in

    import itsdangerous.timed as timed

    class Later:
        @staticmethod
        def time():
            return got.issued + 3601

    monkeypatch.setattr(timed, "time", Later)
    assert cookie.read_token(key, token, 3600) is None  # 1 s past its hour
    assert cookie.read_token(key, token, 7200) is not None


def test_cookie_scripts_carry_only_the_token():
    script = cookie.set_script("abc.def-_", 43200)
    assert script.startswith("<script>document.cookie = ")
    assert '"lab_sign_in=abc.def-_; Max-Age=43200; Path=/; SameSite=Lax"' in script
    assert "Max-Age=0" in cookie.clear_script()
