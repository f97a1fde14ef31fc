"""TCP bridge wire format: one port, two framings, detected per connection. ROS-free.

A connection's first byte picks its framing for the rest of the connection:
- `{` or whitespace: newline-delimited JSON, one object per line (UTF-8, at most
  MAX_LINE_BYTES bytes with its newline):
    {"names": [ARKit names], "weights": [0..1, ...]}  or  {"blendshapes": {name: weight}}
  optional: "head_rotation", "left_eye_rotation", "right_eye_rotation" ([yaw, pitch, roll],
  radians), "timestamp" (s, sender clock), "frame_number" (int), "subject", "device_id"
  (strings), "face_tracked" (false: the performer is out of view, no weights needed).
  Names are ARKit blendshape names, matched case-insensitively (ARKit's eyeBlinkLeft and
  Live Link's EyeBlinkLeft both work); channels not named are 0.
- 0x00: length-framed Live Link Face binary: a 4-byte big-endian unsigned length, then that
  many bytes of a Live Link Face v6 packet (the UDP payload, parsed by livelink.parse_packet).
  A valid length is below 2**24, so its first byte is always 0x00.
Anything else is refused at the first byte.

Validation: weights must be finite numbers; values outside 0..1 are passed on and clamped
(and counted as clamped_values) by the shared source-node base, exactly like UDP frames, so a
sender's float overshoot (1.0000001) does not cost a frame. Rotations must be finite and within
+-MAX_ROTATION_RAD. Unknown keys, unknown or repeated names, mismatched lengths are rejected.

Errors: a bad line or a bad packet body loses one frame and the connection continues; an
over-long line, an impossible length prefix or an unknown framing byte loses the framing, so the
connection is closed (DecodeError.fatal). Either way the sender gets one error reply line.
"""
from dataclasses import dataclass
import json
import math
import struct

import numpy as np

from face_capture.livelink import (
    MAX_PACKET_BYTES,
    MIN_PACKET_BYTES,
    LiveLinkError,
    parse_packet,
)
from face_common.arkit import BLENDSHAPE_NAMES, HEAD, LEFT_EYE, NUM_CHANNELS, RIGHT_EYE

DEFAULT_TCP_PORT = 11112
MAX_LINE_BYTES = 16 * 1024          # a full 52-name frame is about 2.5 KiB
MAX_TEXT_CHARS = 256                # subject and device_id
MAX_ROTATION_RAD = 2 * math.pi
LENGTH_PREFIX = struct.Struct('>I')
JSON, BINARY = 'json', 'binary'

_BLENDSHAPE_INDEX = {name.lower(): i for i, name in enumerate(BLENDSHAPE_NAMES)}
_ROTATION_SLICES = {'head_rotation': HEAD, 'left_eye_rotation': LEFT_EYE,
                    'right_eye_rotation': RIGHT_EYE}
_KEYS = frozenset(('names', 'weights', 'blendshapes', 'timestamp', 'frame_number', 'subject',
                   'device_id', 'face_tracked', *_ROTATION_SLICES))
_JSON_START = frozenset(b'{ \t\r\n')


@dataclass
class TcpFrame:
    """One decoded frame: 61 wire-order values (finite), or values=None when no face."""

    values: np.ndarray | None
    frame_number: int | None = None
    subject: str = ''
    device_id: str = ''
    timestamp: float | None = None


@dataclass
class DecodeError:
    kind: str                       # the diagnostics counter it goes to
    message: str
    fatal: bool = False             # framing lost: the connection must be closed

    def reply(self) -> bytes:
        """The line sent back to the client (JSON in both framings)."""
        return (json.dumps({'error': self.kind, 'message': self.message,
                            'closing': self.fatal}) + '\n').encode()


class FrameInvalid(ValueError):
    """A well-formed JSON line that is not a valid frame."""


def detect_framing(first_byte: int) -> str | None:
    if first_byte == 0:
        return BINARY
    if first_byte in _JSON_START:
        return JSON
    return None


