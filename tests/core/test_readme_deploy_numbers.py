"""The README's "Deploying for a class" promises numbers (tries a minute, session length,
upload caps, read limits, the limits table): each is read from the README here and compared
with the code's default, so the section cannot drift from what a deployment really gets."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from pathlib import Path

import pytest

from mtl_core.accounts import signin
from mtl_core.accounts.quota import Limits
from mtl_core.runfile import bounds
from mtl_core.runner import upload_read

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Deploying for a class")
    end = text.find("\n## ", start)
    return text[start : end if end >= 0 else None]


def _toml_blocks(section: str) -> list[dict]:
    return [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", section, re.S)]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _one(pattern: str, section: str) -> float:
    found = re.findall(pattern, re.sub(r"\s+", " ", section))  # prose wraps anywhere
    assert found, f"the README's deploy section no longer says {pattern!r}"
    values = {_number(f) for f in found}
    assert len(values) == 1, f"{pattern!r} appears with different numbers: {sorted(values)}"
    return values.pop()


@pytest.fixture(scope="module")
def section() -> str:
    return _section()


def test_the_sign_in_block_shows_the_policy_defaults(section):
    (table,) = [b["lab"]["sign_in"] for b in _toml_blocks(section) if "sign_in" in b.get("lab", {})]
    defaults = dataclasses.asdict(signin.SignInPolicy())
    assert set(table) == set(defaults)
    assert table == pytest.approx(defaults)


def test_the_sign_in_prose_states_the_same_numbers(section):
    policy = signin.SignInPolicy()
    assert signin.WINDOW_S == 60.0  # "a minute" below
    per_name = r"at most (\d+) wrong passwords a minute per name"
    assert _one(per_name, section) == policy.tries_per_name
    assert _one(r"a minute per name and (\d+) per address", section) == policy.tries_per_client
    assert _one(r"shares its (\d+) tries", section) == policy.tries_per_client
    assert _one(r"A sign-in lasts (\d+) hours", section) == policy.session_hours


def test_the_limits_example_and_table_show_the_quota_defaults(section):
    defaults = Limits()
    (example,) = [b["lab"]["limits"] for b in _toml_blocks(section) if "limits" in b.get("lab", {})]
    for key, value in example.items():
        assert getattr(defaults, key) == value, key
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]*?) \|", section, re.M))
    assert set(rows) == {f.name for f in dataclasses.fields(Limits)}
    for key, shown in rows.items():
        value = getattr(defaults, key)
        if isinstance(value, tuple):
            assert [s.strip() for s in shown.split(",")] == list(value), key
        elif isinstance(value, str):
            assert shown.strip('"') == value, key
        else:
            assert _number(shown) == value, key


def test_the_upload_caps_are_the_reader_defaults(section, monkeypatch):
    mb = r"a read may use \*\*([\d,]+) MB\*\*"
    assert _one(mb, section) == upload_read.DEFAULT_MEMORY_MB
    assert _one(r"\*\*([\d,]+) s\*\* \(`MTL_LAB_UPLOAD_SECONDS`", section) == (
        upload_read.DEFAULT_SECONDS
    )
    assert _one(r"at most \*\*(\d+)\*\* reads run at once", section) == (
        upload_read.DEFAULT_READERS
    )
    assert _one(r"`MTL_LAB_UPLOAD_READERS`; a third waits within its ([\d,]+) s", section) == (
        upload_read.DEFAULT_SECONDS
    )
    # "a reader exits within half a second of the server's death": its orphan poll
    assert "exits within half a second of the server's death" in re.sub(r"\s+", " ", section)
    poll = inspect.signature(upload_read._exit_when_orphaned).parameters["poll_s"].default
    assert poll == 0.5
    # and with no variable set, the functions give those defaults
    for variable in (upload_read.MEMORY_VARIABLE, upload_read.SECONDS_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    assert upload_read.memory_mb() == upload_read.DEFAULT_MEMORY_MB
    assert upload_read.time_limit_s() == upload_read.DEFAULT_SECONDS


def test_the_read_limits_are_the_bounds_defaults(section):
    assert _one(r"a file's tasks \(([\d,]+)\)", section) == bounds.DEFAULT_MAX_TASKS
    assert _one(r"matrix cells \(([\d,]+)\)", section) == bounds.DEFAULT_MAX_CELLS
    assert _one(r"runs \(([\d,]+)\), an event", section) == bounds.DEFAULT_MAX_RUNS
    assert _one(r"event file's tags \(([\d,]+)\)", section) == bounds.DEFAULT_MAX_TAGS
    assert _one(r"`meta.json`'s size \((\d+) MB\)", section) * 1_000_000 == bounds.MAX_META_BYTES


def test_a_changed_number_is_caught(section):
    """The checks read the README's own digits: one edited number fails them."""
    edited = section.replace("at most 5 wrong passwords", "at most 6 wrong passwords")
    assert edited != section
    with pytest.raises(AssertionError):
        test_the_sign_in_prose_states_the_same_numbers(edited)
