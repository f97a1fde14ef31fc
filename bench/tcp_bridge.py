"""TCP bridge per-frame path: decode a JSON line or a length-framed Live Link Face frame, and
the whole TCP -> tcp_bridge node -> /face/human/blendshapes subscriber hop, per framing.

Baselines, measured in the same run:
- StreamDecoder on a JSON line vs json.loads alone (what validation and buffering add);
- StreamDecoder on a binary frame vs parse_packet alone (what the framing adds);
- TCP -> node -> subscriber vs a bare TCP loopback send/receive: what the bridge and ROS add.
Run: make bench (or python bench/tcp_bridge.py in the activated workspace).
"""
import argparse
import json
import os
from pathlib import Path
import socket
import subprocess
import sys
import threading
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, time_calls
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
    import rclpy

    from face_common import qos, topics
    from face_common.launch_runner import NodeSpec, find_executable
    from face_msgs.msg import Blendshapes

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    spec = NodeSpec('face_capture', 'tcp_bridge', 'bench_tcp_bridge',
                    params={'port': str(port), 'max_rate_hz': '10000.0',
                            'performer_calibration_dir': '/tmp/face-bench-calib'})
    proc = subprocess.Popen(spec.command(find_executable('face_capture', 'tcp_bridge')),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    rclpy.init()
    node = rclpy.create_node('bench_tcp_probe')
    sent_at, latencies = {}, []
    arrived = threading.Event()

    def on_frame(msg):
        t0 = sent_at.pop(msg.frame_number, None)
        if t0 is not None:
            latencies.append((time.perf_counter_ns() - t0) / 1e6)
        arrived.set()
    node.create_subscription(Blendshapes, topics.HUMAN_BLENDSHAPES.name, on_frame,
                             qos.of(topics.HUMAN_BLENDSHAPES))
    spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    spinner.start()

    def encode(frame):
        if framing == 'json':
            return encode_json_line(VALUES, frame, 'iPhone', 'bench')
        return encode_binary_frame(pack_packet('bench', 'iPhone', frame, VALUES))
    try:
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
        frame = 0
        while not arrived.is_set() and time.monotonic() < deadline:      # discovery
            frame += 1
            tx.sendall(encode(frame))
            arrived.wait(0.1)
        if not arrived.is_set():
            raise RuntimeError('tcp_bridge never published')
        time.sleep(0.5)
        latencies.clear()
        sent = 0
        for _ in range(frames):
            frame += 1
            data = encode(frame)
            sent_at[frame] = time.perf_counter_ns()
            tx.sendall(data)
            sent += 1
            time.sleep(1.0 / hz)
        time.sleep(0.3)
        tx.close()
        return latencies, sent
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        os.killpg(proc.pid, 2)
        proc.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=20000)
    parser.add_argument('--frames', type=int, default=600, help='frames through the node')
    parser.add_argument('--hz', type=float, default=60.0)
    args = parser.parse_args()
    print(f'== TCP bridge per-frame path ({os.cpu_count()} cores)')
    bench_pure(args.iterations)
    baseline = bench_tcp_baseline(args.frames, args.hz)
    for framing in ('json', 'binary'):
        latencies, sent = bench_node_hop(framing, args.frames, args.hz)
        report(f'TCP ({framing}) -> tcp_bridge -> subscriber ({args.hz:.0f} Hz)', latencies,
               baseline, 'bare TCP loopback')
        print(f'frames sent {sent}, received {len(latencies)}, lost {sent - len(latencies)}')


if __name__ == '__main__':
    main()
