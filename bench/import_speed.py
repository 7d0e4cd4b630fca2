"""Import speed (issue 21, kind 7): the lab's readers against a plain parse of the same file.

Four inputs are written (seeded, in a temporary folder):

- ``long CSV``: a 10-task run logged every 10 of 100k steps in the long form
  (``step,source,target,measure,affinity``, off-diagonal cells: 900k rows);
- ``long Parquet``: the same rows written by ``DataFrame.to_parquet``;
- ``W&B history``: a wide per-step table as ``run.history()`` exports it (``_step`` and one
  column per cell, ``affinity/<source>/<target>``): 2k steps x 400 cells (21 tasks' 420
  off-diagonal pairs, the first 400), 5% of the cells empty (not logged at that step);
- ``long JSON``: the same rows as one array of row objects (``to_json(orient="records")``);
- ``Lightning metrics.csv``: ``CSVLogger``'s table, ``epoch,step`` and 90 cell columns
  logged every step for ``--steps / 10`` steps, a ``val_loss`` row of its own every 100;
- ``MLflow run folder``: the file store's ``metrics/affinity/<source>/<target>``, 90 keys x
  ``--steps / 10`` lines ``timestamp value step``;
- ``TensorBoard``: one event file of 2M scalars, one ``Event`` per scalar as
  ``SummaryWriter.add_scalar`` writes them (tags ``affinity/<source>/<target>``, 10 tasks).

Each is read by the lab (``read_run_file``: every check, the one non-finite rule, the run in
memory), as ``import`` reads it (``threads=True``: Arrow on its thread pool) and as the app's
upload child reads it (one thread, the ``1 thread`` columns), and by a baseline in the same
run: ``pandas.read_csv`` / ``pandas.read_parquet`` of the tables, ``json.load`` of the JSON,
``pandas.read_csv`` of each MLflow metric file, and a plain proto pass over the event file
(split the records, ``Event.FromString`` each, collect ``(tag, step, value)``; no CRC, no
checks). Every measurement runs in a fresh process, the best of ``--repeat`` reads. ``x
baseline`` is the wall-clock ratio; ``x baseline (CPU)`` the ratio of the processes' own CPU
seconds (``time.process_time``), steadier when other processes share the cores. ``store write
s`` is the step after the read, alone: ``Store.import_parsed`` of the parsed run into a new
SQLite store (the file read once beforehand, untimed), as ``python -m mtl_core import`` writes
it.
Peak MB is the reading process's peak RSS growth over its state before the first read
(Arrow's memory included), per million imported cells in the last column.

What the lab's CSV read does (``mtl_core/runfile``): the file is read by pyarrow in one pass;
columns of numbers in a per-step table or a long form's ``step``, ``affinity`` and
``wall_time`` are read as float64 outright (``csv_numbers``; steps then checked whole), name
columns dictionary-encoded (``coded``: each distinct text converted and checked once; a
column of one text compared, not hashed; under ``import``'s threads the name columns side by
side), the frame's name columns cast from the cells as read (no text copied) and their
distinct names taken from the codes (``frame_names``), and the checks run on codes (the
duplicate-cell check on one int64 key per row, no hashing of text). Parquet text columns are read
dictionary-encoded as the file stores them (``read_dictionary``); JSON row objects are taken
column by column (``operator.itemgetter``); an MLflow folder's names are coded one text per
metric file.

    nice python -m bench.import_speed [--repeat 3] [--steps 100000] [--scalars 2000000]
"""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.long_logs import _peak_mb, in_process
from bench.tensorboard_import import plain_scalars

TASKS = 10


