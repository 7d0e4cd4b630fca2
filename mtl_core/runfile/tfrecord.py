"""TensorBoard event files read record by record: framing, CRCs, scalars. Torch-free.

An event file is a sequence of TFRecords::

    uint64 length | uint32 masked CRC-32C of length
    length bytes (an Event proto) | uint32 masked CRC-32C of those bytes

This module walks the records itself (TensorBoard's own ``RawEventFileLoader`` stops silently
at the first damaged record and checks CRCs in pure Python), parses each one with
TensorBoard's ``Event`` proto, and keeps the scalar values of the tags a caller asks for in
compact arrays (24 bytes a scalar, so millions fit). What the file format lets us check is
checked and reported, never skipped silently:

- a record whose bytes fail their CRC is left out and counted;
- a length field that fails its CRC cannot be trusted: the reader looks for the next record
  whose header checks out (within :data:`RESYNC_WINDOW` bytes) and counts the bytes it
  skipped; beyond the window the rest of the file is reported lost;
- a last record cut short (a run stopped mid-write) is reported as such;
- a value under a wanted tag that is not one number (a string tensor, a tensor of any other
  shape) is refused, from its header alone: a forged shape never allocates anything.

Scalars are TF1/PyTorch ``simple_value`` or TF2 scalar tensors (float, double, half, bfloat16,
integers), from ``*_val`` fields or ``tensor_content``.
"""

from __future__ import annotations

import math
import mmap
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.bounds import check_tags_count, max_tags

#: How far past a damaged length field the reader looks for the next good record header.
RESYNC_WINDOW = 1 << 20
_HEADER = struct.Struct("<QI")
_U32 = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass
class Series:
    """The scalars of one tag: steps (int64), wall times (s since the epoch), values."""

    steps: array = field(default_factory=lambda: array("q"))
    walls: array = field(default_factory=lambda: array("d"))
    values: array = field(default_factory=lambda: array("d"))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, walls, values)`` with a step written twice (a restarted run appending
        to the log) keeping its later value, as TensorBoard's charts do; sorted by step."""
        steps = np.frombuffer(self.steps, dtype=np.int64)
        walls = np.frombuffer(self.walls, dtype=np.float64)
        values = np.frombuffer(self.values, dtype=np.float64)
        order = np.lexsort((np.arange(len(steps)), walls, steps))
        steps, walls, values = steps[order], walls[order], values[order]
        last = np.ones(len(steps), dtype=bool)
        last[:-1] = steps[1:] != steps[:-1]
        return steps[last], walls[last], values[last]

    def extend(self, other: Series) -> None:
        self.steps.extend(other.steps)
        self.walls.extend(other.walls)
        self.values.extend(other.values)


@dataclass
class FileScan:
    """What one event file held: wanted tags' scalars, every tag's name, and its damage."""

    name: str
    series: dict[str, Series] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    records: int = 0
    bad_records: int = 0
    first_bad: int | None = None
    skipped_bytes: int = 0
    truncated_bytes: int = 0

    def damage(self) -> str | None:
        """One sentence on what could not be read, or None for an intact file."""
        parts = []
        if self.bad_records:
            parts.append(
                f"{self.bad_records} record{'s' if self.bad_records > 1 else ''} failed "
                f"{'their' if self.bad_records > 1 else 'its'} CRC check and "
                f"{'were' if self.bad_records > 1 else 'was'} left out (the first at byte "
                f"{self.first_bad}); the values {'they' if self.bad_records > 1 else 'it'} "
                "held are missing"
            )
        if self.skipped_bytes:
            parts.append(f"{self.skipped_bytes} damaged bytes were skipped")
        if self.truncated_bytes:
            parts.append(
                f"the last record is cut short ({self.truncated_bytes} bytes; a run stopped "
                "mid-write) and was left out"
            )
        return f"{self.name}: " + "; ".join(parts) if parts else None


