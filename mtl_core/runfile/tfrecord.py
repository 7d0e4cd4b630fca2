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
        return _scan(memoryview(source), name, wanted)
    with open(source, "rb") as fh:
        size = Path(source).stat().st_size
        if size == 0:
            raise LabError(f"{name}: the file is empty")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                return _scan(view, name, wanted)
            finally:
                view.release()


def _scan(buf: memoryview, name: str, wanted: Callable[[str], bool]) -> FileScan:
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event

    scan = FileScan(name)
    want: dict[str, bool] = {}
    end, pos = len(buf), 0
    parse = Event.FromString
    while pos < end:
        if end - pos < 12:
            scan.truncated_bytes += end - pos
            break
        length, crc = _HEADER.unpack_from(buf, pos)
        if masked_crc(bytes(buf[pos : pos + 8])) != crc:
            if scan.records == 0 and not scan.bad_records:
                raise LabError(
                    f"{name}: not a TensorBoard event file (its first record header does not "
                    "check out)"
                )
            nxt = _resync(buf, pos + 1)
            _bad(scan, pos)
            if nxt is None:
                scan.skipped_bytes += end - pos
                break
            scan.skipped_bytes += nxt - pos
            pos = nxt
            continue
        body_end = pos + 12 + length
        if body_end + 4 > end:
            scan.truncated_bytes += end - pos
            break
        body = bytes(buf[pos + 12 : body_end])
        if masked_crc(body) != _U32.unpack_from(buf, body_end)[0]:
            _bad(scan, pos)
            pos = body_end + 4
            continue
        try:
            event = parse(body)
        except DecodeError:
            raise LabError(f"{name}: the record at byte {pos} is not a TensorBoard event") from None
        scan.records += 1
        pos = body_end + 4
        if event.HasField("summary"):
            _keep(scan, event, want, wanted)
    return scan


def _bad(scan: FileScan, pos: int) -> None:
    scan.bad_records += 1
    if scan.first_bad is None:
        scan.first_bad = pos


def _resync(buf: memoryview, start: int) -> int | None:
    """The next offset (within the window) whose 12-byte header checks out, or None."""
    stop = min(len(buf) - 12, start + RESYNC_WINDOW)
    for p in range(start, stop + 1):
        length, crc = _HEADER.unpack_from(buf, p)
        if length <= len(buf) - p - 16 and masked_crc(bytes(buf[p : p + 8])) == crc:
            return p
    return None


def _keep(scan: FileScan, event, want: dict[str, bool], wanted: Callable[[str], bool]) -> None:
    """Append the wanted scalars of one event."""
    step, wall = int(event.step), float(event.wall_time)
    for v in event.summary.value:
        tag = v.tag
        ok = want.get(tag)
        if ok is None:
            ok = want[tag] = wanted(tag)
            scan.tags.add(tag)
        if not ok:
            continue
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            value = float(v.simple_value)
        elif kind == "tensor":
            value = _tensor_scalar(v.tensor, scan.name, tag, step)
        else:
            raise LabError(
                f"{scan.name}: tag {tag!r} at step {step} holds a {kind or 'empty value'}, "
                "not a number"
            )
        s = scan.series.get(tag)
        if s is None:
            s = scan.series[tag] = Series()
        s.steps.append(step)
        s.walls.append(wall)
        s.values.append(value)


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
