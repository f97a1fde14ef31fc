"""The dashboard's state without ROS: faces, rates from frame numbers, latency figures as the
latency monitor reports them, and small updates between the slow parts."""
import time

import numpy as np
import pytest

from face_dashboard.state import DashboardState, FrameRate


def test_frame_rate_from_frame_numbers_seen_at_any_subset():
    rate = FrameRate()
    now = time.monotonic()
    for i in range(0, 60, 3):                          # every third frame of a 60 fps stream
        rate.add(now - 1.0 + i / 60, i)
    assert rate.rate() == pytest.approx(60.0, rel=0.01)
    rate.add(now, 2)                                   # the sender restarted
    assert rate.rate() == 0.0


def test_snapshot_and_latency_view():
    state = DashboardState(slow_period_s=10.0)
    state.set_face('human', np.full(61, 0.123456), 5)
    state.set_commands([0.1, np.nan])
    state.set_status('face_dashboard: latency', 0, 'end-to-end p99 9 ms', {'frames': '120'})
    state.set_latency(120, {'end-to-end': {'p99': 9.5}, 'inference': {'mean': 4.0}},
                      {'inference': ([0, 1], [7]), 'end-to-end': ([0, 2, 4, 6], [1, 2, 3])})
    first = state.snapshot()
    assert first['human'][0] == 0.123 and first['robot'] is None
    assert first['commands'] == [0.1, 0.0]                      # NaN never reaches the page
    assert first['latency']['stages']['end-to-end']['p99'] == 9.5
    assert first['latency']['stages']['inference']['mean'] == 4.0
    assert first['latency']['histogram'] == {'edges_ms': [0, 2, 4, 6], 'counts': [1, 2, 3]}
    assert first['latency']['frames'] == 120
    assert first['health'][0]['level'] == 'OK'
    assert 'health' not in state.snapshot()                    # slow parts: not every update
