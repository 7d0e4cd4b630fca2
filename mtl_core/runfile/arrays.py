"""Affinity matrices saved with NumPy (``.npy``, ``.npz``), read into the long form. Torch-free.

A ``.npy`` file holds one number array ``A``: shape ``(n, n)`` is one matrix at step 0,
``(S, n, n)`` is S matrices at steps ``0 .. S-1``. ``A[..., i, j]`` is the affinity of source
``i`` onto target ``j`` (row = source, column = target). A ``.npz`` file (``np.savez``) holds
the same array, named ``affinity`` or as its only other array, plus optional ``tasks``
(n names) and ``steps`` (S whole numbers >= 0). Task names default to ``t0 .. t{n-1}``.
NaN and infinite cells are unmeasured: left out and reported (the read's ``left_out``).
``rows="target"`` (declared) transposes each matrix.

Safety: files are loaded with ``numpy.load(..., allow_pickle=False)`` only, so an object
(pickled) array is refused, never unpickled. Each array's header is checked first (dtype, and
that the data it promises fits in the file), so a forged header cannot make the reader allocate
more memory than the upload holds.
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.bounds import check_cells, check_tasks_count, check_zip_members
from mtl_core.runfile.cells import MAX_STEP, STEP_TOO_LARGE
from mtl_core.runfile.jsontext import check_text
from mtl_core.runfile.long import matrices_to_long
from mtl_core.runfile.messages import close, over_limit, short
from mtl_core.runfile.report import ReadOptions, left_out, matrix_read, measure_assumed, note
from mtl_core.runfile.schema import DEFAULT_MEASURE

AFFINITY_KEY, TASKS_KEY, STEPS_KEY = "affinity", "tasks", "steps"
NPY_MAGIC = b"\x93NUMPY"
#: What a shape error says is expected.
SHAPES = (
    "expected (n, n): one matrix, A[i, j] = source i -> target j; or (S, n, n): "
    "S matrices at steps 0..S-1"
)
#: Errors numpy and zipfile raise on a damaged file.
_LOAD_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    KeyError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,  # an encrypted member
)


def read_array_file(
    data: bytes, ext: str, name: str, limit: int, options: ReadOptions | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Read a ``.npy`` or ``.npz`` file into ``(affinity, task_order)``.

    Parameters
    ----------
    data : the file's bytes (already checked against the size limit).
    ext : ``".npy"`` or ``".npz"``.
    name : the file's name for messages.
    limit : size limit in bytes; for ``.npz`` the unpacked arrays count.
    options : ``rows="target"`` transposes each matrix (rows were targets); ``measure``
        names the measure (default ``lookahead``, noted as assumed).

    Returns
    -------
    ``(affinity, tasks)``: a frame with the columns of ``ParsedRun.affinity`` (step-major,
    sources then targets in task order, NaN cells left out) and the task names.

    Raises
    ------
    LabError
        A wrong shape or dtype, an object array, a non-finite cell, bad ``tasks``/``steps``.
    """
    if ext == ".npy":
        mats, label = _load_npy(data, name), name
        tasks_arr = steps_arr = None
    else:
        arrays = _aliases(_load_npz(data, name, limit), name)
        key = _affinity_key(arrays, name)
        mats, label = arrays[key], f"{name} › {key}"
        tasks_arr, steps_arr = arrays.get(TASKS_KEY), arrays.get(STEPS_KEY)
    one = mats.ndim == 2
    mats = _matrices(mats, label)
    s_count, n = mats.shape[0], mats.shape[1]
    tasks = _tasks(tasks_arr, n, name)
    steps = _steps(steps_arr, s_count, name)
    options = options or ReadOptions()
    matrix_read()
    bad = ~np.isfinite(mats)
    if bad.all():
        raise LabError(f"{label}: the matrix has no values (every cell is NaN or infinite)")
    if bad.any():  # one rule: a non-finite cell is unmeasured, left out and reported
        s, i, j = (int(x) for x in np.argwhere(bad)[0])  # the first in reading order
        index = f"[{i}, {j}]" if one else f"[{s}, {i}, {j}]"
        left_out(int(bad.sum()), f"{label}, cell A{index}")
        mats = np.where(bad, np.nan, mats)
    if options.rows == "target":
        mats = np.swapaxes(mats, 1, 2)
        note("rows are targets (declared): the matrices were transposed to rows = sources")
    if tasks_arr is None:
        note(f"the file holds no task names: {tasks[0]}..{tasks[-1]} were made up")
    if options.measure is None:
        measure_assumed()
    measure = options.measure or DEFAULT_MEASURE
    return matrices_to_long(steps, tasks, mats, measure), tasks


# ----------------------------------------------------------------------------- loading


