"""Drivers against real protocol bytes: Maestro and Dynamixel through pseudo-terminal
emulators that decode independently, Ameca through a real ZeroMQ SUB socket."""
from dataclasses import replace
import socket
import time

import numpy as np
import pytest
import zmq

from conftest import free_port, wait_until
from face_actuation.drivers import DriverError, UnencodableValue, make_driver
from face_actuation.drivers.maestro import set_acceleration, set_speed, set_target
from face_actuation.emulators import DynamixelEmulator, MaestroEmulator, dynamixel_crc
from face_actuation.profile import load_profile

NO_CALIBRATION = '/nonexistent'


@pytest.fixture
def micheal():
    return load_profile('micheal', NO_CALIBRATION)


def test_maestro_command_bytes_match_the_protocol():
    assert set_target(0, 6000) == bytes([0x84, 0x00, 0x70, 0x2E])          # 1500 us, ch 0
    assert set_target(5, 6000, device=12) == bytes([0xAA, 12, 0x04, 5, 0x70, 0x2E])
    assert set_speed(1, 140) == bytes([0x87, 1, 140 & 0x7F, 140 >> 7])
    assert set_acceleration(2, 4) == bytes([0x89, 2, 4, 0])
    assert set_target(3, 0) == bytes([0x84, 3, 0, 0])                        # limp


def test_maestro_single_controller_compact_protocol(micheal):
    motor = replace(micheal.motors[0], min=1000.0, max=2000.0, neutral=1500.0, channel=0,
                    invert=False)
    profile = replace(micheal, motors=(motor,), pairs=(), safety=micheal.safety)
    device = MaestroEmulator()
    try:
        driver = make_driver(profile, {'type': 'maestro', 'port': device.path,
                                       'device_numbers': [12], 'protocol': 'compact'})
        driver.connect()
        assert device.wait_for(2)
        device.take_raw()
        driver.write(np.array([0.5]))                  # 1500 us
        assert device.wait_for(3)
        assert device.take_raw() == bytes([0x9F, 1, 0, 0x70, 0x2E])
        assert device.targets[(None, 0)] == 6000
        driver.limp()
        assert device.wait_for(4)
        assert device.take_raw() == bytes([0x84, 0x00, 0x00, 0x00])
        driver.disconnect()
    finally:
        device.close()
    assert not device.errors


def test_maestro_driver_drives_micheal_on_two_controllers(micheal):
    device = MaestroEmulator(device_numbers=(12, 13))
    try:
        driver = make_driver(micheal, {'type': 'maestro', 'port': device.path})
        driver.connect()
        assert device.wait_for(2 * micheal.num_motors)
        rng = np.random.default_rng(3)
        pose = rng.uniform(0, 1, micheal.num_motors)
        driver.write(pose)
        assert device.wait_for(2 * micheal.num_motors + 2)
        expected = np.round(micheal.to_native(pose) * 4).astype(int)
        for index, motor in enumerate(micheal.motors):
            device_number = 12 if motor.channel < 24 else 13
            assert device.targets[(device_number, motor.channel % 24)] == expected[index]
        kinds = [entry[0] for entry in device.log[-2:]]
        assert kinds == ['set_multiple_targets', 'set_multiple_targets']   # one per controller
        measured = driver.read_positions()
        np.testing.assert_allclose(measured, pose, atol=0.25 / 1000 + 1e-9)  # quarter-us grid
        device.error_bits = 0x0010
        assert driver.read_errors() == {12: 0x0010, 13: 0}
        assert driver.poll_errors() == ''                    # reading cleared them
        device.error_bits = 0x0002
        assert '0x0002' in driver.poll_errors()
        driver.disconnect()
    finally:
        device.close()
    assert not device.errors


def test_maestro_unreachable_port_is_a_clear_error(micheal):
    driver = make_driver(micheal, {'type': 'maestro', 'port': '/dev/does-not-exist'})
    with pytest.raises(DriverError, match='cannot open'):
        driver.connect()


def test_dynamixel_crc_reference_value():
    # the ping instruction packet from ROBOTIS' Protocol 2.0 documentation example
    packet = bytes([0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x03, 0x00, 0x01])
    assert dynamixel_crc(packet) == 0x4E19


