"""The oracle bound: the best command sequence a robot can execute for one human take, found
by optimising the commands themselves through its twin's dynamics and forward model
(ROS-free). It bounds what that head can show on that take; a model's excess over it is
what a better model could still gain, the rest is the head's. Found by local descent, it is
an upper bound on the true limit.

Objective: the evaluation's blendshape distance (the face `delay` frames later against the
human frame) plus SMOOTHNESS_WEIGHT times the mean squared second difference of the
commands. Gradient: exact through the twin's dynamics (first- or second-order actuators
(linear: a motor held at its end stop by overshoot is the one approximation),
backlash, the skin's lag, skin friction and the tracker's latency, replayed here from the
twin's own state), central finite differences through the static forward model
(FaceTwin.shape, whatever its physics), taken at the positions the safety
layer executes for the commands (the code the robot runs: the motion of every iterate stays
within the motors' range, velocity and acceleration limits). Adam steps with cosine decay,
commands kept in 0..1. The start is the best of the given
command sequences (the evaluated models' and holding neutral), and the best iterate by the
evaluation's own scoring is kept, so the oracle is never worse than any of them.
"""
from dataclasses import dataclass
import time

import numpy as np
from tqdm import tqdm

from face_actuation.safety import SafetyLayer
from face_actuation.twin import FaceTwin
from face_common.arkit import NUM_BLENDSHAPES

# Against blendshape MSE ~1e-3..1e-2: halved the oracle's jitter, left its distance as it was.
SMOOTHNESS_WEIGHT = 0.1


@dataclass
class OracleConfig:
    steps: int = 80
    learning_rate: float = 0.01
    smoothness: float = SMOOTHNESS_WEIGHT
    finite_step: float = 0.01        # wide enough to see past the cables' slack dead zone
    score_every: int = 10


def executable(profile, commands: np.ndarray, rate: float) -> np.ndarray:
    """What the safety layer executes for `commands` from neutral, within the range,
    velocity and acceleration limits (as the evaluation's rollout does)."""
    safety = SafetyLayer(profile)
    safety.start_active(profile.neutral)
    dt, out = 1.0 / rate, np.empty_like(commands, dtype=np.float64)
    for t, row in enumerate(commands):
        safety.command(row, (t + 1) * dt)
        out[t] = safety.update(dt)
    return out


class _Objective:
    """Value and gradient of the objective for executed commands (T, n), noise-free."""

    def __init__(self, profile, human: np.ndarray, delay: int, rate: float, smoothness: float,
                 finite_step: float):
        self.twin = FaceTwin(profile)
        self.human = human[:, :NUM_BLENDSHAPES]
        self.delay, self.dt = delay, 1.0 / rate
        self.smoothness, self.finite_step = smoothness, finite_step
        self.actuator, self.actuator_input = self.twin.actuator_matrices(self.dt)
        self.skin_follow = self.twin.skin_follow(self.dt)
        self.latency = self.twin.params.tracker_latency_frames

    def _trace(self, commands):
        """Replayed through the twin: the skin's pose per frame (what the static forward
        model sees), the face it shows after skin friction, and, per frame and motor (per
        frame and channel), the frame whose actuator position (static face) the backlash
        (the friction) output follows (-1: its starting value)."""
        twin = self.twin
        twin.reset()
        skin = np.empty_like(commands)
        shown = np.empty((len(commands), NUM_BLENDSHAPES))
        backlash_source = np.full(commands.shape, -1)
        friction_source = np.full(shown.shape, -1)
        backlash = twin._backlash.copy()
        friction = twin._friction.copy() if twin.params.skin_friction > 0 else None
        for t, row in enumerate(commands):
            twin.step(row, self.dt)
            skin[t] = twin._skin
            backlash_source[t] = np.where(twin._backlash != backlash, t,
                                          backlash_source[t - 1] if t else -1)
            backlash = twin._backlash.copy()
            if friction is not None:
                friction_source[t] = np.where(twin._friction != friction, t,
                                              friction_source[t - 1] if t else -1)
                friction = twin._friction.copy()
                shown[t] = friction
        if friction is None:
            shown = twin.shape(skin)[:, :NUM_BLENDSHAPES]
            friction_source[:] = np.arange(len(commands))[:, None]
        return skin, shown, backlash_source, friction_source

    def __call__(self, commands):
        twin, motors = self.twin, commands.shape[1]
        skin, shown, backlash_source, friction_source = self._trace(commands)
        # the tracker reads frame t's face `latency` frames later; before that, the start's
        frames = min(len(self.human), len(commands) - self.delay)
        read = np.arange(self.delay, self.delay + frames) - self.latency
        seen = np.where(read[:, None] >= 0, shown[np.maximum(read, 0)],
                        twin.shape(twin.neutral[None])[0, :NUM_BLENDSHAPES])
        residual = seen - self.human[:frames]
        value = float(np.mean(residual ** 2))
        grad_shown = np.zeros_like(shown)
        live = read >= 0
        np.add.at(grad_shown, read[live], 2.0 * residual[live] / residual.size)
        # skin friction: each shown value is the static face of the frame it last followed
        grad_face = np.zeros_like(shown)
        frame, channel = np.nonzero(friction_source >= 0)
        np.add.at(grad_face, (friction_source[frame, channel], channel),
                  grad_shown[frame, channel])
        rows = np.nonzero(np.any(grad_face != 0, axis=1))[0]
        grad_skin = np.zeros_like(skin)
        for m in range(motors):                 # central differences of the forward model
            plus, minus = skin[rows].copy(), skin[rows].copy()
            plus[:, m] += self.finite_step
            minus[:, m] -= self.finite_step
            slope = (twin.shape(plus) - twin.shape(minus))[:, :NUM_BLENDSHAPES]
            grad_skin[rows, m] = np.sum(slope * grad_face[rows], axis=1) / (2 * self.finite_step)
        # skin lag, s_t = s_{t-1} + beta (b_t - s_{t-1}), run backwards
        grad_backlash = np.empty_like(skin)
        carried = np.zeros(motors)
        for t in range(len(commands) - 1, -1, -1):
            carried = grad_skin[t] + (1.0 - self.skin_follow) * carried
            grad_backlash[t] = self.skin_follow * carried
        # backlash: each output is the position of the frame it last followed
        grad_positions = np.zeros_like(skin)
        frame, motor = np.nonzero(backlash_source >= 0)
        np.add.at(grad_positions, (backlash_source[frame, motor], motor),
                  grad_backlash[frame, motor])
        # actuators, [x, v]_t = A [x, v]_{t-1} + b c_t (first or second order), run backwards
        grad = np.empty_like(commands)
        carried = np.zeros((2, motors))
        for t in range(len(commands) - 1, -1, -1):
            carried = self.actuator.T @ carried
            carried[0] += grad_positions[t]
            grad[t] = self.actuator_input @ carried
        if self.smoothness > 0 and len(commands) > 2:
            second = np.diff(commands, n=2, axis=0)
            value += self.smoothness * float(np.mean(second ** 2))
            push = 2.0 * self.smoothness * second / second.size
            grad[:-2] += push
            grad[1:-1] -= 2.0 * push
            grad[2:] += push
        return value, grad


