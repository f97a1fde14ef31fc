"""The TCP bridge's wire format: framing detection, incremental decoding at every split point,
validation of JSON frames and of length-framed Live Link Face packets."""
import json

import numpy as np
import pytest

from face_capture.livelink import MAX_PACKET_BYTES, pack_packet
from face_capture.tcp_protocol import (
    MAX_LINE_BYTES,
    DecodeError,
    StreamDecoder,
    TcpFrame,
    decode_json_line,
    encode_binary_frame,
    encode_json_line,
)
from face_common.arkit import HEAD, NUM_CHANNELS, channel_index

VALUES = np.linspace(0.0, 1.0, NUM_CHANNELS, dtype=np.float32)
VALUES[HEAD] = (0.1, -0.2, 0.3)


def feed_in_pieces(data: bytes, size: int):
    decoder = StreamDecoder()
    events = []
    for start in range(0, len(data), size):
        events += decoder.feed(data[start:start + size])
    return decoder, events


@pytest.mark.parametrize('size', [1, 3, 7, 64, 100000])
def test_json_lines_decode_the_same_at_every_split(size):
    data = b''.join(encode_json_line(VALUES, n, 'me', 'dev', 12.5) for n in range(3))
    decoder, events = feed_in_pieces(data, size)
    assert decoder.framing == 'json' and decoder.pending == 0
    assert [e.frame_number for e in events] == [0, 1, 2]
    assert all(isinstance(e, TcpFrame) for e in events)
    np.testing.assert_allclose(events[0].values, VALUES, atol=1e-6)
    assert (events[0].subject, events[0].device_id, events[0].timestamp) == ('me', 'dev', 12.5)


@pytest.mark.parametrize('size', [1, 5, 300, 100000])
def test_binary_frames_decode_the_same_at_every_split(size):
    packets = [pack_packet('DEV', 'subj', n, VALUES) for n in range(3)]
    packets.append(pack_packet('DEV', 'subj', 3))                   # no face
    data = b''.join(encode_binary_frame(p) for p in packets)
    decoder, events = feed_in_pieces(data, size)
    assert decoder.framing == 'binary'
    assert [e.frame_number for e in events] == [0, 1, 2, None]      # livelink: no fields
    np.testing.assert_array_equal(events[1].values, VALUES)
    assert events[3].values is None


def test_blendshapes_object_form_is_case_insensitive_and_fills_zeros():
    frame = decode_json_line(json.dumps({'blendshapes': {'eyeBlinkLeft': 0.5, 'JawOpen': 1},
                                         'head_rotation': [0.1, 0.2, 0.3]}).encode())
    assert isinstance(frame, TcpFrame)
    assert frame.values[channel_index('EyeBlinkLeft')] == 0.5
    assert frame.values[channel_index('JawOpen')] == 1.0
    assert frame.values[channel_index('HeadPitch')] == pytest.approx(0.2)
    assert np.count_nonzero(frame.values) == 5


def test_out_of_range_weights_pass_to_the_clamping_base():
    frame = decode_json_line(b'{"names": ["JawOpen"], "weights": [1.5]}')
    assert frame.values[channel_index('JawOpen')] == 1.5


def test_face_tracked_false_is_a_no_face_frame():
    frame = decode_json_line(b'{"face_tracked": false, "frame_number": 9}')
    assert frame.values is None and frame.frame_number == 9


