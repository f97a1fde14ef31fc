"""The latched e-stop with the real actuation node process: estop -> restart (still stopped,
from the state folder) -> resume refused -> reset (eases to neutral, commands counted, not
followed) -> resume (follows again); and the persisted state file itself."""
import json
from pathlib import Path
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from std_srvs.srv import Trigger

from conftest import wait_until
from face_actuation.emulators import DynamixelEmulator, MaestroEmulator
from face_actuation.estop_store import EstopStore
from face_actuation.profile import ProfileError, load_profile
from face_common import qos
from face_common.messages import control_values_msg
from face_msgs.msg import ControlValues

pytestmark = pytest.mark.ros


def diagnostics_values(collector):
    for array in reversed(collector.snapshot()):
        for status in array.status:
            if status.name == 'face_actuation: actuation':
                return status.level, {kv.key: kv.value for kv in status.values}
    return None, {}


def start_node(node_process, state_dir, calibration_dir, composed=False):
    """The actuation node in its own process, or composed: in shadow_composed's process
    beside the retarget node (launch/shadow.launch.yaml composed:=true)."""
    params = {'robot': 'hobbs', 'driver': 'sim', 'render_rate_hz': 0.0,
              'diagnostics_period_s': 0.2, 'state_dir': str(state_dir),
              'robot_calibration_dir': str(calibration_dir)}
    if composed:
        args = ['--receiver', 'false', 'retarget:robot=hobbs', 'retarget:model=linear',
                *(f'actuation:{k}={v}' for k, v in params.items())]
        return node_process('face_retarget', 'shadow_composed', args=args, renamed=False)
    return node_process('face_actuation', 'actuation', params=params)


def call(ros_node, service):
    return ros_node.call(Trigger, f'/face/actuation/{service}', Trigger.Request())


