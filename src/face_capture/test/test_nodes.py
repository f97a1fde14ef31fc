"""face_capture nodes in their own processes, exercised through real UDP packets and real
rclpy subscriptions/service calls with the generated face_msgs types."""
import socket
import threading
import time
import uuid

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from std_srvs.srv import Trigger

from conftest import free_port, wait_until
from face_capture.bundled import bundled_take_path
from face_capture.livelink import pack_packet
from face_capture.takes import read_take
from face_common import qos
from face_common.arkit import NUM_BLENDSHAPES, NUM_CHANNELS, channel_index
from face_msgs.msg import Blendshapes
from face_msgs.srv import CaptureNeutral

pytestmark = pytest.mark.ros

TOPIC = '/face/human/blendshapes'


def diag_values(collector, node_name):
    """Key/values of the newest /diagnostics status from node_name."""
    for array in reversed(collector.snapshot()):
        for status in array.status:
            if status.name.endswith(node_name):
                return {kv.key: kv.value for kv in status.values}
    return {}


class Phone:
    """Sends real Live Link Face packets to the receiver over loopback UDP."""

    def __init__(self, port, source='127.0.0.1'):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.device = str(uuid.uuid4()).upper()
        self.frame = 1000

    def send_raw(self, data):
        self.sock.sendto(data, ('127.0.0.1', self.port))

    def send(self, values, frame=None):
        self.frame = self.frame + 1 if frame is None else frame
        self.send_raw(pack_packet(self.device, 'iPhone', self.frame, values))

    def stream(self, values, stop: threading.Event, hz=60.0):
        while not stop.is_set():
            self.send(values)
            time.sleep(1.0 / hz)


def start_receiver(node_process, tmp_path, port, **params):
    return node_process('face_capture', 'livelink_receiver',
                        params={'port': port, 'performer_calibration_dir': str(tmp_path / 'calib'),
                                'diagnostics_period_s': 0.2, **params})


def connected(ros_node, collector, phone, values, timeout=15.0):
    """Send frames until the subscription sees one (discovery takes a moment)."""
    return wait_until(lambda: phone.send(values) or collector.snapshot(), timeout, 0.05)


def test_receiver_publishes_real_udp_frames_and_counts_bad_packets(ros_node, node_process,
                                                                    tmp_path):
    port = free_port()
    frames = ros_node.subscribe(Blendshapes, TOPIC)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    receiver = start_receiver(node_process, tmp_path, port)
    phone = Phone(port)
    values = np.linspace(0, 0.9, NUM_CHANNELS).astype(np.float32)
    values[channel_index('HeadYaw')] = -0.3
    assert connected(ros_node, frames, phone, values), receiver.output()
    time.sleep(0.2)
    first_sent = phone.frame + 1

    for _ in range(20):
        phone.send(values)
        time.sleep(0.005)
    phone.send_raw(pack_packet(phone.device, 'iPhone', phone.frame + 1))   # no face
    phone.send_raw(bytes([5]) + pack_packet(phone.device, 'iPhone', 1, values)[1:])  # v5
    for junk in (b'', b'\x06\x00', b'\x06' + b'garbage' * 10):      # size; size; device id
        phone.send_raw(junk)
    phone.send_raw(pack_packet(phone.device, 'iPhone', 1, values)[:-3])   # parse: truncated
    bad = values.copy()
    bad[3] = np.nan
    phone.send(bad)                                               # non-finite
    phone.send(values, frame=phone.frame - 5)                     # reordered: stale
    high = values.copy()
    high[channel_index('JawOpen')] = 1.5                          # out of range: clamped
    phone.send(high, frame=phone.frame + 10)

    wait_until(lambda: diag_values(diagnostics, 'livelink_receiver').get('stale_frames') == '1')
    received = [m for m in frames.snapshot() if m.frame_number >= first_sent or
                not m.face_tracked]
    tracked = [m for m in received if m.face_tracked]
    assert len(tracked) == 21
    first = tracked[0]
    assert list(first.names)[:3] == ['EyeBlinkLeft', 'EyeLookDownLeft', 'EyeLookInLeft']
    assert len(first.weights) == NUM_BLENDSHAPES == len(first.raw_weights)
    np.testing.assert_allclose(first.weights, values[:NUM_BLENDSHAPES], rtol=1e-6)
    assert first.head_rotation[0] == pytest.approx(-0.3)
    assert first.source == 'livelink_udp' and first.device_id == phone.device
    assert not first.calibrated
    assert [m.frame_number for m in tracked[:20]] == sorted(m.frame_number for m in tracked[:20])
    assert tracked[-1].weights[channel_index('JawOpen')] == 1.0
    assert any(not m.face_tracked for m in received)

    stats = diag_values(diagnostics, 'livelink_receiver')
    assert stats['precheck_rejects'] == '4'      # 3 junk + the v5 packet, never parsed
    assert stats['malformed'] == '1'
    assert stats['non_finite'] == '1'
    assert stats['stale_frames'] == '1'
    assert stats['clamped_values'] == '1'
    assert stats['dropped_frames'] == '5'        # NaN frame (F+1) rejected, next accepted F+6
    assert int(stats['no_face']) >= 1
    assert receiver.alive


