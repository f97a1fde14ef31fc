"""Safety layer in front of every driver (ROS-free).

Every control tick turns the latest accepted command into positions that respect the robot's
limits, whatever arrived:
- wrong-length commands are rejected; NaN/inf entries hold the last safe value of that motor;
  values outside 0..1 are clamped; unstamped (zero), far-future, stale (reordered) and late
  commands are dropped, and no stamp can lock out the fresh commands that follow it;
- motion is limited per motor to max velocity and max acceleration for any tick spacing up to
  MAX_TICK_PERIODS control periods (the node ticks on its timer and on every command, so the
  spacing varies); a longer gap is a stall: the motors held still, so they restart from rest;
- power-up: ease from the pose the motors were found in to neutral, then follow commands;
  a motor whose position is unknown (NaN) starts at neutral;
- watchdog: no valid command for watchdog_timeout_s -> ease to neutral within
  return_to_neutral_s (never a snap);
- e-stop latches: hold position (torque on, no motion) or go limp (driver disables torque)
  until reset; a motor whose position is unknown (a servo not yet driven) cannot be held
  without moving it, so then the e-stop goes limp; reset eases to neutral and stays there
  (standby: commands are counted, not executed); resume follows commands again (refused
  while latched);
- hold-time rules: a motor held above a threshold too long ramps back (the jaw rule);
- optional left/right symmetry.
Every intervention is counted.

Motion definitions (the tests and bench/safety_soak.py measure exactly these, through
measure_motion): tick k outputs positions p_k after dt_k seconds; its step is
h_k = min(dt_k, max_tick_s); velocity v_k = (p_k - p_{k-1}) / h_k; acceleration
a_k = (v_k - v_{k-1}) / h_k, where v_{k-1} counts as 0 after a restart from rest (a stall, the
e-stop's deliberate stop, a reset). Limits: 0 <= p_k <= 1, |v_k| <= max_velocity,
|a_k| <= max_acceleration, per motor, on every tick. A motor measured outside 0..1 (a horn
moved by hand, or sagged while limp) is brought into the range under the same limits, never
snapped to the range end, and never moves further out.
"""
from dataclasses import dataclass, field
from enum import Enum
import math

import numpy as np

from face_actuation.profile import RobotProfile

# Tick spacing, in control periods. The node never ticks closer than MIN_TICK_PERIODS (that
# bounds the bus write rate); the limits below hold for any spacing up to MAX_TICK_PERIODS,
# and a longer gap is handled as a stall (restart from rest, a step of at most
# MAX_TICK_PERIODS), never as one big step.
MIN_TICK_PERIODS = 0.25
MAX_TICK_PERIODS = 3.0
SNAP = 1e-9           # a motor this close to its target lands on it (exactly 0 or 1 included)
ROUNDING = 1e-12      # float rounding past 0..1 is not a clip; anything more is counted


class Mode(Enum):
    POWER_UP = 'power_up'          # easing to neutral, then following commands
    ACTIVE = 'active'
    WATCHDOG = 'watchdog'          # easing to neutral after silence
    ESTOP = 'estop'                # latched until reset
    STANDBY = 'standby'            # reset: easing to / holding neutral until resume


@dataclass
class SafetyCounters:
    commands: int = 0
    rejected_length: int = 0
    non_finite_values: int = 0
    clamped_values: int = 0
    stale_commands: int = 0
    late_commands: int = 0
    future_stamps: int = 0
    zero_stamps: int = 0
    ignored_commands: int = 0      # valid commands while e-stopped or in standby
    stalls: int = 0
    velocity_limited: int = 0
    acceleration_limited: int = 0
    watchdog_trips: int = 0
    hold_rule_ramps: int = 0
    symmetry_corrections: int = 0
    estops: int = 0
    boundary_clips: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _HoldState:
    index: int
    threshold: float
    max_hold_s: float
    ramp_s: float
    rest_s: float
    sign: float = 1.0            # +1: beyond = above the threshold; -1: below it
    above_since: float | None = None
    below_since: float | None = None
    ramp_start: float | None = None
    ramp_from: float = 1.0


