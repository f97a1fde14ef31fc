"""Rolling statistics for per-frame figures: rates and latency percentiles.

Plain Python/NumPy so nodes, benchmarks and tests compute figures the same way.
"""
from collections import deque
from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Latency-style summary of a set of samples (the figures the VividFace paper reports)."""

    count: int
    mean: float
    std: float
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ('count', 'mean', 'std', 'p50', 'p95', 'p99', 'max')}


def summarize(samples) -> Summary:
    """Summary of a sequence of numbers; all-NaN figures when it is empty."""
    values = np.asarray(list(samples), dtype=np.float64)
    if values.size == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan)
    p50, p95, p99 = np.percentile(values, (50, 95, 99))
    return Summary(int(values.size), float(values.mean()), float(values.std()),
                   float(p50), float(p95), float(p99), float(values.max()))


class SlidingWindow:
    """The last `size` samples of a per-frame figure, summarised on demand."""

    def __init__(self, size: int = 600):
        self._samples = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._samples.append(float(value))

    def __len__(self) -> int:
        return len(self._samples)

    def values(self) -> list:
        return list(self._samples)

    def summary(self) -> Summary:
        return summarize(self._samples)


class RateMeter:
    """Event rate (Hz) over the last `window_s` seconds of event times."""

    def __init__(self, window_s: float = 2.0):
        self._window_s = window_s
        self._times = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._expire(now)

    def rate(self, now: float) -> float:
        self._expire(now)
        if len(self._times) < 2:
            return 0.0
        span = now - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _expire(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()
