"""Safety layer: property tests over random command sequences (NaN, inf, huge values, wrong
lengths, hostile stamps, silences, stalls, e-stop/reset/resume interleavings) at random tick
spacing, checking every tick against the limits as safety.measure_motion defines them."""
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from face_actuation.profile import load_profile
from face_actuation.safety import (
    MAX_TICK_PERIODS,
    MIN_TICK_PERIODS,
    Mode,
    SafetyLayer,
    measure_motion,
)

ROBOTS = ('micheal', 'hobbs', 'ameca')
PROFILES = {name: load_profile(name, calibration_dir='/nonexistent') for name in ROBOTS}
DT = 1.0 / 60.0
SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e12, -1e12, 5.0, -3.0])


def with_safety(profile, **changes):
    return replace(profile, safety=replace(profile.safety, **changes))


class MotionLog:
    """Every output of one layer, split where the motors went limp, checked at the end with
    measure_motion's definitions (velocity and acceleration per step, restarts from rest)."""

    def __init__(self, safety):
        self.safety = safety
        self.segments = []
        self._restart_next = False
        self._new_segment(safety.position)

    def _new_segment(self, pose):
        self.rows, self.dts, self.restarts = [np.array(pose, float)], [], []
        self.segments.append((self.rows, self.dts, self.restarts))

    def estop(self):
        """The e-stop stops at once by design: the next tick restarts from rest."""
        self.safety.estop()
        self._restart_next = True

    def tick(self, dt):
        before = self.safety.position.copy()
        out = self.safety.update(dt)
        if out is None:                                   # limp: the motors are free
            self.rows = None
            return None
        if self.rows is None:                             # after a reset from limp
            self._new_segment(before)
        self.rows.append(out)
        self.dts.append(dt)
        self.restarts.append(self._restart_next)
        self._restart_next = False
        return out

    def violations(self):
        """(position, velocity, acceleration) violations and the largest |a|/limit."""
        counts, worst = np.zeros(3, int), 0.0
        vmax, amax = self.safety.vmax, self.safety.amax
        for rows, dts, restarts in self.segments:
            if not dts:
                continue
            positions = np.array(rows)
            assert np.isfinite(positions).all()
            v, a = measure_motion(positions, dts, restarts, self.safety.max_tick_s)
            counts += [int(((positions < 0) | (positions > 1)).sum()),
                       int((np.abs(v) > vmax * (1 + 1e-9) + 1e-9).sum()),
                       int((np.abs(a) > amax * (1 + 1e-6) + 1e-6).sum())]
            worst = max(worst, float((np.abs(a) / amax).max()))
        return tuple(counts), worst

    def assert_within_limits(self):
        counts, worst = self.violations()
        assert counts == (0, 0, 0), f'violations (position, velocity, accel) {counts}, ' \
                                    f'worst |a|/limit {worst:.3f}'
        assert self.safety.counters.boundary_clips == 0


def random_command(rng, n):
    """A command vector: in range, at the range ends, or with NaN/inf/huge entries mixed in."""
    values = rng.uniform(-0.2, 1.2, n) if rng.random() < 0.7 else rng.choice([0.0, 1.0], n)
    wild = rng.random(n) < rng.choice([0.0, 0.05, 0.3])
    values[wild] = rng.choice(SPECIALS, int(wild.sum()))
    return values


def random_stamp(rng, now, last):
    """Fresh mostly; else late, reordered, duplicate, zero, negative, NaN, a little or far
    ahead, or no stamp at all."""
    kind = rng.choice(['fresh'] * 6 + ['late', 'reordered', 'duplicate', 'zero', 'negative',
                                       'nan', 'ahead', 'far', 'none'])
    return {'fresh': now - rng.uniform(0, 0.05), 'late': now - rng.uniform(0.3, 5.0),
            'reordered': last - rng.uniform(0, 0.1), 'duplicate': last, 'zero': 0.0,
            'negative': -rng.uniform(0, 1e9), 'nan': float('nan'),
            'ahead': now + rng.uniform(0, 0.6), 'far': now + rng.uniform(1.0, 2e9),
            'none': None}[kind]