def scan_file(source: Path | bytes, name: str, wanted: Callable[[str], bool]) -> FileScan:
    """Read every record of an event file (a path, read through ``mmap``, or bytes).

    Parameters
    ----------
    source : the event file.
    name : its name for messages.
    wanted : whether a tag's scalars are kept (called once per distinct tag).

    Raises
    ------
    LabError
        Not an event file (its first record does not check out), a record that is not an
        Event proto, or a wanted tag whose value is not one number.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _scan(bytes(source), name, wanted)
    with open(source, "rb") as fh:
        size = Path(source).stat().st_size
        if size == 0:
            raise LabError(f"{name}: the file is empty")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _scan(mm, name, wanted)


def _scan(buf: bytes | mmap.mmap, name: str, wanted: Callable[[str], bool]) -> FileScan:
    """Walk the records of ``buf`` (slicing it gives bytes: only a record is ever copied).

    The fast path checks a record's body CRC with the length its header gives: a match means
    the length was right too (a false match has odds of 2**-32), so the header's own CRC is
    checked only when the body's fails (:func:`_damaged`). This loop runs once per record:
    it is written for speed (local names, the wanted tags' appenders looked up once per tag).
    """
    import google_crc32c
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event

    scan = FileScan(name)
    keep = _Keeper(scan, wanted)
    sinks, new_sink = keep.sinks, keep.sink
    crc32c, parse = google_crc32c.value, Event.FromString
    header, u32 = _HEADER.unpack_from, _U32.unpack_from
    end, pos, records = len(buf), 0, 0
    while pos < end:
        if end - pos < 12:
            scan.truncated_bytes += end - pos
            break
        length, hcrc = header(buf, pos)
        body_end = pos + 12 + length
        c = crc32c(body := buf[pos + 12 : body_end]) if body_end + 4 <= end else None
        if (
            c is None
            or ((((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF) != u32(buf, body_end)[0]
        ):
            scan.records = records
            nxt = _damaged(scan, buf, pos, hcrc, body_end)
            if nxt is None:
                break
            pos = nxt
            continue
        try:
            event = parse(body)
        except DecodeError:
            raise LabError(f"{name}: the record at byte {pos} is not a TensorBoard event") from None
        records += 1
        pos = body_end + 4
        values = event.summary.value
        if not values:
            continue
        step, wall = event.step, event.wall_time
        for v in values:
            tag = v.tag
            sink = sinks[tag] if tag in sinks else new_sink(tag)
            if sink is None:
                continue
            if v.WhichOneof("value") == "simple_value":
                value = v.simple_value
            else:
                value = keep.other_value(v, step)
            sink[0](step)
            sink[1](wall)
            sink[2](value)
    scan.records = records
    return scan


def _damaged(scan: FileScan, buf, pos: int, hcrc: int, body_end: int) -> int | None:
    """A record whose body failed its CRC (or runs past the end): the header's own CRC tells
    a damaged body (skip the record) from a damaged length (look for the next good header).
    Returns where to go on, or None when the rest of the file is lost or cut short."""
    end = len(buf)
    if masked_crc(buf[pos : pos + 8]) != hcrc:
        if scan.records == 0 and not scan.bad_records:
            raise LabError(
                f"{scan.name}: not a TensorBoard event file (its first record header does not "
                "check out)"
            )
        nxt = _resync(buf, pos + 1)
        _bad(scan, pos)
        scan.skipped_bytes += (end if nxt is None else nxt) - pos
        return nxt
    if body_end + 4 > end:
        scan.truncated_bytes += end - pos
        return None
    _bad(scan, pos)
    return body_end + 4


def _bad(scan: FileScan, pos: int) -> None:
    scan.bad_records += 1
    if scan.first_bad is None:
        scan.first_bad = pos


def _resync(buf: memoryview, start: int) -> int | None:
    """The next offset (within the window) whose 12-byte header checks out, or None."""
    stop = min(len(buf) - 12, start + RESYNC_WINDOW)
    for p in range(start, stop + 1):
        length, crc = _HEADER.unpack_from(buf, p)
        if length <= len(buf) - p - 16 and masked_crc(buf[p : p + 8]) == crc:
            return p
    return None


class _Keeper:
    """The wanted tags' appenders (``(steps, walls, values)`` of their :class:`Series`), made
    once per distinct tag; None for a tag not wanted."""

    def __init__(self, scan: FileScan, wanted: Callable[[str], bool]) -> None:
        self.scan, self.wanted = scan, wanted
        self.sinks: dict[str, tuple | None] = {}
        self.limit = max_tags() or math.inf  # read once per file, not once per tag

    def sink(self, tag: str) -> tuple | None:
        self.scan.tags.add(tag)
        if len(self.scan.tags) > self.limit:
            check_tags_count(len(self.scan.tags), self.scan.name)
        sink = None
        if self.wanted(tag):
            s = self.scan.series[tag] = Series()
            sink = (s.steps.append, s.walls.append, s.values.append)
        self.sinks[tag] = sink
        return sink

    def other_value(self, v, step: int) -> float:
        """A wanted tag's value that is not a ``simple_value``: a scalar tensor, else refused."""
        kind = v.WhichOneof("value")
        if kind == "tensor":
            return _tensor_scalar(v.tensor, self.scan.name, v.tag, step)
        raise LabError(
            f"{self.scan.name}: tag {v.tag!r} at step {step} holds a "
            f"{kind or 'empty value'}, not a number"
        )


#: TensorProto dtype -> (the repeated field holding values, numpy dtype of tensor_content).
_DTYPES = {
    1: ("float_val", "<f4"),  # DT_FLOAT
    2: ("double_val", "<f8"),  # DT_DOUBLE
    19: ("half_val", "<f2"),  # DT_HALF (half_val holds the bits)
    14: ("half_val", None),  # DT_BFLOAT16 (bits in half_val)
    3: ("int_val", "<i4"),  # DT_INT32
    9: ("int64_val", "<i8"),  # DT_INT64
}


def _tensor_scalar(t, name: str, tag: str, step: int) -> float:
    """One number from a scalar tensor, checked from its header first (no allocation)."""
    dims = [d.size for d in t.tensor_shape.dim]
    where = f"{name}: tag {tag!r} at step {step}"
    if t.dtype not in _DTYPES:
        raise LabError(f"{where} holds a tensor of dtype {_dtype_name(t.dtype)}, not a number")
    if math.prod(dims) != 1 or any(d < 0 for d in dims):
        raise LabError(f"{where} holds a tensor of shape {tuple(dims)}, not one number")
    field_name, np_dtype = _DTYPES[t.dtype]
    if t.tensor_content:
        if np_dtype is None or len(t.tensor_content) != np.dtype(np_dtype).itemsize:
            raise LabError(f"{where}: its tensor content does not hold one number")
        return float(np.frombuffer(t.tensor_content, dtype=np_dtype)[0])
    vals = getattr(t, field_name)
    if len(vals) != 1:
        raise LabError(f"{where} holds {len(vals)} values, not one number")
    if t.dtype == 19:
        return float(np.array([vals[0]], dtype=np.uint16).view(np.float16)[0])
    if t.dtype == 14:
        return float(np.array([vals[0] << 16], dtype=np.uint32).view(np.float32)[0])
    return float(vals[0])


def _dtype_name(dtype: int) -> str:
    from tensorboard.compat.proto import types_pb2

    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return str(dtype)


def merge(scans: list[FileScan]) -> dict[str, Series]:
    """The series of several files of one run (a restarted run's files), tag by tag."""
    out: dict[str, Series] = {}
    for scan in scans:
        for tag, s in scan.series.items():
            if tag in out:
                out[tag].extend(s)
            else:
                out[tag] = Series(array("q", s.steps), array("d", s.walls), array("d", s.values))
    return out
