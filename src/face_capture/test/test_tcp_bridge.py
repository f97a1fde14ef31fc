"""The tcp_bridge node in its own process: real TCP clients on loopback (127.0.0.2 stands in
for another machine), real rclpy subscribers of the generated message types."""
import json
import socket
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from test_nodes import TOPIC, diag_values

from conftest import free_port, wait_until
from face_capture.livelink import pack_packet
from face_capture.tcp_protocol import encode_binary_frame, encode_json_line
from face_common import qos
from face_common.arkit import NUM_CHANNELS, channel_index
from face_msgs.msg import Blendshapes

pytestmark = pytest.mark.ros

NODE = 'tcp_bridge'


def values_with(jaw: float) -> np.ndarray:
    values = np.zeros(NUM_CHANNELS, np.float32)
    values[channel_index('JawOpen')] = jaw
    return values


@pytest.fixture
def probes(ros_node):
    return (ros_node.subscribe(Blendshapes, TOPIC),
            ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS))


def start_bridge(node_process, tmp_path, **params):
    port = free_port(socket.SOCK_STREAM)
    bridge = node_process('face_capture', 'tcp_bridge', params={
        'port': port, 'performer_calibration_dir': str(tmp_path / 'calib'),
        'diagnostics_period_s': 0.2, **params})
    assert wait_until(lambda: 'listening for blendshape frames' in bridge.output(), 15.0), \
        bridge.output()
    return bridge, port


def client(port, source='127.0.0.1'):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(('127.0.0.1', port))
    sock.settimeout(5.0)
    return sock


def reply(sock) -> dict:
    data = b''
    while not data.endswith(b'\n'):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return json.loads(data.splitlines()[0])


def jaws(frames, device_id):
    return [round(m.weights[channel_index('JawOpen')], 3) for m in frames.snapshot()
            if m.device_id == device_id and m.face_tracked]


def stats(diagnostics):
    return diag_values(diagnostics, NODE)


def send_until_seen(frames, sock, line, device_id, timeout=15.0):
    """Send until the subscription sees the client's frames (discovery takes a moment)."""
    return wait_until(lambda: sock.sendall(line) or jaws(frames, device_id), timeout, 0.05)


def test_json_and_binary_clients_at_once_and_bad_json_gets_a_reply(ros_node, probes,
                                                                   node_process, tmp_path):
    frames, diagnostics = probes
    bridge, port = start_bridge(node_process, tmp_path)
    json_client, binary_client = client(port), client(port)
    assert send_until_seen(frames, json_client,
                           encode_json_line(values_with(0.25), device_id='json-dev'), 'json-dev')
    assert send_until_seen(frames, binary_client, encode_binary_frame(
        pack_packet('BIN-DEV', 'iPhone', 1, values_with(0.75))), 'BIN-DEV')

    json_client.sendall(b'{"names": ["JawOpen"], "weights": [0.5\n')
    answer = reply(json_client)
    assert answer['error'] == 'bad_json' and answer['closing'] is False
    json_client.sendall(b'{"names": ["Smirk"], "weights": [0.5]}\n')
    answer = reply(json_client)
    assert answer['error'] == 'invalid_frames' and 'Smirk' in answer['message']
    json_client.sendall(encode_json_line(values_with(0.5), device_id='json-dev'))  # still open
    assert wait_until(lambda: 0.5 in jaws(frames, 'json-dev'))
    assert set(jaws(frames, 'BIN-DEV')) == {0.75}
    message = next(m for m in frames.snapshot() if m.device_id == 'BIN-DEV')
    assert (message.source, message.subject) == ('tcp', 'iPhone')

    assert wait_until(lambda: stats(diagnostics).get('bad_json') == '1'
                      and stats(diagnostics).get('invalid_frames') == '1'), stats(diagnostics)
    assert stats(diagnostics)['clients'] == '2'
    log = bridge.output()
    assert 'not JSON' in log and 'Smirk' in log


def test_a_latest_burst_publishes_only_its_newest_frame(ros_node, probes, node_process,
                                                        tmp_path):
    frames, diagnostics = probes
    _, port = start_bridge(node_process, tmp_path)
    sock = client(port)
    assert send_until_seen(frames, sock, encode_json_line(values_with(0.1), device_id='d'), 'd')
    before = len(jaws(frames, 'd'))
    burst = [encode_json_line(values_with(0.2), device_id='d')] * 40
    sock.sendall(b''.join(burst) + encode_json_line(values_with(0.4), device_id='d'))
    assert wait_until(lambda: jaws(frames, 'd')[-1] == 0.4)
    assert wait_until(lambda: int(stats(diagnostics).get('superseded', 0)) >= 1)
    assert len(jaws(frames, 'd')) - before < 41


