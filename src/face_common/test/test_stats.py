import math

import pytest

from face_common.stats import RateMeter, SlidingWindow, summarize


def test_summary_figures():
    s = summarize(range(1, 101))
    assert s.count == 100 and s.mean == pytest.approx(50.5) and s.max == 100
    assert s.p50 == pytest.approx(50.5) and 94 < s.p95 < 97 and 98 < s.p99 < 100
    assert math.isnan(summarize([]).mean)


def test_sliding_window_keeps_the_newest():
    window = SlidingWindow(3)
    for v in (100, 1, 2, 3):
        window.add(v)
    assert window.summary().max == 3 and len(window) == 3


def test_rate_meter():
    meter = RateMeter(window_s=1.0)
    for i in range(61):
        meter.tick(i / 60)
    assert meter.rate(1.0) == pytest.approx(60, rel=0.05)
    assert meter.rate(5.0) == 0.0
