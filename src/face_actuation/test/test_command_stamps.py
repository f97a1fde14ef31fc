"""Command stamps with the real actuation node: one command stamped at the end of time (or
zero) must not lock out the fresh commands after it (it did: 90 of 90 dropped as stale)."""
import time

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest

from conftest import wait_until
from face_actuation.profile import load_profile
from face_common import qos
from face_common.messages import control_values_msg
from face_msgs.msg import ControlValues

pytestmark = pytest.mark.ros


def diagnostics_values(collector):
    for array in reversed(collector.snapshot()):
        for status in array.status:
            if status.name == 'face_actuation: actuation':
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_far_future_and_zero_stamps_are_dropped_and_fresh_commands_still_drive(
        ros_node, node_process, tmp_path):
    profile = load_profile('hobbs', '/nonexistent')
    node = node_process('face_actuation', 'actuation',
                        params={'robot': 'hobbs', 'driver': 'sim', 'render_rate_hz': 0.0,
                                'diagnostics_period_s': 0.2,
                                'robot_calibration_dir': str(tmp_path)})
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    publisher = ros_node.node.create_publisher(ControlValues, '/face/command', qos.LIVE_STREAM)
    assert wait_until(lambda: diagnostics_values(diagnostics).get('mode') in
                      ('active', 'watchdog'), 20.0), node.output()
    assert wait_until(lambda: publisher.get_subscription_count() > 0, 15.0)

    def send(pose, stamp):
        publisher.publish(control_values_msg(pose, profile.motor_names, stamp,
                                             robot='hobbs', source='test'))
        time.sleep(0.05)                  # live-stream QoS keeps the last 2: pace them

    send(np.zeros(profile.num_motors), TimeMsg(sec=2147483647, nanosec=0))
    send(np.ones(profile.num_motors), TimeMsg(sec=0, nanosec=0))
    wanted = np.clip(profile.neutral + 0.25, 0.0, 1.0)
    for _ in range(90):
        send(wanted, ros_node.node.get_clock().now().to_msg())
    assert wait_until(lambda: np.allclose(applied.snapshot()[-1].values, wanted, atol=1e-3),
                      5.0)
    def counted():
        values = diagnostics_values(diagnostics)
        return (values.get('future_stamps'), values.get('zero_stamps'),
                values.get('stale_commands')) == ('1', '1', '0')
    assert wait_until(counted, 5.0), diagnostics_values(diagnostics)
    assert wait_until(lambda: 'ahead of this clock dropped' in node.output()
                      and 'zero stamp dropped' in node.output(), 5.0), node.output()
