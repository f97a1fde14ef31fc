"""Safety layer soak: at least 1,000,000 commands per robot at the node's variable tick
spacing, with hostile inputs, every tick checked against the limits.

The actuation node ticks on its timer and on every command, so ticks come a quarter period to
1.25 periods apart; here they are drawn from a quarter period to three periods (the layer's
declared range), with an occasional stall (three periods to 2 s). Inputs: NaN/inf/huge and
out-of-range values, wrong lengths, stamps late, reordered, duplicated, zero, a little or far
ahead, or missing; silences long enough for the watchdog; e-stop, reset, resume (also while
latched: refused) and enable now and then. Every output is checked with
safety.measure_motion, the definitions the tests use.

Prints per robot: commands, ticks, violations of each kind, boundary clips, max |a|/limit,
time, and the cost of one update (per tick) and one command against np.clip of the command
(the least a layer could do), timed in the same run. Exit status 1 on any violation.
Run: make soak  (ARGS='--commands 1000000 --robots micheal hobbs ameca --seed 0').
"""
import argparse
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report
from face_actuation.profile import bundled_robots, load_profile
from face_actuation.safety import MAX_TICK_PERIODS, MIN_TICK_PERIODS, SafetyLayer, measure_motion

CHUNK = 20000                  # ticks generated and checked at a time
STALL_P = 1e-4                 # per tick
SILENCE_P = 2e-4               # per tick: a gap of 0.6-3 s in the commands (watchdog)
ESTOP_P = 5e-5                 # per tick while following
RELEASE_P = 1e-2               # per tick while latched or in standby: reset/enable, resume
WRONG_LENGTH_P = 5e-3
WILD_P = 1e-2                  # per value: NaN, inf or huge
SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e12, -1e12, 5.0, -3.0])
STAMPS = ('fresh', 'late', 'reordered', 'duplicate', 'zero', 'ahead', 'far', 'none')
STAMP_P = np.array([0.9] + [0.1 / 7] * 7)


class LimitTally:
    """Violations of each kind, chunk after chunk, carrying the last pose and velocity."""

    def __init__(self, safety):
        self.safety = safety
        self.pose = safety.position.copy()
        self.velocity = np.zeros(safety.n)
        self.position = self.speed = self.accel = 0
        self.worst = 0.0

    def add(self, positions, dts, restarts):
        s = self.safety
        v, a = measure_motion(np.vstack([self.pose, positions]), dts, restarts, s.max_tick_s,
                              self.velocity)
        self.position += int(((positions < 0) | (positions > 1)).any(axis=1).sum())
        self.speed += int((np.abs(v) > s.vmax * (1 + 1e-9) + 1e-9).any(axis=1).sum())
        self.accel += int((np.abs(a) > s.amax * (1 + 1e-6) + 1e-6).any(axis=1).sum())
        self.worst = max(self.worst, float((np.abs(a) / s.amax).max()))
        self.pose, self.velocity = positions[-1].copy(), v[-1].copy()


def stamp_for(kind: str, now: float, last: float, rng) -> float | None:
    if kind == 'fresh':
        return now - rng.uniform(0.0, 0.03)
    if kind == 'late':
        return now - rng.uniform(0.3, 10.0)
    if kind == 'reordered':
        return last - rng.uniform(0.0, 0.1)
    if kind == 'duplicate':
        return last
    if kind == 'zero':
        return 0.0
    if kind == 'ahead':
        return now + rng.uniform(0.0, 0.5)
    if kind == 'far':
        return now + rng.uniform(1.0, 2e9)
    return None


