"""Playback at recorded timing, one loop for every player (takes, bags, the stand-in
sender, the live-robot recorder): each item is due at its offset from the first, divided by
a rate factor, on an absolute schedule, so a slow consumer does not accumulate drift. The
clock and sleep are injectable, so tests run the schedule without waiting."""
import time

# Longest single sleep: a stop request (running() turning false) is noticed this soon.
MAX_SLEEP_S = 0.05


def paced(times_s, rate: float = 1.0, running=lambda: True, clock=time.monotonic,
          sleep=time.sleep):
    """Yield (index, late_s) for each of `times_s` (seconds, non-decreasing) when it is due:
    times_s[i] - times_s[0] seconds after the first, divided by rate. late_s: how far past
    its time the item is handed out (0 when on time). Stops early once running() is false."""
    if rate <= 0:
        raise ValueError(f'rate must be positive, got {rate}')
    start = None
    origin = 0.0
    for index, at in enumerate(times_s):
        if start is None:
            start, origin = clock(), float(at)
        due = start + (float(at) - origin) / rate
        while running():
            wait = due - clock()
            if wait <= 0:
                break
            sleep(min(wait, MAX_SLEEP_S))
        if not running():
            return
        yield index, max(0.0, clock() - due)
