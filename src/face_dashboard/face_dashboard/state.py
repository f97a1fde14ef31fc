"""What the dashboard shows, ROS-free: the latest human and robot faces, the commands against
their limits, stream rates, joined latency traces with percentiles and a histogram, and node
health from /diagnostics. Fed by the node's callbacks, read by the server's push loop."""
import threading
import time

import numpy as np

from face_common.latency import END_TO_END, LatencySummary, TraceJoiner
from face_common.stats import RateMeter

HISTOGRAM_MS = np.linspace(0.0, 50.0, 26)          # 2 ms bins, 50+ ms in the last
LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}


class DashboardState:

    def __init__(self, motor_names=(), limits=None, summary_period_s: float = 0.5):
        self._lock = threading.Lock()
        self.motor_names = list(motor_names)
        self.limits = limits or {}
        self.human = None
        self.robot = None
        self.commands = None
        self.rates = {'human': RateMeter(), 'robot': RateMeter(), 'commands': RateMeter()}
        self.joiner = TraceJoiner()
        self.latency = LatencySummary(600)
        self.health = {}
        self.summary_period_s = summary_period_s
        self._summary = {}
        self._summary_at = 0.0
        self.frames = 0

    # ---- inputs (any thread) --------------------------------------------------------------
    def set_face(self, which: str, values) -> None:
        with self._lock:
            setattr(self, which, np.asarray(values, np.float32))
            self.rates[which].tick(time.monotonic())

    def set_commands(self, values, names) -> None:
        with self._lock:
            if list(names) != self.motor_names:
                self.motor_names = list(names)
            self.commands = np.asarray(values, np.float32)
            self.rates['commands'].tick(time.monotonic())

    def add_trace(self, stamp_ns: int, stages) -> None:
        with self._lock:
            trace = self.joiner.add(stamp_ns, stages)
            if trace is not None:
                self.latency.add(trace)
                self.frames += 1

    def set_status(self, name: str, level: int, message: str, values: dict) -> None:
        with self._lock:
            self.health[name] = {'level': LEVELS.get(level, str(level)), 'message': message,
                                 'values': values, 'time': time.monotonic()}

    # ---- output (server thread) -------------------------------------------------------------
    def snapshot(self) -> dict:
        now = time.monotonic()
        with self._lock:
            if now - self._summary_at >= self.summary_period_s:
                self._summary = self._latency_view()
                self._summary_at = now
            return {
                'human': _rounded(self.human), 'robot': _rounded(self.robot),
                'commands': _rounded(self.commands),
                'rates': {k: round(m.rate(now), 1) for k, m in self.rates.items()},
                'latency': self._summary,
                'health': [{'name': name, 'level': h['level'], 'message': h['message'],
                            'age_s': round(now - h['time'], 1),
                            'values': h['values']} for name, h in sorted(self.health.items())],
            }

    def _latency_view(self) -> dict:
        stages = {}
        for name, s in self.latency.summaries().items():
            stages[name] = {'mean': round(s.mean, 3), 'std': round(s.std, 3),
                            'p95': round(s.p95, 3), 'p99': round(s.p99, 3),
                            'max': round(s.max, 3), 'count': s.count}
        samples = np.clip(self.latency.samples(END_TO_END), 0, HISTOGRAM_MS[-1] - 1e-6)
        counts, _ = np.histogram(samples, HISTOGRAM_MS)
        return {'stages': stages, 'histogram': {'edges_ms': HISTOGRAM_MS.tolist(),
                                                'counts': counts.tolist()},
                'frames': self.frames, 'unjoined': self.joiner.dropped,
                'incomplete': self.joiner.incomplete}


def _rounded(values):
    if values is None:
        return None
    return np.round(np.nan_to_num(values), 3).tolist()
