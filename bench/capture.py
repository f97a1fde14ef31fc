"""Capture per-frame path: parse a Live Link Face packet, calibrate it, and the whole
UDP -> livelink_receiver node -> /face/human/blendshapes subscriber hop.

Baselines, measured in the same run:
- parse_packet vs a fixed-offset struct parser (the fragile approach that breaks on device
  ids that are not 36 chars): the price of walking the length prefixes;
- calibration vs a plain array copy;
- UDP -> node -> subscriber vs a bare UDP loopback send/receive: what the ROS hop adds.
Run: make bench (or python bench/capture.py in the activated workspace).
"""
import argparse
import os
from pathlib import Path
import socket
import struct
import sys
import time
import uuid

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BlendshapeProbe, report, time_calls
from face_capture.calibration import NeutralProfile
from face_capture.livelink import pack_packet, parse_packet
from face_common.arkit import NUM_CHANNELS

_FIXED = struct.Struct('>B i 36s i 6s i f i i B 61f')


def fixed_offset_parse(data: bytes):
    return np.array(_FIXED.unpack(data)[10:], np.float32)


def bench_pure(iterations: int) -> None:
    rng = np.random.default_rng(0)
    values = rng.random(NUM_CHANNELS).astype(np.float32)
    packet = pack_packet(str(uuid.uuid4()).upper(), 'iPhone', 1234, values)
    assert len(packet) == _FIXED.size
    report('parse_packet (312-byte v6 packet)', time_calls(lambda: parse_packet(packet),
           iterations), time_calls(lambda: fixed_offset_parse(packet), iterations),
           'fixed-offset parser')
    profile = NeutralProfile('bench', rng.random(NUM_CHANNELS).astype(np.float32) * 0.3, 60, '')
    report('neutral calibration (61 channels)', time_calls(lambda: profile.apply(values),
           iterations), time_calls(lambda: values.copy(), iterations), 'array copy')


def bench_udp_baseline(frames: int, hz: float):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(('127.0.0.1', 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    packet = pack_packet('bench', 'iPhone', 1, np.zeros(NUM_CHANNELS, np.float32))
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter_ns()
        tx.sendto(packet, rx.getsockname())
        rx.recvfrom(2048)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        time.sleep(1.0 / hz)
    return samples


def bench_node_hop(frames: int, hz: float):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    receiver = BlendshapeProbe('livelink_receiver', {'port': str(port)})
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    values = np.full(NUM_CHANNELS, 0.3, np.float32)

    def send(frame):
        tx.sendto(pack_packet('bench', 'iPhone', frame, values), ('127.0.0.1', port))
    try:
        return receiver.timed(send, receiver.wait_for_discovery(send), frames, hz)
    finally:
        receiver.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=20000)
    parser.add_argument('--frames', type=int, default=600, help='frames through the node')
    parser.add_argument('--hz', type=float, default=60.0)
    args = parser.parse_args()
    print(f'== capture per-frame path ({os.cpu_count()} cores)')
    bench_pure(args.iterations)
    baseline = bench_udp_baseline(args.frames, args.hz)
    latencies, sent = bench_node_hop(args.frames, args.hz)
    report(f'UDP -> receiver node -> subscriber ({args.hz:.0f} Hz)', latencies, baseline,
           'bare UDP loopback')
    print(f'frames sent {sent}, received {len(latencies)}, lost {sent - len(latencies)}')


if __name__ == '__main__':
    main()