def random_dt(rng, period):
    """The node's spacing: a timer tick or a command tick, a quarter period to three."""
    return rng.uniform(MIN_TICK_PERIODS * period, MAX_TICK_PERIODS * period)


EVENTS = st.lists(st.tuples(st.sampled_from(['cmd'] * 6 + ['bad_len', 'silence', 'stall',
                                                           'estop', 'reset', 'resume',
                                                           'enable', 'neutral']),
                            st.integers(1, 40)), min_size=5, max_size=40)


@pytest.mark.parametrize('robot', ROBOTS)
@pytest.mark.parametrize('estop_mode', ['hold', 'limp'])
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), events=EVENTS)
def test_no_limit_violations_whatever_arrives_and_whatever_the_tick_spacing(
        robot, estop_mode, seed, events):
    profile = with_safety(PROFILES[robot], estop_mode=estop_mode)
    n = profile.num_motors
    rng = np.random.default_rng(seed)
    safety = SafetyLayer(profile)
    period = safety.period_s
    now = 1000.0
    safety.power_up(np.where(rng.random(n) < 0.2, np.nan, rng.uniform(0, 1, n)))
    log = MotionLog(safety)
    last_stamp = now
    for kind, count in events:
        ticks = count
        if kind == 'cmd':
            for _ in range(count):
                stamp = random_stamp(rng, now, last_stamp)
                last_stamp = stamp if stamp is not None and np.isfinite(stamp) else last_stamp
                safety.command(random_command(rng, n), now, stamp)
                dt = random_dt(rng, period)             # the tick the command triggers
                now += dt
                log.tick(dt)
            ticks = int(rng.integers(0, 3))
        elif kind == 'bad_len':
            safety.command(random_command(rng, int(rng.choice([0, 1, n - 1, n + 1, 3 * n]))),
                           now, now)
        elif kind == 'stall':
            dt = rng.uniform(MAX_TICK_PERIODS * period, 2.0)
            now += dt
            log.tick(dt)
        elif kind == 'estop':
            log.estop()
        elif kind == 'reset':
            sagged = rng.uniform(0, 1, n) if safety.limp else None
            safety.reset(sagged)
        elif kind == 'resume':
            assert safety.resume() == (safety.mode is not Mode.ESTOP)
        elif kind == 'enable':
            safety.enable(rng.uniform(0, 1, n) if safety.limp else None)
        elif kind == 'neutral':
            safety.command(profile.neutral, now)
        for _ in range(ticks):
            dt = random_dt(rng, period)
            now += dt
            log.tick(dt)
    log.assert_within_limits()


@pytest.mark.parametrize('robot', ROBOTS)
def test_variable_tick_spacing_from_the_node_keeps_acceleration_and_range(robot):
    """The reported fault: dt ~ U(4.2, 16.7) ms (timer ticks and command ticks mixed) made
    the old braking overshoot (here, on main: 1,250 to 1,450 motor-ticks over the
    acceleration limit per robot, worst 4.2x). Commands jump between the range ends and
    random poses."""
    profile = PROFILES[robot]
    n = profile.num_motors
    rng = np.random.default_rng(15)
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    log = MotionLog(safety)
    now = 0.0
    for _ in range(6000):
        dt = rng.uniform(0.0042, 0.0167)
        now += dt
        if rng.random() < 0.6:
            pose = rng.choice([0.0, 1.0], n) if rng.random() < 0.5 else rng.uniform(0, 1, n)
            safety.command(pose, now, now)
        log.tick(dt)
    log.assert_within_limits()
    reached = np.concatenate([rows for rows, _, _ in log.segments])
    assert (reached == 1.0).any() and (reached == 0.0).any()     # the ends, exactly, unclipped


@pytest.mark.parametrize('robot', ROBOTS)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), holds=st.lists(st.integers(1, 90), min_size=1,
                                                          max_size=5))
