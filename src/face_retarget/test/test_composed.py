"""shadow_composed: the receiver, retarget and actuation nodes in one process. Its argument
parsing, and the real process: UDP packets in, the twin follows, the e-stop holds it."""
import argparse
import socket
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from std_srvs.srv import Trigger

from conftest import free_port, wait_until
from face_capture.livelink import NUM_CHANNELS, pack_packet
from face_common import qos, topics
from face_common.latency import DECODE, INFERENCE, SAFETY_DRIVER
from face_msgs.msg import ControlValues, LatencyTrace
from face_retarget.composed import node_parameter, parse


def test_node_parameters_are_typed_as_launch_types_them():
    receiver, overrides = parse(['livelink_receiver:port=11111', 'livelink_receiver:allow=',
                                 'actuation:port=/dev/ttyACM0', 'retarget:deterministic=true',
                                 'actuation:max_command_age_s=0.5'])
    assert receiver is True
    values = {node: {p.name: p.value for p in params} for node, params in overrides.items()}
    assert values == {'livelink_receiver': {'port': 11111, 'allow': ''},
                      'retarget': {'deterministic': True},
                      'actuation': {'port': '/dev/ttyACM0', 'max_command_age_s': 0.5}}
    assert parse(['--receiver', 'false'])[0] is False


@pytest.mark.parametrize('text', ['port=1', 'camera:port=1', 'actuation:=sim',
                                  'actuation:driver', 'actuation:x=[1, "a"]'])
def test_a_malformed_node_parameter_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        node_parameter(text)


class Phone:
    """Live Link Face packets at 60 Hz from a background thread while running."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.port, self.frame, self.running = port, 0, True
        values = np.zeros(NUM_CHANNELS, np.float32)
        values[17] = 0.6                                     # jawOpen: the face moves
        self.values = values
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self):
        while self.running:
            self.frame += 1
            self.sock.sendto(pack_packet('COMPOSED-TEST', 'iPhone', self.frame, self.values),
                             ('127.0.0.1', self.port))
            time.sleep(1 / 60)

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.mark.ros
def test_the_composed_pipeline_follows_udp_input_and_its_estop_holds(ros_node, node_process,
                                                                      tmp_path):
    """One process holds the three nodes (each listed once in the graph); frames sent as
    UDP reach the twin with every stage traced; an e-stop holds the face still while frames
    keep coming; Ctrl-C ends the process cleanly."""
    port = free_port()
    composed = node_process('face_retarget', 'shadow_composed', renamed=False, args=[
        f'livelink_receiver:port={port}',
        f'livelink_receiver:performer_calibration_dir={tmp_path / "calibration"}',
        'retarget:model=linear', 'actuation:driver=sim', 'actuation:render_rate_hz=0.0',
        'actuation:diagnostics_period_s=0.2', f'actuation:state_dir={tmp_path / "state"}',
        f'actuation:robot_calibration_dir={tmp_path}'])
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied')
    traces = ros_node.subscribe(LatencyTrace, '/face/latency', qos.of(topics.LATENCY))
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)

    def graph():
        return sorted(n for n, _ in ros_node.node.get_node_names_and_namespaces()
                      if n != ros_node.node.get_name())

    def mode():
        for array in reversed(diagnostics.snapshot()):
            for status in array.status:
                if status.name == 'face_actuation: actuation':
                    return {kv.key: kv.value for kv in status.values}.get('mode')
        return None
    assert wait_until(lambda: graph() == ['actuation', 'livelink_receiver', 'retarget'],
                      30.0), (graph(), composed.output())
    phone = Phone(port)
    try:
        assert wait_until(lambda: mode() == 'active', 30.0), composed.output()
        assert wait_until(lambda: {s.stage for m in traces.snapshot() for s in m.stages}
                          >= {DECODE, INFERENCE, SAFETY_DRIVER}, 10.0)
        answer = ros_node.call(Trigger, '/face/actuation/estop', Trigger.Request())
        assert answer.success, answer.message
        assert wait_until(lambda: mode() == 'estop', 5.0)
        time.sleep(0.2)
        held = np.array(applied.snapshot()[-1].values)
        time.sleep(0.5)                                  # frames keep coming: not followed
        np.testing.assert_allclose(applied.snapshot()[-1].values, held, atol=1e-9)
    finally:
        phone.stop()
    code = composed.stop()
    output = composed.log_path.read_text()
    assert code == 0 and 'Traceback' not in output, output
