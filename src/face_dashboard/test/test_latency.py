"""Joining per-node stage timings into frame traces, and their summaries."""
import pytest

from face_common.latency import (
    DECODE,
    END_TO_END,
    INFERENCE,
    PREPROCESS,
    QUEUE,
    SAFETY_DRIVER,
    LatencySummary,
    Stage,
    TraceJoiner,
)

MS = 1_000_000


def frame_stages(stamp):
    return {
        'capture': [Stage(DECODE, 'capture', stamp, 0.5),
                    Stage(PREPROCESS, 'capture', stamp + MS // 2, 0.2)],
        'retarget': [Stage(INFERENCE, 'retarget', stamp + 2 * MS, 4.0)],
        'actuation': [Stage(QUEUE, 'actuation', stamp + 7 * MS, 3.0),
                      Stage(SAFETY_DRIVER, 'actuation', stamp + 10 * MS, 0.3)],
    }


def test_a_frame_trace_has_stages_transmissions_and_end_to_end():
    joiner = TraceJoiner()
    stamp = 10**18
    stages = frame_stages(stamp)
    assert joiner.add(stamp, stages['retarget']) is None
    assert joiner.add(stamp, stages['capture']) is None
    trace = joiner.add(stamp, stages['actuation'])
    assert trace[DECODE] == 0.5 and trace[INFERENCE] == 4.0 and trace[SAFETY_DRIVER] == 0.3
    assert trace['transmission capture->retarget'] == pytest.approx(1.3)
    assert trace['transmission retarget->actuation'] == pytest.approx(1.0)
    assert trace[END_TO_END] == pytest.approx(10.3)


def test_a_late_upstream_stage_still_joins_and_a_lost_one_times_out():
    joiner = TraceJoiner(grace=3)
    stamp = 10**18
    stages = frame_stages(stamp)
    assert joiner.add(stamp, stages['capture']) is None
    assert joiner.add(stamp, stages['actuation']) is None          # retarget still to come
    assert INFERENCE in joiner.add(stamp, stages['retarget'])
    lost = frame_stages(2 * stamp)
    joiner.add(2 * stamp, lost['capture'])
    assert joiner.add(2 * stamp, lost['actuation']) is None       # retarget's trace was lost
    assert joiner.add(5, frame_stages(5)['capture']) is None
    assert joiner.add(6, frame_stages(6)['capture']) is None
    trace = joiner.add(7, frame_stages(7)['capture'])
    assert trace is not None and INFERENCE not in trace and END_TO_END in trace
    assert joiner.incomplete == 1


def test_frames_that_never_finish_are_bounded_and_counted():
    joiner = TraceJoiner(pending=10)
    for i in range(25):
        joiner.add(i, frame_stages(i)['capture'])
    assert joiner.dropped == 15


def test_summary_per_stage():
    summary = LatencySummary(size=100)
    for i in range(200):
        summary.add({END_TO_END: float(i % 10), INFERENCE: 4.0})
    result = summary.summaries()
    assert result[END_TO_END].count == 100 and result[END_TO_END].max == 9.0
    assert result[INFERENCE].std == 0.0
    assert len(summary.samples(END_TO_END)) == 100 and summary.samples('missing') == []