def test_watchdog_reaches_neutral_in_time_without_violations(robot, seed, holds):
    profile = PROFILES[robot]
    n = profile.num_motors
    rng = np.random.default_rng(seed)
    safety = SafetyLayer(profile)
    now = 0.0
    safety.start_active(profile.neutral)
    log = MotionLog(safety)
    # drive to random extremes for a while (through the limits), then go silent
    for hold in holds:
        pose = rng.choice([0.0, 1.0], n) if rng.random() < 0.5 else rng.uniform(0, 1, n)
        for _ in range(hold):
            dt = random_dt(rng, safety.period_s)
            now += dt
            safety.command(pose, now)
            log.tick(dt)
    last_command = now
    config = profile.safety
    deadline = last_command + config.watchdog_timeout_s + config.return_to_neutral_s
    while now < deadline + 1e-9:
        dt = random_dt(rng, safety.period_s)
        now += dt
        log.tick(dt)
    log.assert_within_limits()
    assert safety.counters.watchdog_trips == 1
    np.testing.assert_allclose(safety.position, profile.neutral, atol=1e-3)


def test_power_up_eases_to_neutral_then_follows_commands():
    profile = PROFILES['micheal']
    safety = SafetyLayer(profile)
    start = np.where(profile.neutral > 0.5, 0.0, 1.0)          # far from neutral
    safety.power_up(start)
    log = MotionLog(safety)
    wanted = np.full(profile.num_motors, 0.7)
    now, pose_at_handover = 0.0, None
    while safety.mode is Mode.POWER_UP and now < 2 * profile.safety.power_up_s:
        pose_at_handover = safety.position.copy()
        now += DT
        safety.command(wanted, now)                             # held until at neutral
        log.tick(DT)
    assert safety.mode is Mode.ACTIVE
    assert profile.safety.power_up_s <= now <= profile.safety.power_up_s + 2 * DT
    np.testing.assert_allclose(pose_at_handover, profile.neutral, atol=1e-4)
    for _ in range(120):
        now += DT
        safety.command(wanted, now)
        log.tick(DT)
    log.assert_within_limits()
    np.testing.assert_allclose(safety.position, wanted, atol=1e-3)


def test_power_up_starts_motors_of_unknown_position_at_neutral():
    """A Maestro servo that was off reads 0 (driver: NaN = unknown); that motor must start at
    neutral, not at its range end, while known motors start where they are."""
    profile = PROFILES['micheal']
    n = profile.num_motors
    measured = np.full(n, 0.2)
    measured[[0, 5, 17]] = np.nan
    safety = SafetyLayer(profile)
    safety.power_up(measured)
    expected = np.full(n, 0.2)
    expected[[0, 5, 17]] = profile.neutral[[0, 5, 17]]
    np.testing.assert_array_equal(safety.position, expected)
    safety.power_up(np.full(n - 1, 0.2))                        # wrong length: all unknown
    np.testing.assert_array_equal(safety.position, profile.neutral)


@pytest.mark.parametrize('robot', ROBOTS)
def test_a_motor_measured_outside_its_range_is_brought_in_under_the_limits(robot):
    """Before: a pose measured outside 0..1 (a horn moved by hand while unpowered, a jaw
    sagged past its range while limp) was clipped, so the first position sent was the range
    end: a jump of any size in one tick. Now it eases in under the velocity and acceleration
    limits, never further out, and is held where it is by an e-stop."""
    profile = PROFILES[robot]
    n = profile.num_motors
    measured = np.where(np.arange(n) % 2, -0.3, 1.25)
    safety = SafetyLayer(profile)
    period = safety.period_s
    safety.power_up(measured)
    log = MotionLog(safety)
    start = log.rows[0].copy()
    np.testing.assert_array_equal(start, measured)
    for _ in range(int(3 * profile.safety.power_up_s / period)):
        log.tick(period)
    positions = np.array(log.rows)
    v, a = measure_motion(positions, log.dts, log.restarts, safety.max_tick_s)
    assert (np.abs(v) <= safety.vmax * (1 + 1e-9)).all()
    assert (np.abs(a) <= safety.amax * (1 + 1e-6) + 1e-6).all()
    assert ((positions >= np.minimum(start, 0.0)) & (positions <= np.maximum(start, 1.0))).all()
    assert safety.counters.boundary_clips == 0
    np.testing.assert_allclose(safety.position, profile.neutral, atol=1e-4)
    safety.estop()
    safety.reset(measured)                           # sagged out of range while limp
    assert safety.update(period) is not None
    assert np.all(np.abs(safety.position - measured) <= safety.vmax * period + 1e-9)


