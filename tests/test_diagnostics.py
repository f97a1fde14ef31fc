"""/diagnostics from every node of the pipeline, as rqt_robot_monitor would show it: names,
levels (WARN before input, OK while streaming, WARN on e-stop / silence, ERROR on failures
tested with each package) and the keys and values of each status.

Pipeline: stand-in iPhone (UDP) -> livelink_receiver -> retarget -> actuation (twin), with
latency_monitor, dashboard and recorder beside it; the take player on its own."""
import math
import subprocess
import sys

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from std_srvs.srv import Trigger

from conftest import free_port, wait_until
from face_common import qos, topics
from face_common.node import OK, WARN

pytestmark = pytest.mark.ros
FAST = {'diagnostics_period_s': 0.25}


def latest(collector, name):
    for array in reversed(collector.snapshot()):
        for status in array.status:
            if status.name == name:
                return status.level, status.message, {kv.key: kv.value for kv in status.values}
    return None, '', {}


def wait_level(collector, name, level, timeout=20.0):
    found = wait_until(lambda: latest(collector, name)[0] == level, timeout)
    assert found, f'{name}: wanted level {level!r}, last {latest(collector, name)}'
    return latest(collector, name)


def number(values, key):
    value = float(values[key])
    assert math.isfinite(value), (key, values[key])
    return value


def test_every_node_reports_levels_keys_and_values(ros_node, node_process, tmp_path):
    diagnostics = ros_node.subscribe(DiagnosticArray, topics.DIAGNOSTICS.name, qos.DIAGNOSTICS)
    port = free_port()
    node_process('face_capture', 'livelink_receiver',
                 params={'port': port, 'performer_calibration_dir': str(tmp_path), **FAST})
    node_process('face_retarget', 'retarget', params={'robot': 'hobbs', 'model': 'linear',
                                                       **FAST})
    node_process('face_actuation', 'actuation', params={
        'robot': 'hobbs', 'driver': 'sim', 'robot_calibration_dir': str(tmp_path),
        'realtime_priority': 5, **FAST})
    node_process('face_dashboard', 'latency_monitor', params=FAST)
    node_process('face_dashboard', 'dashboard', params={'robot': 'hobbs', 'port': 0, **FAST})
    node_process('face_bag', 'recorder', params={'output': str(tmp_path / 'bag'), **FAST})

    # Before any input: the input-driven nodes say so with WARN.
    _, message, _ = wait_level(diagnostics, 'face_capture: livelink_receiver', WARN)
    assert 'no face frames' in message
    _, message, _ = wait_level(diagnostics, topics.STATUS_RETARGET, WARN)
    assert 'no human frames' in message
    _, message, _ = wait_level(diagnostics, topics.STATUS_LATENCY, WARN)
    assert 'no complete frame traces' in message

    sender = subprocess.Popen([sys.executable, '-m', 'face_capture.send_take', '--port',
                               str(port), '--loop'], stdout=subprocess.DEVNULL)
    try:
        _, _, values = wait_level(diagnostics, 'face_capture: livelink_receiver', OK)
        assert wait_until(lambda: 25 < number(latest(
            diagnostics, 'face_capture: livelink_receiver')[2], 'rate_hz') < 35, 10)
        _, _, values = latest(diagnostics, 'face_capture: livelink_receiver')
        for key in ('packets', 'published', 'dropped_frames', 'malformed', 'clamped_values',
                    'latency_ms_mean', 'latency_ms_p99', 'calibration_profile'):
            assert key in values, key
        # Timing itself is the benches' job (a loaded machine delays a starting node's first
        # packets by ~100 ms): here the figures must be consistent.
        assert 0 <= number(values, 'latency_ms_mean') <= number(values, 'latency_ms_p99')
        assert int(values['malformed']) == 0

        _, message, values = wait_level(diagnostics, topics.STATUS_RETARGET, OK)
        assert values['model'] == 'linear' and values['robot'] == 'hobbs'
        assert int(values['published']) > 0 and int(values['bad_frames']) == 0
        assert number(values, 'compute_ms_p99') >= 0
        assert values['scheduling'] == 'normal scheduling'

        assert wait_until(lambda: latest(diagnostics, topics.STATUS_ACTUATION)[2]
                          .get('mode') == 'active', 20)
        level, _, values = latest(diagnostics, topics.STATUS_ACTUATION)
        assert level == OK
        for key in ('control_rate_hz', 'command_rate_hz', 'loop_ms_p99', 'command_age_ms_p99',
                    'overruns', 'driver_errors', 'watchdog_trips'):
            assert key in values, key
        assert int(values['driver_errors']) == 0
        # real-time where this machine permits it, and says why not where it does not
        assert values['scheduling'] == 'SCHED_FIFO 5' or (
            values['scheduling'].startswith('normal scheduling: SCHED_FIFO 5 not permitted'))

        _, message, values = wait_level(diagnostics, topics.STATUS_LATENCY, OK)
        assert 'end-to-end p99' in message
        for stage in ('end-to-end', 'inference', 'receive/decode', 'safety+driver write',
                      'transmission retarget->actuation'):
            assert number(values, f'{stage} p99 (ms)') >= 0, stage
        assert number(values, 'end-to-end p99 (ms)') > number(values, 'inference p99 (ms)')

        _, message, values = wait_level(diagnostics, topics.STATUS_DASHBOARD, OK)
        assert values['url'].startswith('http://127.0.0.1:') and values['pages'] == '0'

        wait_level(diagnostics, topics.STATUS_RECORDER, OK)
        for topic in (t.bag_name for t in (topics.HUMAN_BLENDSHAPES, topics.COMMAND,
                                           topics.LATENCY)):
            assert wait_until(lambda t=topic: int(latest(diagnostics, topics.STATUS_RECORDER)[2]
                                                  .get(f'count {t}', 0)) > 0, 10), topic
        _, _, values = latest(diagnostics, topics.STATUS_RECORDER)
        assert int(values['messages']) > 0 and int(values['write_errors']) == 0

        # E-stop: the actuation node says so with WARN.
        estop = topics.actuation_service('estop').name
        assert ros_node.call(Trigger, estop, Trigger.Request()).success
        _, message, values = wait_level(diagnostics, topics.STATUS_ACTUATION, WARN)
        assert values['mode'] == 'estop'
    finally:
        sender.terminate()
        sender.wait()
    # The sender vanished: the receiver turns WARN within a second or so.
    _, message, _ = wait_level(diagnostics, 'face_capture: livelink_receiver', WARN)
    assert 'no face frames' in message


def test_take_player_reports(ros_node, node_process, tmp_path):
    diagnostics = ros_node.subscribe(DiagnosticArray, topics.DIAGNOSTICS.name, qos.DIAGNOSTICS)
    node_process('face_capture', 'take_player',
                 params={'performer_calibration_dir': str(tmp_path), **FAST})
    _, message, values = wait_level(diagnostics, 'face_capture: take_player', OK)
    assert 'streaming' in message and int(values['skipped_rows']) == 0
    assert number(values, 'latency_ms_p99') >= 0
