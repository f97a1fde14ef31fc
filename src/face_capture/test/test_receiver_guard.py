"""Only the allowed sender drives the face, and a neutral capture never stalls the node
(issue 15, items 7 and 10): the livelink_receiver in its own process, real loopback UDP
(127.0.0.2 is loopback too, so it stands in for another machine), real rclpy calls."""
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from test_nodes import TOPIC, Phone, connected, diag_values, start_receiver

from conftest import free_port, wait_until
from face_common import qos
from face_common.arkit import NUM_CHANNELS
from face_msgs.msg import Blendshapes
from face_msgs.srv import CaptureNeutral

pytestmark = pytest.mark.ros

VALUES = np.full(NUM_CHANNELS, 0.25, np.float32)
NODE = 'livelink_receiver'


@pytest.fixture
def probes(ros_node):
    return (ros_node.subscribe(Blendshapes, TOPIC),
            ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS))


def stats(diagnostics):
    return diag_values(diagnostics, NODE)


def receiver_with_phone(ros_node, frames, node_process, tmp_path, **params):
    """A receiver on a free port and a phone whose frames it publishes (device locked)."""
    port = free_port()
    receiver = start_receiver(node_process, tmp_path, port, **params)
    phone = Phone(port)
    assert connected(ros_node, frames, phone, VALUES), receiver.output()
    return receiver, phone


def settled(diagnostics, key):
    """The counter's value once two diagnostics periods in a row agree (nothing in flight)."""
    seen = []

    def stable():
        seen.append(stats(diagnostics).get(key))
        return len(seen) > 3 and seen[-1] is not None and seen[-1] == seen[-4]
    wait_until(stable, 10.0, 0.1)
    return int(seen[-1])


def test_frames_of_a_second_device_are_dropped_counted_and_logged_once(ros_node, probes,
                                                                       node_process, tmp_path):
    frames, diagnostics = probes
    receiver, phone = receiver_with_phone(ros_node, frames, node_process, tmp_path)
    other = Phone(phone.port)
    for _ in range(30):                                   # interleaved, as in the report
        other.send(VALUES)
        phone.send(VALUES)
    wait_until(lambda: stats(diagnostics).get('other_device_frames') == '30')
    values = stats(diagnostics)
    assert values['other_device_frames'] == '30'
    assert values['locked_device_id'] == phone.device
    assert {m.device_id for m in frames.snapshot()} == {phone.device}
    log = receiver.output()
    assert log.count(f"frames of device '{other.device}'") == 1
    assert f"locked to device '{phone.device}'" in log


def test_a_sender_outside_the_allowlist_is_dropped_counted_and_logged_once(
        ros_node, probes, node_process, tmp_path):
    frames, diagnostics = probes
    port = free_port()
    receiver = start_receiver(node_process, tmp_path, port, bind_address='127.0.0.1',
                              allow='127.0.0.1')
    intruder = Phone(port, source='127.0.0.2')
    assert wait_until(lambda: 'listening for Live Link Face' in receiver.output(), 15.0)
    for _ in range(25):                   # first, so it would have taken the device lock
        intruder.send(VALUES)
    phone = Phone(port)
    assert connected(ros_node, frames, phone, VALUES), receiver.output()
    wait_until(lambda: stats(diagnostics).get('rejected_senders') == '25')
    values = stats(diagnostics)
    assert values['rejected_senders'] == '25'
    assert values['bind_address'] == f'127.0.0.1:{port}' and values['allow'] == '127.0.0.1/32'
    assert values['locked_device_id'] == phone.device
    assert {m.device_id for m in frames.snapshot()} == {phone.device}
    assert receiver.output().count('127.0.0.2 is not in allow') == 1


def test_a_sender_over_the_rate_cap_is_capped_counted_and_logged_once(ros_node, probes,
                                                                     node_process, tmp_path):
    frames, diagnostics = probes
    receiver, phone = receiver_with_phone(ros_node, frames, node_process, tmp_path,
                                          max_rate_hz=60.0)
    published = settled(diagnostics, 'published')
    for _ in range(300):                             # as fast as Python sends: far over 60/s
        phone.send(VALUES)
    capped = wait_until(lambda: int(stats(diagnostics).get('rate_capped', 0)) > 0
                        and settled(diagnostics, 'published'))
    assert capped
    values = stats(diagnostics)
    assert int(values['rate_capped']) + int(values['published']) - published == 300
    assert int(values['rate_capped']) >= 200          # a 30-packet burst, then 60/s
    assert values['max_rate_hz'] == '60'
    assert receiver.output().count('packets/s: the excess is dropped') == 1


