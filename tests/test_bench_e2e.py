"""bench/e2e.py: its figures (ROS-free, from hand-made stage timings) and a short real run of
the whole bench (the demo's graph, the sender process, results.json)."""
import json
import math
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'bench'))
from e2e_report import (  # noqa: E402
    DECODE,
    END_TO_END,
    FRAME_PERIOD_MS,
    INFERENCE,
    NETWORK,
    PREPROCESS,
    ROW_KEYS,
    SAFETY_DRIVER,
    SERIAL,
    STATISTICS,
    Stage,
    build_row,
    frame_traces,
    peer_arrival_ns,
    resample,
    statistics_ms,
    step_counts,
)

from face_common.latency import QUEUE  # noqa: E402

MS = 1_000_000


def frame_stages(send_ns: int, executed: bool = True, slow_ms: float = 0.0) -> list:
    """A frame through the pipeline: 0.2 ms UDP, 1 ms decode+preprocess, 0.5 ms hop,
    2 ms (+slow_ms) inference, 0.5 ms hop, 1 ms queue, 0.3 ms write."""
    t = send_ns + MS // 5
    stages = [Stage(DECODE, 'capture', t, 0.4), Stage(PREPROCESS, 'capture', t + 4 * MS // 10, 0.6),
              Stage(INFERENCE, 'retarget', t + int(1.5 * MS), 2.0 + slow_ms)]
    if executed:
        queue_at = t + int((4.0 + slow_ms) * MS)
        stages += [Stage(QUEUE, 'actuation', queue_at, 1.0),
                   Stage(SAFETY_DRIVER, 'actuation', queue_at + MS, 0.3)]
    return stages


def test_resample_to_60_hz_interpolates_between_the_take_frames():
    times = np.array([0.0, 1 / 30, 2 / 30])
    values = np.array([[0.0, 1.0], [0.3, 1.0], [0.6, 0.4]], np.float32)
    grid, resampled = resample(times, values)
    assert np.allclose(np.diff(grid), 1 / 60)
    assert len(grid) == 5
    assert np.allclose(resampled[:, 0], [0.0, 0.15, 0.3, 0.45, 0.6], atol=1e-6)
    assert np.allclose(resampled[3, 1], 0.7, atol=1e-6)


def test_a_take_too_short_to_resample_is_refused_with_a_reason():
    with pytest.raises(ValueError, match='at least 2 frames'):
        resample(np.array([]), np.zeros((0, 61), np.float32))


def test_a_broken_sample_does_not_blank_the_figures():
    figures = statistics_ms([1.0, 2.0, math.nan, 3.0, math.inf])
    assert figures['max'] == 3.0 and figures['mean'] == 2.0
    assert all(value is None for value in statistics_ms([math.nan]).values())


def test_trace_runs_from_the_send_to_the_end_of_the_driver_write():
    sent = {1: 10**12, 2: 10**12 + 16 * MS}
    stages = {1: frame_stages(sent[1]), 2: frame_stages(sent[2], executed=False)}
    traces = frame_traces(sent, stages)
    assert list(traces) == [1]                         # frame 2 never reached the driver
    trace = traces[1]
    assert trace[END_TO_END] == pytest.approx(0.2 + 1.0 + 0.5 + 2.0 + 0.5 + 1.0 + 0.3)
    assert trace[NETWORK] == pytest.approx(0.2)
    assert trace['transmission capture->retarget'] == pytest.approx(0.5)
    assert trace['transmission retarget->actuation'] == pytest.approx(0.5)


def test_with_a_serial_peer_the_end_is_the_whole_write_read_there():
    sent = {1: 10**12}
    stages = {1: frame_stages(sent[1])}
    write_start = next(s for s in stages[1] if s.name == SAFETY_DRIVER).start_ns
    # an older write completed before this one began; this one is read 0.5 ms after it ends
    completions = [write_start - 3 * MS, write_start + int(0.8 * MS)]
    traces = frame_traces(sent, stages, completions)
    assert traces[1][END_TO_END] == pytest.approx(0.2 + 5.0 + 0.8)
    assert traces[1][SERIAL] == pytest.approx(0.5)
    assert peer_arrival_ns(write_start + MS, completions) is None
    assert frame_traces(sent, stages, completions[:1]) == {}    # never read: dropped


def test_steps_count_drops_where_they_happen_and_late_frames():
    sent = {f: 10**12 + f * 16 * MS for f in range(1, 6)}
    stages = {1: frame_stages(sent[1]), 2: frame_stages(sent[2], slow_ms=20.0),
              3: frame_stages(sent[3], executed=False), 4: frame_stages(sent[4])[:2]}
    traces = frame_traces(sent, stages)
    steps = {s['step']: s for s in step_counts(sent, stages, traces, peer=False)}
    assert steps['received'] == {'step': 'received', 'frames': 4, 'dropped': 1, 'late': 0}
    assert steps['inferred']['frames'] == 3
    assert steps['inferred']['dropped'] == 1
    assert steps['inferred']['late'] == 1                     # frame 2: 23.7 ms after its send
    executed = steps['executed (safety+driver write)']
    assert (executed['frames'], executed['dropped'], executed['late']) == (2, 1, 1)
    assert FRAME_PERIOD_MS == pytest.approx(16.667, abs=1e-3)


def test_row_has_exactly_the_issue_keys_and_the_paper_statistics():
    sent = {f: 10**12 + f * 16 * MS for f in range(1, 101)}
    stages = {f: frame_stages(t, slow_ms=f / 10) for f, t in sent.items() if f != 50}
    row = build_row('exface', 'twin', 90, True, 2, sent, frame_traces(sent, stages))
    assert tuple(row) == ROW_KEYS
    assert (row['frames_sent'], row['frames_dropped']) == (100, 1)
    assert tuple(row['e2e_ms']) == STATISTICS
    e2e = row['e2e_ms']
    assert e2e['p50'] < e2e['p95'] < e2e['p99'] <= e2e['max']
    assert e2e['max'] == pytest.approx(5.5 + 10.0)
    assert row['stages'][INFERENCE]['mean'] == pytest.approx(2.0 + np.mean(
        [f / 10 for f in sent if f != 50]), abs=1e-3)
    json.dumps(row, allow_nan=False)
    assert statistics_ms([]) == dict.fromkeys(STATISTICS)


def test_short_bench_run_writes_results_json(tmp_path):
    """The real bench for a few seconds: linear model, twin and Maestro pty, idle, both
    schedulings."""
    out = tmp_path / 'e2e'
    result = subprocess.run(
        [sys.executable, 'bench/e2e.py', '--models', 'linear', '--maestro-models', 'linear',
         '--loads', '0', '--repeats', '1', '--duration', '2', '--out', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'Table III' in result.stdout and 'Table IV' in result.stdout
    rows = json.loads((out / 'results.json').read_text())
    fifo_allowed = subprocess.run([sys.executable, '-c', 'import os; os.sched_setscheduler('
                                   '0, os.SCHED_FIFO, os.sched_param(1))']).returncode == 0
    schedulings = [True, False] if fifo_allowed else [False]
    assert [(r['driver'], r['realtime']) for r in rows] == [
        (driver, realtime) for driver in ('twin', 'maestro') for realtime in schedulings]
    for row in rows:
        assert tuple(row) == ROW_KEYS
        assert (row['model'], row['load_percent']) == ('linear', 0)
        assert row['frames_sent'] == 120
        assert row['frames_dropped'] < row['frames_sent'] // 2
        assert 0 < row['e2e_ms']['p50'] <= row['e2e_ms']['max'] < 1000
        assert {DECODE, INFERENCE, SAFETY_DRIVER, NETWORK} <= set(row['stages'])
        assert all(math.isfinite(v) for v in row['stages'][INFERENCE].values())
        assert (SERIAL in row['stages']) == (row['driver'] == 'maestro')
    details = json.loads((out / 'details.json').read_text())
    assert details['machine']['cores'] == os.cpu_count()
    assert (out / 'histogram.png').read_bytes()[:4] == b'\x89PNG'
