"""Capture under a UDP flood: the real livelink_receiver node, a real 60 Hz Live Link Face
sender and a flood sender, each in its own process, all on loopback.

Per run: the phone streams alone (the baseline), then again while the flood process sends
junk packets at a measured rate. Printed per phase: frames sent / received / lost, and the
latency of each frame from the phone's send to the subscriber (through the receiver) and from
the receiver's arrival stamp to the subscriber, as mean/p50/p95/p99/max with the ratio to the
baseline phase. Then the receiver's own counters (/diagnostics).
Flood kinds: junk (version byte 6 then random bytes: passes a version check, fails the rest),
foreign (well-formed frames of another device id), random (any bytes).
Run: python bench/capture_flood.py [--flood-rate 100000] [--kernel-filter compare]
"""
import argparse
import json
import os
from pathlib import Path
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report
from face_capture.livelink import pack_packet
from face_common.arkit import NUM_CHANNELS


# ---- the two sender processes ------------------------------------------------------------
def run_phone(port: int, seconds: float, hz: float, device: str, first_frame: int) -> None:
    """Send `seconds` of 60 Hz frames on an absolute schedule; print {frame: send ns}."""
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    values = np.full(NUM_CHANNELS, 0.3, np.float32)
    sent = {}
    start = time.monotonic()
    for i in range(int(seconds * hz)):
        delay = start + i / hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        frame = first_frame + i
        packet = pack_packet(device, 'iPhone', frame, values)
        sent[frame] = time.monotonic_ns()
        tx.sendto(packet, ('127.0.0.1', port))
    print(json.dumps(sent), flush=True)


def flood_packets(kind: str, rng) -> list:
    """A pool of flood datagrams to cycle through (generating each one would cost more than
    sending it)."""
    if kind == 'foreign':
        values = np.full(NUM_CHANNELS, 0.9, np.float32)
        return [pack_packet(str(uuid.uuid4()).upper(), 'iPhone', i, values) for i in range(256)]
    first = b'\x06' if kind == 'junk' else b''
    return [first + rng.bytes(int(rng.integers(24, 400))) for _ in range(4096)]


def run_flood(port: int, rate: float, kind: str, stop_file: str) -> None:
    """Send flood datagrams at `rate` per second (in 1 ms batches) until stop_file exists;
    print the count and the measured rate."""
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pool = flood_packets(kind, np.random.default_rng(1))
    target = ('127.0.0.1', port)
    send = tx.sendto
    batch = max(1, int(rate / 1000))
    sent = 0
    start = time.monotonic()
    while not os.path.exists(stop_file):
        for i in range(batch):
            try:
                send(pool[(sent + i) % len(pool)], target)
            except OSError:                        # ENOBUFS under pressure: keep flooding
                pass
        sent += batch
        delay = start + sent / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    print(json.dumps({'sent': sent, 'seconds': elapsed, 'rate': sent / elapsed}), flush=True)


def _role(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, '--role', *map(str, args)],
                            stdout=subprocess.PIPE, text=True)