def soak(name: str, wanted: int, seed: int) -> bool:
    profile = load_profile(name, '/nonexistent')
    n = profile.num_motors
    rng = np.random.default_rng(seed)
    safety = SafetyLayer(profile)
    period = safety.period_s
    now = last_stamp = 1.7e9
    safety.power_up(np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 1, n)))
    tally = LimitTally(safety)
    clock = time.perf_counter_ns
    update_ns, command_ns, baseline_ns = [], [], []
    ticks = silent_until = refused = 0
    restart_next = False
    started = time.perf_counter()
    while safety.counters.commands < wanted:
        dts = rng.uniform(MIN_TICK_PERIODS * period, MAX_TICK_PERIODS * period, CHUNK)
        stalls = rng.random(CHUNK) < STALL_P
        dts[stalls] = rng.uniform(MAX_TICK_PERIODS * period, 2.0, int(stalls.sum()))
        has_command = rng.random(CHUNK) < 0.8
        values = rng.uniform(-0.1, 1.1, (CHUNK, n))
        at_ends = rng.random(CHUNK) < 0.3
        values[at_ends] = rng.choice([0.0, 1.0], (int(at_ends.sum()), n))
        wild = rng.random((CHUNK, n)) < WILD_P
        values[wild] = rng.choice(SPECIALS, int(wild.sum()))
        kinds = rng.choice(len(STAMPS), CHUNK, p=STAMP_P)
        events = rng.random((CHUNK, 3))
        positions = np.empty((CHUNK, n))
        restarts = np.zeros(CHUNK, dtype=bool)
        for i in range(CHUNK):
            now += dts[i]
            ticks += 1
            if events[i, 0] < SILENCE_P:
                silent_until = ticks + int(rng.uniform(0.6, 3.0) / period)
            if safety.latched or not safety.following:
                if events[i, 1] < RELEASE_P:
                    if safety.latched:
                        refused += not safety.resume()
                        if events[i, 2] < 0.5:
                            safety.reset()
                        else:
                            safety.enable()
                    else:
                        safety.resume()
            elif events[i, 1] < ESTOP_P:
                safety.estop()
                restart_next = True
            if has_command[i] and ticks >= silent_until:
                command = values[i]
                if events[i, 2] < WRONG_LENGTH_P:
                    command = command[:int(rng.integers(0, n))]
                stamp = stamp_for(STAMPS[kinds[i]], now, last_stamp, rng)
                if stamp is not None and stamp > 0:
                    last_stamp = stamp
                t0 = clock()
                safety.command(command, now, stamp)
                t1 = clock()
                np.clip(command, 0.0, 1.0)
                baseline_ns.append(clock() - t1)
                command_ns.append(t1 - t0)
            t0 = clock()
            out = safety.update(dts[i])
            update_ns.append(clock() - t0)
            positions[i] = safety.position if out is None else out     # limp: unchanged
            restarts[i], restart_next = restart_next, False
        tally.add(positions, dts, restarts)
    elapsed = time.perf_counter() - started
    c = safety.counters
    print(f'{name} ({n} motors): {c.commands:,} commands, {ticks:,} ticks, {c.stalls} stalls, '
          f'{c.estops} e-stops ({refused} resumes refused while latched), '
          f'{c.watchdog_trips} watchdog trips, {elapsed:.1f} s')
    print(f'  violations: position {tally.position}, velocity {tally.speed}, acceleration '
          f'{tally.accel}; boundary clips {c.boundary_clips}; max |a|/limit '
          f'{tally.worst:.6f}')
    print(f'  dropped: {c.rejected_length} wrong length, {c.zero_stamps} zero stamps, '
          f'{c.future_stamps} future stamps, {c.stale_commands} stale, {c.late_commands} '
          f'late, {c.ignored_commands} ignored while not following; values: '
          f'{c.non_finite_values} non-finite, {c.clamped_values} clamped')
    baseline_ms = np.array(baseline_ns) / 1e6
    report(f'{name}: update per tick', np.array(update_ns) / 1e6, baseline_ms, 'np.clip')
    report(f'{name}: command per command', np.array(command_ns) / 1e6, baseline_ms, 'np.clip')
    return (tally.position, tally.speed, tally.accel, c.boundary_clips) == (0, 0, 0, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--commands', type=int, default=1_000_000,
                        help='commands per robot (default 1,000,000)')
    parser.add_argument('--robots', nargs='+', default=bundled_robots())
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    print(f'== safety layer soak: {args.commands:,} commands per robot, ticks '
          f'{MIN_TICK_PERIODS}-{MAX_TICK_PERIODS} periods apart plus stalls, seed {args.seed}')
    clean = [soak(name, args.commands, args.seed) for name in args.robots]
    sys.exit(0 if all(clean) else 1)


if __name__ == '__main__':
    main()
