"""The end-to-end bench's figures, ROS-free (bench/e2e.py gathers, this computes; unit-tested
in tests/test_bench_e2e.py): the take resampled to the iPhone's 60 Hz, each frame's trace
from its send time to the driver write (or to its bytes on the serial peer), the result rows
of results.json, the drops and late frames at each step, and the printed tables (VividFace
Tables III and IV)."""
import math
import os
from pathlib import Path
import platform

import numpy as np

from face_common.latency import (
    DECODE,
    END_TO_END,
    INFERENCE,
    PREPROCESS,
    SAFETY_DRIVER,
    Stage,
    joined_trace,
)
from face_common.stats import summarize

SEND_RATE_HZ = 60.0
FRAME_PERIOD_MS = 1000.0 / SEND_RATE_HZ      # later than this, the next frame is already sent
NETWORK = 'network (UDP send->receive)'
SERIAL = 'serial (write->bytes on the peer)'
STATISTICS = ('mean', 'std', 'p50', 'p95', 'p99', 'max')
ROW_KEYS = ('model', 'driver', 'composed', 'load_percent', 'realtime', 'repeat', 'frames_sent',
            'frames_dropped', 'e2e_ms', 'stages')
# The steps a frame passes, each with the stage that marks it as reached.
STEPS = (('received', DECODE), ('preprocessed', PREPROCESS), ('inferred', INFERENCE),
         ('executed (safety+driver write)', SAFETY_DRIVER))
PEER_STEP = 'bytes on the serial peer'


def resample(times_s, values, rate_hz: float = SEND_RATE_HZ):
    """The take's frames at rate_hz (linear interpolation of every channel between the
    recorded frames): Live Link Face streams at 60 Hz, takes are often kept at 30."""
    times_s = np.asarray(times_s, float)
    values = np.asarray(values, np.float32)
    if len(times_s) < 2:
        raise ValueError(f'a take needs at least 2 frames to resample, got {len(times_s)} '
                         '(is --start past its end?)')
    grid = np.arange(times_s[0], times_s[-1] + 1e-9, 1.0 / rate_hz)
    columns = [np.interp(grid, times_s, values[:, c]) for c in range(values.shape[1])]
    return grid - grid[0], np.stack(columns, axis=1).astype(np.float32)


def statistics_ms(samples) -> dict:
    """mean, std, p50, p95, p99, max of the finite samples in ms (None each when there are
    none): one broken timestamp must not blank a row's figures."""
    samples = np.asarray(samples, float)
    s = summarize(samples[np.isfinite(samples)])
    return {k: (None if math.isnan(getattr(s, k)) else round(getattr(s, k), 4))
            for k in STATISTICS}


def peer_arrival_ns(write_start_ns: int, completions_ns) -> int | None:
    """When the peer had read the whole write that began at write_start_ns: the first
    completed write (sorted completion times) at or after it. A peer lagging by more than
    the gap between two ticks would match the previous write (an underestimate)."""
    index = int(np.searchsorted(completions_ns, write_start_ns))
    return int(completions_ns[index]) if index < len(completions_ns) else None


def frame_traces(sent: dict, stages: dict, peer_completions_ns=None) -> dict:
    """{frame: {stage: ms}} for every sent frame that was executed: the nodes' stages, the
    gaps between them, the UDP hop from the send, and end-to-end from the send to the driver
    write's end (twin) or, given the peer's completion times, to the bytes on the peer."""
    completions = None if peer_completions_ns is None else np.sort(
        np.asarray(peer_completions_ns, np.int64))
    traces = {}
    for frame, send_ns in sent.items():
        frame_stages = stages.get(frame, ())
        final = [s for s in frame_stages if s.name == SAFETY_DRIVER]
        if not final:
            continue
        trace = joined_trace(send_ns, frame_stages)
        trace[NETWORK] = max(0.0, (min(s.start_ns for s in frame_stages) - send_ns) / 1e6)
        if completions is not None:
            arrived = peer_arrival_ns(final[0].start_ns, completions)
            if arrived is None:
                continue
            trace[SERIAL] = max(0.0, (arrived - final[0].end_ns) / 1e6)
            trace[END_TO_END] = (arrived - send_ns) / 1e6
        traces[frame] = trace
    return traces


