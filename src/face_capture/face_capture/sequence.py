"""Frame-number bookkeeping for a live stream: drops, duplicates, reordering, restarts.

Live Link Face numbers frames at the capture rate; a take replayed at 30 rows/s numbers
them at 60 fps, so frame numbers step by 2. The tracker learns the stream's step (the
smallest positive step among recent frames) and counts a gap of k steps as k-1 drops.
A frame at or before the last accepted one is stale (reordered or duplicated) and must be
dropped, except a large jump back, which means the sender restarted.
"""
from collections import deque
from dataclasses import dataclass
from enum import Enum


class FrameVerdict(Enum):
    ACCEPT = 'accept'
    STALE = 'stale'          # duplicate or reordered: drop it
    RESTART = 'restart'      # sender restarted its counter: accept and start over


@dataclass
class SequenceCounters:
    accepted: int = 0
    dropped: int = 0         # frames missing from the stream (gaps)
    stale: int = 0           # frames rejected as duplicate or reordered
    restarts: int = 0


class FrameSequence:
    """Classifies each incoming frame number and keeps the counters."""

    def __init__(self, restart_jump: int = 120, step_window: int = 32):
        self.restart_jump = restart_jump
        self.counters = SequenceCounters()
        self._last = None
        self._steps = deque(maxlen=step_window)

    @property
    def step(self) -> int:
        return min(self._steps) if self._steps else 1

    def observe(self, frame_number: int) -> FrameVerdict:
        last = self._last
        if last is None:
            return self._accept(frame_number)
        delta = frame_number - last
        if delta <= 0:
            if -delta >= self.restart_jump:
                self.counters.restarts += 1
                self._steps.clear()
                return self._accept(frame_number, FrameVerdict.RESTART)
            self.counters.stale += 1
            return FrameVerdict.STALE
        if delta < self.restart_jump:
            self._steps.append(delta)
        step = self.step
        missing = delta // step - 1
        if missing > 0:
            self.counters.dropped += missing
        return self._accept(frame_number)

    def _accept(self, frame_number: int, verdict: FrameVerdict = FrameVerdict.ACCEPT):
        self._last = frame_number
        self.counters.accepted += 1
        return verdict
