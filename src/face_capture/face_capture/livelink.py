"""Live Link Face (Epic Games iOS app) UDP packets, version 6: parse and pack.

Layout, big-endian: uint8 version | string device_id | string subject | int32 frame |
float32 sub_frame | int32 rate numerator | int32 rate denominator | uint8 count |
count x float32 values. A string is an int32 byte length followed by UTF-8 bytes.

The device id is usually a 36-char UUID but not always, so the parser walks the length
prefixes instead of reading at fixed offsets. When the app sees no face it sends packets
that stop after the frame-rate fields: normal traffic, returned as None.
"""
from dataclasses import dataclass, field
import math
import struct

import numpy as np

from face_common.arkit import NUM_CHANNELS

PACKET_VERSION = 6
DEFAULT_PORT = 11111

_INT32 = struct.Struct('>i')
_TIME_BLOCK = struct.Struct('>ifii')         # frame, sub-frame, rate numerator, denominator
_MAX_STRING_BYTES = 1024                    # far above any real id or subject name
# Datagram size bounds of a v6 packet: a no-face packet with empty strings, and a full frame
# with both strings at their limit. Anything outside cannot parse, so it is dropped unread.
MIN_PACKET_BYTES = 1 + 4 + 4 + _TIME_BLOCK.size
MAX_PACKET_BYTES = MIN_PACKET_BYTES + 2 * _MAX_STRING_BYTES + 1 + 4 * NUM_CHANNELS


class LiveLinkError(ValueError):
    """Base of every error this module raises for bad packet bytes."""


class MalformedPacket(LiveLinkError):
    """The bytes are not a well-formed Live Link Face packet."""


class UnsupportedVersion(LiveLinkError):
    """A packet of another protocol version (v5 from older Unreal builds, or unknown)."""

    def __init__(self, version: int):
        super().__init__(f'unsupported Live Link Face packet version {version} (expected 6)')
        self.version = version


class NonFiniteValues(LiveLinkError):
    """A well-formed packet whose values hold NaN or infinity."""


@dataclass
class LiveLinkFrame:
    """One decoded face frame: 52 blendshapes then 9 rotations, in wire order."""

    device_id: str
    subject: str
    frame_number: int
    sub_frame: float = 0.0
    rate_numerator: int = 60
    rate_denominator: int = 1
    values: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CHANNELS, np.float32))

    @property
    def frame_rate(self) -> float:
        return self.rate_numerator / self.rate_denominator if self.rate_denominator else 0.0


def _read_string(data: bytes, offset: int, what: str):
    if offset + 4 > len(data):
        raise MalformedPacket(f'packet ends inside the {what} length ({len(data)} bytes)')
    (length,) = _INT32.unpack_from(data, offset)
    offset += 4
    if length < 0 or length > _MAX_STRING_BYTES:
        raise MalformedPacket(f'{what} length {length} is out of range')
    if offset + length > len(data):
        raise MalformedPacket(f'{what} needs {length} bytes, packet has {len(data) - offset}')
    try:
        text = bytes(data[offset:offset + length]).decode('utf-8')     # bytes or memoryview
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f'{what} is not UTF-8: {exc}') from None
    return text, offset + length


def precheck(data) -> str:
    """The cheap test a packet must pass before parse_packet: size bounds and version byte.
    Returns '' when it passes, else why not (for the log line)."""
    size = len(data)
    if size < MIN_PACKET_BYTES or size > MAX_PACKET_BYTES:
        return f'{size} bytes, outside {MIN_PACKET_BYTES}..{MAX_PACKET_BYTES}'
    if data[0] != PACKET_VERSION:
        return f'version {data[0]} (expected {PACKET_VERSION})'
    return ''


def device_id_prefix(device_id: str) -> bytes:
    """The bytes every packet of this device starts with after the version byte (the length
    prefix and the id), for comparing a packet against a locked device without parsing it."""
    return _pack_string(device_id)


def packet_device_id(data) -> str:
    """Only the device id of a packet (raises MalformedPacket), for naming a foreign device."""
    return _read_string(data, 1, 'device id')[0]


def parse_packet(data: bytes):
    """Decode one UDP payload.

    Returns a LiveLinkFrame, or None for a no-face packet (the app sees no face).
    Raises UnsupportedVersion, MalformedPacket or NonFiniteValues (all LiveLinkError).
    """
    if not data:
        raise MalformedPacket('empty packet')
    version = data[0]
    if version != PACKET_VERSION:
        raise UnsupportedVersion(version)
    device_id, offset = _read_string(data, 1, 'device id')
    subject, offset = _read_string(data, offset, 'subject name')
    if offset + _TIME_BLOCK.size > len(data):
        raise MalformedPacket(f'packet ends inside the time block ({len(data)} bytes)')
    frame, sub_frame, rate_num, rate_den = _TIME_BLOCK.unpack_from(data, offset)
    offset += _TIME_BLOCK.size
    if offset == len(data):
        return None                                     # no face in view
    count = data[offset]
    offset += 1
    if count != NUM_CHANNELS:
        raise MalformedPacket(f'value count {count}, expected {NUM_CHANNELS}')
    if len(data) != offset + 4 * count:
        raise MalformedPacket(
            f'{count} values need {4 * count} bytes, packet has {len(data) - offset}')
    values = np.frombuffer(data, dtype='>f4', count=count, offset=offset).astype(np.float32)
    if not np.isfinite(values).all():
        raise NonFiniteValues(f'{int((~np.isfinite(values)).sum())} non-finite values')
    if not math.isfinite(sub_frame):
        raise NonFiniteValues('non-finite sub-frame')
    return LiveLinkFrame(device_id, subject, frame, sub_frame, rate_num, rate_den, values)


def _pack_string(text: str) -> bytes:
    raw = text.encode('utf-8')
    return _INT32.pack(len(raw)) + raw


def pack_packet(device_id: str, subject: str, frame_number: int, values=None,
                sub_frame: float = 0.0, rate_numerator: int = 60,
                rate_denominator: int = 1) -> bytes:
    """Encode a v6 packet; values=None gives a no-face packet (no count, no values)."""
    head = (bytes([PACKET_VERSION]) + _pack_string(device_id) + _pack_string(subject)
            + _TIME_BLOCK.pack(frame_number, sub_frame, rate_numerator, rate_denominator))
    if values is None:
        return head
    array = np.asarray(values, dtype='>f4')
    if array.shape != (NUM_CHANNELS,):
        raise ValueError(f'expected {NUM_CHANNELS} values, got shape {array.shape}')
    return head + bytes([NUM_CHANNELS]) + array.tobytes()


def pack_frame(frame: LiveLinkFrame) -> bytes:
    """Encode a LiveLinkFrame (the inverse of parse_packet): the fuzz harness checks that
    every packet the parser accepts re-packs to its own bytes."""
    return pack_packet(frame.device_id, frame.subject, frame.frame_number, frame.values,
                       frame.sub_frame, frame.rate_numerator, frame.rate_denominator)
