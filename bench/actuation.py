"""Actuation per-command path: safety layer + driver write, twin step, and the highest
sustained control rate on this machine.

Baselines, measured in the same run: the safety layer against a bare np.clip of the command
(what skipping safety would cost), and each driver's write against encoding alone.
Run: make bench (or python bench/actuation.py in the activated workspace).
"""
import argparse
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, time_calls
from face_actuation.drivers import make_driver
from face_actuation.emulators import DynamixelEmulator, MaestroEmulator
from face_actuation.profile import load_profile
from face_actuation.safety import SafetyLayer
from face_actuation.twin import FaceTwin

DT = 1.0 / 60.0


def active_safety(profile):
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    return safety


def command_stream(profile, count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (count, profile.num_motors))


def bench_robot(name: str, iterations: int) -> None:
    profile = load_profile(name, '/nonexistent')
    commands = command_stream(profile, iterations + 400)
    safety = active_safety(profile)
    clock = {'now': 0.0, 'i': 0}

    def safety_step():
        clock['now'] += DT
        clock['i'] = (clock['i'] + 1) % len(commands)
        safety.command(commands[clock['i']], clock['now'])
        return safety.update(DT)

    report(f'{name}: safety command+update ({profile.num_motors} motors)',
           time_calls(safety_step, iterations),
           time_calls(lambda: np.clip(commands[clock['i']], 0, 1), iterations), 'np.clip')

    twin = FaceTwin(profile)
    report(f'{name}: twin step + observe', time_calls(
        lambda: (twin.step(commands[clock['i']], DT), twin.observe()), iterations))

    if name == 'micheal':
        device = MaestroEmulator((12, 13))
        driver = make_driver(profile, {'type': 'maestro', 'port': device.path})
    elif name == 'hobbs':
        device = DynamixelEmulator([m.channel for m in profile.motors])
        driver = make_driver(profile, {'type': 'dynamixel', 'port': device.path})
    else:
        device = None
        driver = make_driver(profile, {'type': 'ameca_zmq', 'endpoint': 'tcp://127.0.0.1:*'})
    driver.connect()
    pose = profile.neutral
    report(f'{name}: safety + {driver.name} write per command',
           time_calls(lambda: driver.write(safety_step()), iterations // 4))
    write = time_calls(lambda: driver.write(pose), iterations // 4)
    if name == 'micheal':
        encode = time_calls(lambda: driver.encode(pose), iterations // 4)
        report(f'{name}: Maestro write (2 x Set Multiple Targets, pty)', write, encode,
               'encode only')
    elif name == 'hobbs':
        encode = time_calls(lambda: profile.to_native(pose), iterations // 4)
        report(f'{name}: Dynamixel GroupSyncWrite (pty)', write, encode, 'unit conversion')
    else:
        encode = time_calls(lambda: [driver.format_value(v) for v in profile.to_native(pose)],
                            iterations // 4)
        report(f'{name}: Ameca ZeroMQ publish (30 parts)', write, encode, 'formatting only')
    driver.disconnect()
    if device is not None:
        device.close()



def run_loop(profile, hz: float, seconds: float):
    """The node's control loop (sleep-scheduled, full tick: safety + twin) at `hz`; returns
    tick lateness in ms and the number of overruns (ticks that started a period late)."""
    safety = active_safety(profile)
    twin = FaceTwin(profile)
    commands = command_stream(profile, 64)
    period = 1.0 / hz
    next_tick = time.monotonic()
    lateness, overruns, count = [], 0, 0
    end = next_tick + seconds
    while next_tick < end:
        now = time.monotonic()
        late = now - next_tick
        lateness.append(late * 1e3)
        overruns += late > period
        safety.command(commands[count % 64], now)
        twin.step(safety.update(period), period)
        count += 1
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return lateness, overruns


def bench_sustained_rate(seconds: float) -> None:
    """Highest control rate the loop sustains here: no overruns and p99 lateness under a
    quarter period, measured at increasing rates."""
    profile = load_profile('micheal', '/nonexistent')
    best = 0.0
    for hz in (60, 200, 500, 1000, 2000, 4000):
        lateness, overruns = run_loop(profile, hz, seconds)
        summary = report(f'control loop at {hz} Hz: tick lateness', lateness)
        if overruns == 0 and summary['p99'] < 250.0 / hz:
            best = hz
        else:
            print(f'  {hz} Hz not sustained: {overruns} overruns')
            break
    print(f'highest sustained control rate: {best} Hz (the node offers 60-200 Hz)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=4000)
    args = parser.parse_args()
    print('== actuation per-command path')
    for name in ('micheal', 'hobbs', 'ameca'):
        bench_robot(name, args.iterations)
    bench_sustained_rate(2.0)


if __name__ == '__main__':
    main()