def step_counts(sent: dict, stages: dict, traces: dict, peer: bool) -> list:
    """Per step: frames that reached it, frames dropped there (reached the step before but
    not this one) and late ones (reached it more than one frame period after the send)."""
    rows, before = [], len(sent)
    for step, stage_name in STEPS:
        reached, late = 0, 0
        for frame, send_ns in sent.items():
            ends = [s.end_ns for s in stages.get(frame, ()) if s.name == stage_name]
            if ends:
                reached += 1
                late += (ends[0] - send_ns) / 1e6 > FRAME_PERIOD_MS
        rows.append({'step': step, 'frames': reached, 'dropped': before - reached,
                     'late': late})
        before = reached
    if peer:
        late = sum(t[END_TO_END] > FRAME_PERIOD_MS for t in traces.values())
        rows.append({'step': PEER_STEP, 'frames': len(traces),
                     'dropped': before - len(traces), 'late': late})
    return rows


def build_row(model: str, driver: str, load_percent: int, realtime: bool, repeat: int,
              sent: dict, traces: dict, composed: bool = False) -> dict:
    """One results.json row: exactly ROW_KEYS."""
    names = sorted({name for trace in traces.values() for name in trace} - {END_TO_END})
    return {
        'model': model, 'driver': driver, 'composed': bool(composed),
        'load_percent': int(load_percent),
        'realtime': bool(realtime), 'repeat': int(repeat), 'frames_sent': len(sent),
        'frames_dropped': len(sent) - len(traces),
        'e2e_ms': statistics_ms([t[END_TO_END] for t in traces.values()]),
        'stages': {name: statistics_ms([t[name] for t in traces.values() if name in t])
                   for name in names},
    }


def stages_from_message(msg_stages, to_ns) -> list:
    """face_msgs StageTiming list -> Stage list (to_ns: a builtin_interfaces Time -> ns)."""
    return [Stage(s.stage, s.node, to_ns(s.start), s.duration_ms) for s in msg_stages]


def condition_label(row: dict) -> str:
    scheduling = 'SCHED_FIFO' if row['realtime'] else 'normal'
    graph = f'{row["model"]}/{row["driver"]}' + ('/composed' if row.get('composed') else '')
    return f'{graph} load {row["load_percent"]}% {scheduling}'


def _cell(value) -> str:
    return '   -  ' if value is None else f'{value:6.2f}'


def table_iii(rows: list) -> str:
    """End-to-end latency per model and condition (repeats pooled by their mean of each
    figure; each repeat's own row is in results.json)."""
    lines = [f'{"model/driver, load, scheduling":<44} {"frames":>7} {"drop":>5} '
             + ' '.join(f'{k:>6}' for k in STATISTICS) + '  (ms)']
    for label, group in grouped(rows).items():
        figures = {k: _mean([r['e2e_ms'][k] for r in group]) for k in STATISTICS}
        lines.append(f'{label:<44} {sum(r["frames_sent"] for r in group):7d} '
                     f'{sum(r["frames_dropped"] for r in group):5d} '
                     + ' '.join(_cell(figures[k]) for k in STATISTICS))
    return '\n'.join(lines)


def table_iv(rows: list) -> str:
    """Stage budget per condition: mean and p99 of each stage (repeats averaged)."""
    lines = []
    for label, group in grouped(rows).items():
        lines.append(label)
        names = sorted({n for r in group for n in r['stages']}, key=_stage_order)
        for name in names:
            mean = _mean([r['stages'].get(name, {}).get('mean') for r in group])
            p99 = _mean([r['stages'].get(name, {}).get('p99') for r in group])
            lines.append(f'  {name:<42} mean {_cell(mean)}  p99 {_cell(p99)} ms')
    return '\n'.join(lines)


def _stage_order(name: str) -> int:
    order = (NETWORK, DECODE, PREPROCESS, 'transmission capture->retarget',
             INFERENCE, 'transmission retarget->actuation', 'command queue', SAFETY_DRIVER,
             SERIAL)
    return order.index(name) if name in order else len(order)


def grouped(rows: list) -> dict:
    groups = {}
    for row in rows:
        groups.setdefault(condition_label(row), []).append(row)
    return groups


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def machine_description() -> dict:
    """What the figures were measured on."""
    model = ''
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_kb = int(Path('/proc/meminfo').read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kb = 0
    return {'cpu': model or platform.processor(), 'cores': os.cpu_count(),
            'memory_gib': round(memory_kb / 2**20, 1), 'kernel': platform.release(),
            'python': platform.python_version(), 'privileged': os.geteuid() == 0}
