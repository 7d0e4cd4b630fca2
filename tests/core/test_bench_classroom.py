"""The classroom browser bench's pure parts: which knob each session sets, and the network
measure of the first heatmap (a websocket frame carrying its caption, timed by the browser's
DevTools ``Network`` events)."""

from __future__ import annotations

import base64

from bench import classroom_browser as cb


def _frame(ts: float, payload: bytes, opcode: int = 2) -> dict:
    data = base64.b64encode(payload).decode() if opcode == 2 else payload.decode()
    return {"timestamp": ts, "response": {"opcode": opcode, "payloadData": data}}


def test_frames_with_the_heatmap_caption_are_timed_on_the_browsers_clock():
    clock = cb.FrameClock()
    clock.frame(_frame(5.0, b"Affinity so far"))  # before the handshake: no offset, skipped
    clock.handshake({"timestamp": 100.0, "wallTime": 1_700_000_000.0})
    clock.frame(_frame(101.0, b"\x0a\x03delta: Set the conflict, then press Train"))
    assert clock.times == []
    clock.frame(_frame(102.5, b"\x12\x40...Affinity so far (running average)...\xff"))
    clock.frame(_frame(103.0, b"text frame: Affinity so far", opcode=1))
    assert clock.times == [1_700_000_002.5, 1_700_000_003.0]
    for k in range(100):
        clock.frame(_frame(110.0 + k, b"Affinity so far"))
    assert len(clock.times) == 50  # bounded: a long lesson's polls do not pile up


def test_half_the_class_on_the_default_knob_and_the_rest_over_four_levels():
    knobs = [cb.knobs_of("same", i, 30) for i in range(30)]
    assert [c for c, _ in knobs].count(1.0) == 15 and {s for _, s in knobs} == {0}
    assert sorted({c for c, _ in knobs[15:]}) == [0.0, 0.25, 0.5, 0.75]
    assert [cb.knobs_of("distinct", i, 30) for i in (0, 29)] == [(1.0, 0), (1.0, 29)]
