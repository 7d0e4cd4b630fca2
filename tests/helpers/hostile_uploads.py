"""Small generators of the uploads issue 23 item 4 found holding the server, each a few KB to
a few MB built in well under a second or two: what the tests read, time and refuse."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile

import numpy as np

TB_NAME = "events.out.tfevents.1700000000.hostile"


def npz_zero_matrix(n: int = 1_000) -> bytes:
    """An 8 KB ``.npz``: one ``n x n`` zero matrix, compressed."""
    buf = io.BytesIO()
    np.savez_compressed(buf, affinity=np.zeros((n, n)))
    return buf.getvalue()


def csv_one_cell_runs(runs: int = 5_000) -> bytes:
    """A long-form CSV naming ``runs`` runs of one cell each (79 KB for 5,000)."""
    rows = [f"r{i},0,a,b,0.5" for i in range(runs)]
    return ("run,step,source,target,affinity\n" + "\n".join(rows) + "\n").encode()


def tb_many_tags(tags: int = 100_000) -> bytes:
    """A TensorBoard event file of ``tags`` distinct affinity tags, one scalar each
    (about 5 MB for 100,000): a chain ``t0 -> t1 -> ...``."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    from mtl_core.runfile.tfrecord import masked_crc

    out = bytearray()

    def record(body: bytes) -> None:
        head = struct.pack("<Q", len(body))
        out.extend(head + struct.pack("<I", masked_crc(head)) + body)
        out.extend(struct.pack("<I", masked_crc(body)))

    record(Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())
    for k in range(tags):
        value = Summary.Value(tag=f"affinity/t{k}/t{k + 1}", simple_value=0.5)
        record(Event(step=0, wall_time=1.7e9, summary=Summary(value=[value])).SerializeToString())
    return bytes(out)


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    """A deflated zip of ``members`` in order (a name may repeat: zipfile warns, writes)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": what the tests want
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, data in members:
                z.writestr(name, data)
    return buf.getvalue()


AFFINITY_CSV = b"step,source,target,affinity\n0,a,b,0.5\n0,b,a,0.25\n"


def zip_spaces_meta(mb: int = 150) -> bytes:
    """A 150 KB zip whose ``meta.json`` is ``mb`` MB of spaces (then ``{}``)."""
    return zip_of([("affinity.csv", AFFINITY_CSV), ("meta.json", b" " * (mb * 10**6) + b"{}")])


def npy_bytes(a: np.ndarray) -> bytes:
    """``a`` as the bytes of a ``.npy`` file."""
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()
