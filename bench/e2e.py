"""End-to-end latency the VividFace way (Tables III and IV): from the moment a Live Link Face
packet leaves the sender to the driver write, for every model, idle and under CPU load, with
the shipped real-time priority and with normal scheduling.

The demo's node graph runs (launch/shadow.launch.yaml through face-launch: receiver,
retarget, actuation, latency monitor, dashboard, recorder) with the digital twin (end = the
driver write's end) or with the Maestro driver writing to the emulator's pseudo-terminal (end
= the write's bytes read on the serial peer, here). A separate sender process (this file's
`send` command) plays the bundled real take, resampled to 60 Hz, as Live Link Face UDP and
records each packet's send time; the nodes' own stage timings (/face/latency) give the stage
budget. One graph per model and driver stays up while the load (stress-ng) and the
scheduling change, so graph start-up is paid 5 times, not 90: the default (6 s per repeat)
runs in about 14 minutes on 2 cores; --duration 60 is the full protocol (about 95 minutes).
--composed both runs each graph also as one process (shadow.launch.yaml composed:=true), the
two alternating --alternations times, so a busy machine weighs on both alike.
Normal scheduling is the shipped nodes with every thread moved to SCHED_OTHER (what
realtime_priority 0 gives); without the right to SCHED_FIFO only normal rows are measured.
Run: make bench-e2e [ARGS='--duration 60'] (or python bench/e2e.py in the workspace).
"""
import argparse
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_report import (
    DECODE,
    ROW_KEYS,
    SEND_RATE_HZ,
    build_row,
    condition_label,
    frame_traces,
    machine_description,
    resample,
    stages_from_message,
    step_counts,
    table_iii,
    table_iv,
)

