"""Capture + retarget on one "machine", actuation on another, joined by a network link:
run inside a user namespace (`unshare -Urn python tests/two_machines.py OUT_DIR`), where the
current network namespace is the laptop's and a nested one (`unshare -n`) is the robot
computer's, with a veth pair between them (10.45.0.1 <-> 10.45.0.2).

The same take and nodes run twice: first all on the laptop side over loopback (the one-machine
figure), then with actuation on the robot side, discovered through ROS_STATIC_PEERS only
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST: no multicast discovery across the link) and its data
over UDP on the link (FASTDDS_BUILTIN_TRANSPORTS=UDPv4: two computers share no memory).
A probe on the laptop side measures each run: end-to-end latency from the joined per-frame
traces, and whether the robot's applied commands follow the retargeted ones. Writes
OUT_DIR/result.json; node logs go to OUT_DIR/<run>/.
"""
import json
import os
from pathlib import Path
import subprocess
import sys
import time

LAPTOP, ROBOT = '10.45.0.1', '10.45.0.2'
WARMUP_TRACES = 60           # frames through the whole chain before measuring
MEASURE_S = 10.0


def sh(*command, netns=None):
    prefix = ['nsenter', f'--net={netns}'] if netns else []
    subprocess.run([*prefix, *command], check=True)


def make_link() -> tuple:
    """The robot computer's namespace (held by a sleeping process) and the link to it. The
    default routes stand in for a LAN's router: Fast DDS finds no usable interface without
    one."""
    holder = subprocess.Popen(['unshare', '-n', 'sleep', 'infinity'])
    netns = f'/proc/{holder.pid}/ns/net'
    deadline = time.monotonic() + 5
    while os.readlink(netns) == os.readlink('/proc/self/ns/net'):
        if time.monotonic() > deadline:
            raise RuntimeError('the robot namespace did not appear')
        time.sleep(0.02)
    sh('ip', 'link', 'add', 'face_laptop', 'type', 'veth', 'peer', 'name', 'face_robot',
       'netns', netns)
    for device, address, ns in (('face_laptop', LAPTOP, None), ('face_robot', ROBOT, netns)):
        sh('ip', 'link', 'set', 'lo', 'up', netns=ns)
        sh('ip', 'addr', 'add', f'{address}/24', 'dev', device, netns=ns)
        sh('ip', 'link', 'set', device, 'up', netns=ns)
        sh('ip', 'route', 'add', 'default', 'dev', device, netns=ns)
    return holder, netns


def link_bytes() -> int:
    """Bytes received + sent by the laptop's end (/proc/net/dev is this namespace's view)."""
    for line in Path('/proc/net/dev').read_text().splitlines():
        device, _, counters = line.partition(':')
        if device.strip() == 'face_laptop':
            fields = counters.split()
            return int(fields[0]) + int(fields[8])
    raise RuntimeError('no face_laptop device')


def node_command(package, executable, params) -> list:
    from face_common.launch_runner import NodeSpec, find_executable
    spec = NodeSpec(package, executable, executable,
                    params={key: str(value) for key, value in params.items()})
    return spec.command(find_executable(package, executable))


def run(name: str, out: Path, robot_netns: str | None) -> dict:
    """One pass of the take through the pipeline; the probe's figures."""
    logs = out / name
    logs.mkdir(parents=True)
    state = logs / 'state'
    laptop_env, robot_env = dict(os.environ), dict(os.environ)
    if robot_netns:
        for env, peer in ((laptop_env, ROBOT), (robot_env, LAPTOP)):
            env.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_STATIC_PEERS=peer,
                       FASTDDS_BUILTIN_TRANSPORTS='UDPv4')
    else:
        laptop_env.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
        robot_env = laptop_env
    port = 41000 + os.getpid() % 1000
    robot = node_command('face_actuation', 'actuation', {
        'robot': 'hobbs', 'driver': 'sim', 'calibration_dir': str(state)})
    if robot_netns:
        robot = ['nsenter', f'--net={robot_netns}', *robot]
    started = [
        ('actuation', robot, robot_env),
        ('livelink_receiver', node_command('face_capture', 'livelink_receiver',
                                           {'port': port, 'calibration_dir': str(state)}),
         laptop_env),
        ('retarget', node_command('face_retarget', 'retarget',
                                  {'robot': 'hobbs', 'model': 'linear'}), laptop_env),
        ('probe', [sys.executable, __file__, 'probe', str(logs / 'probe.json')], laptop_env),
        ('standin_iphone', [sys.executable, '-m', 'face_capture.send_take', '--port',
                            str(port), '--loop', '--start-delay', '3'], laptop_env),
    ]
    processes = {}
    try:
        for process_name, command, env in started:
            with open(logs / f'{process_name}.log', 'w') as log:
                processes[process_name] = subprocess.Popen(command, env=env, stdout=log,
                                                           stderr=subprocess.STDOUT)
        probe = processes['probe']
        probe.wait(timeout=120)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    if probe.returncode != 0:
        raise RuntimeError(f'{name}: the probe failed; logs in {logs}')
    return json.loads((logs / 'probe.json').read_text())