def _load_npy(data: bytes, label: str) -> np.ndarray:
    if not data.startswith(NPY_MAGIC):
        raise LabError(
            f"{label}: not a NumPy .npy array (it does not start with the .npy "
            "header; save it with np.save)"
        )
    _check_header(io.BytesIO(data), len(data), label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.load(io.BytesIO(data), allow_pickle=False)
    except _LOAD_ERRORS as exc:
        raise LabError(f"{label}: not a readable .npy array ({short(exc)})") from None


def _load_npz(data: bytes, name: str, limit: int) -> dict[str, np.ndarray]:
    if not data.startswith(b"PK"):
        raise LabError(f"{name}: not a NumPy .npz archive (not a zip file; save it with np.savez)")
    check_zip_members(data, name)
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except _LOAD_ERRORS as exc:
        raise LabError(f"{name}: not a readable .npz archive ({short(exc)})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):  # np.load sniffs the content, not the name
        raise LabError(f"{name}: not a NumPy .npz archive (save it with np.savez)")
    with npz:
        infos = [i for i in npz.zip.infolist() if not i.is_dir()]
        _check_unique(infos, name)
        total = sum(i.file_size for i in infos)
        if total > limit:
            raise over_limit(name, "unpacks to", total, limit)
        out: dict[str, np.ndarray] = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise LabError(
                    f"{name}: holds {info.filename!r}, which is not a .npy array "
                    "(an .npz holds arrays only; save it with np.savez)"
                )
            key = info.filename[: -len(".npy")]
            label = f"{name} › {key}"
            if info.flag_bits & 0x1:
                raise LabError(
                    f"{label}: the array is encrypted (password-protected); save it again "
                    "with np.savez"
                )
            try:
                with npz.zip.open(info) as fp:
                    _check_header(fp, info.file_size, label, tasks=key == TASKS_KEY)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out[key] = npz[key]
            except LabError:
                raise
            except _LOAD_ERRORS as exc:
                raise LabError(f"{label}: not a readable .npy array ({short(exc)})") from None
    if not out:
        raise LabError(f"{name}: the archive holds no arrays")
    return out


def _check_unique(infos: list[zipfile.ZipInfo], name: str) -> None:
    """Refuse an archive listing one member name twice, or two names equal but for case:
    NumPy would read one of them and silently drop the other."""
    seen: dict[str, str] = {}
    for info in infos:
        key = info.filename.casefold()
        if key in seen:
            twice = (
                f"two arrays named {info.filename!r}"
                if seen[key] == info.filename
                else f"{seen[key]!r} and {info.filename!r}, names that differ only in case"
            )
            raise LabError(f"{name}: holds {twice}; save it again with np.savez")
        seen[key] = info.filename


def _check_header(fp: Any, size: int, label: str, *, tasks: bool = False) -> None:
    """Check an array's header before anything is allocated: no object arrays, a size
    within the limits (:mod:`mtl_core.runfile.bounds`), and exactly the data it declares
    (not more, which would shift values, nor less).

    ``fp``: positioned at the array's start; ``size``: the array file's bytes in all.
    """
    try:
        with warnings.catch_warnings():  # a Python 2 header is read, without a warning line
            warnings.simplefilter("ignore")
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
        header = fp.tell()
    except Exception as exc:  # noqa: BLE001 - NumPy's header parser raises many kinds
        # (a cut header: tokenize.TokenError, SyntaxError, ValueError, ...)
        raise LabError(
            f"{label}: not a readable .npy array (damaged header: {short(exc)})"
        ) from None
    if dtype.hasobject:
        fix = (
            "save task names as a string array: np.array(names, dtype=str)"
            if tasks
            else "save a number array, e.g. A.astype(float)"
        )
        raise LabError(
            f"{label}: holds Python objects (dtype object), which would have to be "
            f"unpickled; uploads are never unpickled: {fix}"
        )
    need = math.prod(shape) * dtype.itemsize
    if need > size - header:
        raise LabError(
            f"{label}: truncated: its header promises shape {_shape(shape)} of "
            f"{dtype} ({need} bytes) but the file holds {size - header} bytes of data"
        )
    if need < size - header:
        raise LabError(
            f"{label}: {size - header - need} bytes more than its header declares (shape "
            f"{_shape(shape)} of {dtype}, {need} bytes): the file is damaged or not one "
            "array saved with np.save"
        )
    if tasks:
        check_tasks_count(math.prod(shape), label)
    elif len(shape) in (2, 3):
        check_cells(shape[0] if len(shape) == 3 else 1, shape[-1], label, "the array holds ")


#: Other names scripts give the task-name and step arrays (``np.savez(..., task_names=...)``).
ALIASES = {TASKS_KEY: ("task_names", "names", "task_list"), STEPS_KEY: ("step", "epochs")}


def _aliases(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """An npz's ``task_names`` (or ``names``) read as its ``tasks``, ``step``/``epochs`` as its
    ``steps``, when the file has no array of the lab's name; said in a note."""
    out = dict(arrays)
    for key, others in ALIASES.items():
        found = [k for k in others if k in out]
        if key in out or not found:
            continue
        out[key] = out.pop(found[0])
        note(
            f"{name}: array {found[0]!r} read as the {key!r} "
            f"({'task names' if key == TASKS_KEY else 'steps'})"
        )
    return out


def _affinity_key(arrays: dict[str, np.ndarray], name: str) -> str:
    """The array holding the matrices: ``affinity``, else the only one besides tasks/steps."""
    others = [k for k in arrays if k not in (AFFINITY_KEY, TASKS_KEY, STEPS_KEY)]
    for k in others:  # a misspelt 'tasks' or 'steps' would silently be ignored
        near = close(k, [TASKS_KEY, STEPS_KEY, AFFINITY_KEY])
        if near and near not in arrays:
            raise LabError(f"{name}: unknown array {k!r}; did you mean {near!r}?")
    if AFFINITY_KEY in arrays:
        return AFFINITY_KEY
    if len(others) == 1:
        return others[0]
    held = ", ".join(map(repr, arrays))
    if not others:
        raise LabError(
            f"{name}: no affinity array (it holds {held}); save the matrices as "
            "np.savez(path, affinity=A, tasks=names, steps=steps)"
        )
    raise LabError(
        f"{name}: holds several arrays ({held}); name the affinity matrices "
        "'affinity': np.savez(path, affinity=A, tasks=names, steps=steps)"
    )


# ----------------------------------------------------------------------------- validation


def _matrices(arr: np.ndarray, label: str) -> np.ndarray:
    """The affinity array as float64 ``(S, n, n)``."""
    if arr.dtype.kind not in "iuf":
        raise LabError(
            f"{label}: dtype {arr.dtype} is not a number array; save the "
            "affinity as floats (NaN for unmeasured cells)"
        )
    shape = _shape(arr.shape)
    if arr.ndim not in (2, 3):
        raise LabError(
            f"{label}: shape {shape} has {arr.ndim} dimension"
            f"{'' if arr.ndim == 1 else 's'}; {SHAPES}"
        )
    if arr.shape[-1] != arr.shape[-2]:
        raise LabError(f"{label}: shape {shape} is not square in its last two dimensions; {SHAPES}")
    if arr.size == 0:
        raise LabError(f"{label}: shape {shape} holds no cells; {SHAPES}")
    out = arr.astype(np.float64)  # float16/32 and ints up to 2**53 convert exactly
    return out[None] if out.ndim == 2 else out


def _tasks(arr: np.ndarray | None, n: int, name: str) -> list[str]:
    if arr is None:
        return [f"t{i}" for i in range(n)]
    label = f"{name} › {TASKS_KEY}"
    if arr.ndim != 1 or len(arr) != n:
        raise LabError(
            f"{label}: shape {_shape(arr.shape)}; expected {n} task names, one per "
            "row/column of the matrix"
        )
    if arr.dtype.kind == "U":
        tasks = [str(t) for t in arr]
    elif arr.dtype.kind == "S":
        try:
            tasks = [bytes(t).decode("utf-8") for t in arr]
        except UnicodeDecodeError:
            raise LabError(f"{label}: task names are not UTF-8 text") from None
    elif arr.dtype.kind in "iu":
        tasks = [str(int(t)) for t in arr]
    else:
        raise LabError(
            f"{label}: dtype {arr.dtype}; task names must be strings (np.array(names, dtype=str))"
        )
    check_text(tasks, label)
    first: dict[str, int] = {}
    for k, t in enumerate(tasks):
        if not t.strip():
            raise LabError(f"{label}: name {k} is empty")
        if t in first:
            raise LabError(f"{label}: task {t!r} is listed twice (names {first[t]} and {k})")
        first[t] = k
    return tasks


def _steps(arr: np.ndarray | None, s_count: int, name: str) -> np.ndarray:
    if arr is None:
        return np.arange(s_count, dtype=np.int64)
    label = f"{name} › {STEPS_KEY}"
    if arr.ndim > 1 or arr.size != s_count:
        raise LabError(
            f"{label}: shape {_shape(arr.shape)}; expected {s_count} step"
            f"{'' if s_count == 1 else 's'}, one per matrix"
        )
    arr = arr.reshape(-1)
    if arr.dtype.kind not in "iuf":
        raise LabError(f"{label}: dtype {arr.dtype}; steps must be whole numbers >= 0")
    # integers are compared as integers (a float64 copy would round 2**53 + 1); floats above
    # MAX_STEP may already have been rounded when they were saved
    vals = arr.tolist()
    for k, v in enumerate(vals):
        if isinstance(v, float) and (not math.isfinite(v) or not v.is_integer()):
            raise LabError(
                f"{label}: steps[{k}] = {arr[k]} is not a whole number (steps are 0, 1, 2, ...)"
            )
        if v < 0:
            raise LabError(f"{label}: steps[{k}] = {arr[k]} is negative")
        if v > MAX_STEP:
            raise LabError(f"{label}: steps[{k}] = {arr[k]} is {STEP_TOO_LARGE}")
    steps = np.array([int(v) for v in vals], dtype=np.int64)
    seen: dict[int, int] = {}
    for k, s in enumerate(steps.tolist()):
        if s in seen:
            raise LabError(f"{label}: step {s} appears twice (steps[{seen[s]}] and steps[{k}])")
        seen[s] = k
    return steps


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(x) for x in shape))  # numpy's spelling: (3,), (2, 3, 4)
