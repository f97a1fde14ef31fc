"""Replay scheduling: original spacing divided by the rate, absolute schedule, loop, stop."""
from face_bag.play import play
from face_bag.store import BagMessage


class FakeClock:
    """Deterministic time for the scheduler (sleep advances it)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def msgs(times_s):
    return [BagMessage('/t', 'x/msg/Y', int(t * 1e9), b'') for t in times_s]


def test_timing_rate_and_loop():
    clock = FakeClock()
    sent = []
    count = play(msgs([0.0, 0.1, 0.3]), lambda m: sent.append(clock()), rate=2.0,
                 clock=clock, sleep=clock.sleep)
    assert count == 3
    assert [round(t - 100.0, 6) for t in sent] == [0.0, 0.05, 0.15]
    clock2, sent2 = FakeClock(), []
    play(msgs([0.0, 0.1]), lambda m: sent2.append(m),
         loop=True, running=lambda: len(sent2) < 7, clock=clock2, sleep=clock2.sleep)
    assert len(sent2) == 7


def test_empty_or_bad_rate_sends_nothing():
    assert play([], print) == 0
    assert play(msgs([0.0]), print, rate=0.0) == 0
