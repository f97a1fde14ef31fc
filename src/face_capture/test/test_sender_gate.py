"""PacketGate and the kernel socket filter: who may drive the face over UDP (issue 15, 7).
The filter is checked with real loopback sockets (127.0.0.2 is loopback too)."""
import ipaddress
import socket
import uuid

import numpy as np
import pytest

from face_capture import sender_gate as bpf  # the kernel filter part
from face_capture.livelink import MAX_PACKET_BYTES, MIN_PACKET_BYTES, pack_packet
from face_capture.sender_gate import (
    MAX_LOGGED_PER_KIND,
    GateConfigError,
    PacketGate,
    Verdict,
    effective_allowlist,
    parse_allowlist,
)
from face_common.arkit import NUM_CHANNELS

VALUES = np.full(NUM_CHANNELS, 0.25, np.float32)
PHONE = ('127.0.0.1', 50000)


def frame(device='PHONE-A', number=1):
    return pack_packet(device, 'iPhone', number, VALUES)


def test_allowlist_takes_a_list_or_the_comma_separated_string_launch_passes():
    expected = [ipaddress.IPv4Network('192.168.1.23/32'), ipaddress.IPv4Network('10.0.0.0/8')]
    assert parse_allowlist('192.168.1.23, 10.0.0.0/8') == expected
    assert parse_allowlist(['192.168.1.23', '10.0.0.0/8']) == expected
    assert parse_allowlist('') == []
    for bad in ('192.168.1.300', 'phone', '::1'):
        with pytest.raises(GateConfigError, match='allow'):
            parse_allowlist(bad)


def test_empty_allowlist_means_loopback_on_loopback_and_is_refused_on_the_network():
    assert effective_allowlist('127.0.0.1', '') == [ipaddress.IPv4Network('127.0.0.0/8')]
    for bind in ('0.0.0.0', '192.168.1.5'):
        with pytest.raises(GateConfigError, match=r'allow:=192\.168\.1\.23'):
            effective_allowlist(bind, '')
    assert effective_allowlist('0.0.0.0', '192.168.1.23') == parse_allowlist('192.168.1.23')
    with pytest.raises(GateConfigError, match='bind_address'):
        effective_allowlist('localhost:1', '')


def test_senders_outside_the_allowlist_are_rejected_and_reported_once():
    gate = PacketGate(parse_allowlist('127.0.0.1/32, 10.1.0.0/16'))
    assert gate.admit(frame(), PHONE, 0.0).verdict is Verdict.ACCEPT
    assert gate.admit(frame(), ('10.1.200.3', 9), 0.0).verdict is Verdict.ACCEPT
    decisions = [gate.admit(frame(), ('127.0.0.2', 9), 0.0) for _ in range(3)]
    assert [d.verdict for d in decisions] == [Verdict.SENDER_REJECTED] * 3
    assert [d.first for d in decisions] == [True, False, False]
    assert gate.admit(frame(), ('10.2.0.1', 9), 0.0).first
    assert gate.counters['rejected_senders'] == 4
    assert PacketGate(parse_allowlist('0.0.0.0/0')).admit(frame(), ('8.8.8.8', 1), 0.0).verdict \
        is Verdict.ACCEPT


def test_precheck_rejects_sizes_and_versions_before_any_parse():
    gate = PacketGate(parse_allowlist('127.0.0.1'))
    packet = frame()
    for bad in (b'', packet[:MIN_PACKET_BYTES - 1], b'\x06' * (MAX_PACKET_BYTES + 1),
                b'\x05' + packet[1:]):
        decision = gate.admit(bad, PHONE, 0.0)
        assert decision.verdict is Verdict.PRECHECK_FAILED and decision.detail
        assert not decision.first                    # the node throttles these by time
    assert gate.counters['precheck_rejects'] == 4
    # a memoryview (what the receive loop hands over) is checked the same way
    assert gate.admit(memoryview(packet), PHONE, 0.0).verdict is Verdict.ACCEPT


def test_a_locked_device_id_turns_other_devices_away_and_names_them_once():
    gate = PacketGate(parse_allowlist('127.0.0.1'), device_id='PHONE-A')
    assert gate.admit(frame('PHONE-A'), PHONE, 0.0).verdict is Verdict.ACCEPT
    assert gate.admit(pack_packet('PHONE-A', 'iPhone', 2), PHONE, 0.0).verdict \
        is Verdict.ACCEPT                                               # no-face packet
    first, again = (gate.admit(frame('PHONE-B'), PHONE, 0.0) for _ in range(2))
    assert (first.verdict, first.first, first.detail) == (Verdict.OTHER_DEVICE, True, 'PHONE-B')
    assert (again.verdict, again.first) == (Verdict.OTHER_DEVICE, False)
    assert gate.admit(frame('PHONE-AB'), PHONE, 0.0).verdict is Verdict.OTHER_DEVICE
    junk = b'\x06\x7f\xff\xff\xff' + bytes(100)           # not even a readable device id
    assert gate.admit(junk, PHONE, 0.0).verdict is Verdict.PRECHECK_FAILED
    assert gate.counters['other_device_frames'] == 3
    assert gate.diagnostic_values()['locked_device_id'] == 'PHONE-A'