def test_a_client_vanishing_mid_frame_and_a_half_open_one_do_not_block_others(
        ros_node, probes, node_process, tmp_path):
    frames, diagnostics = probes
    bridge, port = start_bridge(node_process, tmp_path, idle_timeout_s=1.0)
    silent = client(port)                                    # connects, never sends
    stuck = client(port)                                     # stops inside a frame
    stuck.sendall(encode_binary_frame(pack_packet('STUCK', 's', 1, values_with(0.9)))[:40])
    good = client(port)
    assert send_until_seen(frames, good, encode_json_line(values_with(0.3), device_id='g'), 'g')

    vanishing = client(port)
    vanishing.sendall(encode_json_line(values_with(0.6), device_id='v')[:30])
    vanishing.close()

    started = time.monotonic()
    while time.monotonic() - started < 2.0:                 # the good client keeps streaming
        good.sendall(encode_json_line(values_with(0.3), device_id='g'))
        time.sleep(0.05)
    assert reply(silent)['error'] == 'idle_timeouts'
    assert silent.recv(100) == b''                            # closed by the bridge
    assert reply(stuck)['closing'] is True
    assert wait_until(lambda: stats(diagnostics).get('vanished_mid_frame') == '2'
                      and int(stats(diagnostics).get('idle_timeouts', 0)) >= 2), stats(diagnostics)
    # the good client was never starved: about 20 frames in 1 s of timeouts
    assert len(jaws(frames, 'g')) >= 20
    assert 'STUCK' not in {m.device_id for m in frames.snapshot()}
    assert 'mid-frame' in bridge.output()


def test_allowlist_and_max_clients_refuse_with_a_reply(ros_node, probes, node_process,
                                                       tmp_path):
    _, diagnostics = probes
    bridge, port = start_bridge(node_process, tmp_path, allow='127.0.0.1', max_clients=1)
    intruder = client(port, source='127.0.0.2')
    answer = reply(intruder)
    assert answer['error'] == 'rejected_clients' and answer['closing'] is True
    first = client(port)
    first.sendall(encode_json_line(values_with(0.1)))
    second = client(port)
    assert reply(second)['error'] == 'over_capacity'
    assert wait_until(lambda: stats(diagnostics).get('rejected_clients') == '1'
                      and stats(diagnostics).get('over_capacity') == '1'), stats(diagnostics)
    assert '127.0.0.2' in bridge.output()


def test_unknown_framing_is_refused_and_closed(ros_node, probes, node_process, tmp_path):
    _, diagnostics = probes
    _, port = start_bridge(node_process, tmp_path)
    sock = client(port)
    sock.sendall(b'GET / HTTP/1.1\r\n\r\n')
    answer = reply(sock)
    assert answer['error'] == 'framing_errors' and 'unknown framing' in answer['message']
    assert sock.recv(100) == b''
    assert wait_until(lambda: stats(diagnostics).get('framing_errors') == '1')


def test_rate_cap_per_client(ros_node, probes, node_process, tmp_path):
    frames, diagnostics = probes
    _, port = start_bridge(node_process, tmp_path, max_rate_hz=10.0)
    sock = client(port)
    assert send_until_seen(frames, sock, encode_json_line(values_with(0.1), device_id='r'), 'r')
    for _ in range(100):
        sock.sendall(encode_json_line(values_with(0.2), device_id='r'))
        time.sleep(0.002)
    assert wait_until(lambda: int(stats(diagnostics).get('rate_capped', 0)) > 50), \
        stats(diagnostics)


def test_the_bridge_refuses_the_network_without_an_allowlist(node_process, tmp_path):
    bridge = node_process('face_capture', 'tcp_bridge', params={
        'port': free_port(socket.SOCK_STREAM), 'bind_address': '0.0.0.0',
        'performer_calibration_dir': str(tmp_path / 'calib')})
    assert wait_until(lambda: not bridge.alive, 15.0)
    assert bridge.proc.returncode != 0
    assert 'tcp_bridge:' in bridge.output() and 'launch argument tcp_allow' in bridge.output()
