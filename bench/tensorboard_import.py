"""TensorBoard import speed (issue 10): the lab's reader against a plain pass over the event
protos, same run, at 200k and 2M scalars.

An event file is written the way ``SummaryWriter.add_scalar`` writes one: one ``Event`` per
scalar, tags ``affinity/<source>/<target>`` for ``--tasks`` tasks (every off-diagonal pair) at
every logged step. Each measurement runs in a fresh process (its peak memory is its own):

- ``plain proto pass`` (baseline): read the file, split the records, ``Event.FromString`` each,
  collect ``(tag, step, value)``: the least any reader of this format does (no CRC checks, no
  validation, no matrices);
- ``lab import``: ``read_run_file(folder)``: CRC-checked records, the tag conventions, the
  one non-finite rule, validation, the run's matrices (``python -m mtl_core import`` reads so);
- ``EventAccumulator`` (the lab's previous reader, TensorBoard's own loader; only up to
  ``--accumulator-max`` scalars, it is slow).

    python -m bench.tensorboard_import [--scalars 200000 2000000] [--tasks 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.long_logs import _peak_mb, in_process


def write_events(folder: Path, tasks: int, scalars: int) -> int:
    """One event file holding about ``scalars`` affinity scalars; returns how many."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.record_writer import RecordWriter

    names = [f"task{i:02d}" for i in range(tasks)]
    tags = [f"affinity/{a}/{b}" for a in names for b in names if a != b]
    steps = max(1, scalars // len(tags))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "events.out.tfevents.1700000000.bench", "wb") as fh:
        w = RecordWriter(fh)
        w.write(Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())
        for s in range(steps):
            for k, tag in enumerate(tags):
                value = 0.001 * ((s * 31 + k * 17) % 200 - 100)
                ev = Event(
                    step=s * 10,
                    wall_time=1.7e9 + s,
                    summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]),
                )
                w.write(ev.SerializeToString())
    return steps * len(tags)


def plain_scalars(folder: str) -> int:
    """The plain proto pass both TensorBoard benches compare against: every event of every
    ``*tfevents*`` file in ``folder`` parsed with tensorboard's ``Event`` proto, each scalar
    kept as ``(tag, step, value)``; returns how many."""
    import struct

    from tensorboard.compat.proto.event_pb2 import Event

    out: list[tuple[str, int, float]] = []
    header = struct.Struct("<QI")
    for f in sorted(Path(folder).glob("*tfevents*")):
        buf = f.read_bytes()
        pos, end = 0, len(buf)
        while pos + 12 <= end:
            (length, _) = header.unpack_from(buf, pos)
            ev = Event.FromString(buf[pos + 12 : pos + 12 + length])
            pos += 16 + length
            for v in ev.summary.value:
                out.append((v.tag, ev.step, v.simple_value))
    return len(out)


def _plain(folder: str, q) -> None:
    t0 = time.perf_counter()
    n = plain_scalars(folder)
    q.put((time.perf_counter() - t0, _peak_mb(), n))


def _lab(folder: str, q) -> None:
    from mtl_core.runfile import read_run_file

    t0 = time.perf_counter()
    parsed = read_run_file(Path(folder))
    cells = int(parsed.affinity["affinity"].notna().sum())
    q.put((time.perf_counter() - t0, _peak_mb(), cells))


def _accumulator(folder: str, q) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t0 = time.perf_counter()
    acc = EventAccumulator(folder, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    n = sum(len(acc.Scalars(t)) for t in acc.Tags()["scalars"])
    n += sum(len(acc.Tensors(t)) for t in acc.Tags()["tensors"])
    q.put((time.perf_counter() - t0, _peak_mb(), n))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalars", type=int, nargs="+", default=[200_000, 2_000_000])
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--accumulator-max", type=int, default=200_000)
    args = ap.parse_args()
    # speed, not policy: the readers' size limits (MTL_LAB_MAX_CELLS, issue 13) are lifted
    os.environ.setdefault("MTL_LAB_MAX_CELLS", "0")
    tmp = Path(tempfile.mkdtemp(prefix="tb_import_"))
    print(
        f"TensorBoard import, {args.tasks} tasks, one event per scalar; load average "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores"
    )
    print("| scalars | file MB | reader | s | scalars/s | peak MB | x plain pass |")
    print("|---|---|---|---|---|---|---|")
    for want in args.scalars:
        folder = tmp / f"run_{want}"
        n = write_events(folder, args.tasks, want)
        mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        base_s, base_mb, got = in_process(_plain, str(folder))
        assert got == n, (got, n)
        lab_s, lab_mb, cells = in_process(_lab, str(folder))
        assert cells == n, (cells, n)
        rows = [("plain proto pass (baseline)", base_s, base_mb), ("lab import", lab_s, lab_mb)]
        if n <= args.accumulator_max:
            acc_s, acc_mb, _ = in_process(_accumulator, str(folder))
            rows.append(("EventAccumulator (previous reader)", acc_s, acc_mb))
        for name, s, peak in rows:
            print(
                f"| {n:,} | {mb:.0f} | {name} | {s:.1f} | {n / s:,.0f} | {peak:.0f} "
                f"| {s / base_s:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
