"""Monitoring cost: the pipeline's end-to-end latency without and with the dashboard open in a
headless browser, and the dashboard node's CPU use (% of one core).

The live pipeline (stand-in iPhone over UDP -> receiver -> retarget -> actuation with the
twin, latency_monitor) runs throughout; phases alternate without / with the dashboard (node +
Chromium page), so slow drifts of this shared machine hit both alike.
Run: make bench (or python bench/dashboard.py in the activated workspace).
"""
import argparse
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report
from face_common.launch_runner import NodeSpec, find_executable

CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']


def start(package, executable, **params):
    spec = NodeSpec(package, executable, executable,
                    params={k: str(v).lower() if isinstance(v, bool) else str(v)
                            for k, v in params.items()})
    return subprocess.Popen(spec.command(find_executable(package, executable)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (clock ticks -> seconds)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def browser_pids() -> list:
    pids = []
    for proc in Path('/proc').iterdir():
        try:
            if b'/usr/lib/chromium' in (proc / 'cmdline').read_bytes():
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


def browser_cpu_seconds() -> float:
    total = 0.0
    for pid in browser_pids():
        try:
            total += cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    return total


def renice_browser(level: int) -> None:
    for pid in browser_pids():
        try:
            os.setpriority(os.PRIO_PROCESS, pid, level)
        except OSError:
            continue


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--robot', default='hobbs')
    parser.add_argument('--model', default='exface')
    parser.add_argument('--phase-s', type=float, default=15.0)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--browser-nice', type=int, default=0,
                        help='run the browser at this nice level (19: as if on another '
                             'machine, yielding to the pipeline); 0: same priority')
    parser.add_argument('--realtime-priority', type=int, default=10,
                        help='the pipeline nodes\' SCHED_FIFO priority, as their shipped '
                             'configs set it (0: normal scheduling)')
    args, _ = parser.parse_known_args()

    import rclpy

    from face_common import qos, topics
    from face_msgs.msg import LatencyTrace

    udp = free_port(socket.SOCK_DGRAM)
    rt = args.realtime_priority
    pipeline = [
        start('face_capture', 'livelink_receiver', port=udp,
              performer_calibration_dir='/tmp/face_bench_calibration', realtime_priority=rt),
        start('face_retarget', 'retarget', robot=args.robot, model=args.model,
              realtime_priority=rt),
        start('face_actuation', 'actuation', robot=args.robot, driver='sim',
              robot_calibration_dir='/tmp/face_bench_calibration', realtime_priority=rt),
        start('face_dashboard', 'latency_monitor'),
        subprocess.Popen([sys.executable, '-m', 'face_capture.send_take', '--port', str(udp),
                          '--loop'], stdout=subprocess.DEVNULL, start_new_session=True),
    ]
    rclpy.init()
    node = rclpy.create_node('bench_dashboard_probe')
    samples = []
    node.create_subscription(LatencyTrace, topics.LATENCY_FRAMES.name,
                             lambda m: samples.append(m.end_to_end_ms), qos.TRACE)
    threading.Thread(target=rclpy.spin, args=(node,), daemon=True).start()
    without, with_open, cpu, browser_cpu = [], [], [], []
    try:
        deadline = time.monotonic() + 60
        while len(samples) < 60 and time.monotonic() < deadline:
            time.sleep(0.2)
        if not samples:
            raise RuntimeError('no frame traces from the pipeline')
        from playwright.sync_api import sync_playwright
        with sync_playwright() as playwright:
            for _ in range(args.rounds):
                samples.clear()
                time.sleep(args.phase_s)
                without.extend(samples)

                port = free_port()
                dashboard = start('face_dashboard', 'dashboard', robot=args.robot, port=port)
                browser = playwright.chromium.launch(executable_path='/usr/bin/chromium',
                                                     args=CHROMIUM_ARGS)
                page = browser.new_page()
                if args.browser_nice:
                    renice_browser(args.browser_nice)
                deadline = time.monotonic() + 20
                while True:
                    try:
                        page.goto(f'http://127.0.0.1:{port}/')
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.3)
                page.wait_for_function(
                    "document.getElementById('connection').textContent === 'live'")
                time.sleep(2.0)                     # settled: page rendering at full rate
                samples.clear()
                cpu_start, wall_start = cpu_seconds(dashboard.pid), time.monotonic()
                browser_start = browser_cpu_seconds()
                time.sleep(args.phase_s)
                wall = time.monotonic() - wall_start
                cpu.append(100 * (cpu_seconds(dashboard.pid) - cpu_start) / wall)
                browser_cpu.append(100 * (browser_cpu_seconds() - browser_start) / wall)
                with_open.extend(samples)
                updates = page.evaluate("document.getElementById('update-rate').textContent")
                print(f'page updates/s: {updates}', flush=True)
                browser.close()
                stop(dashboard)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        for proc in pipeline:
            stop(proc)
    print(f'== monitoring cost ({os.cpu_count()} cores, {args.robot}/{args.model}, '
          f'{args.rounds} x {args.phase_s:.0f} s per phase, browser on this machine at nice '
          f'{args.browser_nice}, pipeline realtime_priority {args.realtime_priority})')
    base = report('pipeline end-to-end, dashboard closed', without)
    opened = report('pipeline end-to-end, dashboard open', with_open, without,
                    'dashboard closed')
    print(f'p99 rise with the dashboard open: {opened["p99"] - base["p99"]:+.2f} ms '
          f'(mean {opened["mean"] - base["mean"]:+.2f} ms)')
    print(f'dashboard node CPU: {sum(cpu) / len(cpu):.1f} % of one core '
          f'(per phase: {", ".join(f"{c:.1f}" for c in cpu)})')
    print(f'browser (every Chromium process) CPU: {sum(browser_cpu) / len(browser_cpu):.1f} % '
          f'of one core')


if __name__ == '__main__':
    main()