def test_a_wall_clock_stepped_back_does_not_stop_the_watchdog():
    """Before: the watchdog, the power-up and the hold rules timed themselves with the wall
    clock the commands are stamped with; NTP stepping it back an hour right after the last
    command kept the face on that command for an hour. Timers run on the ticks' time now."""
    profile = PROFILES['hobbs']
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    wide = np.clip(profile.neutral + 0.3, 0.0, 1.0)
    now = 1000.0
    for _ in range(120):
        now += DT
        assert safety.command(wide, now, now)
        safety.update(DT)
    now -= 3600.0                                   # the clock steps back; commands stop
    for _ in range(int((profile.safety.watchdog_timeout_s
                        + profile.safety.return_to_neutral_s + 0.5) / DT)):
        now += DT
        safety.update(DT)
    assert safety.counters.watchdog_trips == 1
    np.testing.assert_allclose(safety.position, profile.neutral, atol=1e-4)


def test_a_hold_estop_over_motors_of_unknown_position_goes_limp():
    """Holding a servo that was never driven means sending its first pulse: it jumps. An
    e-stop latched before the first tick (a node restarted e-stopped), or over servos a
    reopened controller reports as unknown, goes limp until reset; once driven, it holds."""
    profile = PROFILES['micheal']
    n = profile.num_motors
    assert profile.safety.estop_mode == 'hold'
    measured = np.full(n, 0.3)
    measured[4] = np.nan
    safety = SafetyLayer(profile)
    safety.power_up(measured)
    safety.estop()
    assert safety.limp and safety.update(0.02) is None
    assert safety.reset(measured)
    assert safety.update(0.02) is not None
    safety.estop()                                   # driven now: hold
    assert not safety.limp and safety.update(0.02) is not None
    safety.lost_track(measured)                      # the controller was power-cycled
    assert safety.limp and safety.update(0.02) is None
    held = SafetyLayer(profile)
    held.power_up(profile.neutral)
    held.update(0.02)
    held.estop()
    sagged = np.full(n, 0.1)                         # the horns sagged while unpowered
    held.lost_track(sagged)
    assert not held.limp
    np.testing.assert_array_equal(held.update(0.02), sagged)


def test_bad_commands_are_counted_and_hold_last_safe_values():
    profile = PROFILES['hobbs']
    n = profile.num_motors
    safety = SafetyLayer(profile)
    safety.power_up(profile.neutral)
    now = 0.0
    while safety.mode is Mode.POWER_UP:            # the power-up ease runs on the ticks
        now += DT
        safety.update(DT)
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
    safety.start_active(profile.neutral)
    pose = profile.neutral
    assert safety.command(pose, now=1.0, stamp=0.99)
    assert not safety.command(pose, now=1.01, stamp=0.98)         # reordered
    assert not safety.command(pose, now=2.0, stamp=1.5)           # 0.5 s old
    assert (safety.counters.stale_commands, safety.counters.late_commands) == (1, 1)


def test_far_future_and_zero_stamps_are_rejected_and_never_lock_out_fresh_commands():
    """The reported fault: one command stamped sec=2147483647 made every later fresh one
    stale; a zero stamp skipped the age and order checks."""
    profile = PROFILES['micheal']
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    pose = profile.neutral
    now = 1_700_000_000.0
    assert not safety.command(pose, now, stamp=2147483647.0)
    assert not safety.command(pose, now + 0.01, stamp=0.0)
    assert not safety.command(pose, now + 0.02, stamp=now + 0.6)   # over the 0.5 s tolerance
    for k in range(1, 91):
        assert safety.command(pose, now + k / 60, stamp=now + k / 60 - 0.02)
    c = safety.counters
    assert (c.future_stamps, c.zero_stamps, c.stale_commands, c.late_commands) == (2, 1, 0, 0)


