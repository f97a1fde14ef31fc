"""What the dashboard shows, ROS-free: the latest human and robot faces, the commands against
their limits, stream rates, latency percentiles and histogram (latency_monitor's summary
message) and node health. Fed by the node's callbacks, read by the push loop."""
import threading
import time

import numpy as np

from face_common.latency import END_TO_END, HISTOGRAM_EDGES_MS

LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}


class DashboardState:

    def __init__(self, slow_period_s: float = 0.5):
        self._lock = threading.Lock()
        self.human = None
        self.robot = None
        self.commands = None
        self.rates = {'human': FrameRate(), 'robot': FrameRate()}
        self.health = {}
        self.latency = {'stages': {}, 'frames': 0,
                        'histogram': {'edges_ms': list(HISTOGRAM_EDGES_MS), 'counts': []}}
        self.slow_period_s = slow_period_s
        self._slow_at = 0.0

    # ---- inputs (any thread) --------------------------------------------------------------
    def set_face(self, which: str, values, frame_number: int) -> None:
        """The newest frame of a face; the rate comes from its frame numbers (the page sees
        only some frames)."""
        with self._lock:
            setattr(self, which, np.asarray(values, np.float32))
            self.rates[which].add(time.monotonic(), frame_number)

    def set_commands(self, values) -> None:
        with self._lock:
            self.commands = np.asarray(values, np.float32)

    def set_status(self, name: str, level: int, message: str, values: dict) -> None:
        with self._lock:
            self.health[name] = {'level': LEVELS.get(level, str(level)), 'message': message,
                                 'values': values, 'time': time.monotonic()}

    def set_latency(self, frames: int, stages: dict, histograms: dict) -> None:
        """latency_monitor's summary: {stage: {mean, std, p50, p95, p99, max}} in ms, and
        {stage: (edges_ms, counts)}; the page draws the end-to-end histogram."""
        edges, counts = histograms.get(END_TO_END, (HISTOGRAM_EDGES_MS, []))
        with self._lock:
            self.latency = {'stages': stages, 'frames': int(frames),
                            'histogram': {'edges_ms': list(edges), 'counts': list(counts)}}

    # ---- output (server thread) -------------------------------------------------------------
    def snapshot(self) -> dict:
        """Faces and commands every time; health and latency (they change about once a
        second) every slow_period_s, to keep each update small."""
        now = time.monotonic()
        with self._lock:
            state = {'human': _rounded(self.human), 'robot': _rounded(self.robot),
                     'commands': _rounded(self.commands),
                     'rates': {k: round(m.rate(), 1) for k, m in self.rates.items()}}
            if now - self._slow_at >= self.slow_period_s:
                self._slow_at = now
                state['latency'] = self.latency
                state['health'] = [{'name': name, 'level': h['level'], 'message': h['message'],
                                    'age_s': round(now - h['time'], 1), 'values': h['values']}
                                   for name, h in sorted(self.health.items())]
            return state


class FrameRate:
    """Frames per second from frame numbers seen at any subset of frames: the frame-number
    advance over the last window_s seconds."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._seen = []

    def add(self, now: float, frame_number: int) -> None:
        if self._seen and frame_number < self._seen[-1][1]:
            self._seen.clear()                      # the sender restarted its count
        self._seen.append((now, frame_number))
        while self._seen and now - self._seen[0][0] > self.window_s:
            self._seen.pop(0)

    def rate(self) -> float:
        if len(self._seen) < 2 or time.monotonic() - self._seen[-1][0] > self.window_s:
            return 0.0
        (t0, n0), (t1, n1) = self._seen[0], self._seen[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def _rounded(values):
    if values is None:
        return None
    return np.round(np.nan_to_num(np.asarray(values, np.float64)), 3).tolist()
