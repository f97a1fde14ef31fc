"""Per-frame latency tracing, ROS-free: the stages each node timed for one human frame,
joined into the frame's full trace (VividFace Tables III/IV style), and summarised.

Every node publishes, per frame, the stages it ran (name, absolute start, duration) on
/face/latency with the human frame's stamp. The joiner groups them by that stamp; when the
last stage of the pipeline arrives it adds the transmission gaps between consecutive stages
and the end-to-end latency (last stage's end - the frame's stamp).
"""
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from face_common.stats import SlidingWindow

# Stage names, in pipeline order (nodes use these constants).
DECODE = 'receive/decode'
PREPROCESS = 'preprocessing'
INFERENCE = 'inference'
QUEUE = 'command queue'            # waiting for the actuation node's next control tick
SAFETY_DRIVER = 'safety+driver write'
FINAL_STAGE = SAFETY_DRIVER
PIPELINE_STAGES = (DECODE, PREPROCESS, INFERENCE, QUEUE, SAFETY_DRIVER)
END_TO_END = 'end-to-end'
HISTOGRAM_EDGES_MS = tuple(range(0, 52, 2))   # 2 ms bins; 50 ms and over in the last one


@dataclass(frozen=True)
class Stage:
    name: str
    node: str
    start_ns: int
    duration_ms: float

    @property
    def end_ns(self) -> int:
        return self.start_ns + int(self.duration_ms * 1e6)


class TraceJoiner:
    """Groups stage timings by frame stamp. A frame is finished when its final stage and
    every expected stage have arrived; one whose final stage came but some upstream stage did
    not (lost, or published late) is finished with what it has after `grace` further
    messages. Keeps at most `pending` unfinished frames (the oldest are dropped, counted)."""

    def __init__(self, final_stage: str = FINAL_STAGE, expected=PIPELINE_STAGES,
                 grace: int = 30, pending: int = 256):
        self.final_stage = final_stage
        self.expected = set(expected)
        self.grace = grace
        self.pending = pending
        self._frames = OrderedDict()
        self._waiting = OrderedDict()         # stamp -> message count when the final stage came
        self._count = 0
        self.dropped = 0
        self.incomplete = 0

    def add(self, stamp_ns: int, stages) -> dict | None:
        """Returns the finished trace of this frame or of an older one, else None."""
        self._count += 1
        frame = self._frames.setdefault(stamp_ns, [])
        frame.extend(stages)
        names = {s.name for s in frame}
        if self.final_stage in names:
            if self.expected <= names:
                self._waiting.pop(stamp_ns, None)
                return self._finish(stamp_ns, self._frames.pop(stamp_ns))
            self._waiting.setdefault(stamp_ns, self._count)
        if self._waiting:
            oldest, since = next(iter(self._waiting.items()))
            if self._count - since >= self.grace:
                del self._waiting[oldest]
                self.incomplete += 1
                return self._finish(oldest, self._frames.pop(oldest))
        while len(self._frames) > self.pending:
            stamp, _ = self._frames.popitem(last=False)
            self._waiting.pop(stamp, None)
            self.dropped += 1
        return None

    @staticmethod
    def _finish(stamp_ns: int, stages) -> dict:
        return joined_trace(stamp_ns, stages)


def joined_trace(stamp_ns: int, stages) -> dict:
    """{stage: ms} of one frame's stages, with the 'transmission A -> B' gaps between nodes
    and 'end-to-end' (last stage's end - stamp_ns); the benches join the same way."""
    ordered = sorted(stages, key=lambda s: s.start_ns)
    trace = {}
    for previous, stage in zip([None, *ordered[:-1]], ordered, strict=True):
        if previous is not None and previous.node != stage.node:
            gap = (stage.start_ns - previous.end_ns) / 1e6
            trace[f'transmission {previous.node}->{stage.node}'] = max(0.0, gap)
        trace[stage.name] = trace.get(stage.name, 0.0) + stage.duration_ms
    trace[END_TO_END] = (ordered[-1].end_ns - stamp_ns) / 1e6
    return trace


class LatencySummary:
    """Sliding-window summaries (mean, std, p50, p95, p99, max) of every stage seen."""

    def __init__(self, size: int = 600):
        self.size = size
        self.windows = {}

    def add(self, trace: dict) -> None:
        for name, value in trace.items():
            self.windows.setdefault(name, SlidingWindow(self.size)).add(value)

    def summaries(self) -> dict:
        return {name: window.summary() for name, window in self.windows.items()}

    def histogram(self, name: str = END_TO_END) -> list:
        """Counts per HISTOGRAM_EDGES_MS bin of a stage's window (overflow in the last bin)."""
        edges = np.asarray(HISTOGRAM_EDGES_MS, float)
        samples = np.clip(self.samples(name), 0.0, edges[-1] - 1e-9)
        return np.histogram(samples, edges)[0].tolist()

    def samples(self, name: str) -> list:
        window = self.windows.get(name)
        return window.values() if window else []