def test_a_flood_of_made_up_device_ids_names_only_the_first_ones():
    gate = PacketGate(parse_allowlist('127.0.0.1'), device_id='PHONE-A')
    decisions = [gate.admit(frame(f'FAKE-{i}'), PHONE, 0.0) for i in range(100)]
    named = [d for d in decisions if d.first]
    assert len(named) == MAX_LOGGED_PER_KIND and named[-1].last_logged
    assert not any(d.last_logged for d in named[:-1])
    assert gate.counters['other_device_frames'] == 100


def test_rate_cap_per_sender_allows_a_burst_then_the_configured_rate():
    gate = PacketGate(parse_allowlist('127.0.0.1'), max_rate_hz=120.0)
    packet = frame()
    at_once = [gate.admit(packet, PHONE, 10.0).verdict for _ in range(100)]
    assert at_once.count(Verdict.ACCEPT) == 60               # half a second of burst
    assert at_once[60:] == [Verdict.RATE_CAPPED] * 40
    # a new source port (a new socket per packet) is the same sender: no fresh burst
    assert {gate.admit(packet, ('127.0.0.1', port), 10.0).verdict
            for port in range(50001, 50101)} == {Verdict.RATE_CAPPED}
    # a steady 60 Hz phone is never capped
    steady = PacketGate(parse_allowlist('127.0.0.1'))
    assert all(steady.admit(packet, PHONE, i / 60.0).verdict is Verdict.ACCEPT
               for i in range(6000))
    # at 240 Hz, about the cap (120/s) gets through after the burst is spent
    flood = PacketGate(parse_allowlist('127.0.0.1'))
    passed = sum(flood.admit(packet, PHONE, i / 240.0).verdict is Verdict.ACCEPT
                 for i in range(2400))
    assert 60 + 1190 <= passed <= 60 + 1210
    assert gate.counters['rate_capped'] == 140


# ---- the kernel filter, with real sockets --------------------------------------------------
@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def delivered(receiver, payload, source='127.0.0.1') -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind((source, 0))
        sender.sendto(payload, receiver.getsockname())
    try:
        return receiver.recv(MAX_PACKET_BYTES + 1) == payload
    except TimeoutError:
        return False


def test_kernel_filter_drops_disallowed_senders_junk_and_other_devices(receiver):
    device = str(uuid.uuid4()).upper()
    program = bpf.kernel_filter(parse_allowlist('127.0.0.1/32'), device)
    bpf.attach_kernel_filter(receiver, program)
    assert delivered(receiver, frame(device))
    assert delivered(receiver, pack_packet(device, 'iPhone', 3))            # no face
    assert not delivered(receiver, frame(device), source='127.0.0.2')
    assert not delivered(receiver, frame('PHONE-B'))
    assert not delivered(receiver, b'\x05' + frame(device)[1:])
    assert not delivered(receiver, frame(device)[:20])
    assert not delivered(receiver, b'\x06' + bytes(MAX_PACKET_BYTES))
    assert bpf.kernel_drops(receiver) == '5'


def test_kernel_filter_without_a_device_checks_sender_size_and_version(receiver):
    bpf.attach_kernel_filter(receiver, bpf.kernel_filter(parse_allowlist('127.0.0.0/30')))
    assert delivered(receiver, frame('PHONE-A'))
    assert delivered(receiver, frame('PHONE-B'), source='127.0.0.2')
    assert not delivered(receiver, frame('PHONE-A'), source='127.0.0.4')
    assert not delivered(receiver, b'\x05' * 100)
    # attaching again replaces the filter
    bpf.attach_kernel_filter(receiver, bpf.kernel_filter(parse_allowlist('0.0.0.0/0')))
    assert delivered(receiver, frame('PHONE-A'), source='127.0.0.4')


def test_kernel_filter_refuses_a_device_id_too_long_for_bpf_jumps():
    with pytest.raises(GateConfigError, match='too long'):
        bpf.kernel_filter(parse_allowlist('127.0.0.1'), 'x' * 1000)
