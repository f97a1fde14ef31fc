"""The actuation node in its own process, driven through real rclpy topics and services."""
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from conftest import wait_until
from face_actuation.profile import load_profile
from face_common import qos
from face_common.arkit import channel_index
from face_common.images import image_to_array
from face_common.messages import control_values_msg
from face_msgs.msg import Blendshapes, ControlValues

pytestmark = pytest.mark.ros


def diag(collector, name='face_actuation: actuation'):
    for array in reversed(collector.snapshot()):
        for status in array.status:
            if status.name == name:
                return status.level, {kv.key: kv.value for kv in status.values}
    return None, {}


@pytest.fixture
def ameca_node(node_process, tmp_path):
    return node_process('face_actuation', 'actuation',
                        params={'robot': 'ameca', 'driver': 'sim', 'render_rate_hz': 10.0,
                                'diagnostics_period_s': 0.2,
                                'robot_calibration_dir': str(tmp_path)})


def send(ros_node, publisher, profile, pose, count=1, period=1 / 60):
    for _ in range(count):
        stamp = ros_node.node.get_clock().now().to_msg()
        publisher.publish(control_values_msg(pose, profile.motor_names, stamp,
                                             robot=profile.name, source='test'))
        time.sleep(period)


def test_commands_move_the_twin_and_estop_holds(ros_node, ameca_node):
    profile = load_profile('ameca', '/nonexistent')
    robot = ros_node.subscribe(Blendshapes, '/face/robot/blendshapes')
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied')
    images = ros_node.subscribe(Image, '/face/robot/image')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    publisher = ros_node.node.create_publisher(ControlValues, '/face/command', qos.LIVE_STREAM)
    assert wait_until(lambda: diag(diagnostics)[1].get('mode') in ('active', 'watchdog'), 15.0), \
        ameca_node.output()
    assert wait_until(lambda: publisher.get_subscription_count() > 0, 15.0)   # matched

    jaw_open = profile.neutral.copy()
    jaw_open[profile.index('Jaw Pitch')] = 0.0               # Jaw Pitch 0 = wide open
    send(ros_node, publisher, profile, jaw_open, count=60)
    reading = robot.snapshot()[-1]
    assert reading.source == 'robot_twin' and reading.subject == 'ameca'
    assert reading.weights[channel_index('JawOpen')] > 0.6
    frame = image_to_array(images.snapshot()[-1])
    assert frame.shape == (256, 256, 3) and frame.std() > 10

    result = ros_node.call(Trigger, '/face/actuation/estop', Trigger.Request())
    assert result.success
    time.sleep(0.2)
    held = np.array(applied.snapshot()[-1].values)
    send(ros_node, publisher, profile, profile.neutral, count=30)        # ignored while stopped
    np.testing.assert_allclose(applied.snapshot()[-1].values, held, atol=1e-6)
    assert wait_until(lambda: diag(diagnostics)[1].get('mode') == 'estop')
    assert diag(diagnostics)[0] == DiagnosticStatus.WARN                  # WARN in rqt

    assert ros_node.call(Trigger, '/face/actuation/enable', Trigger.Request()).success
    assert wait_until(lambda: diag(diagnostics)[1].get('mode') in ('power_up', 'active'))
    assert ameca_node.alive


def test_an_estop_acts_at_once_not_at_the_next_timer_tick(ros_node, node_process, tmp_path):
    """At 1 Hz the tick after a command comes 1.25 s later; an e-stop latched just after the
    command's tick must reach the driver one min gap (0.25 s) after it, not 1.25 s."""
    node_process('face_actuation', 'actuation',
                 params={'robot': 'ameca', 'driver': 'sim', 'control_rate_hz': 1.0,
                         'render_rate_hz': 0.0, 'diagnostics_period_s': 0.2,
                         'robot_calibration_dir': str(tmp_path)})
    profile = load_profile('ameca', '/nonexistent')
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    publisher = ros_node.node.create_publisher(ControlValues, '/face/command', qos.LIVE_STREAM)
    estop = ros_node.node.create_client(Trigger, '/face/actuation/estop')
    assert estop.wait_for_service(timeout_sec=15.0)
    assert wait_until(lambda: diag(diagnostics)[1].get('mode') in ('active', 'watchdog'), 20.0), \
        diag(diagnostics)
    assert wait_until(lambda: publisher.get_subscription_count() > 0, 15.0)   # matched

    stamp = ros_node.node.get_clock().now().to_msg()
    publisher.publish(control_values_msg(profile.neutral, profile.motor_names, stamp,
                                         robot=profile.name, source='test'))

    def ticks_of_the_command():
        return [m for m in applied.snapshot() if m.header.stamp == stamp]
    assert wait_until(lambda: ticks_of_the_command(), 5.0)
    command_tick = time.monotonic()
    future = estop.call_async(Trigger.Request())
    assert wait_until(lambda: future.done(), 5.0) and future.result().success
    assert wait_until(lambda: len(ticks_of_the_command()) > 1, 5.0)
    assert time.monotonic() - command_tick < 0.8


def test_bad_commands_are_counted_and_silence_eases_to_neutral(ros_node, ameca_node):
    profile = load_profile('ameca', '/nonexistent')
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    publisher = ros_node.node.create_publisher(ControlValues, '/face/command', qos.LIVE_STREAM)
    assert wait_until(lambda: diag(diagnostics)[1].get('mode') in ('active', 'watchdog'), 15.0)
    assert wait_until(lambda: publisher.get_subscription_count() > 0, 15.0)   # matched

    stamp = ros_node.node.get_clock().now().to_msg()
    broken = control_values_msg(profile.neutral, profile.motor_names, stamp, robot='ameca',
                                source='test')
    broken.values = broken.values[:5]                                    # lengths disagree
    publisher.publish(broken)
    time.sleep(0.05)                      # live-stream QoS keeps the last 2: pace the messages
    wild = profile.neutral.copy()
    wild[0], wild[1], wild[2] = np.nan, np.inf, 40.0
    send(ros_node, publisher, profile, wild)
    old = control_values_msg(profile.neutral, profile.motor_names,
                             rclpy_time_ago(ros_node, 2.0), robot='ameca', source='test')
    publisher.publish(old)                                     # 2 s old: late and reordered
    time.sleep(0.05)
    unknown = control_values_msg([0.5], ['Tail Wag'], ros_node.node.get_clock().now().to_msg(),
                                 robot='ameca', source='test')
    publisher.publish(unknown)

    def counted():
        values = diag(diagnostics)[1]
        return (values.get('bad_command_messages') == '1' and
                values.get('non_finite_values') == '2' and values.get('clamped_values') == '1'
                and int(values.get('late_commands', 0)) + int(values.get('stale_commands', 0))
                == 1 and
                values.get('unknown_motor_names') == '1')
    assert wait_until(counted, 5.0), str(diag(diagnostics)[1])

    # silence: the watchdog eases back to neutral within timeout + return time
    config = profile.safety
    time.sleep(config.watchdog_timeout_s + config.return_to_neutral_s + 0.3)
    np.testing.assert_allclose(applied.snapshot()[-1].values, profile.neutral, atol=1e-3)
    assert int(diag(diagnostics)[1]['watchdog_trips']) >= 1
    assert ameca_node.alive


def rclpy_time_ago(ros_node, seconds):
    from rclpy.duration import Duration
    return (ros_node.node.get_clock().now() - Duration(seconds=seconds)).to_msg()
