"""Live Link Face v6 packets: decoding, encoding, no-face packets, malformed input."""
import struct
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from face_capture.livelink import (
    LiveLinkError,
    MalformedPacket,
    NonFiniteValues,
    UnsupportedVersion,
    pack_packet,
    parse_packet,
)
from face_common.arkit import NUM_CHANNELS, channel_index


def build_packet(device_id: str, subject: str, frame: int, values, version=6,
                 rate=(60, 1), sub_frame=0.0) -> bytes:
    """Independent encoder written from the spec table (not via pack_packet)."""
    def string(text):
        raw = text.encode()
        return struct.pack('>i', len(raw)) + raw
    out = bytes([version]) + string(device_id) + string(subject)
    out += struct.pack('>i', frame) + struct.pack('>f', sub_frame)
    out += struct.pack('>ii', *rate)
    if values is not None:
        out += bytes([len(values)]) + struct.pack(f'>{len(values)}f', *values)
    return out


def sample_values():
    values = np.zeros(NUM_CHANNELS, np.float32)
    values[2] = 0.3939851
    values[60] = -0.044808835
    values[channel_index('JawOpen')] = 0.75
    return values


@pytest.mark.parametrize('device_id', [str(uuid.uuid4()).upper(), uuid.uuid4().hex])
def test_decodes_v6_with_36_and_32_char_ids(device_id):
    assert len(device_id) in (32, 36)
    packet = build_packet(device_id, 'iPhone', 671705, sample_values())
    if len(device_id) == 36:
        assert len(packet) == 312          # the size the spec gives for a 36-char id
    frame = parse_packet(packet)
    assert frame.device_id == device_id
    assert frame.subject == 'iPhone'
    assert frame.frame_number == 671705
    assert (frame.rate_numerator, frame.rate_denominator) == (60, 1)
    assert frame.frame_rate == 60.0
    assert frame.values[2] == pytest.approx(0.3939851)
    assert frame.values[60] == pytest.approx(-0.044808835)   # rotations are not clipped
    assert frame.values[channel_index('JawOpen')] == pytest.approx(0.75)


def test_no_face_packet_returns_none():
    device_id = str(uuid.uuid4())
    packet = build_packet(device_id, 'iPhone', 10, None)
    assert len(packet) == 1 + 4 + len(device_id) + 4 + len('iPhone') + 16   # stops after rate
    assert parse_packet(packet) is None


def test_version_5_is_recognised_and_rejected():
    packet = build_packet('dev', 'iPhone', 1, sample_values(), version=5)
    with pytest.raises(UnsupportedVersion) as info:
        parse_packet(packet)
    assert info.value.version == 5


@pytest.mark.parametrize('cut', [0, 1, 3, 10, 60, 80, 311])
def test_truncated_packets_are_malformed(cut):
    packet = build_packet(str(uuid.uuid4()), 'iPhone', 1, sample_values())
    with pytest.raises(MalformedPacket):
        parse_packet(packet[:cut])


def test_wrong_value_count_and_trailing_bytes_are_malformed():
    with pytest.raises(MalformedPacket):
        parse_packet(build_packet('d', 's', 1, list(range(60))))
    with pytest.raises(MalformedPacket):
        parse_packet(build_packet('d', 's', 1, sample_values()) + b'\0')


def test_negative_or_huge_string_length_is_malformed():
    with pytest.raises(MalformedPacket):
        parse_packet(bytes([6]) + struct.pack('>i', -5) + b'x' * 300)
    with pytest.raises(MalformedPacket):
        parse_packet(bytes([6]) + struct.pack('>i', 2 ** 30) + b'x' * 300)


def test_non_utf8_id_is_malformed():
    packet = bytes([6]) + struct.pack('>i', 2) + b'\xff\xfe' + build_packet('', 's', 1, None)[5:]
    with pytest.raises(MalformedPacket):
        parse_packet(packet)


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), float('-inf')])
def test_non_finite_values_are_rejected(bad):
    values = sample_values()
    values[5] = bad
    with pytest.raises(NonFiniteValues):
        parse_packet(build_packet('d', 's', 1, values))