def _reach_speed(distance: np.ndarray, duration: float, accel: np.ndarray) -> np.ndarray:
    """Cruise speed that covers `distance` in `duration` with a trapezoid of accel `accel`
    (accelerate, cruise, brake); the triangle's peak when the trapezoid does not fit."""
    disc = duration ** 2 - 4.0 * distance / accel
    trapezoid = 0.5 * accel * (duration - np.sqrt(np.maximum(disc, 0.0)))
    triangle = np.sqrt(accel * distance)
    return np.where(disc >= 0, trapezoid, triangle)


def _stop_speed(distance: np.ndarray, dt: float, accel: np.ndarray) -> np.ndarray:
    """Fastest speed for this tick that still leaves room to stop within `distance`, whatever
    the later ticks' spacing: after moving v*dt, the continuous braking distance v^2/(2a) must
    fit in what is left. Braking tick by tick (velocity first, then position) never travels
    further than v^2/(2a) for any sequence of dt, so this bound is dt-independent.
    Solves v^2/(2a) + v*dt = distance in the cancellation-free form."""
    distance = np.maximum(distance, 0.0)
    return 2.0 * distance / (dt + np.sqrt(dt * dt + 2.0 * distance / accel))


def measure_motion(positions, dts, restarts, max_tick_s: float, initial_velocity=None):
    """Velocity and acceleration of an output sequence by the module's definitions.

    positions: (T+1, n), the starting pose then one row per tick; dts: (T,) seconds since
    the previous tick; restarts: (T,) ticks that restart from rest (stalls are added here);
    initial_velocity: the velocity before the first tick (None: at rest).
    Returns (v, a), each (T, n)."""
    positions = np.asarray(positions, dtype=np.float64)
    dts = np.asarray(dts, dtype=np.float64)
    steps = np.minimum(dts, max_tick_s)[:, None]
    velocity = np.diff(positions, axis=0) / steps
    start = np.zeros(positions.shape[1]) if initial_velocity is None else initial_velocity
    previous = np.vstack([start, velocity[:-1]])
    previous[np.asarray(restarts, dtype=bool) | (dts > max_tick_s)] = 0.0
    return velocity, (velocity - previous) / steps