@dataclass
class OracleResult:
    commands: np.ndarray         # (T, n) executable commands (the safety layer's output)
    distance: float              # the evaluation's blendshape distance of those commands
    start: str                   # which given sequence it started from
    history: list                # (step, objective, evaluated distance) at each scoring
    seconds: float


def oracle(profile, human: np.ndarray, delay: int, rate: float, starts: dict, score,
           config: OracleConfig | None = None, progress: bool = True) -> OracleResult:
    """The oracle commands for `human` (T, 61) on `profile`'s twin. `starts`: name ->
    command sequence (T, n) to start from (the best by `score` is taken); `score(commands)`:
    the evaluation's blendshape distance of a command sequence (its own noisy rollout), which
    picks the iterate kept. Deterministic: no random draw."""
    config = config or OracleConfig()
    started = time.monotonic()
    scored = {name: score(commands) for name, commands in starts.items()}
    start = min(scored, key=scored.get)
    commands = np.clip(np.asarray(starts[start], np.float64), 0.0, 1.0)
    best, best_distance = commands.copy(), scored[start]
    objective = _Objective(profile, human, delay, rate, config.smoothness, config.finite_step)
    first, second = np.zeros_like(commands), np.zeros_like(commands)
    history = []
    bar = tqdm(range(1, config.steps + 1), desc=f'oracle {profile.name}', disable=not progress,
               leave=False)
    for step in bar:
        # The gradient at what the robot executed, applied to what is sent (the safety
        # layer passes a small change of the commands on to the executed motion).
        value, grad = objective(executable(profile, commands, rate))
        first = 0.9 * first + 0.1 * grad
        second = 0.999 * second + 0.001 * grad ** 2
        size = config.learning_rate * 0.5 * (1 + np.cos(np.pi * (step - 1) / config.steps))
        update = (first / (1 - 0.9 ** step)) / (np.sqrt(second / (1 - 0.999 ** step)) + 1e-12)
        commands = np.clip(commands - size * update, 0.0, 1.0)
        if step % config.score_every == 0 or step == config.steps:
            distance = score(commands)
            history.append((step, value, distance))
            if distance < best_distance:
                best, best_distance = commands.copy(), distance
            bar.set_postfix(distance=f'{best_distance:.5f}')
    return OracleResult(best, best_distance, start, history, time.monotonic() - started)
