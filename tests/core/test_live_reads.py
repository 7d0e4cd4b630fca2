"""Reading only what is new of a growing run: ``Store.affinity_since`` and the app's bounded
cache of read matrices (``app.data_tail.AffinityTails``, Streamlit-free), against full reads."""

from __future__ import annotations

import numpy as np
import pytest

from app.data_tail import AffinityTails
from mtl_core.errors import LabError
from mtl_core.events import StepEvent
from mtl_core.store import Store

TASKS = ["a", "b", "c"]


def _events(steps, seed=0, measures=("lookahead",)):
    rng = np.random.default_rng(seed)
    out = []
    for s in steps:
        mats = {m: rng.normal(size=(3, 3)) for m in measures}
        mats[measures[0]][0, 1] = np.nan  # a cell not logged survives the round trip
        out.append(StepEvent(int(s), 100, TASKS, {t: 1.0 for t in TASKS}, affinity=mats))
    return out


def _live(store, steps, **kw):
    rid = store.create_run(name="live", origin="logged", status="running", tasks=TASKS)
    store.append_steps(rid, _events(steps, **kw))
    return rid


class _Counting:
    """A store whose ``affinity_since`` calls are recorded (after_step, rows returned)."""

    def __init__(self, store):
        self.store, self.path, self.calls = store, store.path, []

    def affinity_since(self, run_id, measure, after_step):
        tail = self.store.affinity_since(run_id, measure, after_step)
        self.calls.append((after_step, len(tail.steps)))
        return tail


def _same_as_full(store, rid, got, measure="lookahead"):
    steps, tasks, A = store.affinity_steps(rid, measure)
    np.testing.assert_array_equal(got[0], steps)
    assert got[1] == tasks
    np.testing.assert_array_equal(got[2], A)  # NaN where not logged, on both sides


def test_affinity_since_returns_only_later_steps_and_what_came_before(store):
    rid = _live(store, [1, 3, 5, 7])
    tail = store.affinity_since(rid, "lookahead", 3)
    np.testing.assert_array_equal(tail.steps, [5, 7])
    full = store.affinity_steps(rid, "lookahead")[2]
    np.testing.assert_array_equal(tail.A, full[2:])
    assert tail.before[0] == 2 and tail.before[1] is not None
    assert tail.tasks == TASKS and tail.created == store.get_run(rid).created
    everything = store.affinity_since(rid, "lookahead", None)
    assert everything.before == (0, None) and len(everything.steps) == 4
    assert everything.newest == tail.newest and tail.before[1] < tail.newest


def test_affinity_since_keeps_the_measure_rule_and_unknown_runs(store):
    rid = _live(store, [1, 2], measures=("lookahead", "cosine"))
    with pytest.raises(LabError, match="several|measure"):
        store.affinity_since(rid, None, None)
    with pytest.raises(LabError, match="no run"):
        store.affinity_since(rid + 10, "lookahead", None)


def test_a_second_poll_fetches_only_the_new_rows_and_equals_a_full_read(store):
    rid = _live(store, range(1, 21))
    spy, tails = _Counting(store), AffinityTails()
    first = tails.read(spy, rid, "lookahead")
    _same_as_full(store, rid, first)
    store.append_steps(rid, _events([21, 22, 23], seed=1))
    second = tails.read(spy, rid, "lookahead")
    _same_as_full(store, rid, second)
    assert spy.calls == [(None, 20), (20, 3)]
    assert tails.fetched == 23
    third = tails.read(spy, rid, "lookahead")  # nothing new: nothing fetched
    assert spy.calls[-1] == (23, 0) and tails.fetched == 23
    _same_as_full(store, rid, third)
    # arrays handed out are read-only, and an earlier one is not changed by later appends
    assert not second[2].flags.writeable and not second[0].flags.writeable
    np.testing.assert_array_equal(first[0], np.arange(1, 21))
    assert len(first[2]) == 20


def test_growing_past_the_buffer_keeps_every_value(store):
    rid = _live(store, [1])
    tails = AffinityTails()
    for k in range(2, 140, 7):  # capacity grows 64 -> 128 -> ... on the way
        store.append_steps(rid, _events(range(k, k + 7), seed=k))
        _same_as_full(store, rid, tails.read(store, rid, "lookahead"))


def test_a_rewritten_or_late_earlier_step_is_read_again_in_full(store):
    rid = _live(store, [2, 4, 6])
    spy, tails = _Counting(store), AffinityTails()
    tails.read(spy, rid, "lookahead")
    store.append_steps(rid, _events([4], seed=9))  # step 4 written again, new values
    _same_as_full(store, rid, tails.read(spy, rid, "lookahead"))
    assert spy.calls[1:] == [(6, 0), (None, 3)]
    store.append_steps(rid, _events([3], seed=5))  # a step below the last one, late
    _same_as_full(store, rid, tails.read(spy, rid, "lookahead"))
    assert spy.calls[3:] == [(6, 0), (None, 4)]


def test_another_run_under_the_same_store_path_and_id_is_read_afresh(tmp_path):
    path = tmp_path / "s.sqlite"
    first = Store(path)
    rid = _live(first, [1, 2, 3])
    tails = AffinityTails()
    tails.read(first, rid, "lookahead")
    first.close()
    for f in tmp_path.glob("s.sqlite*"):
        f.unlink()
    again = Store(path)  # a new store file: run ids start over
    rid2 = _live(again, [1, 2, 3, 4], seed=3)
    assert rid2 == rid
    _same_as_full(again, rid2, tails.read(again, rid2, "lookahead"))