def test_dynamixel_driver_drives_hobbs_through_sync_write():
    hobbs = load_profile('hobbs', NO_CALIBRATION)
    ids = [m.channel for m in hobbs.motors]
    bus = DynamixelEmulator(ids)
    try:
        driver = make_driver(hobbs, {'type': 'dynamixel', 'port': bus.path,
                                     'baudrate': 1000000, 'profile_velocity': 80,
                                     'profile_acceleration': 20})
        driver.connect()
        for dxl_id in ids:
            assert bus.value(dxl_id, 64, 1) == 1                  # torque on
            assert bus.value(dxl_id, 112, 4) == 80
            assert bus.value(dxl_id, 108, 4) == 20
        pose = np.random.default_rng(5).uniform(0, 1, hobbs.num_motors)
        before = len(bus.log)
        driver.write(pose)
        assert bus.wait_for(before + 1)
        entry = bus.log[before]
        assert entry[0] == 'sync_write' and entry[1:3] == (116, 4)   # one packet, all motors
        ticks = np.round(hobbs.to_native(pose)).astype(int)
        for dxl_id, expected in zip(ids, ticks, strict=True):
            assert int.from_bytes(entry[3][dxl_id], 'little') == expected
        measured = driver.read_positions()
        np.testing.assert_allclose(hobbs.to_native(measured), ticks, atol=1e-6)
        driver.limp()
        assert all(bus.value(i, 64, 1) == 0 for i in ids)
        driver.disconnect()
    finally:
        bus.close()
    assert not bus.errors


def test_ameca_messages_reach_a_real_zmq_subscriber():
    ameca = load_profile('ameca', NO_CALIBRATION)
    context = zmq.Context.instance()
    port = free_port(socket.SOCK_STREAM)
    driver = make_driver(ameca, {'type': 'ameca_zmq', 'endpoint': f'tcp://127.0.0.1:{port}'})
    driver.connect()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b'')
    sub.setsockopt(zmq.RCVTIMEO, 200)
    sub.connect(f'tcp://127.0.0.1:{port}')
    try:
        pose = ameca.neutral.copy()
        pose[ameca.index('Jaw Pitch')] = 0.25
        parts = None
        deadline = time.monotonic() + 5
        while parts is None and time.monotonic() < deadline:      # PUB/SUB joins late
            driver.write(pose)
            try:
                parts = sub.recv_multipart()
            except zmq.Again:
                pass
        assert parts is not None and len(parts) == 30
        values = [float(p.decode()) for p in parts]
        np.testing.assert_allclose(values, ameca.to_native(pose)[:30], atol=1e-4)
        assert values[ameca.index('Jaw Pitch')] == pytest.approx(0.25)
        assert values[ameca.index('Gaze Target Phi')] == pytest.approx(0.0)
        assert ameca.motor_names[:30] == sorted(ameca.motor_names[:30])   # X2C order
    finally:
        sub.close(0)
        driver.disconnect()


def test_maestro_target_beyond_14_bits_is_refused_before_any_byte(micheal):
    """Before: `ValueError: 16618 does not fit in 14 bits` from the middle of the frame
    (after the first run's bytes were built), in the control thread."""
    jaw = micheal.index('jaw_open')
    wide = replace(micheal.motors[jaw], max=4200.0)          # a 4200 us end: 16800 quarter-us
    profile = replace(micheal, motors=(*micheal.motors[:jaw], wide, *micheal.motors[jaw + 1:]))
    device = MaestroEmulator((12, 13))
    try:
        driver = make_driver(profile, {'type': 'maestro', 'port': device.path})
        driver.connect()
        assert device.wait_for(2 * profile.num_motors)
        device.take_raw()
        pose = profile.neutral.copy()
        pose[jaw] = 1.0
        with pytest.raises(UnencodableValue, match=r'jaw_open: target 4200\.0 us'):
            driver.write(pose)
        nan_pose = profile.neutral.copy()
        nan_pose[3] = np.nan
        with pytest.raises(UnencodableValue, match='nan'):
            driver.write(nan_pose)
        driver.write(profile.neutral)               # the next good frame arrives alone
        expected = driver.encode(profile.neutral)
        assert wait_until(lambda: len(device.raw) >= len(expected), 2.0)
        assert device.take_raw() == expected
        driver.disconnect()
    finally:
        device.close()
    assert not device.errors


