"""Capture under a UDP flood: the real livelink_receiver node, a real 60 Hz Live Link Face
sender and a flood sender, each in its own process, all on loopback.

Per run: the phone streams alone (the baseline), then while the flood process sends junk at a
measured rate into a sink (a socket whose kernel filter drops everything: the flood's cost to
the machine, without the receiver), then while it floods the receiver. Printed per phase:
frames sent / received / lost, and the latency of each frame from the phone's send to the
subscriber (through the receiver) and from the receiver's arrival stamp to the subscriber, as
mean/p50/p95/p99/max with the ratio to the baseline phase. Then the receiver's counters.
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
from face_capture.sender_gate import attach_kernel_filter
from face_common import topics
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
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from face_common import qos
        from face_msgs.msg import Blendshapes
        rclpy.init()
        self.node = rclpy.create_node('bench_flood_probe')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.arrivals = {}                   # frame -> (subscriber ns, stamp->subscriber ms)
        self.diagnostics = {}
        # deep, so a frame the bench process is late to read counts as late, not as lost
        deep = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(Blendshapes, topics.HUMAN_BLENDSHAPES.name, self._on_frame,
                                      deep)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS.name,
                                      self._on_diagnostics, qos.DIAGNOSTICS)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_frame(self, msg):
        now_ns, wall_ns = time.monotonic_ns(), time.time_ns()
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.arrivals[msg.frame_number] = (now_ns, (wall_ns - stamp_ns) / 1e6)

    def _on_diagnostics(self, array):
        for status in array.status:
            if status.name.endswith('livelink_receiver'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def close(self):
        import rclpy
        self.executor.shutdown()
        self._thread.join(5.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


def start_receiver(port: int, kernel_filter: str, calibration_dir: str,
                   realtime_priority=None) -> subprocess.Popen:
    """The receiver as the launch files start it: the shipped parameters (real-time priority
    where permitted), on a free port."""
    from face_common.launch_runner import NodeSpec, find_executable, find_package_share
    config = Path(find_package_share('face_capture')) / 'config' / 'livelink_receiver.yaml'
    spec = NodeSpec('face_capture', 'livelink_receiver', 'livelink_receiver',
                    param_files=[str(config)],
                    params={'port': str(port), 'performer_calibration_dir': calibration_dir,
                            'kernel_filter': kernel_filter})
    if realtime_priority is not None:
        spec.params['realtime_priority'] = str(realtime_priority)
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
    receiver = start_receiver(port, kernel_filter, workdir, args.realtime_priority)
    stop_file = os.path.join(workdir, 'stop')
    # the sink: a socket whose kernel filter drops everything, as the receiver's drops junk
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(('127.0.0.1', 0))
    attach_kernel_filter(sink, [(0x06, 0, 0, 0)])                      # BPF: return 0
    sink_port = sink.getsockname()[1]
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
        results = {}
        for phase, target in (('no flood', None), ('flood to a sink', sink_port),
                              ('flood', port)):
            flood = None
            if target is not None:
                flood = _role('flood', target, args.flood_rate, args.flood_kind,
                              f'{stop_file}-{target}')
                time.sleep(1.0)                                          # flood at full rate
            results[phase] = phone_phase(probe, port, args.seconds, args.hz, device, frame)
            frame += results[phase][0]
            if flood is not None:
                Path(f'{stop_file}-{target}').touch()
                measured = json.loads(flood.communicate()[0])
                print(f'{phase} ({args.flood_kind}): {measured["sent"]} packets in '
                      f'{measured["seconds"]:.1f} s = {measured["rate"]:.0f}/s '
                      f'(asked {args.flood_rate:.0f}/s)')
        for phase, (sent, e2e, _) in results.items():
            print(f'{phase:>15}: frames sent {sent}, received {len(e2e)}, '
                  f'lost {sent - len(e2e)}')
        base = results['no flood']
        for phase, (_, e2e, stamp) in results.items():
            baseline = (None, None) if phase == 'no flood' else (base[1], base[2])
            report(f'send -> subscriber, {phase}', e2e, baseline[0], 'no flood')
            report(f'arrival -> subscriber, {phase}', stamp, baseline[1], 'no flood')
        p99 = {phase: np.percentile(r[1], 99) if r[1] else float('nan')
               for phase, r in results.items()}
        print(f'p99 rise under flood: {p99["flood"] - p99["no flood"]:+.3f} ms vs no flood '
              f'(target <= 1 ms), {p99["flood"] - p99["flood to a sink"]:+.3f} ms vs the same '
              f'flood into a sink (what the flood costs the machine, not the receiver); '
              f'frames lost under flood: {results["flood"][0] - len(results["flood"][1])} '
              '(target 0)')
        time.sleep(1.2)                                                  # a diagnostics period
        keys = ('scheduling', 'packets', 'precheck_rejects', 'other_device_frames', 'rate_capped',
                'rejected_senders', 'kernel_drops', 'dropped_frames', 'malformed',
                'receive_buffer_bytes', 'kernel_filter')
        print('receiver: ' + ', '.join(f'{k}={probe.diagnostics.get(k)}' for k in keys))
    finally:
        for target in (port, sink_port):
            Path(f'{stop_file}-{target}').touch()
        sink.close()
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
    parser.add_argument('--realtime-priority', type=int, default=None,
                        help='receiver SCHED_FIFO priority (default: the shipped config\'s)')
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