class StreamDecoder:
    """Incremental decoder for one connection: feed() the bytes as they arrive, get back the
    frames and errors they complete. Buffers at most one frame (MAX_LINE_BYTES or one length
    prefix plus MAX_PACKET_BYTES), so a client can never make it grow without bound."""

    def __init__(self):
        self.framing = None
        self.closed = False
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held (a client that vanishes now left mid-frame)."""
        return len(self._buffer)

    def feed(self, data) -> list:
        if self.closed or not data:
            return []
        if self.framing is None:
            self.framing = detect_framing(data[0])
            if self.framing is None:
                self.closed = True
                return [DecodeError('framing_errors', f'unknown framing: first byte '
                                    f'0x{data[0]:02x} is neither "{{" (JSON lines) nor 0x00 '
                                    '(4-byte big-endian length + Live Link Face packet)', True)]
        self._buffer += data
        events = self._json_lines() if self.framing == JSON else self._binary_frames()
        if events and isinstance(events[-1], DecodeError) and events[-1].fatal:
            self.closed = True
            self._buffer.clear()
        return events

    def _json_lines(self) -> list:
        events = []
        start = 0
        buffer = self._buffer
        while True:
            end = buffer.find(b'\n', start)
            if end < 0:
                break
            if end - start + 1 > MAX_LINE_BYTES:
                events.append(_line_too_long())
                return events
            line = bytes(buffer[start:end]).strip()
            start = end + 1
            if line:
                events.append(decode_json_line(line))
        del buffer[:start]
        if len(buffer) >= MAX_LINE_BYTES:
            events.append(_line_too_long())
        return events

    def _binary_frames(self) -> list:
        events = []
        start = 0
        buffer = self._buffer
        while len(buffer) - start >= LENGTH_PREFIX.size:
            (length,) = LENGTH_PREFIX.unpack_from(buffer, start)
            if not MIN_PACKET_BYTES <= length <= MAX_PACKET_BYTES:
                events.append(DecodeError('framing_errors', f'length prefix {length} outside '
                                          f'{MIN_PACKET_BYTES}..{MAX_PACKET_BYTES}', True))
                return events
            end = start + LENGTH_PREFIX.size + length
            if end > len(buffer):
                break
            events.append(decode_binary_body(bytes(buffer[start + LENGTH_PREFIX.size:end])))
            start = end
        del buffer[:start]
        return events


def _line_too_long() -> DecodeError:
    return DecodeError('line_too_long', f'line longer than {MAX_LINE_BYTES} bytes', True)


def decode_binary_body(body: bytes):
    """A TcpFrame from one Live Link Face packet, or a DecodeError (the framing stays)."""
    try:
        frame = parse_packet(body)
    except LiveLinkError as exc:
        return DecodeError('invalid_frames', f'Live Link Face packet: {exc}')
    if frame is None:
        return TcpFrame(None)
    return TcpFrame(frame.values, frame.frame_number, frame.subject, frame.device_id)


def decode_json_line(line: bytes):
    """A TcpFrame from one JSON line, or a DecodeError (the connection continues)."""
    try:
        document = json.loads(line)
    except (ValueError, RecursionError) as exc:    # UnicodeDecodeError is a ValueError
        return DecodeError('bad_json', f'not JSON: {exc}'[:200])
    try:
        return frame_from_json(document)
    except FrameInvalid as exc:
        return DecodeError('invalid_frames', str(exc))


def frame_from_json(document) -> TcpFrame:
    """Validate one decoded JSON object (raises FrameInvalid with the reason)."""
    if not isinstance(document, dict):
        raise FrameInvalid(f'a frame is a JSON object, not {type(document).__name__}')
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise FrameInvalid(f'unknown keys: {", ".join(unknown)[:120]}')
    frame = TcpFrame(None, _optional_int(document, 'frame_number'),
                     _optional_text(document, 'subject'), _optional_text(document, 'device_id'),
                     _optional_timestamp(document))
    tracked = document.get('face_tracked', True)
    if not isinstance(tracked, bool):
        raise FrameInvalid('face_tracked must be true or false')
    if not tracked:
        return frame
    values = np.zeros(NUM_CHANNELS, np.float32)
    for name, weight in _named_weights(document):
        values[name] = weight
    for key, where in _ROTATION_SLICES.items():
        if key in document:
            values[where] = _rotation(document[key], key)
    frame.values = values
    return frame


def _named_weights(document):
    """(index, weight) pairs from `names` + `weights` or from `blendshapes`."""
    has_lists = 'names' in document or 'weights' in document
    if has_lists == ('blendshapes' in document):
        raise FrameInvalid('give either "names" and "weights" or "blendshapes"')
    if has_lists:
        names, weights = document.get('names'), document.get('weights')
        if not isinstance(names, list) or not isinstance(weights, list):
            raise FrameInvalid('"names" and "weights" must both be lists')
        if len(names) != len(weights):
            raise FrameInvalid(f'{len(names)} names but {len(weights)} weights')
        pairs = zip(names, weights, strict=False)
    else:
        shapes = document['blendshapes']
        if not isinstance(shapes, dict):
            raise FrameInvalid('"blendshapes" must be an object of name: weight')
        pairs = shapes.items()
    seen = set()
    out = []
    for name, weight in pairs:
        if not isinstance(name, str) or name.lower() not in _BLENDSHAPE_INDEX:
            raise FrameInvalid(f'not an ARKit blendshape name: {str(name)[:60]!r}')
        index = _BLENDSHAPE_INDEX[name.lower()]
        if index in seen:
            raise FrameInvalid(f'{name} given twice')
        seen.add(index)
        out.append((index, _finite(weight, name)))
    return out


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FrameInvalid(f'{what}: not a number')
    try:
        number = float(value)
    except OverflowError:                  # an int beyond float's range
        raise FrameInvalid(f'{what}: not finite') from None
    if not math.isfinite(number) or abs(number) > 3.4e38:
        raise FrameInvalid(f'{what}: not finite')
    return number


def _rotation(value, key: str):
    if not isinstance(value, list) or len(value) != 3:
        raise FrameInvalid(f'{key} must be [yaw, pitch, roll] in radians')
    angles = [_finite(angle, key) for angle in value]
    if any(abs(angle) > MAX_ROTATION_RAD for angle in angles):
        raise FrameInvalid(f'{key}: angles beyond +-2 pi rad (degrees sent as radians?)')
    return angles


def _optional_int(document, key: str):
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise FrameInvalid(f'{key} must be an integer in 0..2**31-1')
    return value


def _optional_text(document, key: str) -> str:
    value = document.get(key, '')
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise FrameInvalid(f'{key} must be a string of at most {MAX_TEXT_CHARS} characters')
    return value


def _optional_timestamp(document):
    value = document.get('timestamp')
    if value is None:
        return None
    seconds = _finite(value, 'timestamp')
    if seconds < 0:
        raise FrameInvalid('timestamp must not be negative')
    return seconds


# ---- encoding (send_take --tcp, tests, benchmarks) ---------------------------------------------
def encode_json_line(values, frame_number: int | None = None, subject: str = '',
                     device_id: str = '', timestamp: float | None = None) -> bytes:
    """One JSON line for 61 wire-order values (None: a no-face line)."""
    document = {}
    if values is None:
        document['face_tracked'] = False
    else:
        array = np.asarray(values, dtype=np.float64)
        document['names'] = list(BLENDSHAPE_NAMES)
        document['weights'] = [round(float(v), 6) for v in array[:len(BLENDSHAPE_NAMES)]]
        for key, where in _ROTATION_SLICES.items():
            document[key] = [round(float(v), 6) for v in array[where]]
    for key, value in (('frame_number', frame_number), ('timestamp', timestamp)):
        if value is not None:
            document[key] = value
    for key, value in (('subject', subject), ('device_id', device_id)):
        if value:
            document[key] = value
    return (json.dumps(document, separators=(',', ':')) + '\n').encode()


def encode_binary_frame(packet: bytes) -> bytes:
    """A Live Link Face packet with its 4-byte big-endian length prefix."""
    return LENGTH_PREFIX.pack(len(packet)) + packet