class Commander:
    """Publishes fresh commands at 60 Hz from a background loop while `pose` is set."""

    def __init__(self, ros_node, profile):
        self.ros_node, self.profile = ros_node, profile
        self.publisher = ros_node.node.create_publisher(ControlValues, '/face/command',
                                                        qos.LIVE_STREAM)

    def send_for(self, pose, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            stamp = self.ros_node.node.get_clock().now().to_msg()
            self.publisher.publish(control_values_msg(pose, self.profile.motor_names, stamp,
                                                      robot=self.profile.name, source='test'))
            time.sleep(1 / 60)


@pytest.mark.parametrize('composed', [False, True], ids=['own process', 'composed'])
def test_estop_latches_across_a_restart_and_reset_does_not_start_motion(
        ros_node, node_process, tmp_path, composed):
    profile = load_profile('hobbs', '/nonexistent')
    state_dir = tmp_path / 'state'
    wide = np.clip(profile.neutral + 0.3, 0.0, 1.0)
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    commander = Commander(ros_node, profile)

    def mode():
        return diagnostics_values(diagnostics)[1].get('mode')

    def last_applied():
        return np.array(applied.snapshot()[-1].values)

    first = start_node(node_process, state_dir, tmp_path, composed)
    assert wait_until(lambda: mode() in ('active', 'watchdog'), 20.0), first.output()
    assert wait_until(lambda: commander.publisher.get_subscription_count() > 0, 15.0)
    assert call(ros_node, 'estop').success
    saved = json.loads(EstopStore('hobbs', state_dir).path.read_text())
    assert saved['estop'] is True and saved['robot'] == 'hobbs'
    assert first.stop() == 0

    diagnostics.clear()
    applied.clear()
    second = start_node(node_process, state_dir, tmp_path, composed)
    assert wait_until(lambda: mode() == 'estop', 20.0), second.output()
    level, values = diagnostics_values(diagnostics)
    assert level == DiagnosticStatus.WARN and values['estop_restored'] == '1'
    assert 'starting E-STOPPED' in second.output()
    assert wait_until(lambda: commander.publisher.get_subscription_count() > 0, 15.0)
    assert wait_until(lambda: applied.snapshot(), 10.0)
    held = last_applied()
    commander.send_for(wide, 0.5)                                   # not followed
    np.testing.assert_allclose(last_applied(), held, atol=1e-9)
    refused = call(ros_node, 'resume')
    assert not refused.success and 'reset' in refused.message
    assert mode() == 'estop'

    assert call(ros_node, 'reset').success
    assert json.loads(EstopStore('hobbs', state_dir).path.read_text())['estop'] is False
    assert wait_until(lambda: mode() == 'standby', 5.0)
    commander.send_for(wide, profile.safety.power_up_s + 0.5)      # counted, not followed
    np.testing.assert_allclose(last_applied(), profile.neutral, atol=1e-3)
    assert wait_until(lambda: int(diagnostics_values(diagnostics)[1]['ignored_commands'])
                      > 60, 5.0)
    assert mode() == 'standby'

    assert call(ros_node, 'resume').success
    assert wait_until(lambda: commander.send_for(wide, 0.1) or
                      np.allclose(last_applied(), wide, atol=1e-3), 10.0)
    assert mode() == 'active' and second.alive


def test_a_persisted_estop_file_is_replaced_whole_and_unreadable_state_counts_as_latched(
        tmp_path):
    store = EstopStore('hobbs', tmp_path)
    assert store.load() is None
    store.save(True)
    assert store.load()['reason'] == 'persisted e-stop'
    store.save(False)
    assert store.load() is None
    assert [p.name for p in tmp_path.iterdir()] == [store.path.name]      # no temp left
    store.path.write_text('{"estop": tr')                                  # torn write
    assert 'unreadable' in store.load()['reason']
    with pytest.raises(ProfileError):                       # no name points outside the folder
        EstopStore('../../escaped', tmp_path)
    blocked = EstopStore('hobbs', tmp_path / 'state.json' / 'sub')     # a file in the way
    (tmp_path / 'state.json').write_text('')
    with pytest.raises(OSError):
        blocked.save(True)


def test_the_state_folder_defaults_to_face_state_dir(face_state_dir):
    assert EstopStore('ameca').path.parent == face_state_dir


def test_a_persisted_hold_estop_never_drives_maestro_servos_of_unknown_position(
        ros_node, node_process, tmp_path):
    """Before: a node restarted e-stopped ('hold') on a freshly powered Maestro (servos off,
    reading 0) sent every servo its neutral pulse, so each one jumped from wherever it was to
    neutral while the e-stop was latched; go_to_neutral answered success and did nothing.
    A servo of unknown position cannot be held without moving it: the e-stop goes limp (no
    pulses) until reset, also after the controller is power-cycled while latched."""
    micheal = load_profile('micheal', '/nonexistent')
    assert micheal.safety.estop_mode == 'hold'
    state_dir = tmp_path / 'state'
    EstopStore('micheal', state_dir).save(True)
    device = MaestroEmulator((12, 13))
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)

    def status():
        return diagnostics_values(diagnostics)

    try:
        node = node_process('face_actuation', 'actuation', params={
            'robot': 'micheal', 'driver': 'maestro', 'port': device.path,
            'robot_calibration_dir': str(tmp_path), 'state_dir': str(state_dir),
            'diagnostics_period_s': 0.2, 'reconnect_min_s': 0.1, 'reconnect_max_s': 0.4})
        assert wait_until(lambda: status()[1].get('mode') == 'estop', 20.0), node.output()
        assert wait_until(lambda: sum(e[0] == 'set_target' for e in device.log) > 33, 5.0)
        assert device.first_targets == {}                  # not one pulse sent
        assert 'limp' in status_message(diagnostics)
        neutral = call(ros_node, 'go_to_neutral')
        assert not neutral.success and 'reset' in neutral.message

        device.unplug()                                    # power-cycled while latched
        assert wait_until(lambda: status()[1].get('mode') == 'driver_down', 5.0)
        device.replug(power_cycle=True)
        assert wait_until(lambda: status()[1].get('mode') == 'estop', 10.0)
        assert wait_until(lambda: sum(e[0] == 'set_target' for e in device.log) > 66, 5.0)
        assert device.first_targets == {}

        assert call(ros_node, 'reset').success
        neutral_us = micheal.to_native(micheal.neutral)
        assert wait_until(lambda: len(device.first_targets) == micheal.num_motors, 5.0)
        for motor, expected in zip(micheal.motors, neutral_us, strict=True):
            key = (12 if motor.channel < 24 else 13, motor.channel % 24)
            assert device.first_targets[key] == round(expected * 4), motor.name
        assert node.alive
    finally:
        device.close()
    assert not device.errors


def status_message(collector) -> str:
    for array in reversed(collector.snapshot()):
        for status in array.status:
            if status.name == 'face_actuation: actuation':
                return status.message
    return ''