def write_long(path: Path, steps: int, every: int = 10, seed: int = 0) -> int:
    """The long-form CSV (off-diagonal cells of ``TASKS`` tasks every ``every`` steps);
    returns its rows."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = np.array([f"task_{i:02d}" for i in range(TASKS)], dtype=object)
    src, tgt = np.divmod(np.arange(TASKS * TASKS), TASKS)
    off = src != tgt
    logged = np.arange(every, steps + 1, every)
    k = int(off.sum())
    df = pd.DataFrame(
        {
            "step": np.repeat(logged, k),
            "source": np.tile(names[src[off]], len(logged)),
            "target": np.tile(names[tgt[off]], len(logged)),
            "measure": "lookahead",
            "affinity": rng.normal(0, 0.01, len(logged) * k),
        }
    )
    df.to_csv(path, index=False, float_format="%.6g")
    return len(df)


def write_wandb(path: Path, steps: int = 2000, cells: int = 400, seed: int = 0) -> int:
    """A W&B ``run.history()`` export: ``_step`` plus ``cells`` affinity columns, 5% of the
    values empty; returns the number of logged (non-empty) cells."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 21
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b][:cells]
    values = rng.normal(0, 0.01, (steps, cells))
    values[rng.random((steps, cells)) < 0.05] = np.nan
    df = pd.DataFrame(values, columns=[f"affinity/t{a:02d}/t{b:02d}" for a, b in pairs])
    df.insert(0, "_step", np.arange(steps))
    df.to_csv(path, index=False, float_format="%.6g")
    return int(np.isfinite(values).sum())


