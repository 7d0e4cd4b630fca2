"""One numpy-aware JSON encoder and one atomic file writer for the whole core."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mtl_core.errors import LabError
from mtl_core.jsonio import atomic_write_bytes, atomic_write_text, dumps, write_json


def test_numpy_values_sets_and_tuples_become_plain_json():
    obj = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "a": np.arange(4).reshape(2, 2),
        "s": {"b", "a"},
        "t": (1, 2),
        "mixed": {1, "x"},
    }
    back = json.loads(dumps(obj))
    assert back["i"] == 3 and back["f"] == 0.5 and back["b"] is True
    assert back["a"] == [[0, 1], [2, 3]] and back["s"] == ["a", "b"] and back["t"] == [1, 2]
    assert sorted(map(str, back["mixed"])) == ["1", "x"]
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        dumps({"x": object()})


def test_atomic_writes_replace_whole_files_and_leave_no_temporaries(tmp_path):
    p = tmp_path / "sub" / "r.json"
    write_json(p, {"v": np.float64(1.5)}, indent=1)
    assert json.loads(p.read_text()) == {"v": 1.5}
    atomic_write_text(p, "second")
    assert p.read_text() == "second"
    assert os.listdir(p.parent) == ["r.json"]
    assert oct(p.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's 0600


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "r.bin"
    atomic_write_bytes(p, b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    # one line naming the file (mtl_core.errors.write_error), the old file kept
    with pytest.raises(LabError, match=r"^cannot write .*r\.bin: disk full$"):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["r.bin"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
