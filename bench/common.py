"""Timing helpers shared by the benchmarks: every figure as mean/p50/p95/p99/max in ms,
and a ratio against a baseline measured in the same run (machines here are shared)."""
import contextlib
import os
import signal
import subprocess
import threading
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


class BlendshapeProbe:
    """A capture node in its own process and a subscriber that times each frame from
    send() to its arrival on /face/human/blendshapes (matched by frame number): the
    node-hop figure of every capture input."""

    def __init__(self, executable: str, params: dict):
        import rclpy

        from face_common import qos, topics
        from face_common.launch_runner import NodeSpec, find_executable
        from face_msgs.msg import Blendshapes
        spec = NodeSpec('face_capture', executable, f'bench_{executable}', params={
            'performer_calibration_dir': '/tmp/face-bench-calib', **params})
        self.proc = subprocess.Popen(spec.command(find_executable('face_capture', executable)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        rclpy.init()
        self.node = rclpy.create_node(f'bench_{executable}_probe')
        self.sent_at, self.latencies = {}, []
        self.arrived = threading.Event()
        self.node.create_subscription(Blendshapes, topics.HUMAN_BLENDSHAPES.name,
                                      self._on_frame, qos.of(topics.HUMAN_BLENDSHAPES))
        threading.Thread(target=rclpy.spin, args=(self.node,), daemon=True).start()

    def _on_frame(self, msg) -> None:
        t0 = self.sent_at.pop(msg.frame_number, None)
        if t0 is not None:
            self.latencies.append((time.perf_counter_ns() - t0) / 1e6)
        self.arrived.set()

    def wait_for_discovery(self, send, timeout: float = 20.0) -> int:
        """send(frame) untimed frames until one arrives; returns the last frame number."""
        frame = 0
        deadline = time.monotonic() + timeout
        while not self.arrived.is_set() and time.monotonic() < deadline:
            frame += 1
            send(frame)
            self.arrived.wait(0.1)
        if not self.arrived.is_set():
            raise RuntimeError('the node under test never published')
        time.sleep(0.5)
        self.latencies.clear()
        return frame

    def timed(self, send, first: int, frames: int, hz: float):
        """send(frame) frames first+1.. at hz, each timed; returns (latencies, sent)."""
        for frame in range(first + 1, first + frames + 1):
            self.sent_at[frame] = time.perf_counter_ns()
            send(frame)
            time.sleep(1.0 / hz)
        time.sleep(0.3)
        return self.latencies, frames

    def close(self) -> None:
        import rclpy
        self.node.destroy_node()
        rclpy.try_shutdown()
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(10)

@contextlib.contextmanager
def node_and_probe(nodes, probe: str):
    """Package executables in their own processes (as `ros2 run` starts them), given as
    (package, executable, name, params) tuples, and an rclpy probe node in this one; all
    gone when the block ends."""
    import rclpy

    from face_common.launch_runner import NodeSpec, find_executable
    procs = []
    for package, executable, name, params in nodes:
        spec = NodeSpec(package, executable, name, params=params)
        procs.append(subprocess.Popen(spec.command(find_executable(package, executable)),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
    rclpy.init()
    node = rclpy.create_node(probe)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        for proc in procs:
            os.killpg(proc.pid, signal.SIGINT)
        for proc in procs:
            proc.wait(10)
