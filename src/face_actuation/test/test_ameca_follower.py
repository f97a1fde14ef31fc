"""The on-robot Ameca follower, fed by the real driver over a real ZeroMQ PUB/SUB pair."""
import socket
import time

import numpy as np
import pytest
import zmq

from conftest import free_port
from face_actuation.drivers import make_driver
from face_actuation.profile import load_profile
from face_actuation.tritium.ameca_follower import X2C_CONTROLS, DemandFollower


def test_follower_table_matches_the_ameca_profile():
    ameca = load_profile('ameca', '/nonexistent')
    for motor, (name, lo, hi, neutral) in zip(ameca.motors, X2C_CONTROLS, strict=False):
        assert (motor.name, motor.min, motor.max, motor.neutral) == (name, lo, hi, neutral)


def test_follower_applies_demands_then_eases_to_neutral_after_silence():
    ameca = load_profile('ameca', '/nonexistent')
    port = free_port(socket.SOCK_STREAM)
    driver = make_driver(ameca, {'type': 'ameca_zmq', 'endpoint': f'tcp://127.0.0.1:{port}'})
    driver.connect()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b'')
    sub.connect(f'tcp://127.0.0.1:{port}')
    follower = DemandFollower(sub, silence_s=2.0, ease_s=1.0)
    try:
        pose = ameca.neutral.copy()
        pose[ameca.index('Jaw Pitch')] = 0.0             # jaw wide open (Jaw Pitch 0)
        deadline = time.monotonic() + 5
        while follower.received == 0 and time.monotonic() < deadline:
            driver.write(pose)
            time.sleep(0.02)
            follower.poll(100.0)
        assert follower.received > 0
        assert follower.demands(100.5)['Jaw Pitch'] == pytest.approx(0.0)
        assert follower.demands(102.0)['Jaw Pitch'] == pytest.approx(0.0)    # still held
        halfway = follower.demands(102.5)['Jaw Pitch']
        assert 0.3 < halfway < 0.7                                            # easing, no snap
        assert follower.demands(103.1)['Jaw Pitch'] == pytest.approx(1.0)    # neutral
        values = [follower.demands(102.0 + t)['Jaw Pitch'] for t in np.linspace(0, 1, 50)]
        assert np.all(np.diff(values) >= 0) and np.max(np.diff(values)) < 0.05
    finally:
        sub.close(0)
        driver.disconnect()


def test_follower_rejects_malformed_messages():
    follower = DemandFollower(socket=None)
    assert follower.parse([b'1'] * 29) is None
    assert follower.parse([b'nan'] + [b'0'] * 29) is None
    assert follower.parse([b'\xff'] + [b'0'] * 29) is None
    clamped = follower.parse([b'99'] + [b'0'] * 29)
    assert clamped['Brow Inner L'] == 1.0