STAMP_KINDS = st.lists(st.tuples(st.sampled_from(['fresh', 'late', 'reordered', 'duplicate',
                                                  'zero', 'negative', 'nan', 'ahead', 'far',
                                                  'none']),
                                 st.floats(0.0, 0.05)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), sequence=STAMP_KINDS, latency=st.floats(0.0, 0.2),
       gap=st.floats(0.001, 0.1))
def test_no_command_sequence_locks_out_a_later_fresh_command(seed, sequence, latency, gap):
    """Whatever arrived before, a command stamped `latency` (< max age) before its arrival,
    arriving more than `latency` after the last earlier command, is executed."""
    profile = PROFILES['hobbs']
    rng = np.random.default_rng(seed)
    safety = SafetyLayer(profile)
    now = 5000.0
    safety.start_active(profile.neutral)
    last = now
    for kind, spacing in sequence:
        now += spacing
        stamp = {'fresh': now, 'late': now - 3.0, 'reordered': last - 0.05, 'duplicate': last,
                 'zero': 0.0, 'negative': -1.0, 'nan': float('nan'), 'ahead': now + 0.49,
                 'far': now + 2e9, 'none': None}[kind]
        safety.command(rng.uniform(0, 1, profile.num_motors), now, stamp)
        last = stamp if stamp is not None and np.isfinite(stamp) else last
    arrival = now + latency + gap
    assert safety.command(profile.neutral, arrival, arrival - latency)


@pytest.mark.parametrize('mode', ['hold', 'limp'])
def test_estop_latches_until_reset_which_eases_to_neutral_without_following(mode):
    profile = with_safety(PROFILES['micheal'], estop_mode=mode)
    n = profile.num_motors
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    log = MotionLog(safety)
    now, wanted = 0.0, np.full(n, 0.8)
    for _ in range(60):
        now += DT
        safety.command(wanted, now, now)
        log.tick(DT)
    held = safety.position.copy()
    log.estop()
    assert safety.latched
    for _ in range(30):
        now += DT
        assert not safety.command(np.zeros(n), now, now)        # counted, not executed
        out = log.tick(DT)
        if mode == 'limp':
            assert out is None
        else:
            np.testing.assert_array_equal(out, held)
    assert not safety.resume()                                  # refused while latched
    assert safety.latched
    assert safety.reset()
    assert safety.mode is Mode.STANDBY and not safety.latched
    for _ in range(int(profile.safety.power_up_s / DT) + 30):
        now += DT
        assert not safety.command(wanted, now, now)             # standby: not followed
        log.tick(DT)
    assert safety.mode is Mode.STANDBY
    np.testing.assert_array_equal(safety.position, profile.neutral)
    assert safety.counters.ignored_commands == 30 + int(profile.safety.power_up_s / DT) + 30
    assert safety.resume()
    for _ in range(90):
        now += DT
        assert safety.command(wanted, now, now)
        log.tick(DT)
    assert safety.mode is Mode.ACTIVE
    np.testing.assert_allclose(safety.position, wanted, atol=1e-3)
    log.assert_within_limits()
    assert safety.counters.estops == 1


def test_enable_is_reset_then_resume():
    profile = PROFILES['ameca']
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    assert not safety.enable()                                  # nothing latched
    assert safety.mode is Mode.ACTIVE
    safety.estop()
    assert safety.enable()
    assert safety.mode is Mode.POWER_UP and safety.following
    now = 0.2
    while safety.mode is Mode.POWER_UP:
        now += DT
        safety.command(profile.neutral, now, now)
        safety.update(DT)
    assert safety.mode is Mode.ACTIVE and now <= 0.2 + profile.safety.power_up_s + 2 * DT


def test_a_power_up_after_reset_stays_in_standby_until_resume():
    """A driver reopened while in standby (after a reset) powers up again: that must not
    start following commands by itself."""
    profile = PROFILES['hobbs']
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    safety.estop()
    assert safety.reset()
    safety.power_up(np.full(profile.num_motors, np.nan), follow=safety.following)
    now, wanted = 0.2, np.clip(profile.neutral + 0.2, 0.0, 1.0)
    for _ in range(int(2 * profile.safety.power_up_s / DT)):
        now += DT
        safety.command(wanted, now, now)
        position = safety.update(DT)
    assert safety.mode is Mode.STANDBY and not safety.following
    np.testing.assert_allclose(position, profile.neutral, atol=1e-6)
    assert safety.resume()


