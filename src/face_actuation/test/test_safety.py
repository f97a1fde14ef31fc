"""Safety layer: property tests over thousands of random command sequences (NaN, inf, huge
values, wrong lengths, silences) that check every tick for limit violations."""
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from face_actuation.profile import load_profile
from face_actuation.safety import Mode, SafetyLayer

ROBOTS = ('micheal', 'hobbs', 'ameca')
PROFILES = {name: load_profile(name, calibration_dir='/nonexistent') for name in ROBOTS}
DT = 1.0 / 60.0
EPS = 1e-9


class LimitChecker:
    """Asserts position, velocity and acceleration limits between consecutive outputs."""

    def __init__(self, profile, start):
        self.vmax = profile.array('max_velocity')
        self.amax = profile.array('max_acceleration')
        self.last = np.asarray(start, float)
        self.last_v = np.zeros_like(self.last)
        self.steps = 0

    def check(self, output, dt=DT):
        assert output.shape == self.last.shape and np.isfinite(output).all()
        assert (output >= -EPS).all() and (output <= 1 + EPS).all()
        v = (output - self.last) / dt
        assert (np.abs(v) <= self.vmax + 1e-6).all(), f'velocity {np.abs(v).max()}'
        a = (v - self.last_v) / dt
        assert (np.abs(a) <= self.amax * (1 + 1e-6) + 1e-6).all(), \
            f'acceleration {np.abs(a - 0).max()} > {self.amax[np.argmax(np.abs(a))]}'
        self.last, self.last_v = output.copy(), v
        self.steps += 1


SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e12, -1e12, 5.0, -3.0])


def random_command(rng, n):
    """A command vector: mostly in or near range, with NaN/inf/huge entries mixed in."""
    values = rng.uniform(-0.2, 1.2, n)
    wild = rng.random(n) < rng.choice([0.0, 0.05, 0.3])
    values[wild] = rng.choice(SPECIALS, int(wild.sum()))
    return values


steps_strategy = st.lists(st.tuples(st.sampled_from(['cmd', 'cmd', 'cmd', 'bad_len',
                                                     'silence']), st.integers(1, 40)),
                          min_size=5, max_size=60)


@pytest.mark.parametrize('robot', ROBOTS)
@settings(max_examples=700, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), steps=steps_strategy)
def test_no_limit_violations_under_random_commands(robot, seed, steps):
    profile = PROFILES[robot]
    n = profile.num_motors
    rng = np.random.default_rng(seed)
    safety = SafetyLayer(profile)
    now = 0.0
    safety.power_up(rng.uniform(0, 1, n), now)
    checker = LimitChecker(profile, safety.position)
    for kind, count in steps:
        ticks = 1
        if kind == 'cmd':
            safety.command(random_command(rng, n), now)
        elif kind == 'bad_len':
            safety.command(random_command(rng, int(rng.choice([0, 1, n - 1, n + 1, 3 * n]))),
                           now)
        else:
            ticks = count
        for _ in range(ticks):
            now += DT
            checker.check(safety.update(now, DT))
    assert checker.steps > 0


@pytest.mark.parametrize('robot', ROBOTS)
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), holds=st.lists(st.integers(1, 90), min_size=1,
                                                          max_size=5))
def test_watchdog_reaches_neutral_in_time_without_violations(robot, seed, holds):
    profile = PROFILES[robot]
    n = profile.num_motors
    rng = np.random.default_rng(seed)
    safety = SafetyLayer(profile)
    now = 0.0
    safety.power_up(profile.neutral, now)
    checker = LimitChecker(profile, safety.position)
    # drive to random extremes for a while (through the limits), then go silent
    for hold in holds:
        pose = rng.choice([0.0, 1.0], n) if rng.random() < 0.5 else rng.uniform(0, 1, n)
        for _ in range(hold):
            now += DT
            safety.command(pose, now)
            checker.check(safety.update(now, DT))
    last_command = now
    config = profile.safety
    deadline = last_command + config.watchdog_timeout_s + config.return_to_neutral_s
    while now < deadline + 1e-9:
        now += DT
        checker.check(safety.update(now, DT))
    assert safety.counters.watchdog_trips == 1
    np.testing.assert_allclose(safety.position, profile.neutral, atol=1e-3)


