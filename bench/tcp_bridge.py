"""TCP bridge per-frame path: decode a JSON line or a length-framed Live Link Face frame, and
the whole TCP -> tcp_bridge node -> /face/human/blendshapes subscriber hop, per framing.

Baselines, measured in the same run:
- StreamDecoder on a JSON line vs json.loads alone (what validation and buffering add);
- StreamDecoder on a binary frame vs parse_packet alone (what the framing adds);
- TCP -> node -> subscriber vs a bare TCP loopback send/receive: what the bridge and ROS add.
End to end: a JSON line sent -> tcp_bridge -> retarget node (exface) -> robot command.
Run: make bench (or python bench/tcp_bridge.py in the activated workspace).
"""
import argparse
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BlendshapeProbe, report, time_calls
from face_capture.livelink import pack_packet, parse_packet
from face_capture.tcp_protocol import StreamDecoder, encode_binary_frame, encode_json_line
from face_common.arkit import NUM_CHANNELS

VALUES = np.random.default_rng(0).random(NUM_CHANNELS).astype(np.float32) * 0.9


def bench_pure(iterations: int) -> None:
    line = encode_json_line(VALUES, 1, 'iPhone', 'bench', 1.0)
    decoder = StreamDecoder()
    decoder.feed(b'\n')
    report(f'StreamDecoder, JSON line ({len(line)} bytes)',
           time_calls(lambda: decoder.feed(line), iterations),
           time_calls(lambda: json.loads(line), iterations), 'json.loads alone')
    packet = pack_packet('bench', 'iPhone', 1, VALUES)
    frame = encode_binary_frame(packet)
    binary = StreamDecoder()
    report(f'StreamDecoder, binary frame ({len(frame)} bytes)',
           time_calls(lambda: binary.feed(frame), iterations),
           time_calls(lambda: parse_packet(packet), iterations), 'parse_packet alone')


def bench_tcp_baseline(frames: int, hz: float):
    with socket.create_server(('127.0.0.1', 0)) as server:
        tx = socket.create_connection(server.getsockname())
        tx.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rx, _ = server.accept()
        line = encode_json_line(VALUES, 1)
        samples = []
        for _ in range(frames):
            t0 = time.perf_counter_ns()
            tx.sendall(line)
            received = 0
            while received < len(line):
                received += len(rx.recv(65536))
            samples.append((time.perf_counter_ns() - t0) / 1e6)
            time.sleep(1.0 / hz)
        tx.close()
        rx.close()
    return samples


def bench_node_hop(framing: str, frames: int, hz: float):
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    bridge = BlendshapeProbe('tcp_bridge', {'port': str(port), 'max_rate_hz': '10000.0'})
    try:
        tx = _connect(port)

        def send(frame):
            if framing == 'json':
                tx.sendall(encode_json_line(VALUES, frame, 'iPhone', 'bench'))
            else:
                tx.sendall(encode_binary_frame(pack_packet('bench', 'iPhone', frame, VALUES)))
        with tx:
            return bridge.timed(send, bridge.wait_for_discovery(send), frames, hz)
    finally:
        bridge.close()


def bench_end_to_end(robot: str, frames: int, hz: float):
    """TCP JSON line sent -> tcp_bridge -> retarget (exface) -> command on /face/robot/command.
    A command carries its human frame's stamp (the bridge's arrival time), so each command is
    matched to the last line sent before that stamp (lines are 1/hz apart, far more than
    the send -> arrival hop)."""
    import bisect

    from face_common import qos, topics
    from face_common.launch_runner import NodeSpec, find_executable
    from face_msgs.msg import ControlValues

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    spec = NodeSpec('face_retarget', 'retarget', 'bench_retarget',
                    params={'robot': robot, 'model': 'exface', 'max_frame_age_s': '1.0'})
    retarget = subprocess.Popen(spec.command(find_executable('face_retarget', 'retarget')),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    bridge = BlendshapeProbe('tcp_bridge', {'port': str(port), 'max_rate_hz': '10000.0'})
    sent_ns, latencies = [], []

    def on_command(msg):
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        at = bisect.bisect_right(sent_ns, stamp)
        if at:
            latencies.append((time.time_ns() - sent_ns[at - 1]) / 1e6)
    bridge.node.create_subscription(ControlValues, topics.COMMAND.name, on_command,
                                    qos.LIVE_STREAM)
    try:
        tx = _connect(port)
        with tx:
            def send(frame):
                sent_ns.append(time.time_ns())
                tx.sendall(encode_json_line(VALUES, frame, 'iPhone', 'bench'))
            deadline = time.monotonic() + 60
            frame = bridge.wait_for_discovery(send)
            while not latencies and time.monotonic() < deadline:      # the model loads
                frame += 1
                send(frame)
                time.sleep(0.1)
            if not latencies:
                raise RuntimeError('retarget node never answered')
            time.sleep(1.0)
            latencies.clear()
            bridge.timed(send, frame, frames, hz)
        return latencies, frames
    finally:
        bridge.close()
        os.killpg(retarget.pid, signal.SIGINT)
        retarget.wait(10)


def _connect(port: int) -> socket.socket:
    """Connect to the bridge, retrying while its process starts."""
    deadline = time.monotonic() + 20
    while True:
        try:
            tx = socket.create_connection(('127.0.0.1', port))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError('tcp_bridge never listened') from None
            time.sleep(0.1)
    tx.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return tx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=20000)
    parser.add_argument('--frames', type=int, default=600, help='frames through the node')
    parser.add_argument('--hz', type=float, default=60.0)
    parser.add_argument('--robot', default='micheal', help='robot of the end-to-end run')
    args = parser.parse_args()
    print(f'== TCP bridge per-frame path ({os.cpu_count()} cores)')
    bench_pure(args.iterations)
    baseline = bench_tcp_baseline(args.frames, args.hz)
    for framing in ('json', 'binary'):
        latencies, sent = bench_node_hop(framing, args.frames, args.hz)
        report(f'TCP ({framing}) -> tcp_bridge -> subscriber ({args.hz:.0f} Hz)', latencies,
               baseline, 'bare TCP loopback')
        print(f'frames sent {sent}, received {len(latencies)}, lost {sent - len(latencies)}')
    latencies, sent = bench_end_to_end(args.robot, args.frames, args.hz)
    report(f'TCP (json) -> tcp_bridge -> retarget ({args.robot}, exface) -> command', latencies)
    print(f'frames sent {sent}, commands matched {len(latencies)}')


if __name__ == '__main__':
    main()