def probe(result_path: str) -> None:
    """On the laptop side: join the traces, pair each applied command with the retargeted
    command it followed, for MEASURE_S after the warm-up."""
    import numpy as np
    import rclpy
    from rclpy.time import Time

    from face_common import qos
    from face_common.latency import END_TO_END, Stage, TraceJoiner
    from face_msgs.msg import ControlValues, LatencyTrace

    rclpy.init()
    node = rclpy.create_node('two_machines_probe')
    joiner, end_to_end, gaps = TraceJoiner(), [], {}
    latest_command, pairs = [None], []

    def on_trace(msg):
        stages = [Stage(s.stage, s.node, Time.from_msg(s.start).nanoseconds, s.duration_ms)
                  for s in msg.stages]
        trace = joiner.add(Time.from_msg(msg.header.stamp).nanoseconds, stages)
        if trace is not None:
            end_to_end.append(trace[END_TO_END])
            for key, value in trace.items():
                if key.startswith('transmission'):
                    gaps.setdefault(key, []).append(value)

    def on_applied(msg):
        if latest_command[0] is not None and len(msg.values) == len(latest_command[0]):
            pairs.append((latest_command[0], np.asarray(msg.values)))

    node.create_subscription(LatencyTrace, '/face/latency', on_trace, qos.TRACE)
    node.create_subscription(ControlValues, '/face/command',
                             lambda msg: latest_command.__setitem__(0, np.asarray(msg.values)),
                             qos.LIVE_STREAM)
    node.create_subscription(ControlValues, '/face/robot/applied', on_applied,
                             qos.LIVE_STREAM)
    deadline = time.monotonic() + 90
    while len(end_to_end) < WARMUP_TRACES and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if len(end_to_end) < WARMUP_TRACES:
        sys.exit(f'probe: only {len(end_to_end)} complete frame traces in 90 s')
    end_to_end.clear()
    pairs.clear()
    gaps.clear()
    until = time.monotonic() + MEASURE_S
    while time.monotonic() < until:
        rclpy.spin_once(node, timeout_sec=0.05)
    commands = np.array([c for c, _ in pairs])
    applied = np.array([a for _, a in pairs])
    moving = commands.std(axis=0) > 1e-3
    follow = float(np.corrcoef(commands[:, moving].ravel(), applied[:, moving].ravel())[0, 1])
    samples = np.asarray(end_to_end)
    Path(result_path).write_text(json.dumps({
        'frames': len(samples), 'applied': len(pairs), 'moving_motors': int(moving.sum()),
        'applied_follows_command_r': follow,
        'end_to_end_ms': {'p50': float(np.median(samples)), 'mean': float(samples.mean()),
                          'p95': float(np.percentile(samples, 95))},
        'transmission_ms_p50': {k: float(np.median(v)) for k, v in gaps.items()},
    }, indent=2))
    node.destroy_node()
    rclpy.shutdown()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sh('ip', 'link', 'set', 'lo', 'up')          # a new namespace starts with it down
    result = {'one_machine': run('one_machine', out, None)}
    holder, netns = make_link()
    try:
        before = link_bytes()
        result['two_namespaces'] = run('two_namespaces', out, netns)
        result['two_namespaces']['link_bytes'] = link_bytes() - before
    finally:
        holder.kill()
    (out / 'result.json').write_text(json.dumps(result, indent=2))


if __name__ == '__main__':
    if sys.argv[1] == 'probe':
        probe(sys.argv[2])
    else:
        main(Path(sys.argv[1]))