def test_kernel_filter_drops_a_disallowed_sender_before_python(ros_node, probes, node_process,
                                                                tmp_path):
    frames, diagnostics = probes
    _, phone = receiver_with_phone(ros_node, frames, node_process, tmp_path,
                                   allow='127.0.0.1', kernel_filter='always')
    intruder = Phone(phone.port, source='127.0.0.2')
    for _ in range(40):
        intruder.send(VALUES)
    wait_until(lambda: stats(diagnostics).get('kernel_drops') == '40')
    values = stats(diagnostics)
    assert values['kernel_drops'] == '40' and values['rejected_senders'] == '0'
    assert values['kernel_filter'] == f'on (device {phone.device})'
    assert {m.device_id for m in frames.snapshot()} == {phone.device}


def test_a_flood_of_malformed_packets_does_not_starve_the_phone(ros_node, probes,
                                                                 node_process, tmp_path):
    frames, diagnostics = probes
    receiver, phone = receiver_with_phone(ros_node, frames, node_process, tmp_path)
    published = settled(diagnostics, 'published')
    junk = [b'\x06' + bytes(np.random.default_rng(i).integers(0, 256, 60 + i % 300, np.uint8))
            for i in range(512)]
    flooder = Phone(phone.port)
    flooding = threading.Event()

    def flood():
        flooding.set()
        for i in range(20000):
            flooder.send_raw(junk[i % len(junk)])
        flooding.clear()
    thread = threading.Thread(target=flood)
    thread.start()
    wait_until(flooding.is_set)
    sent = 0
    while flooding.is_set() or sent < 10:            # the phone at 60 Hz through the flood
        phone.send(VALUES)
        sent += 1
        time.sleep(1 / 60)
    thread.join()
    wait_until(lambda: stats(diagnostics).get('published') == str(published + sent), 10.0)
    values = stats(diagnostics)
    assert int(values['published']) == published + sent, values
    assert values['dropped_frames'] == '0'
    # the first rejects in Python; once they exceed the flood rate, in the kernel (auto)
    assert int(values['precheck_rejects']) + int(values['kernel_drops']) == 20000
    assert values['kernel_filter'] == f'on (device {phone.device})'
    assert 'flood: over 1000 rejected packets/s' in receiver.output()
    assert receiver.alive


def test_neutral_capture_keeps_the_node_serving_while_it_collects(ros_node, probes,
                                                                   node_process, tmp_path):
    frames, diagnostics = probes
    receiver, phone = receiver_with_phone(ros_node, frames, node_process, tmp_path)
    stop = threading.Event()
    streamer = threading.Thread(target=phone.stream, args=(VALUES, stop), daemon=True)
    streamer.start()
    client = ros_node.node.create_client(CaptureNeutral, '/face/human/capture_neutral')
    assert client.wait_for_service(timeout_sec=10.0)
    answers = []
    try:
        # far more frames than 3 s hold: it collects for the whole timeout, then gives up
        first = client.call_async(CaptureNeutral.Request(profile='slow', num_frames=100000,
                                                         timeout_s=3.0))
        first.add_done_callback(lambda f: answers.append(('first', f.result())))
        diagnostics.clear()
        frames.clear()
        second = client.call_async(CaptureNeutral.Request(profile='eager', num_frames=5))
        second.add_done_callback(lambda f: answers.append(('second', f.result())))
        assert wait_until(lambda: len(answers) == 2, 15.0), receiver.output()
    finally:
        stop.set()
        streamer.join()
    # the second request was answered while the first still collected, not queued behind it
    assert [name for name, _ in answers] == ['second', 'first']
    assert not answers[0][1].success and 'running' in answers[0][1].message
    assert not answers[1][1].success and 'timed out' in answers[1][1].message
    # during those 3 s: diagnostics every period, frames at the input rate
    during = [a for a in diagnostics.snapshot() if any(s.name.endswith(NODE) for s in a.status)]
    assert len(during) >= 5                               # 0.2 s period: ~15 in 3 s
    published = [m for m in frames.snapshot() if m.face_tracked]
    assert len(published) >= 0.7 * 60 * 3.0


def test_receiver_refuses_the_network_without_an_allowlist(node_process, tmp_path):
    receiver = start_receiver(node_process, tmp_path, free_port(), bind_address='0.0.0.0')
    assert wait_until(lambda: not receiver.alive, 15.0)
    assert receiver.proc.returncode != 0
    assert 'allow:=192.168.1.23' in receiver.output()
