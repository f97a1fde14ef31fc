"""Timing helpers shared by the benchmarks: every figure as mean/p50/p95/p99/max in ms,
and a ratio against a baseline measured in the same run (machines here are shared)."""
import contextlib
import os
import signal
import subprocess
import time

from face_common.stats import summarize


def time_calls(fn, iterations: int, warmup: int = 200):
    """Per-call durations of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        t0 = clock()
        fn()
        samples.append((clock() - t0) / 1e6)
    return samples


def report(title: str, samples_ms, baseline_ms=None, baseline_name='baseline') -> dict:
    s = summarize(samples_ms)
    line = (f'{title:<44} mean {s.mean:8.4f}  p50 {s.p50:8.4f}  p95 {s.p95:8.4f}  '
            f'p99 {s.p99:8.4f}  max {s.max:8.4f} ms')
    result = {'name': title, **s.as_dict()}
    if baseline_ms is not None:
        base = summarize(baseline_ms)
        ratio = s.mean / base.mean if base.mean > 0 else float('nan')
        line += f'  x{ratio:.2f} vs {baseline_name}'
        result['ratio_vs_' + baseline_name.replace(' ', '_')] = ratio
    print(line, flush=True)
    return result


@contextlib.contextmanager
def node_and_probe(package: str, executable: str, name: str, params: dict, probe: str):
    """A package executable in its own process (as `ros2 run` starts it) and an rclpy probe
    node in this one; both gone when the block ends."""
    import rclpy

    from face_common.launch_runner import NodeSpec, find_executable
    spec = NodeSpec(package, executable, name, params=params)
    proc = subprocess.Popen(spec.command(find_executable(package, executable)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    rclpy.init()
    node = rclpy.create_node(probe)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(10)