def test_a_limp_estop_on_dynamixel_gives_the_torque_back_after_reset_and_resume(
        ros_node, node_process, tmp_path):
    """Before: a limp e-stop turned the torque off, and nothing turned it on again: after
    reset and resume the node reported 'active' and published applied positions while every
    horn stayed limp where it had sagged (silently dead until the driver was reopened)."""
    source = Path(__file__).resolve().parents[1] / 'profiles' / 'hobbs.yaml'
    limp_profile = tmp_path / 'hobbs_limp.yaml'
    limp_profile.write_text(source.read_text().replace('estop_mode: hold', 'estop_mode: limp'))
    profile = load_profile(str(limp_profile), '/nonexistent')
    ids = [m.channel for m in profile.motors]
    bus = DynamixelEmulator(ids, horn=2048)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    commander = Commander(ros_node, profile)
    wide = np.clip(profile.neutral + 0.2, 0.0, 1.0)
    wide_ticks = np.rint(profile.to_native(wide)).astype(int)

    def mode():
        return diagnostics_values(diagnostics)[1].get('mode')

    def torque():
        return {bus.value(i, 64, 1) for i in ids}

    def horns_at(ticks):
        return all(abs(bus.value(i, 132, 4) - t) <= 2 for i, t in zip(ids, ticks, strict=True))

    try:
        node = node_process('face_actuation', 'actuation', params={
            'robot': str(limp_profile), 'driver': 'dynamixel', 'port': bus.path,
            'robot_calibration_dir': str(tmp_path), 'state_dir': str(tmp_path / 'state'),
            'diagnostics_period_s': 0.2})
        assert wait_until(lambda: mode() in ('active', 'watchdog'), 20.0), node.output()
        assert torque() == {1}
        assert call(ros_node, 'estop').success
        assert wait_until(lambda: torque() == {0}, 5.0)
        assert call(ros_node, 'reset').success
        assert call(ros_node, 'resume').success
        assert wait_until(lambda: commander.publisher.get_subscription_count() > 0, 15.0)
        assert wait_until(lambda: commander.send_for(wide, 0.1) or horns_at(wide_ticks),
                          15.0), (mode(), torque(), node.output()[-2000:])
        assert torque() == {1} and node.alive
    finally:
        bus.close()
    assert not bus.errors


def test_a_dynamixel_bus_power_cycled_while_e_stopped_holds_where_the_horns_sagged(
        ros_node, node_process, tmp_path):
    """Before: a driver reopened while latched kept holding the pose from before the fault,
    so the horns, which had sagged while the servos were unpowered, were driven back to it (a
    jump while e-stopped). A reopened driver's measured pose is the pose to hold."""
    profile = load_profile('hobbs', '/nonexistent')
    ids = [m.channel for m in profile.motors]
    bus = DynamixelEmulator(ids, horn=2048)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)

    def status():
        return diagnostics_values(diagnostics)[1]

    def horns():
        return [bus.value(i, 132, 4) for i in ids]

    try:
        node = node_process('face_actuation', 'actuation', params={
            'robot': 'hobbs', 'driver': 'dynamixel', 'port': bus.path,
            'robot_calibration_dir': str(tmp_path), 'state_dir': str(tmp_path / 'state'),
            'diagnostics_period_s': 0.2, 'reconnect_min_s': 0.1, 'reconnect_max_s': 0.4})
        assert wait_until(lambda: status().get('mode') in ('active', 'watchdog'), 20.0), \
            node.output()
        assert call(ros_node, 'estop').success
        bus.unplug()
        assert wait_until(lambda: status().get('mode') == 'driver_down', 5.0)
        sagged = {i: 1300 + 10 * k for k, i in enumerate(ids)}       # far from neutral
        bus.horn = sagged
        bus.replug(power_cycle=True)
        assert wait_until(lambda: status().get('driver_up') == 'true', 10.0)
        assert wait_until(lambda: status().get('mode') == 'estop', 5.0)
        written = len(bus.log)
        assert wait_until(lambda: sum(e[0] == 'sync_write' for e in bus.log[written:]) > 10,
                          5.0)
        assert horns() == [sagged[i] for i in ids]                   # held, not moved
        assert {bus.value(i, 64, 1) for i in ids} == {1}
        assert node.alive
    finally:
        bus.close()
    assert not bus.errors


def test_reset_resume_and_enable_change_nothing_while_the_driver_is_down(
        ros_node, node_process, tmp_path):
    """Before: with the Maestro unplugged, enable answered failure ('driver down') yet
    cleared the latch and set the face to follow: plugging the cable back in started motion
    by itself. While the motors cannot be commanded these services change nothing."""
    state_dir = tmp_path / 'state'
    device = MaestroEmulator((12, 13))
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)

    def mode():
        return diagnostics_values(diagnostics)[1].get('mode')

    try:
        node = node_process('face_actuation', 'actuation', params={
            'robot': 'micheal', 'driver': 'maestro', 'port': device.path,
            'robot_calibration_dir': str(tmp_path), 'state_dir': str(state_dir),
            'diagnostics_period_s': 0.2, 'reconnect_min_s': 0.1, 'reconnect_max_s': 0.4})
        assert wait_until(lambda: mode() in ('active', 'watchdog'), 20.0), node.output()
        assert call(ros_node, 'estop').success
        device.unplug()
        assert wait_until(lambda: mode() == 'driver_down', 5.0)
        answers = {service: call(ros_node, service) for service in ('reset', 'resume',
                                                                     'enable')}
        device.replug()
        assert wait_until(lambda: mode() not in ('driver_down', None), 10.0)
        assert mode() == 'estop' and node.alive     # not standby, power_up or following
        assert EstopStore('micheal', state_dir).load() is not None      # still latched
        for service, answer in answers.items():
            assert not answer.success and 'nothing changed' in answer.message, service
            assert 'driver down' in answer.message
    finally:
        device.close()
    assert not device.errors