@pytest.mark.parametrize('line, kind, reason', [
    (b'{"names": ["JawOpen"', 'bad_json', 'not JSON'),
    (b'\xff\xfe', 'bad_json', 'not JSON'),
    (b'[1, 2]', 'invalid_frames', 'JSON object'),
    (b'{}', 'invalid_frames', 'either'),
    (b'{"names": ["JawOpen"], "weights": [0.1], "blendshapes": {}}', 'invalid_frames', 'either'),
    (b'{"names": ["Smirk"], "weights": [0.1]}', 'invalid_frames', 'ARKit'),
    (b'{"names": ["HeadYaw"], "weights": [0.1]}', 'invalid_frames', 'ARKit'),
    (b'{"names": ["JawOpen", "jawopen"], "weights": [0.1, 0.2]}', 'invalid_frames', 'twice'),
    (b'{"names": ["JawOpen"], "weights": [0.1, 0.2]}', 'invalid_frames', '1 names but 2'),
    (b'{"names": ["JawOpen"], "weights": [NaN]}', 'invalid_frames', 'not finite'),
    (b'{"names": ["JawOpen"], "weights": [Infinity]}', 'invalid_frames', 'not finite'),
    (b'{"names": ["JawOpen"], "weights": [1e400]}', 'invalid_frames', 'not finite'),
    (b'{"names": ["JawOpen"], "weights": ["0.1"]}', 'invalid_frames', 'not a number'),
    (b'{"names": ["JawOpen"], "weights": [true]}', 'invalid_frames', 'not a number'),
    (b'{"blendshapes": {"JawOpen": 0.1}, "head_rotation": [0, 0]}', 'invalid_frames', 'yaw'),
    (b'{"blendshapes": {"JawOpen": 0.1}, "head_rotation": [90, 0, 0]}', 'invalid_frames',
     'degrees'),
    (b'{"blendshapes": {}, "timestamp": -1}', 'invalid_frames', 'negative'),
    (b'{"blendshapes": {}, "frame_number": 1.5}', 'invalid_frames', 'frame_number'),
    (b'{"blendshapes": {}, "colour": 1}', 'invalid_frames', 'unknown keys: colour'),
    (b'{"blendshapes": {}, "subject": "' + b'x' * 300 + b'"}', 'invalid_frames', 'subject'),
    (b'[' * 100000, 'bad_json', 'not JSON'),
])
def test_bad_lines_are_errors_that_keep_the_connection(line, kind, reason):
    decoder = StreamDecoder()
    assert decoder.feed(b'\n') == []                        # the framing is JSON lines now
    events = decoder.feed(line[:MAX_LINE_BYTES - 1] + b'\n' + encode_json_line(VALUES, 7))
    assert isinstance(events[0], DecodeError), events[0]
    assert (events[0].kind, events[0].fatal) == (kind, False)
    assert reason in events[0].message
    assert isinstance(events[1], TcpFrame) and events[1].frame_number == 7
    reply = json.loads(events[0].reply())
    assert reply['error'] == kind and reply['closing'] is False


def test_an_over_long_line_closes_the_connection_without_waiting_for_its_end():
    decoder = StreamDecoder()
    events = decoder.feed(b'{"names": [' + b' ' * MAX_LINE_BYTES)
    assert [(e.kind, e.fatal) for e in events] == [('line_too_long', True)]
    assert decoder.closed and decoder.pending == 0
    assert decoder.feed(encode_json_line(VALUES)) == []


@pytest.mark.parametrize('length', [0, 3, MAX_PACKET_BYTES + 1, 2**32 - 1])
def test_an_impossible_length_prefix_closes_the_connection(length):
    decoder = StreamDecoder()
    events = decoder.feed(length.to_bytes(4, 'big') + b'\x06' * 64)
    assert [(e.kind, e.fatal) for e in events] == [('framing_errors', True)]
    assert decoder.closed


def test_a_bad_packet_body_keeps_the_binary_framing():
    bad = bytearray(pack_packet('DEV', 's', 1, VALUES))
    bad[0] = 5                                                   # version 5
    good = pack_packet('DEV', 's', 2, VALUES)
    events = StreamDecoder().feed(encode_binary_frame(bytes(bad)) + encode_binary_frame(good))
    assert events[0].kind == 'invalid_frames' and 'version 5' in events[0].message
    assert events[1].frame_number == 2


@pytest.mark.parametrize('first', [b'G', b'\x06', b'\x01'])
def test_an_unknown_first_byte_is_refused(first):
    decoder = StreamDecoder()
    events = decoder.feed(first + b'ET / HTTP/1.1\r\n')
    assert events[0].fatal and 'unknown framing' in events[0].message
    assert decoder.closed


def test_a_client_that_stops_mid_frame_leaves_pending_bytes():
    decoder = StreamDecoder()
    data = encode_binary_frame(pack_packet('DEV', 's', 1, VALUES))
    assert decoder.feed(data[:50]) == []
    assert decoder.pending == 50


@pytest.mark.parametrize('framing', ['json', 'binary'])
def test_send_take_over_tcp_in_both_framings(framing):
    import socket
    import threading

    from face_capture.bundled import bundled_take_path
    from face_capture.send_take import send_take
    from face_capture.takes import read_take
    take = read_take(bundled_take_path())
    received = bytearray()
    with socket.create_server(('127.0.0.1', 0)) as server:
        def serve():
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    received.extend(chunk)
        reader = threading.Thread(target=serve)
        reader.start()
        sent = send_take(take, '127.0.0.1', server.getsockname()[1], rate=20.0, max_frames=5,
                         start_s=94.0, log=lambda line: None, tcp=framing)
        reader.join(5.0)
    events = StreamDecoder().feed(bytes(received))
    first = int(take.times.searchsorted(94.0))
    assert sent == 5 and len(events) == 5
    assert [e.frame_number for e in events] == list(take.frame_numbers[first:first + 5])
    np.testing.assert_allclose(events[0].values, take.values[first], atol=1e-5)