def test_pack_matches_the_independent_encoder():
    values = sample_values()
    device = str(uuid.uuid4())
    assert pack_packet(device, 'iPhone', 42, values) == build_packet(device, 'iPhone', 42, values)
    assert pack_packet(device, 'iPhone', 42) == build_packet(device, 'iPhone', 42, None)
    with pytest.raises(ValueError):
        pack_packet(device, 'iPhone', 42, values[:10])


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(device_id=st.text(max_size=80), subject=st.text(max_size=40),
       frame=st.integers(-2 ** 31, 2 ** 31 - 1), sub_frame=finite32,
       rate=st.tuples(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-2 ** 31, 2 ** 31 - 1)),
       values=st.lists(finite32, min_size=NUM_CHANNELS, max_size=NUM_CHANNELS))
def test_pack_parse_round_trip(device_id, subject, frame, sub_frame, rate, values):
    packet = pack_packet(device_id, subject, frame, values, sub_frame, *rate)
    decoded = parse_packet(packet)
    assert decoded.device_id == device_id and decoded.subject == subject
    assert decoded.frame_number == frame
    assert decoded.sub_frame == np.float32(sub_frame)
    assert (decoded.rate_numerator, decoded.rate_denominator) == rate
    np.testing.assert_array_equal(decoded.values, np.asarray(values, np.float32))


@settings(max_examples=200, deadline=None)
@given(device_id=st.text(max_size=80), frame=st.integers(-2 ** 31, 2 ** 31 - 1))
def test_no_face_round_trip(device_id, frame):
    assert parse_packet(pack_packet(device_id, 'iPhone', frame)) is None


def test_ten_thousand_random_byte_strings_raise_only_livelink_errors():
    rng = np.random.default_rng(1234)
    valid = build_packet(str(uuid.uuid4()), 'iPhone', 7, sample_values())
    outcomes = {'frame': 0, 'none': 0, 'error': 0}
    for i in range(10_000):
        kind = i % 4
        if kind == 0:                                   # pure noise, any length
            data = rng.bytes(int(rng.integers(0, 400)))
        elif kind == 1:                                 # noise that starts like v6
            data = bytes([6]) + rng.bytes(int(rng.integers(0, 400)))
        elif kind == 2:                                 # valid packet with flipped bytes
            raw = bytearray(valid)
            for pos in rng.integers(0, len(raw), int(rng.integers(1, 6))):
                raw[pos] = int(rng.integers(0, 256))
            data = bytes(raw)
        else:                                           # valid packet cut or extended
            data = valid[:int(rng.integers(0, len(valid) + 1))] + rng.bytes(
                int(rng.integers(0, 3)))
        try:
            result = parse_packet(data)
        except LiveLinkError:
            outcomes['error'] += 1
        else:
            outcomes['none' if result is None else 'frame'] += 1
    assert outcomes['error'] > 5000 and outcomes['frame'] > 100, outcomes


def test_send_take_starts_at_the_offset_over_real_udp():
    import socket

    from face_capture.bundled import bundled_take_path
    from face_capture.send_take import send_take
    from face_capture.takes import read_take
    take = read_take(bundled_take_path())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        sock.settimeout(5.0)
        sent = send_take(take, '127.0.0.1', sock.getsockname()[1], rate=10.0, max_frames=5,
                         start_s=94.0, log=lambda line: None)
        frames = [parse_packet(sock.recv(2048)) for _ in range(sent)]
    first = int(take.times.searchsorted(94.0))
    assert sent == 5
    assert [f.frame_number for f in frames] == list(take.frame_numbers[first:first + 5])
    np.testing.assert_allclose(frames[0].values, take.values[first], atol=1e-6)
