"""Safety layer in front of every driver (ROS-free).

Every control tick turns the latest accepted command into positions that respect the robot's
limits, whatever arrived:
- wrong-length commands are rejected; NaN/inf entries hold the last safe value of that motor;
  values outside 0..1 are clamped; stale (reordered) and late commands are dropped;
- motion is limited per motor to max velocity and max acceleration, with braking planned so a
  motor never has to stop harder than its acceleration limit allows;
- power-up: ease from the pose the motors were found in to neutral, then follow commands;
- watchdog: no valid command for watchdog_timeout_s -> ease to neutral within
  return_to_neutral_s (never a snap);
- e-stop: hold position (torque on, no motion) or go limp (driver disables torque);
- hold-time rules: a motor held above a threshold too long ramps back (the jaw rule);
- optional left/right symmetry.
Every intervention is counted.
"""
from dataclasses import dataclass, field
from enum import Enum
import math

import numpy as np

from face_actuation.profile import RobotProfile


class Mode(Enum):
    POWER_UP = 'power_up'
    ACTIVE = 'active'
    WATCHDOG = 'watchdog'          # easing to neutral after silence
    ESTOP = 'estop'


@dataclass
class SafetyCounters:
    commands: int = 0
    rejected_length: int = 0
    non_finite_values: int = 0
    clamped_values: int = 0
    stale_commands: int = 0
    late_commands: int = 0
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


@dataclass
class SafetyLayer:
    profile: RobotProfile
    max_command_age_s: float = 0.25
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
        self.position = self.neutral.copy()
        self.velocity = np.zeros(self.n)
        self.target = self.neutral.copy()
        self.mode = Mode.POWER_UP
        self.limp = False
        self._speed_cap = self.vmax.copy()
        self._last_command_time = None
        self._last_stamp = None
        self._started = None
        self._pending = None
        self._ease_time_left = 0.0

    # ---- inputs ----------------------------------------------------------------------------
    def power_up(self, measured_positions, now: float) -> None:
        """Start from where the motors are (normalised), easing to neutral over power_up_s."""
        pose = np.asarray(measured_positions, dtype=np.float64)
        if pose.shape != (self.n,) or not np.isfinite(pose).all():
            pose = self.neutral.copy()
        self.position = np.clip(pose, 0.0, 1.0)
        self.velocity = np.zeros(self.n)
        self.target = self.neutral.copy()
        self._enter_ease(Mode.POWER_UP, self.config.power_up_s)
        self._started = now

    def start_active(self, positions, now: float) -> None:
        """Start following commands at once from `positions` (offline rollouts, benchmarks):
        no power-up ease, because nothing physical has to be brought to neutral."""
        self.power_up(positions, now)
        self.mode = Mode.ACTIVE
        self._speed_cap = self.vmax.copy()

    def command(self, values, now: float, stamp: float | None = None) -> bool:
        """Offer a new normalised command; returns whether it was accepted."""
        self.counters.commands += 1
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.shape != (self.n,):
            self.counters.rejected_length += 1
            return False
        if stamp is not None:
            if self._last_stamp is not None and stamp <= self._last_stamp:
                self.counters.stale_commands += 1
                return False
            if now - stamp > self.max_command_age_s:
                self.counters.late_commands += 1
                return False
            self._last_stamp = stamp
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
        self._last_command_time = now
        if self.mode in (Mode.ESTOP, Mode.POWER_UP):
            self._pending = values                # executed once the face is at neutral
            return True
        self.target = values
        if self.mode is Mode.WATCHDOG:
            self.mode = Mode.ACTIVE
            self._speed_cap = self.vmax.copy()
        return True

    def estop(self) -> None:
        if self.mode is not Mode.ESTOP:
            self.counters.estops += 1
        self.mode = Mode.ESTOP
        self.velocity = np.zeros(self.n)
        self.limp = self.config.estop_mode == 'limp'

    def enable(self, now: float, measured_positions=None) -> None:
        """Leave e-stop: from the measured pose (a limp face may have sagged) ease to
        neutral, then follow commands again."""
        if self.mode is not Mode.ESTOP:
            return
        self.limp = False
        self.power_up(self.position if measured_positions is None else measured_positions, now)

    # ---- the control tick ---------------------------------------------------------------
    def update(self, now: float, dt: float):
        """Positions to send this tick (normalised), or None while limp."""
        if self.mode is Mode.ESTOP:
            return None if self.limp else self.position.copy()
        if self.mode is Mode.POWER_UP and now - self._started >= self.config.power_up_s \
                and np.allclose(self.position, self.neutral, atol=1e-4):
            self.mode = Mode.ACTIVE
            self._speed_cap = self.vmax.copy()
            if self._pending is not None:
                self.target, self._pending = self._pending, None
        if self.mode is Mode.ACTIVE and self._watchdog_expired(now):
            self.counters.watchdog_trips += 1
            self.target = self.neutral.copy()
            self._enter_ease(Mode.WATCHDOG, self.config.return_to_neutral_s)
        if self.mode in (Mode.POWER_UP, Mode.WATCHDOG):
            self._ease_cap(dt)
        target = self._apply_hold_rules(self.target.copy(), now)
        return self._move_toward(target, dt)

    def _watchdog_expired(self, now: float) -> bool:
        last = self._last_command_time if self._last_command_time is not None else self._started
        return last is not None and now - last > self.config.watchdog_timeout_s

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

        Braking uses the discrete-time bound: from speed b a motor that slows by a*dt per tick
        travels at most (b + a*dt/2)^2 / (2a) before it stops, so b = sqrt(2ad) - a*dt/2 never
        overshoots a target d away. Close to the target, when the remaining distance can be
        covered in one tick and the motor can both reach that speed and stop after it, it lands
        exactly."""
        a_step = self.amax * dt
        error = target - self.position
        distance = np.abs(error)
        direction = np.sign(error)
        brake = np.maximum(np.sqrt(2.0 * self.amax * distance) - 0.5 * a_step, 0.0)
        speed = np.minimum(self._speed_cap, brake)
        landing = distance / dt
        can_land = (landing <= a_step) & (np.abs(direction * landing - self.velocity) <= a_step)
        speed = np.where(can_land, np.minimum(self._speed_cap, landing), speed)
        speed = np.minimum(speed, landing)
        wanted = direction * speed
        limited_v = np.abs(wanted) > self.vmax
        wanted = np.clip(wanted, -self.vmax, self.vmax)
        change = wanted - self.velocity
        limited_a = np.abs(change) > a_step + 1e-12
        velocity = self.velocity + np.clip(change, -a_step, a_step)
        position = self.position + velocity * dt
        outside = (position < 0.0) | (position > 1.0)
        if outside.any():               # cannot happen with in-range targets; counted if it does
            self.counters.boundary_clips += int(outside.sum())
            position = np.clip(position, 0.0, 1.0)
            velocity = (position - self.position) / dt
        self.counters.velocity_limited += int(limited_v.any())
        self.counters.acceleration_limited += int(limited_a.any())
        self.position, self.velocity = position, velocity
        return position.copy()