MODELS = ('linear', 'mlp', 'transformer', 'exface')
ROBOT = 'micheal'                          # the demo's robot; its driver is the Maestro
DEVICE_ID = 'E2E-BENCH-SENDER'
SENDER_PRIORITY = 20       # phone and servo controller are other devices: above the nodes
SETTLE_S = 1.0             # after a load or scheduling change, before a repeat
STARTUP_TIMEOUT_S = 120.0
RUN_OVERHEAD_S, GRAPH_START_S = 2.5, 20.0     # measured here: sender start, tail, settling


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def stop_group(proc, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- the sender process -------------------------------------------------------------------

def send(args) -> int:
    """Send --frames packets at 60 Hz numbered from --first-frame; write (frame, send ns)."""
    from face_capture.bundled import bundled_take_path
    from face_capture.livelink import pack_packet
    from face_capture.takes import read_take
    from face_common.pacing import paced
    from face_common.realtime import set_realtime_priority
    scheduling = set_realtime_priority(args.realtime_priority)
    take = read_take(bundled_take_path())
    first = int(take.times.searchsorted(args.start))
    _, values = resample(take.times[first:], take.values[first:])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ('127.0.0.1', args.port)
    sent = np.zeros((args.frames, 2), np.int64)
    for i, _ in paced(np.arange(args.frames) / SEND_RATE_HZ):
        frame = args.first_frame + i
        packet = pack_packet(DEVICE_ID, 'iPhone', frame, values[i % len(values)])
        sent[i] = frame, time.time_ns()
        sock.sendto(packet, target)
    np.save(args.record, sent)
    print(f'sender: {args.frames} frames at {SEND_RATE_HZ:g} Hz ({scheduling})', flush=True)
    return 0


# --- measuring ------------------------------------------------------------------------------

def serve_peer(_args) -> int:
    """The serial peer process: the Maestro emulator on a pty (its path on the first line),
    then each complete write's read time (ns) on a line of its own: a write is one Set
    Multiple Targets per device, so it completes with the last device's. Its own process, so
    the bench's trace listener never holds it up; ends at SIGINT."""
    from face_actuation.emulators import MaestroEmulator
    from face_common.realtime import set_realtime_priority

    devices_seen = []

    class TimedMaestro(MaestroEmulator):
        def _execute(self, device, command, data):
            if command == 0x9F:
                now = time.time_ns()
                if device not in devices_seen:
                    devices_seen.append(device)
                if device == devices_seen[-1]:
                    print(now, flush=True)
            super()._execute(device, command, data)

    set_realtime_priority(SENDER_PRIORITY)       # the controller is another device
    device = TimedMaestro((12, 13))
    print(device.path, flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        device.close()
    return 0


class SerialPeer:
    """serve_peer in its own process; completions: the write completion times so far."""

    def __init__(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:                               # blocked in the child from its start (sigwait)
            self.proc = subprocess.Popen([sys.executable, __file__, 'peer'],
                                         stdout=subprocess.PIPE, text=True,
                                         start_new_session=True)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        self.path = self.proc.stdout.readline().strip()
        if not self.path:
            raise RuntimeError('the serial peer did not start')
        self.completions = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.completions.append(int(line))

    def close(self) -> None:
        stop_group(self.proc, 10)


class Scheduling:
    """The graph's real-time processes (the nodes that took SCHED_FIFO at start) moved
    between their shipped priority and normal scheduling, every thread."""

    def __init__(self, launcher: int):
        self.priorities = {}
        for pid in _descendants(launcher):
            for tid in _threads(pid):
                try:
                    if os.sched_getscheduler(tid) == os.SCHED_FIFO:
                        self.priorities[pid] = os.sched_getparam(tid).sched_priority
                        break
                except OSError:
                    continue

    @property
    def realtime_available(self) -> bool:
        return bool(self.priorities)

    def set(self, realtime: bool) -> None:
        for pid, priority in self.priorities.items():
            policy = os.SCHED_FIFO if realtime else os.SCHED_OTHER
            param = os.sched_param(priority if realtime else 0)
            for tid in _threads(pid):
                try:
                    os.sched_setscheduler(tid, policy, param)
                except ProcessLookupError:
                    continue


def _descendants(root: int) -> list:
    """Every process below root (face-launch starts each node in its own session)."""
    children = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _threads(pid: int) -> list:
    try:
        return [int(tid) for tid in os.listdir(f'/proc/{pid}/task')]
    except OSError:
        return []


def cpu_times() -> tuple:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Load:
    """stress-ng holding every core at `percent` (0: none)."""

    def __init__(self, percent: int):
        self.percent = percent
        self.proc = None
        if percent > 0:
            self.proc = subprocess.Popen(
                ['stress-ng', '--cpu', str(os.cpu_count()), '--cpu-load', str(percent)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def cpu_seconds(self) -> float:
        """CPU time stress-ng's workers used so far (user + system)."""
        total = 0.0
        if self.proc is not None:
            for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
                try:
                    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
                except (OSError, ValueError, IndexError):
                    continue
        return total

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, 10)


def ensure_stress_ng() -> bool:
    """stress-ng from Debian, installed with apt-get when missing (needs root)."""
    if shutil.which('stress-ng'):
        return True
    if os.geteuid() != 0:
        print('e2e: stress-ng is missing and installing it needs root: '
              'sudo apt-get install -y stress-ng; measuring idle only', flush=True)
        return False
    print('e2e: installing stress-ng (apt-get install -y stress-ng) ...', flush=True)
    result = subprocess.run(['apt-get', 'install', '-y', 'stress-ng'], capture_output=True,
                            text=True)
    if result.returncode != 0 or not shutil.which('stress-ng'):
        print(f'e2e: apt-get could not install stress-ng ({result.stderr.strip()[-200:]}); '
              'measuring idle only', flush=True)
        return False
    return True


class Graph:
    """The demo's node graph for one model and driver, and the /face/latency listener."""

    def __init__(self, model: str, driver: str, composed: bool, work: Path, calibration: Path):
        self.peer = SerialPeer() if driver == 'maestro' else None
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.clear()
        self.frame = 1
        name = f'{model}_{driver}' + ('_composed' if composed else '')
        arguments = {
            'robot': ROBOT, 'model': model, 'driver': driver, 'standin': 'false',
            'udp_port': self.udp_port, 'dashboard_port': free_port(), 'record': 'true',
            'bag': work / f'bag_{name}_{time.time_ns()}', 'performer_calibration_dir': calibration,
            'robot_calibration_dir': work / 'robot_calibration',
            'robot_port': self.peer.path if self.peer else '',
            'composed': str(composed).lower()}
        self.log = work / f'launch_{name}.log'
        command = ['face-launch', 'launch/shadow.launch.yaml',
                   *(f'{k}:={v}' for k, v in arguments.items() if str(v) != ''),
                   '--log-dir', str(work / f'logs_{name}')]
        with open(self.log, 'w') as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def on_trace(self, msg) -> None:
        """Stages by the frame's stamp, as the latency monitor joins them: the actuation
        node's trace numbers commands, not human frames; the receiver's gives the frame."""
        from rclpy.time import Time
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        stages = stages_from_message(msg.stages, lambda t: Time.from_msg(t).nanoseconds)
        self.by_stamp.setdefault(stamp, []).extend(stages)
        if any(s.name == DECODE for s in stages):
            self.frame_of_stamp[stamp] = msg.frame_number

    def stages(self) -> dict:
        """{human frame number: its stages} of the frames the receiver published."""
        return {self.frame_of_stamp[stamp]: list(stages)
                for stamp, stages in list(self.by_stamp.items()) if stamp in self.frame_of_stamp}

    def clear(self) -> None:
        self.by_stamp, self.frame_of_stamp = {}, {}

    def run_sender(self, frames: int, work: Path) -> dict:
        record = work / 'sent.npy'
        from face_retarget.recipe import TRAIN_END_S
        result = subprocess.run(
            [sys.executable, __file__, 'send', '--port', str(self.udp_port), '--frames',
             str(frames), '--first-frame', str(self.frame), '--record', str(record),
             '--start', str(TRAIN_END_S),
             '--realtime-priority', str(SENDER_PRIORITY)],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f'sender failed: {result.stderr.strip()[-500:]}')
        self.frame += frames + 1
        return {int(f): int(t) for f, t in np.load(record)}

    def wait_ready(self, work: Path, resume) -> None:
        """Send short bursts until a frame is executed (the model loads, DDS discovers). A
        driver that failed its first open leaves the node in standby at neutral, as it
        should; after a few silent bursts resume() asks it to follow again, as a user would."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        bursts = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'face-launch exited; see {self.log}')
            sent = self.run_sender(30, work)
            time.sleep(0.3)
            if frame_traces(sent, self.stages()):
                self.run_sender(120, work)              # warm: caches, allocator, JIT
                return
            bursts += 1
            if bursts % 10 == 0:
                print('e2e: no frame executed yet; calling face/actuation/resume', flush=True)
                resume()
        raise RuntimeError(f'no frame reached the driver in {STARTUP_TIMEOUT_S:.0f} s; '
                           f'see {self.log}')

    def measure(self, duration_s: float, work: Path) -> tuple:
        self.clear()
        if self.peer:
            self.peer.completions.clear()
        sent = self.run_sender(int(duration_s * SEND_RATE_HZ), work)
        time.sleep(0.5)                                     # the last frames' traces
        completions = list(self.peer.completions) if self.peer else None
        stages = self.stages()
        return sent, stages, frame_traces(sent, stages, completions)

    def stop(self) -> None:
        stop_group(self.proc)
        if self.peer:
            self.peer.close()


def plan(args) -> list:
    """(model, driver, composed) per graph to start, in order."""
    graphs = [(model, 'sim') for model in args.models]
    graphs += [(model, 'maestro') for model in args.maestro_models]
    variants = {'false': (False,), 'true': (True,), 'both': (False, True)}[args.composed]
    rounds = args.alternations if args.composed == 'both' else 1
    return [(model, driver, composed) for model, driver in graphs
            for _ in range(rounds) for composed in variants]


def main_bench(args) -> int:
    import rclpy
    import rclpy.signals
    from std_srvs.srv import Trigger

    from face_common import qos, topics
    from face_msgs.msg import LatencyTrace

    loads = [int(v) for v in args.loads.split(',')]
    if any(load > 0 for load in loads) and not ensure_stress_ng():
        loads = [0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / 'run'                    # launch logs kept; bags and sends removed at the end
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    calibration = work / 'calibration'
    # The demo's calibration: the performer's neutral from the take's first second.
    neutral = subprocess.run(['face-capture-neutral', '--take', '', '--frames', '30',
                              '--profile', 'performer', '--dir', str(calibration)],
                             capture_output=True, text=True)
    if neutral.returncode != 0:
        print(f'e2e: neutral capture failed: {neutral.stderr.strip()}', file=sys.stderr)
        return 1
    schedulings = [s == 'realtime' for s in args.scheduling.split(',')]
    configs = plan(args)
    runs = len(configs) * len(loads) * len(schedulings) * args.repeats
    minutes = (runs * (args.duration + RUN_OVERHEAD_S) + len(configs) * GRAPH_START_S) / 60
    print(f'e2e: {len(configs)} graphs x {len(loads)} loads x {len(schedulings)} schedulings '
          f'x {args.repeats} repeats x {args.duration:g} s = {runs} runs, about '
          f'{minutes:.0f} min', flush=True)
    # SIGTERM (timeout, a CI runner) ends the bench like Ctrl-C: the graph and load stop.
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _interrupt)
    node = rclpy.create_node('bench_e2e')
    resume = node.create_client(Trigger, topics.actuation_service('resume').name)
    graph_box = {}
    node.create_subscription(LatencyTrace, topics.LATENCY.name,
                             lambda m: graph_box['graph'].on_trace(m) if graph_box else None,
                             qos.of(topics.LATENCY))
    threading.Thread(target=rclpy.spin, args=(node,), daemon=True).start()
    rows, details, histograms = [], [], {}
    try:
        repeats_done = {}
        for model, driver, composed in configs:
            graph = Graph(model, driver, composed, work, calibration)
            graph_box['graph'] = graph
            try:
                graph.wait_ready(work, lambda: resume.call_async(Trigger.Request()))
                scheduling = Scheduling(graph.proc.pid)
                for load_percent in loads:
                    load = Load(load_percent)
                    try:
                        for realtime in schedulings:
                            if realtime and not scheduling.realtime_available:
                                print('e2e: the nodes run without SCHED_FIFO (no privilege): '
                                      'real-time rows skipped', flush=True)
                                continue
                            scheduling.set(realtime)
                            time.sleep(SETTLE_S)
                            key = (model, driver, composed, load_percent, realtime)
                            first = repeats_done.get(key, 0) + 1
                            repeats_done[key] = first + args.repeats - 1
                            for repeat in range(first, first + args.repeats):
                                busy0, total0 = cpu_times()
                                stress0, wall0 = load.cpu_seconds(), time.monotonic()
                                sent, stages, traces = graph.measure(args.duration, work)
                                busy1, total1 = cpu_times()
                                stress = 100.0 * (load.cpu_seconds() - stress0) / (
                                    (time.monotonic() - wall0) * os.cpu_count())
                                row = build_row(model, 'twin' if driver == 'sim' else driver,
                                                load_percent, realtime, repeat, sent, traces,
                                                composed)
                                steps = step_counts(sent, stages, traces, driver == 'maestro')
                                achieved = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
                                rows.append(row)
                                details.append({**{k: row[k] for k in ROW_KEYS[:6]},
                                                'machine_busy_percent': round(achieved, 1),
                                                'stress_ng_percent': round(stress, 1),
                                                'steps': steps})
                                write_json(out, rows, details, args)     # kept if cut short
                                histograms.setdefault(condition_label(row), []).extend(
                                    t['end-to-end'] for t in traces.values())
                                e2e, label = row['e2e_ms'], condition_label(row)
                                print(f'{label} #{repeat}: {row["frames_sent"]} sent, '
                                      f'{row["frames_dropped"]} dropped, e2e mean '
                                      f'{_ms(e2e["mean"])} p99 {_ms(e2e["p99"])} max '
                                      f'{_ms(e2e["max"])} ms; machine busy {achieved:.0f} % '
                                      f'(stress-ng {stress:.0f} %)',
                                      flush=True)
                        scheduling.set(True)
                    finally:
                        load.stop()
            finally:
                graph.stop()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        for path in [*work.glob('bag_*'), *work.glob('sent.npy'), work / 'calibration']:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    write_outputs(out, rows, details, histograms, args)
    return 0


def _interrupt(*_):
    raise KeyboardInterrupt


def _ms(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def write_json(out: Path, rows: list, details: list, args) -> None:
    (out / 'results.json').write_text(json.dumps(rows, indent=1))
    (out / 'details.json').write_text(json.dumps(
        {'machine': machine_description(), 'duration_s': args.duration,
         'send_rate_hz': SEND_RATE_HZ, 'runs': details}, indent=1))


def write_outputs(out: Path, rows: list, details: list, histograms: dict, args) -> None:
    machine = machine_description()
    write_json(out, rows, details, args)
    plot_histograms(out / 'histogram.png', histograms)
    print(f'\n== machine: {machine["cpu"]}, {machine["cores"]} cores, '
          f'{machine["memory_gib"]} GiB, Linux {machine["kernel"]}, Python '
          f'{machine["python"]}; {args.duration:g} s per repeat at {SEND_RATE_HZ:g} Hz')
    print('\n== Table III: end-to-end latency, send -> driver write (twin) / bytes on the '
          'serial peer (maestro)')
    print(table_iii(rows))
    print('\n== Table IV: stage budget (mean, p99)')
    print(table_iv(rows))
    print('\n== frames at each step (all repeats): reached / dropped there / late '
          f'(over {1000 / SEND_RATE_HZ:.1f} ms after the send); achieved load: the whole '
          'machine busy, and stress-ng\'s own share')
    for detail in details:
        steps = ', '.join(f'{s["step"]} {s["frames"]}/{s["dropped"]}/{s["late"]}'
                          for s in detail['steps'])
        print(f'{condition_label(detail)} #{detail["repeat"]} (busy '
              f'{detail["machine_busy_percent"]:.0f} %, stress-ng '
              f'{detail["stress_ng_percent"]:.0f} %): {steps}')
    print(f'\nwritten: {out / "results.json"}, {out / "details.json"}, '
          f'{out / "histogram.png"}', flush=True)


def plot_histograms(path: Path, histograms: dict) -> None:
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    graphs = sorted({label.split(' ')[0] for label in histograms})
    figure, axes = pyplot.subplots(len(graphs) or 1, 1, figsize=(9, 2.6 * max(1, len(graphs))),
                                   squeeze=False)
    edges = np.arange(0, 30.5, 0.5)
    for ax, graph in zip(axes[:, 0], graphs, strict=False):
        for label, samples in histograms.items():
            if label.split(' ')[0] == graph and samples:
                ax.hist(np.clip(samples, 0, edges[-1]), edges, histtype='step',
                        label=' '.join(label.split(' ')[1:]))
        ax.set_title(f'{graph}: end-to-end latency (30 ms and over in the last bin)')
        ax.set_xlabel('ms')
        ax.set_ylabel('frames')
        ax.legend(fontsize='small')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command')
    sub.add_parser('peer', help='the serial peer process (started by the bench)')
    sender = sub.add_parser('send', help='the sender process (started by the bench)')
    sender.add_argument('--port', type=int, required=True)
    sender.add_argument('--frames', type=int, required=True)
    sender.add_argument('--first-frame', type=int, default=1)
    sender.add_argument('--record', required=True)
    sender.add_argument('--start', type=float, default=0.0)
    sender.add_argument('--realtime-priority', type=int, default=0)
    parser.add_argument('--models', type=_models, default=MODELS,
                        help='comma-separated, with the twin (default: all four)')
    parser.add_argument('--maestro-models', type=_models, default=('exface',),
                        help='comma-separated, with the Maestro driver on the emulator\'s pty '
                             '(default: exface; "" for none)')
    parser.add_argument('--loads', default='0,50,90', help='CPU load percentages')
    parser.add_argument('--scheduling', default='realtime,normal',
                        help='realtime (the shipped SCHED_FIFO priority) and/or normal')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--composed', choices=('false', 'true', 'both'), default='false',
                        help='the receiver, retarget and actuation nodes in one process '
                             '(true), in three (false, the default), or both alternating')
    parser.add_argument('--alternations', type=int, default=3,
                        help='with --composed both: how many times each variant starts')
    parser.add_argument('--duration', type=float, default=6.0,
                        help='seconds per repeat (60: the full protocol, about 95 min)')
    parser.add_argument('--out', default='out/bench/e2e')
    args, _ = parser.parse_known_args(argv)
    if args.command == 'send':
        return send(args)
    if args.command == 'peer':
        return serve_peer(args)
    return main_bench(args)


def _models(text: str) -> tuple:
    models = tuple(m for m in text.split(',') if m)
    unknown = set(models) - set(MODELS)
    if unknown:
        raise argparse.ArgumentTypeError(f'unknown model(s): {", ".join(sorted(unknown))}')
    return models


if __name__ == '__main__':
    sys.exit(main())