@dataclass
class SafetyLayer:
    profile: RobotProfile
    max_command_age_s: float = 0.25
    future_stamp_tolerance_s: float = 0.5
    period_s: float | None = None            # control period; None = the profile's rate
    counters: SafetyCounters = field(default_factory=SafetyCounters)

    def __post_init__(self):
        p = self.profile
        self.n = p.num_motors
        self.config = p.safety
        self.neutral = p.neutral
        self.vmax = p.array('max_velocity')
        self.amax = p.array('max_acceleration')
        self.pairs = p.pair_indices()
        self.holds = [_HoldState(p.index(r.motor), r.threshold, r.max_hold_s, r.ramp_s,
                                 r.rest_s, 1.0 if r.direction == 'above' else -1.0)
                      for r in self.config.hold_rules]
        if self.period_s is None:
            self.period_s = 1.0 / p.control_rate_hz
        self.max_tick_s = MAX_TICK_PERIODS * self.period_s
        self.position = self.neutral.copy()
        self.velocity = np.zeros(self.n)
        self.target = self.neutral.copy()
        self.mode = Mode.POWER_UP
        self.limp = False
        self.rejection = ''                   # why the last command was not taken ('' = taken)
        self.unknown = np.zeros(self.n, dtype=bool)   # not driven since power-up: no pose
        self._lo = np.zeros(self.n)          # position bounds: 0..1, widened to take in a
        self._hi = np.ones(self.n)           # motor measured outside, narrowing as it comes in
        self._speed_cap = self.vmax.copy()
        # Timers (watchdog, power-up, hold rules) run on the ticks' elapsed time, not on
        # `now`: a wall clock stepped back (NTP) must not stop the watchdog for that long.
        self._clock = 0.0
        self._silence_since = None
        self._last_stamp = None
        self._started = None
        self._pending = None
        self._ease_time_left = 0.0

    @property
    def latched(self) -> bool:
        return self.mode is Mode.ESTOP

    @property
    def following(self) -> bool:
        """Whether commands are executed (after the power-up ease): not while e-stopped
        or in standby."""
        return self.mode not in (Mode.ESTOP, Mode.STANDBY)

    # ---- inputs ----------------------------------------------------------------------------
    def power_up(self, measured_positions, follow: bool = True) -> None:
        """Start from where the motors are (normalised), easing to neutral over power_up_s,
        then follow commands (or, with follow=False, stay in standby until resume: a driver
        reopened after a reset must not start motion by itself). NaN = position unknown:
        that motor starts at neutral."""
        self._restart_from(measured_positions, Mode.POWER_UP if follow else Mode.STANDBY)

    def start_active(self, positions) -> None:
        """Start following commands at once from `positions` (offline rollouts, benchmarks):
        no power-up ease, because nothing physical has to be brought to neutral."""
        self.power_up(positions)
        self.mode = Mode.ACTIVE
        self._speed_cap = self.vmax.copy()

    def _restart_from(self, measured_positions, mode: Mode) -> None:
        pose = np.asarray(measured_positions, dtype=np.float64).ravel()
        if pose.shape != (self.n,):
            pose = self.neutral.copy()
        self.unknown = ~np.isfinite(pose)
        self.position = self.neutral.copy()
        self._place(pose)
        self.velocity = np.zeros(self.n)
        self.target = self.neutral.copy()
        self._pending = None
        self._enter_ease(mode, self.config.power_up_s)
        self._started = self._silence_since = self._clock

    def _place(self, pose: np.ndarray) -> None:
        """Motors are where they were measured (finite entries), outside 0..1 included:
        clipping would send a range end as the next position, a jump."""
        known = np.isfinite(pose)
        self.position[known] = pose[known]
        self._lo = np.minimum(0.0, self.position)
        self._hi = np.maximum(1.0, self.position)

    def command(self, values, now: float, stamp: float | None = None) -> bool:
        """Offer a new normalised command (stamp: seconds of its source frame, None for
        internal commands); returns whether it will be executed. A command that is not is
        counted, and `rejection` names its counter ('' after one that is)."""
        self.counters.commands += 1
        values = np.asarray(values, dtype=np.float64).ravel()
        self.rejection = ''
        if values.shape != (self.n,):
            self.rejection = 'rejected_length'
        elif stamp is not None:
            self.rejection = self._stamp_problem(stamp, now)
        if not self.rejection and not self.following:
            self.rejection = 'ignored_commands'
        if self.rejection:
            setattr(self.counters, self.rejection, getattr(self.counters, self.rejection) + 1)
            return False
        bad = ~np.isfinite(values)
        if bad.any():
            self.counters.non_finite_values += int(bad.sum())
            values = np.where(bad, self.target, values)
        outside = (values < 0.0) | (values > 1.0)
        if outside.any():
            self.counters.clamped_values += int(outside.sum())
            values = np.clip(values, 0.0, 1.0)
        if self.config.symmetry and len(self.pairs):
            left, right = values[self.pairs[:, 0]], values[self.pairs[:, 1]]
            if np.any(np.abs(left - right) > 1e-6):
                self.counters.symmetry_corrections += 1
            mean = 0.5 * (left + right)
            values[self.pairs[:, 0]] = mean
            values[self.pairs[:, 1]] = mean
        self._silence_since = self._clock
        if self.mode is Mode.POWER_UP:
            self._pending = values                # executed once the face is at neutral
            return True
        self.target = values
        if self.mode is Mode.WATCHDOG:
            self.mode = Mode.ACTIVE
            self._speed_cap = self.vmax.copy()
        return True

    def _stamp_problem(self, stamp: float, now: float) -> str:
        """Stamp checks: the counter of what is wrong, '' for a fresh stamp. The newest
        stamp remembered for ordering is never later than the arrival time, so a command
        stamped ahead (within the tolerance) cannot make the fresh commands after it look
        stale."""
        if not stamp > 0.0:                       # zero (unset), negative or NaN
            return 'zero_stamps'
        if stamp - now > self.future_stamp_tolerance_s:
            return 'future_stamps'
        if now - stamp > self.max_command_age_s:
            return 'late_commands'
        if self._last_stamp is not None and stamp <= self._last_stamp:
            return 'stale_commands'
        self._last_stamp = min(stamp, now)
        return ''

    def estop(self) -> None:
        """Latch: stop at once and hold (or go limp) until reset."""
        if self.mode is not Mode.ESTOP:
            self.counters.estops += 1
        self.mode = Mode.ESTOP
        self._pending = None
        self.velocity = np.zeros(self.n)
        self.limp = self.config.estop_mode == 'limp' or bool(self.unknown.any())

    def lost_track(self, measured_positions) -> None:
        """A driver reopened while latched reads these positions: the motors may have moved
        while it was down (unpowered horns sag), so the e-stop holds them where they are now,
        not where they were; motors it reports as unknown (NaN: a power-cycled servo sends
        no pulses) cannot be held without moving them, so then the e-stop goes limp."""
        pose = np.asarray(measured_positions, dtype=np.float64).ravel()
        if pose.shape == (self.n,):
            self._place(pose)
            self.unknown |= ~np.isfinite(pose)
        if self.mode is Mode.ESTOP and self.unknown.any():
            self.limp = True

    def reset(self, measured_positions=None) -> bool:
        """Clear the latch: from the measured pose (a limp face may have sagged) ease to
        neutral and stay there; commands are not followed until resume. False when not
        latched."""
        if self.mode is not Mode.ESTOP:
            return False
        self.limp = False
        self._restart_from(self.position if measured_positions is None else measured_positions,
                           Mode.STANDBY)
        return True

    def resume(self) -> bool:
        """Follow commands again (after the ease to neutral if it is still running); refused
        (False) while latched."""
        if self.mode is Mode.ESTOP:
            return False
        if not self.following:
            self._silence_since = self._clock
            self.mode = Mode.POWER_UP                 # STANDBY: finish the ease, then follow
        return True

    def enable(self, measured_positions=None) -> bool:
        """Reset + resume (the dashboard's one button); returns whether it was latched."""
        was_latched = self.reset(measured_positions)
        self.resume()
        return was_latched

    # ---- the control tick ---------------------------------------------------------------
    def update(self, dt: float):
        """Positions to send this tick (normalised), or None while limp. `dt`: seconds since
        the previous tick (from a monotonic clock); no time passed (dt <= 0 or NaN) moves
        nothing. The timers run on the sum of the ticks' dt, never on the wall clock."""
        if not dt > 0.0:
            return None if self.mode is Mode.ESTOP and self.limp else self.position.copy()
        self._clock += dt
        now = self._clock
        if dt > self.max_tick_s:                      # a stall: the motors held still
            self.counters.stalls += 1
            self.velocity = np.zeros(self.n)
            dt = self.max_tick_s
        if self.mode is Mode.ESTOP:
            return None if self.limp else self.position.copy()
        if self.mode is Mode.POWER_UP and now - self._started >= self.config.power_up_s \
                and np.allclose(self.position, self.neutral, atol=1e-4):
            self.mode = Mode.ACTIVE
            self._speed_cap = self.vmax.copy()
            if self._pending is not None:
                self.target, self._pending = self._pending, None
        if self.mode is Mode.ACTIVE and now - self._silence_since > \
                self.config.watchdog_timeout_s:
            self.counters.watchdog_trips += 1
            self.target = self.neutral.copy()
            self._enter_ease(Mode.WATCHDOG, self.config.return_to_neutral_s)
        if self.mode is not Mode.ACTIVE:
            self._ease_cap(dt)
        target = self._apply_hold_rules(self.target.copy(), now)
        return self._move_toward(target, dt)

    def _enter_ease(self, mode: Mode, duration: float) -> None:
        """Ease every motor to neutral, arriving by now + duration."""
        self.mode = mode
        self._ease_time_left = duration

    def _ease_cap(self, dt: float) -> None:
        """Per tick: the gentlest cruise speed that still arrives in the time left (90 % of it,
        for margin), so a motor that first had to brake from speed catches up smoothly."""
        self._ease_time_left = max(self._ease_time_left - dt, 0.0)
        distance = np.abs(self.neutral - self.position)
        cap = _reach_speed(distance, max(0.9 * self._ease_time_left, dt), self.amax)
        self._speed_cap = np.minimum(self.vmax, np.maximum(cap, 1e-6))

    def _apply_hold_rules(self, target: np.ndarray, now: float) -> np.ndarray:
        """Rules work in 'beyond' coordinates (sign * value), so one code path serves motors
        whose extreme is at 1 and those whose extreme is at 0."""
        for rule in self.holds:
            position = rule.sign * self.position[rule.index]
            threshold = rule.sign * rule.threshold
            if position > threshold + 1e-9:
                rule.below_since = None
                if rule.above_since is None:
                    rule.above_since = now
                if rule.ramp_start is None and now - rule.above_since > rule.max_hold_s:
                    rule.ramp_start, rule.ramp_from = now, position
                    self.counters.hold_rule_ramps += 1
            else:
                if rule.below_since is None:
                    rule.below_since = now
                if now - rule.below_since >= rule.rest_s:
                    rule.above_since, rule.ramp_start = None, None
            if rule.ramp_start is not None:
                progress = min(1.0, (now - rule.ramp_start) / rule.ramp_s)
                eased = 0.5 - 0.5 * math.cos(math.pi * progress)
                cap = rule.ramp_from + (threshold - rule.ramp_from) * eased
                target[rule.index] = rule.sign * min(rule.sign * target[rule.index], cap)
        return target

    def _move_toward(self, target: np.ndarray, dt: float) -> np.ndarray:
        """One step under velocity and acceleration limits, braking in time for the target.

        Invariant: every motor can stop inside 0..1 under its acceleration limit, whatever
        the spacing of the ticks to come: |v| <= sqrt(2a * room ahead of it). Moving toward
        its target (which lies in 0..1), the wanted speed keeps it (_stop_speed); a motor
        whose target jumped behind it brakes at a*dt per tick, which keeps it too (braking
        tick by tick never travels further than v^2/(2a)). So no motor ever has to be stopped
        dead at a range end, and one lands on 0 or 1 exactly when asked to. The speed cap
        (vmax, or the gentler ease speed) is never above vmax."""
        error = target - self.position
        braking = _stop_speed(np.abs(error), dt, self.amax)
        limited_v = braking > self.vmax
        wanted = np.sign(error) * np.minimum(self._speed_cap, braking)
        a_step = self.amax * dt
        limited_a = np.abs(wanted - self.velocity) > a_step
        velocity = np.clip(wanted, self.velocity - a_step, self.velocity + a_step)
        position = self.position + velocity * dt
        position = np.where(np.abs(target - position) < SNAP, target, position)
        outside = (position < self._lo - ROUNDING) | (position > self._hi + ROUNDING)
        if outside.any():               # the invariant rules this out; counted if it happens
            self.counters.boundary_clips += int(outside.sum())
        position = np.clip(position, self._lo, self._hi)
        np.minimum(0.0, np.maximum(self._lo, position, out=self._lo), out=self._lo)
        np.maximum(1.0, np.minimum(self._hi, position, out=self._hi), out=self._hi)  # never out
        self.counters.velocity_limited += int(limited_v.any())
        self.counters.acceleration_limited += int(limited_a.any())
        self.velocity = (position - self.position) / dt
        self.position = position
        self.unknown[:] = False                   # driven: every position is known now
        return position.copy()