def test_receiver_survives_a_flood_of_random_bytes(ros_node, node_process, tmp_path):
    port = free_port()
    frames = ros_node.subscribe(Blendshapes, TOPIC)
    receiver = start_receiver(node_process, tmp_path, port)
    phone = Phone(port)
    values = np.full(NUM_CHANNELS, 0.25, np.float32)
    assert connected(ros_node, frames, phone, values), receiver.output()
    rng = np.random.default_rng(7)
    valid = pack_packet(phone.device, 'iPhone', 5, values)
    for i in range(3000):
        if i % 2:
            phone.send_raw(bytes([6]) + rng.bytes(int(rng.integers(0, 400))))
        else:
            raw = bytearray(valid)
            raw[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))
            phone.send_raw(bytes(raw))
        if i % 100 == 0:
            time.sleep(0.001)
    time.sleep(0.5)
    assert receiver.alive, receiver.output()
    frames.clear()
    phone.frame = 10 ** 6
    assert connected(ros_node, frames, phone, values), 'receiver stopped publishing'


def test_neutral_calibration_round_trip(ros_node, node_process, tmp_path):
    port = free_port()
    frames = ros_node.subscribe(Blendshapes, TOPIC)
    receiver = start_receiver(node_process, tmp_path, port)
    phone = Phone(port)
    neutral = np.full(NUM_CHANNELS, 0.2, np.float32)
    neutral[NUM_BLENDSHAPES:] = 0.05
    assert connected(ros_node, frames, phone, neutral), receiver.output()

    stop = threading.Event()
    streamer = threading.Thread(target=phone.stream, args=(neutral, stop), daemon=True)
    streamer.start()
    try:
        # capture
        result = ros_node.call(CaptureNeutral, '/face/human/capture_neutral',
                               CaptureNeutral.Request(profile='alex', num_frames=20))
        assert result.success, result.message
        assert result.frames_used == 20 and (tmp_path / 'calib' / 'alex.json').is_file()
        frames.clear()
        calibrated = wait_until(lambda: [m for m in frames.snapshot() if m.calibrated])
        msg = calibrated[-1]
        assert msg.calibration_profile == 'alex'
        np.testing.assert_allclose(msg.weights, 0.0, atol=1e-6)
        np.testing.assert_allclose(msg.raw_weights, 0.2, rtol=1e-6)
        np.testing.assert_allclose(msg.head_rotation, 0.0, atol=1e-6)

        # restart: the profile is applied again, without another capture
        receiver.stop()
        receiver = start_receiver(node_process, tmp_path, port)
        frames.clear()
        wait_until(lambda: [m for m in frames.snapshot() if m.calibrated], 15.0)
        after_restart = [m for m in frames.snapshot() if m.face_tracked]
        assert after_restart and all(m.calibration_profile == 'alex' for m in after_restart)
        assert 'profile "alex"' in receiver.output()

        # reset: raw values go out again
        reset = ros_node.call(Trigger, '/face/human/reset_calibration', Trigger.Request())
        assert reset.success
        frames.clear()
        raw = wait_until(lambda: [m for m in frames.snapshot() if not m.calibrated])
        np.testing.assert_allclose(raw[-1].weights, 0.2, rtol=1e-6)
    finally:
        stop.set()
        streamer.join()


def test_neutral_capture_without_a_face_times_out_cleanly(ros_node, node_process, tmp_path):
    port = free_port()
    start_receiver(node_process, tmp_path, port)
    result = ros_node.call(CaptureNeutral, '/face/human/capture_neutral',
                           CaptureNeutral.Request(profile='nobody', num_frames=5, timeout_s=0.5))
    assert not result.success and 'timed out' in result.message
    assert not (tmp_path / 'calib' / 'nobody.json').exists()


def test_take_player_publishes_the_bundled_real_take(ros_node, node_process, tmp_path):
    take = read_take(bundled_take_path())
    frames = ros_node.subscribe(Blendshapes, TOPIC)
    player = node_process('face_capture', 'take_player',
                          params={'rate': 4.0, 'loop': True,
                                  'performer_calibration_dir': str(tmp_path / 'calib')})
    assert wait_until(lambda: len(frames.snapshot()) >= 120, 20.0), player.output()
    received = frames.snapshot()
    by_frame = dict(zip(take.frame_numbers.tolist(), take.values, strict=True))
    matched = 0
    for msg in received:
        expected = by_frame.get(msg.frame_number)
        if expected is not None:
            np.testing.assert_allclose(msg.raw_weights, expected[:NUM_BLENDSHAPES], rtol=1e-6)
            matched += 1
    assert matched >= 100
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in received]
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert 90 < rate < 150           # 30 fps take at x4
    assert 'skipped' in player.output()