def test_maestro_reports_an_idle_servo_as_unknown_and_power_up_limits_speed(micheal):
    """An idle Maestro reads 0 for a servo without pulses: before, that was taken as a
    position below the range (the safety layer then eased from the range end); now NaN."""
    device = MaestroEmulator((12, 13))
    try:
        driver = make_driver(micheal, {'type': 'maestro', 'port': device.path})
        driver.connect()
        measured = driver.read_positions()
        assert np.isnan(measured).all()
        speeds = {(e[1], e[2]): e[3] for e in device.log if e[0] == 'set_speed'}
        accelerations = {(e[1], e[2]): e[3] for e in device.log if e[0] == 'set_acceleration'}
        for motor in micheal.motors:                    # the profile's limits, in Maestro units
            key = (12 if motor.channel < 24 else 13, motor.channel % 24)
            span = motor.max - motor.min
            assert speeds[key] == int(motor.max_velocity * span * 4 / 100) > 0
            assert accelerations[key] == min(255, int(motor.max_acceleration * span * 4 * 8
                                                      / 10_000)) > 0
        driver.write(micheal.neutral)
        first = micheal.motors[0]
        measured = driver.read_positions()
        assert measured[0] == pytest.approx(first.neutral_normalised, abs=1e-3)
        count = len(device.log)
        driver.finish_power_up()                       # the profile's own settings: 0, 0
        assert device.wait_for(count + 2 * micheal.num_motors)
        assert {e[3] for e in device.log[count:]} == {0}
        driver.disconnect()
    finally:
        device.close()
    assert not device.errors


def test_maestro_emulator_moves_under_the_speed_limit():
    device = MaestroEmulator()
    try:
        device.decode(bytearray(set_target(0, 6000)))          # first target: taken at once
        assert device.position(None, 0) == 6000
        device.decode(bytearray(set_speed(0, 10)))             # 10 quarter-us per 10 ms
        start = time.monotonic()
        device.decode(bytearray(set_target(0, 7000)))
        assert wait_until(lambda: device.position(None, 0) >= 6500, 3.0)
        elapsed = time.monotonic() - start
        assert elapsed >= 500 / 10 * 0.01 * 0.99                # no faster than the limit
        device.decode(bytearray(set_target(0, 0)))              # off: no pulses, reads 0
        assert device.position(None, 0) == 0
    finally:
        device.close()


def test_dynamixel_power_up_reads_present_sets_goal_then_enables_torque():
    """Before: torque was enabled first, with whatever goal the servo held (the emulator
    drives the horn to it at torque-on: a snap)."""
    hobbs = load_profile('hobbs', NO_CALIBRATION)
    ids = [m.channel for m in hobbs.motors]
    left = {dxl_id: int(m.min + (m.max - m.min) * 0.2) for dxl_id, m in
            zip(ids, hobbs.motors, strict=True)}           # where each horn was left
    bus = DynamixelEmulator(ids, horn=left)
    try:
        driver = make_driver(hobbs, {'type': 'dynamixel', 'port': bus.path})
        write = bus.value(ids[0], 116, 4)
        assert write == 0 and bus.value(ids[0], 64, 1) == 0         # power-on state
        driver.connect()
        log = list(bus.log)
        read = next(i for i, e in enumerate(log) if e[0] == 'sync_read' and e[1] == 132)
        goal = next(i for i, e in enumerate(log) if e[0] == 'sync_write' and e[1] == 116)
        torque = [i for i, e in enumerate(log) if e[0] == 'write' and e[2] == 64]
        assert read < goal < min(torque) and len(torque) == len(ids)
        assert {i: int.from_bytes(v, 'little') for i, v in log[goal][3].items()} == left
        assert all(bus.value(i, 132, 4) == left[i] for i in ids)      # nothing moved
        np.testing.assert_allclose(hobbs.to_native(driver.read_positions()),
                                   [left[i] for i in ids])
        with pytest.raises(UnencodableValue, match='outside the Dynamixel range'):
            driver.write(np.full(hobbs.num_motors, np.nan))
        assert not any(e[0] == 'sync_write' for e in bus.log[len(log):])   # nothing sent
        driver.disconnect()
    finally:
        bus.close()
    assert not bus.errors


def test_dynamixel_emulator_ignores_goal_while_torque_is_off():
    bus = DynamixelEmulator([1], horn=1000)
    try:
        bus._execute(1, 0x03, bytes([116, 0]) + (3000).to_bytes(4, 'little'))
        assert bus.value(1, 132, 4) == 1000                   # torque off: the horn stays
        bus._execute(1, 0x03, bytes([64, 0, 1]))
        assert bus.value(1, 132, 4) == 3000                   # torque on: it goes to the goal
    finally:
        bus.close()