def test_an_error_drops_the_entry_and_the_cache_stays_bounded(store):
    tails = AffinityTails(max_entries=2)
    rids = [_live(store, [1, 2], seed=i) for i in range(3)]
    for rid in rids:
        tails.read(store, rid, "lookahead")
    assert len(tails) == 2
    store.set_status(rids[-1], "finished")
    store.delete_run(rids[-1])
    with pytest.raises(LabError, match="no run"):
        tails.read(store, rids[-1], "lookahead")
    assert len(tails) == 1
    small = AffinityTails(max_bytes=1)  # over the byte bound: only the entry being read stays
    for rid in rids[:2]:
        small.read(store, rid, "lookahead")
    assert len(small) == 1


def _stack(S=300, n=4, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(S, n, n))
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:40, 0, 1] = np.nan  # a cell first logged late
    X[:, 2, 3] = np.nan  # a cell never logged
    return X


@pytest.mark.parametrize("how", ["none", "running", "ema", "window"])
def test_smoothing_in_batches_equals_smoothing_the_whole(how):
    from mtl_core.series import SmoothState, smooth

    X = _stack()
    state = SmoothState(how, window=7, beta=0.8)
    cuts = [0, 1, 5, 50, 51, 51, 120, 300]
    got = np.concatenate([state.extend(X[:b], a) for a, b in zip(cuts, cuts[1:])])
    full = smooth(X, how, window=7, beta=0.8)
    if how == "window":  # pandas' rolling sums differ in the last bits from another start
        np.testing.assert_allclose(got, full, rtol=1e-12, atol=1e-15)
        assert np.array_equal(np.isnan(got), np.isnan(full))
    else:
        np.testing.assert_array_equal(got, full)  # bit for bit, NaN where nothing was logged
    with pytest.raises(ValueError, match="extend from row 300, not 10"):
        state.extend(X, 10)


def test_smoothing_refuses_what_smooth_refuses():
    from mtl_core.series import SmoothState

    with pytest.raises(LabError, match="unknown smoothing 'median'"):
        SmoothState("median")
    with pytest.raises(LabError, match="EMA beta must be in"):
        SmoothState("ema", beta=1.0)


def test_smooth_tails_smooth_only_new_rows_and_restart_with_the_rows(store):
    from app.data_tail import SmoothTails
    from mtl_core.series import smooth

    rid = _live(store, range(1, 31))
    tails, sm = AffinityTails(), SmoothTails()
    *_, A, gen = tails.read_tagged(store, rid, "lookahead")
    first = sm.smooth((rid, "lookahead"), gen, A, "ema", 20, 0.5)
    np.testing.assert_array_equal(first, smooth(A, "ema", beta=0.5))
    store.append_steps(rid, _events(range(31, 36), seed=2))
    *_, A2, gen2 = tails.read_tagged(store, rid, "lookahead")
    assert gen2 == gen
    second = sm.smooth((rid, "lookahead"), gen2, A2, "ema", 20, 0.5)
    np.testing.assert_array_equal(second, smooth(A2, "ema", beta=0.5))
    assert sm.smoothed_rows == 35 and not second.flags.writeable
    again = sm.smooth((rid, "lookahead"), gen, A, "ema", 20, 0.5)  # an older read: its prefix
    np.testing.assert_array_equal(again, first)
    assert sm.smoothed_rows == 35
    store.append_steps(rid, _events([3], seed=7))  # an old step rewritten: rows start again
    *_, A3, gen3 = tails.read_tagged(store, rid, "lookahead")
    assert gen3 != gen
    third = sm.smooth((rid, "lookahead"), gen3, A3, "ema", 20, 0.5)
    np.testing.assert_array_equal(third, smooth(A3, "ema", beta=0.5))
    assert sm.smoothed_rows == 70


def _metric_events(steps, seed=0):
    from mtl_core.events import MetricRow

    rng = np.random.default_rng(seed)
    out = []
    for s in steps:
        loss = {t: float(rng.random()) for t in TASKS[:2]}  # task c's loss not reported
        mets = [MetricRow(t, "val", "loss", float(rng.random())) for t in TASKS] if s % 3 else []
        out.append(StepEvent(int(s), 100, TASKS, loss, metrics=mets))
    return out


def test_metrics_polls_read_only_new_steps_and_equal_a_full_read(store):
    import pandas as pd

    from app.data_tail import MetricsTails

    rid = store.create_run(name="live", origin="logged", status="running", tasks=TASKS)
    store.append_steps(rid, _metric_events(range(1, 11)))
    mt = MetricsTails()
    pd.testing.assert_frame_equal(mt.read(store, rid), store.metrics(rid))
    first = mt.fetched
    assert first == len(store.metrics(rid)) == 10 * 2 + 7 * 3  # c has no loss; metrics at s % 3
    store.append_steps(rid, _metric_events(range(11, 14), seed=1))
    pd.testing.assert_frame_equal(mt.read(store, rid), store.metrics(rid))
    assert mt.fetched - first == 3 * 2 + 2 * 3  # only steps 11..13
    # a metric of an old step rewritten with a new value: everything is read again
    from mtl_core.events import MetricRow

    store.append_steps(
        rid, [StepEvent(4, 100, TASKS, {}, metrics=[MetricRow("a", "val", "loss", 9.0)])]
    )
    seen = mt.fetched
    got = mt.read(store, rid)
    pd.testing.assert_frame_equal(got, store.metrics(rid))
    assert 9.0 in got["value"].to_numpy()
    assert mt.fetched - seen == len(got)  # the poll found nothing new, then read it all
    tail = store.metrics_since(rid, 13)
    assert tail.frame.empty and tail.last_step is None and tail.before == tail.through
    with pytest.raises(LabError, match="no run"):
        mt.read(store, rid + 5)