def test_a_stall_restarts_from_rest_with_one_bounded_step():
    profile = PROFILES['hobbs']
    n = profile.num_motors
    safety = SafetyLayer(profile)
    safety.start_active(np.zeros(n))
    log = MotionLog(safety)
    now = 0.0
    for _ in range(20):                                         # moving fast toward 1
        now += DT
        safety.command(np.ones(n), now, now)
        log.tick(DT)
    before = safety.position.copy()
    now += 2.0
    safety.command(np.ones(n), now, now)
    log.tick(2.0)
    assert safety.counters.stalls == 1
    step = MAX_TICK_PERIODS * safety.period_s
    assert (np.abs(safety.position - before) <= safety.amax * step ** 2 + 1e-12).all()
    log.assert_within_limits()


def test_a_tick_without_elapsed_time_moves_nothing():
    profile = PROFILES['hobbs']
    safety = SafetyLayer(profile)
    safety.start_active(np.zeros(profile.num_motors))
    safety.command(np.ones(profile.num_motors), 0.0)
    safety.update(DT)
    pose = safety.position.copy()
    for dt in (0.0, -1.0, float('nan')):
        np.testing.assert_array_equal(safety.update(dt), pose)


@pytest.mark.parametrize('robot', ['micheal', 'ameca'])     # jaw opens toward 1 / toward 0
def test_jaw_hold_rule_ramps_back_after_max_hold(robot):
    profile = PROFILES[robot]
    rule = profile.safety.hold_rules[0]
    sign = 1.0 if rule.direction == 'above' else -1.0
    jaw = profile.index(rule.motor)
    safety = SafetyLayer(profile)
    safety.power_up(profile.neutral)
    now, wide = 0.0, profile.neutral.copy()
    wide[jaw] = 0.95 if sign > 0 else 0.05
    log = MotionLog(safety)
    peak_after_ramp = []
    while now < profile.safety.power_up_s + rule.max_hold_s + rule.ramp_s + 1.5:
        now += DT
        safety.command(wide, now)
        out = log.tick(DT)
        if now > profile.safety.power_up_s + rule.max_hold_s + rule.ramp_s + 1.0:
            peak_after_ramp.append(sign * out[jaw])
    log.assert_within_limits()
    assert safety.counters.hold_rule_ramps == 1
    assert max(peak_after_ramp) <= sign * rule.threshold + 1e-6


def test_symmetry_averages_pairs():
    profile = with_safety(PROFILES['micheal'], symmetry=True)
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    command = profile.neutral.copy()
    left, right = profile.pair_indices()[0]
    command[left], command[right] = 0.9, 0.1
    safety.command(command, 1.0)
    assert safety.target[left] == safety.target[right] == pytest.approx(0.5)
    assert safety.counters.symmetry_corrections == 1


def test_a_refused_command_names_the_counter_it_added_to():
    safety = SafetyLayer(PROFILES['hobbs'])
    safety.start_active(safety.neutral)
    n, now = safety.n, 100.0
    cases = [(np.zeros(n - 1), now, 'rejected_length'), (np.zeros(n), 0.0, 'zero_stamps'),
             (np.zeros(n), now + 5.0, 'future_stamps'), (np.zeros(n), now - 5.0, 'late_commands'),
             (np.zeros(n), now, ''), (np.zeros(n), now, 'stale_commands')]
    for values, stamp, reason in cases:
        before = safety.counters.as_dict()
        assert safety.command(values, now, stamp) is (reason == '')
        assert safety.rejection == reason
        grew = {k for k, v in safety.counters.as_dict().items() if v > before[k]}
        assert grew == ({'commands', reason} if reason else {'commands'})
    safety.estop()
    assert not safety.command(np.zeros(n), now + 0.01, now + 0.01)
    assert safety.rejection == 'ignored_commands'