def write_lightning(path: Path, steps: int = 10_000, seed: int = 0) -> int:
    """A Lightning ``CSVLogger`` ``metrics.csv``: ``epoch,step``, one column per cell of
    ``TASKS`` tasks (``self.log("affinity/<source>/<target>", v)`` every step) and a
    ``val_loss`` logged on its own row every 100 steps (the cells empty there, as Lightning
    writes it); returns the number of logged cells."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = [f"task{i:02d}" for i in range(TASKS)]
    cells = [f"affinity/{a}/{b}" for a in names for b in names if a != b]
    values = rng.normal(0, 0.01, (steps, len(cells)))
    df = pd.DataFrame(values, columns=cells)
    df.insert(0, "step", np.arange(steps))
    df.insert(0, "epoch", np.arange(steps) // 1000)
    df["val_loss"] = np.nan
    val = pd.DataFrame({"epoch": np.arange(99, steps, 100) // 1000,
                        "step": np.arange(99, steps, 100), "val_loss": 0.5})  # fmt: skip
    df = pd.concat([df, val]).sort_values("step", kind="stable")
    df.to_csv(path, index=False, float_format="%.6g")
    return values.size


def write_mlflow(folder: Path, steps: int = 10_000, seed: int = 0) -> int:
    """An MLflow file-store run folder (``meta.yaml``, ``tags/mlflow.runName``,
    ``metrics/affinity/<source>/<target>``: one file per key, lines ``timestamp value
    step``): ``TASKS`` tasks' 90 keys x ``steps`` steps; returns the number of values."""
    rng = np.random.default_rng(seed)
    (folder / "tags").mkdir(parents=True, exist_ok=True)
    (folder / "meta.yaml").write_text("run_id: bench\nstatus: 3\n")
    (folder / "tags" / "mlflow.runName").write_text("bench")
    names = [f"task{i:02d}" for i in range(TASKS)]
    ts = (1_700_000_000_000 + 50 * np.arange(steps)).tolist()
    count = 0
    for a in names:
        (folder / "metrics" / "affinity" / a).mkdir(parents=True, exist_ok=True)
        for b in (b for b in names if b != a):
            v = rng.normal(0, 0.01, steps).tolist()
            lines = "".join(f"{t} {x!r} {k}\n" for k, (t, x) in enumerate(zip(ts, v)))
            (folder / "metrics" / "affinity" / a / b).write_text(lines)
            count += steps
    return count


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def write_events(folder: Path, scalars: int) -> int:
    """One event file of about ``scalars`` scalars (one ``Event`` per scalar, ``step``,
    ``wall_time`` and one ``simple_value``), encoded directly as protobuf wire bytes (the
    first record is checked against TensorBoard's own ``Event`` parse); returns how many."""
    from tensorboard.compat.proto.event_pb2 import Event

    from mtl_core.runfile.tfrecord import masked_crc

    names = [f"task{i:02d}" for i in range(TASKS)]
    tags = [f"affinity/{a}/{b}".encode() for a in names for b in names if a != b]
    steps = max(1, scalars // len(tags))
    pack_d, pack_f = struct.Struct("<d").pack, struct.Struct("<f").pack
    folder.mkdir(parents=True, exist_ok=True)
    out = bytearray()

    def record(body: bytes) -> None:
        head = struct.pack("<Q", len(body))
        out.extend(head + struct.pack("<I", masked_crc(head)))
        out.extend(body + struct.pack("<I", masked_crc(body)))

    record(Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())
    first = None
    for s in range(steps):
        head = b"\x09" + pack_d(1.7e9 + s) + b"\x10" + _varint(s * 10)
        for k, tag in enumerate(tags):
            value = 0.001 * ((s * 31 + k * 17) % 200 - 100)
            val = b"\x0a" + _varint(len(tag)) + tag + b"\x15" + pack_f(value)
            summary = b"\x0a" + _varint(len(val)) + val
            body = head + b"\x2a" + _varint(len(summary)) + summary
            first = first or body
            record(body)
    ev = Event.FromString(first)
    assert ev.step == 0 and ev.summary.value[0].tag == tags[0].decode(), ev
    (folder / "events.out.tfevents.1700000000.bench").write_bytes(bytes(out))
    return steps * len(tags)


def _hwm_mb() -> float:
    """This process's peak RSS in MB: Linux's ``VmHWM`` (its own memory since it started;
    ``ru_maxrss`` also holds the parent's peak when the process was forked from a big one),
    else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_mb()


def _best(fn, repeat: int) -> tuple[float, float, int, float]:
    """Best seconds of ``repeat`` calls of ``fn() -> cells``, peak RSS growth (MB), cells, and
    the best CPU seconds of this process (``time.process_time``: what the call itself used,
    less sensitive than the wall clock to the other processes on shared cores)."""
    before = _hwm_mb()
    best, cpu, cells = float("inf"), float("inf"), 0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        cells = fn()
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return best, _hwm_mb() - before, cells, cpu


def _pandas(path: str, repeat: int, q) -> None:
    import pandas as pd

    read = pd.read_parquet if path.endswith(".parquet") else pd.read_csv
    q.put(_best(lambda: int(read(path).shape[0]), repeat))


def _json(path: str, repeat: int, q) -> None:
    import json

    def load() -> int:
        with open(path, encoding="utf-8") as fh:
            return len(json.load(fh))

    q.put(_best(load, repeat))


def _metric_files(folder: str, repeat: int, q) -> None:
    """``pandas.read_csv`` of every MLflow metric file (space-separated, no header)."""
    import pandas as pd

    files = sorted(p for p in (Path(folder) / "metrics").rglob("*") if p.is_file())
    names = ["timestamp", "value", "step"]

    def read() -> int:
        return sum(len(pd.read_csv(f, sep=" ", header=None, names=names)) for f in files)

    q.put(_best(read, repeat))


def _proto(folder: str, repeat: int, q) -> None:
    q.put(_best(lambda: plain_scalars(folder), repeat))


def _lab(path: str, repeat: int, q, threads: bool = True) -> None:
    """The lab's read as ``import`` does it (Arrow on its threads), or with ``threads=False``
    as the app's upload child does it (one thread)."""
    from mtl_core.runfile import read_run_file

    def run() -> int:
        parsed = read_run_file(Path(path), threads=threads)
        return int(parsed.affinity["affinity"].notna().sum())

    q.put(_best(run, repeat))


def _lab_one_thread(path: str, repeat: int, q) -> None:
    _lab(path, repeat, q, threads=False)


def _store(path: str, repeat: int, q) -> None:
    """The store write alone: the file read once (not timed), then ``Store.import_parsed``
    into a new SQLite store ``repeat`` times, as ``python -m mtl_core import`` writes it."""
    from mtl_core.runfile import read_run_file
    from mtl_core.store import Store

    parsed = read_run_file(Path(path))
    folder = Path(tempfile.mkdtemp(prefix="import_store_"))
    made = iter(range(repeat))

    def write() -> int:
        store = Store(folder / f"s{next(made)}.db")
        store.import_parsed(parsed, Path(path).stem)
        return len(parsed.affinity)

    q.put(_best(write, repeat))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--scalars", type=int, default=2_000_000)
    ap.add_argument("--only", default="", help="comma-separated input name prefixes to run")
    args = ap.parse_args()
    # speed, not policy: the readers' size limits (MTL_LAB_MAX_CELLS) are lifted
    os.environ.setdefault("MTL_LAB_MAX_CELLS", "0")
    tmp = Path(tempfile.mkdtemp(prefix="import_speed_"))
    long_csv, wandb_csv, tb = tmp / "long.csv", tmp / "history.csv", tmp / "tb"
    rows = write_long(long_csv, args.steps)
    long_parquet, long_json = tmp / "long.parquet", tmp / "long.json"
    lightning, mlflow = tmp / "lightning" / "metrics.csv", tmp / "mlruns" / "0" / "bench"
    lightning.parent.mkdir()
    import pandas as pd

    frame = pd.read_csv(long_csv)
    frame.to_parquet(long_parquet, index=False)
    frame.to_json(long_json, orient="records")
    del frame
    mlflow_steps = args.steps // 10
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    inputs = [
        (f"long CSV ({rows:,} rows)", long_csv, "pandas.read_csv", _pandas),
        (f"long Parquet ({rows:,} rows)", long_parquet, "pandas.read_parquet", _pandas),
        (f"long JSON, row objects ({rows:,} rows)", long_json, "json.load", _json),
        (f"W&B history (2k x 400, {write_wandb(wandb_csv):,} cells)", wandb_csv,
         "pandas.read_csv", _pandas),
        (f"Lightning metrics.csv ({mlflow_steps // 1000}k x 90, "
         f"{write_lightning(lightning, mlflow_steps):,} cells)", lightning,
         "pandas.read_csv", _pandas),
        (f"MLflow run folder (90 keys x {mlflow_steps // 1000}k, "
         f"{write_mlflow(mlflow, mlflow_steps):,} values)", mlflow,
         "pandas.read_csv per file", _metric_files),
        (f"TensorBoard ({write_events(tb, args.scalars):,} scalars)"
         if not wanted or any("TensorBoard".startswith(w) for w in wanted) else "TensorBoard",
         tb, "plain proto pass", _proto),
    ]  # fmt: skip
    inputs = [i for i in inputs if not wanted or any(i[0].startswith(w) for w in wanted)]
    print(
        f"Import speed, best of {args.repeat}; load average "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores"
    )
    print(
        "| input | lab s | baseline | baseline s | x baseline | x baseline (CPU) "
        "| 1 thread s (upload) | x baseline, 1 thread | store write s | lab peak MB "
        "| MB per M cells |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, path, base_name, base in inputs:
        base_s, _, _, base_cpu = in_process(base, str(path), args.repeat)
        lab_s, lab_mb, cells, lab_cpu = in_process(_lab, str(path), args.repeat)
        one_s = in_process(_lab_one_thread, str(path), args.repeat)[0]
        store_s = in_process(_store, str(path), args.repeat)[0]
        print(
            f"| {label} | {lab_s:.2f} | {base_name} | {base_s:.2f} | {lab_s / base_s:.1f} "
            f"| {lab_cpu / base_cpu:.1f} | {one_s:.2f} | {one_s / base_s:.1f} | {store_s:.2f} "
            f"| {lab_mb:.0f} | {lab_mb / (cells / 1e6):.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
