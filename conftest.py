"""Fixtures shared by every package's tests: an rclpy test node spinning in the background,
node processes started the way ros2 run starts them, free ports and polling helpers."""
import os
from pathlib import Path
import signal
import socket
import subprocess
import threading
import time

import pytest

ARTIFACTS = Path(__file__).resolve().parent / 'artifacts'


def wait_until(predicate, timeout=10.0, interval=0.02):
    """Poll predicate until it is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class NodeProcess:
    """A package executable in its own process (as `ros2 run` would start it); renamed=False
    for one that holds several nodes (no __node remapping)."""

    def __init__(self, package, executable, params=None, args=(), name=None, log_dir=None,
                 namespace='', renamed=True):
        from face_common.launch_runner import NodeSpec, find_executable
        spec = NodeSpec(package, executable, name or executable, namespace, args=list(args),
                        params={k: _param(v) for k, v in (params or {}).items()},
                        renamed=renamed)
        self.spec = spec
        log_dir = Path(log_dir or ARTIFACTS / 'node-logs')
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f'{spec.name}-{os.getpid()}-{time.monotonic_ns()}.log'
        self._log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(spec.command(find_executable(package, executable)),
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout=10.0) -> int:
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def _param(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str) and value == '':
        return '""'
    return str(value)


class Collector:
    """Keeps every message received on a topic, thread-safe."""

    def __init__(self):
        self.messages = []
        self._lock = threading.Lock()

    def __call__(self, msg):
        with self._lock:
            self.messages.append(msg)

    def snapshot(self):
        with self._lock:
            return list(self.messages)

    def clear(self):
        with self._lock:
            self.messages.clear()


class RosTestNode:
    """An rclpy node spinning on a background thread, for subscribing and calling services."""

    def __init__(self, name='test_probe'):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._running = True
        self._thread.start()

    def _spin(self):
        while self._running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def subscribe(self, msg_type, topic, qos=None):
        from face_common import qos as profiles
        collector = Collector()
        self.node.create_subscription(msg_type, topic, collector, qos or profiles.LIVE_STREAM)
        return collector

    def call(self, srv_type, name, request, timeout=15.0):
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'service {name} not available')
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f'service {name} did not answer')
        return future.result()

    def close(self):
        self._running = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture(autouse=True)
def face_state_dir(tmp_path_factory, monkeypatch):
    """Each test's own e-stop state folder (FACE_STATE_DIR, inherited by the nodes it
    starts), so a test that leaves a robot e-stopped never starts the next one stopped."""
    folder = tmp_path_factory.mktemp('face-state')
    monkeypatch.setenv('FACE_STATE_DIR', str(folder))
    return folder


@pytest.fixture
def ros_node():
    probe = RosTestNode()
    yield probe
    probe.close()


@pytest.fixture
def node_process():
    started = []

    def start(*args, **kwargs):
        proc = NodeProcess(*args, **kwargs)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def artifacts_dir():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