def test_power_up_eases_to_neutral_then_follows_commands():
    profile = PROFILES['micheal']
    safety = SafetyLayer(profile)
    start = np.where(profile.neutral > 0.5, 0.0, 1.0)          # far from neutral
    safety.power_up(start, 0.0)
    checker = LimitChecker(profile, safety.position)
    wanted = np.full(profile.num_motors, 0.7)
    now, pose_at_handover = 0.0, None
    while safety.mode is Mode.POWER_UP and now < 2 * profile.safety.power_up_s:
        pose_at_handover = safety.position.copy()
        now += DT
        safety.command(wanted, now)                             # held until at neutral
        checker.check(safety.update(now, DT))
    assert safety.mode is Mode.ACTIVE
    assert profile.safety.power_up_s <= now <= profile.safety.power_up_s + 2 * DT
    np.testing.assert_allclose(pose_at_handover, profile.neutral, atol=1e-4)
    for _ in range(120):
        now += DT
        safety.command(wanted, now)
        checker.check(safety.update(now, DT))
    np.testing.assert_allclose(safety.position, wanted, atol=1e-3)


def test_bad_commands_are_counted_and_hold_last_safe_values():
    profile = PROFILES['hobbs']
    n = profile.num_motors
    safety = SafetyLayer(profile)
    safety.power_up(profile.neutral, 0.0)
    now = profile.safety.power_up_s + DT
    safety.update(now, DT)
    good = np.full(n, 0.4)
    assert safety.command(good, now)
    bad = good.copy()
    bad[[0, 3]] = [np.nan, np.inf]
    bad[5] = 7.0
    assert safety.command(bad, now)
    assert safety.target[0] == 0.4 and safety.target[3] == 0.4 and safety.target[5] == 1.0
    assert not safety.command(np.zeros(n - 1), now)
    c = safety.counters
    assert (c.non_finite_values, c.clamped_values, c.rejected_length) == (2, 1, 1)


def test_stale_and_late_commands_are_dropped():
    profile = PROFILES['ameca']
    safety = SafetyLayer(profile, max_command_age_s=0.1)
    safety.power_up(profile.neutral, 0.0)
    pose = profile.neutral
    assert safety.command(pose, now=1.0, stamp=0.99)
    assert not safety.command(pose, now=1.01, stamp=0.98)         # reordered
    assert not safety.command(pose, now=2.0, stamp=1.5)           # 0.5 s old
    assert (safety.counters.stale_commands, safety.counters.late_commands) == (1, 1)


@pytest.mark.parametrize('mode', ['hold', 'limp'])
def test_estop_holds_or_goes_limp_and_resumes_smoothly(mode):
    from dataclasses import replace
    base = PROFILES['micheal']
    profile = replace(base, safety=replace(base.safety, estop_mode=mode))
    safety = SafetyLayer(profile)
    safety.power_up(profile.neutral, 0.0)
    now = 0.0
    for _ in range(200):
        now += DT
        safety.command(np.full(profile.num_motors, 0.8), now)
        safety.update(now, DT)
    held = safety.position.copy()
    safety.estop()
    for _ in range(30):
        now += DT
        safety.command(np.zeros(profile.num_motors), now)         # ignored during e-stop
        out = safety.update(now, DT)
        if mode == 'limp':
            assert out is None
        else:
            np.testing.assert_array_equal(out, held)
    safety.enable(now)
    checker = LimitChecker(profile, safety.position)
    for _ in range(60):
        now += DT
        checker.check(safety.update(now, DT))
    assert safety.counters.estops == 1


@pytest.mark.parametrize('robot', ['micheal', 'ameca'])     # jaw opens toward 1 / toward 0
def test_jaw_hold_rule_ramps_back_after_max_hold(robot):
    profile = PROFILES[robot]
    rule = profile.safety.hold_rules[0]
    sign = 1.0 if rule.direction == 'above' else -1.0
    jaw = profile.index(rule.motor)
    safety = SafetyLayer(profile)
    safety.power_up(profile.neutral, 0.0)
    now, wide = 0.0, profile.neutral.copy()
    wide[jaw] = 0.95 if sign > 0 else 0.05
    checker = LimitChecker(profile, safety.position)
    peak_after_ramp = []
    while now < profile.safety.power_up_s + rule.max_hold_s + rule.ramp_s + 1.5:
        now += DT
        safety.command(wide, now)
        out = safety.update(now, DT)
        checker.check(out)
        if now > profile.safety.power_up_s + rule.max_hold_s + rule.ramp_s + 1.0:
            peak_after_ramp.append(sign * out[jaw])
    assert safety.counters.hold_rule_ramps == 1
    assert max(peak_after_ramp) <= sign * rule.threshold + 1e-6


def test_symmetry_averages_pairs():
    from dataclasses import replace
    base = PROFILES['micheal']
    profile = replace(base, safety=replace(base.safety, symmetry=True))
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral, 0.0)
    command = profile.neutral.copy()
    left, right = profile.pair_indices()[0]
    command[left], command[right] = 0.9, 0.1
    safety.command(command, 1.0)
    assert safety.target[left] == safety.target[right] == pytest.approx(0.5)
    assert safety.counters.symmetry_corrections == 1