# ---- the measuring side --------------------------------------------------------------------
class Probe:
    """Subscribes to the receiver's frames and diagnostics; keeps arrival times."""

    def __init__(self):
        from diagnostic_msgs.msg import DiagnosticArray
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from face_common import qos
        from face_msgs.msg import Blendshapes
        rclpy.init()
        self.node = rclpy.create_node('bench_flood_probe')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.arrivals = {}                   # frame -> (subscriber ns, stamp->subscriber ms)
        self.diagnostics = {}
        self.node.create_subscription(Blendshapes, '/face/human/blendshapes', self._on_frame,
                                      qos.LIVE_STREAM)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      qos.DIAGNOSTICS)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_frame(self, msg):
        now_ns, wall_ns = time.monotonic_ns(), time.time_ns()
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.arrivals[msg.frame_number] = (now_ns, (wall_ns - stamp_ns) / 1e6)

    def _on_diagnostics(self, array):
        for status in array.status:
            if status.name.endswith('bench_flood_receiver'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def close(self):
        import rclpy
        self.executor.shutdown()
        self._thread.join(5.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


def start_receiver(port: int, kernel_filter: str, calibration_dir: str) -> subprocess.Popen:
    from face_common.launch_runner import NodeSpec, find_executable
    spec = NodeSpec('face_capture', 'livelink_receiver', 'bench_flood_receiver',
                    params={'port': str(port), 'calibration_dir': calibration_dir,
                            'kernel_filter': kernel_filter})
    return subprocess.Popen(spec.command(find_executable('face_capture', 'livelink_receiver')),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def phone_phase(probe, port, seconds, hz, device, first_frame):
    """One phone process's stream; returns (frames sent, send->subscriber ms, arrival->
    subscriber ms) of the frames that arrived."""
    phone = _role('phone', port, seconds, hz, device, first_frame)
    sent = {int(k): v for k, v in json.loads(phone.communicate()[0]).items()}
    time.sleep(0.3)                                  # the last frames' way through
    send_to_sub, stamp_to_sub = [], []
    for frame, sent_ns in sent.items():
        arrival = probe.arrivals.get(frame)
        if arrival is not None:
            send_to_sub.append((arrival[0] - sent_ns) / 1e6)
            stamp_to_sub.append(arrival[1])
    return len(sent), send_to_sub, stamp_to_sub


def bench_run(args, kernel_filter: str, probe) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as free:
        free.bind(('127.0.0.1', 0))
        port = free.getsockname()[1]
    device = str(uuid.uuid4()).upper()
    probe.arrivals.clear()
    probe.diagnostics = {}
    workdir = tempfile.mkdtemp(prefix='face-flood-')
    receiver = start_receiver(port, kernel_filter, workdir)
    stop_file = os.path.join(workdir, 'stop')
    try:
        frame = 1                 # one contiguous frame counter, as a phone's, across phases
        for _attempt in range(10):                                   # discovery, lock
            sent, arrived, _ = phone_phase(probe, port, 2.0, args.hz, device, frame)
            frame += sent
            if arrived:
                break
        else:
            raise RuntimeError('the receiver never published')
        label = f'kernel_filter:={kernel_filter}'
        print(f'-- {label}: {args.seconds:.0f} s of {args.hz:.0f} Hz frames per phase')
        base_sent, base_e2e, base_stamp = phone_phase(probe, port, args.seconds, args.hz,
                                                      device, frame)
        frame += base_sent
        flood = _role('flood', port, args.flood_rate, args.flood_kind, stop_file)
        time.sleep(1.0)                                                  # flood at full rate
        flood_sent, flood_e2e, flood_stamp = phone_phase(probe, port, args.seconds, args.hz,
                                                         device, frame)
        Path(stop_file).touch()
        measured = json.loads(flood.communicate()[0])
        print(f'flood ({args.flood_kind}): {measured["sent"]} packets in '
              f'{measured["seconds"]:.1f} s = {measured["rate"]:.0f}/s '
              f'(asked {args.flood_rate:.0f}/s)')
        for name, sent, e2e in (('no flood', base_sent, base_e2e),
                                ('flood', flood_sent, flood_e2e)):
            print(f'{name:>9}: frames sent {sent}, received {len(e2e)}, '
                  f'lost {sent - len(e2e)}')
        report(f'send -> subscriber, no flood ({label})', base_e2e)
        report(f'send -> subscriber, flood ({label})', flood_e2e, base_e2e, 'no flood')
        report(f'arrival -> subscriber, no flood ({label})', base_stamp)
        report(f'arrival -> subscriber, flood ({label})', flood_stamp, base_stamp, 'no flood')
        p99 = np.percentile(flood_e2e, 99) - np.percentile(base_e2e, 99)
        print(f'p99 rise under flood: {p99:+.3f} ms (target <= 1 ms); frames lost under '
              f'flood: {flood_sent - len(flood_e2e)} (target 0)')
        time.sleep(1.2)                                                  # a diagnostics period
        keys = ('packets', 'precheck_rejects', 'other_device_frames', 'rate_capped',
                'rejected_senders', 'kernel_drops', 'dropped_frames', 'malformed',
                'receive_buffer_bytes', 'kernel_filter')
        print('receiver: ' + ', '.join(f'{k}={probe.diagnostics.get(k)}' for k in keys))
    finally:
        Path(stop_file).touch()
        os.killpg(receiver.pid, 2)
        receiver.wait(10)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == '--role':
        role, rest = sys.argv[2], sys.argv[3:]
        if role == 'phone':
            run_phone(int(rest[0]), float(rest[1]), float(rest[2]), rest[3], int(rest[4]))
        else:
            run_flood(int(rest[0]), float(rest[1]), rest[2], rest[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='per phase')
    parser.add_argument('--hz', type=float, default=60.0)
    parser.add_argument('--flood-rate', type=float, default=100000.0, help='packets/s')
    parser.add_argument('--flood-kind', choices=('junk', 'foreign', 'random'), default='junk')
    parser.add_argument('--kernel-filter', choices=('auto', 'always', 'never', 'compare'),
                        default='compare', help='compare: auto (the default), then never')
    args = parser.parse_args()
    print(f'== capture under a UDP flood ({os.cpu_count()} cores)')
    probe = Probe()
    try:
        modes = ('auto', 'never') if args.kernel_filter == 'compare' else (args.kernel_filter,)
        for kernel_filter in modes:
            bench_run(args, kernel_filter, probe)
    finally:
        probe.close()


if __name__ == '__main__':
    main()
