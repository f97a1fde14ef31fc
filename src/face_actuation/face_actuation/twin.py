"""Digital twin of a robot face: what the motors do, and what an iPad facing the robot reads.

Three parts, all deterministic from the profile's seed:
1. Actuators: positions follow commands with first-order dynamics (time constant per robot),
   or second-order ones (natural frequency and damping: overshoot, stopped at the ends of
   the travel) when twin.natural_frequency_hz is set; backlash between motor and skin; skin
   that lags the motors with its own viscoelastic time constant (twin.skin_time_constant_s).
2. Forward model: motor positions -> the 61 ARKit channels (52 blendshapes 0..1, then head/eye
   rotations in radians). Each motor moving up or down from its neutral adds to the blendshapes
   listed in the profile's twin.effects, shaped by the robot's physics:
   - cable heads: a slack dead zone before the skin moves, soft saturation as the skin tightens,
     cross-coupling between neighbouring cables in a group, and hysteresis (backlash);
   - linkage heads: crank geometry (sinusoidal transmission) and the jaw linkage reducing the
     mouth-corner linkages' reach as the jaw opens;
   - servo rigs (Ameca): a mild power-law response;
   - soft tissue (any kind, off at 1): an S-shaped response per motor (twin.skin_engagement);
   - all: left/right gain asymmetry, measurement noise, and redundancy (several motors move the
     same blendshape, so the inverse is many-to-one);
   - interactions that do not add (any kind, off by default): brows masking each other
     (twin.brow_masking), an open jaw shrinking the lip shapes (twin.jaw_masking), a
     cheek and eye squint appearing only past a smile threshold (twin.squint_threshold,
     twin.squint_gain); then the skin's soft saturation.
3. What the tracker reads: skin friction (a dead band on each blendshape, twin.skin_friction),
   tracker latency (twin.tracker_latency_frames) and noise, optionally correlated across
   channels (twin.noise_correlation).
Every new parameter defaults to off, so the shipped profiles behave as before.
"""
from collections import deque
import functools
import math

import numpy as np

from face_actuation.profile import RobotProfile
from face_common.arkit import CHANNEL_INDEX, NUM_BLENDSHAPES, NUM_CHANNELS, channel_index


def _channels(*names) -> np.ndarray:
    return np.array([channel_index(name) for name in names])


# Interactions between blendshape channels (left, right)
_BROW_UP = _channels('BrowOuterUpLeft', 'BrowOuterUpRight')
_BROW_INNER = channel_index('BrowInnerUp')
_BROW_DOWN = _channels('BrowDownLeft', 'BrowDownRight')
_JAW = channel_index('JawOpen')
# an open jaw stretches the lips: every lip shape but the closing fades with it
_JAW_MASKED = np.array([index for name, index in CHANNEL_INDEX.items()
                        if name.startswith('mouth') and name != 'mouthclose'
                        and index < NUM_BLENDSHAPES])
_SMILE = _channels('MouthSmileLeft', 'MouthSmileRight')
_SQUINT = (_channels('CheekSquintLeft', 'CheekSquintRight'),
           _channels('EyeSquintLeft', 'EyeSquintRight'))


def play(state: np.ndarray, value: np.ndarray, width: float) -> np.ndarray:
    """Play operator (backlash, friction): the output stays put until the input has moved
    `width` away from it, then is dragged along."""
    return np.clip(state, value - width, value + width)


def _expm(matrix: np.ndarray) -> np.ndarray:
    """Matrix exponential of a small matrix (scaling and squaring of a Taylor series)."""
    norm = np.abs(matrix).sum(axis=1).max()
    squarings = math.ceil(math.log2(norm / 0.25)) if norm > 0.25 else 0
    scaled = matrix / 2 ** squarings
    result, term = np.eye(len(matrix)), np.eye(len(matrix))
    for k in range(1, 16):
        term = term @ scaled / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


@functools.lru_cache(maxsize=64)
def second_order_step(frequency_hz: float, damping: float, dt: float):
    """Exact zero-order-hold discretisation of x'' = w^2 (c - x) - 2 zeta w x' over dt:
    (A, b) with [x, v] <- A [x, v] + b c."""
    w = 2.0 * np.pi * frequency_hz
    augmented = np.zeros((3, 3))
    augmented[0, 1] = 1.0
    augmented[1, 0], augmented[1, 1], augmented[1, 2] = -w * w, -2.0 * damping * w, w * w
    exact = _expm(augmented * dt)
    return exact[:2, :2], exact[:2, 2]


def _effect_matrices(profile: RobotProfile):
    """(n_motors, 61) gains for moving up and down from neutral, from twin.effects (names
    checked when the profile was read)."""
    up = np.zeros((profile.num_motors, NUM_CHANNELS))
    down = np.zeros((profile.num_motors, NUM_CHANNELS))
    for name, entry in profile.twin.effects.items():
        row = profile.index(name)
        for direction, matrix in (('up', up), ('down', down)):
            for channel, gain in entry[direction].items():
                matrix[row, CHANNEL_INDEX[channel.lower()]] = gain
    return up, down


class FaceTwin:
    """Simulated robot face: actuator state plus the forward model."""

    def __init__(self, profile: RobotProfile, seed: int | None = None):
        self.profile = profile
        self.params = profile.twin
        seed = self.params.seed if seed is None else seed
        rng = np.random.default_rng(seed)
        self.up, self.down = _effect_matrices(profile)
        n = profile.num_motors
        # Left/right asymmetry: each motor's reach differs a little, left from right.
        self.gain = 1.0 + self.params.asymmetry * rng.uniform(-1.0, 1.0, n)
        self.neutral = profile.neutral
        self.up_span = np.maximum(1.0 - self.neutral, 1e-6)
        self.down_span = np.maximum(self.neutral, 1e-6)
        self.rest = np.zeros(NUM_CHANNELS)
        for channel, value in profile.twin.rest.items():
            self.rest[CHANNEL_INDEX[channel.lower()]] = value
        self.coupling = self._coupling_matrix()
        self.jaw = profile.index('jaw_open') if 'jaw_open' in profile.motor_names else None
        self.corner_motors = np.array([m.group == 'mouth_corner' for m in profile.motors])
        p = self.params
        # the face is computed as the motors move (not when read) when it has a memory of its
        # own: skin friction, or a tracker that reports it late
        self.stateful_face = p.skin_friction > 0 or p.tracker_latency_frames > 0
        self.reseed_noise(seed + 1)
        self.reset()

    def _coupling_matrix(self) -> np.ndarray:
        """Cables routed side by side in a group drag their neighbours a little."""
        n = self.profile.num_motors
        matrix = np.eye(n)
        c = self.params.coupling
        if c > 0:
            groups = [m.group for m in self.profile.motors]
            for i in range(n):
                for j in (i - 1, i + 1):
                    if 0 <= j < n and groups[j] == groups[i]:
                        matrix[i, j] = c
        return matrix

    # ---- actuator state ------------------------------------------------------------------
    def reset(self, positions=None) -> None:
        self.positions = (self.neutral.copy() if positions is None
                          else np.clip(np.asarray(positions, float), 0.0, 1.0))
        self.velocity = np.zeros_like(self.positions)
        self._backlash = self.positions.copy()
        self._skin = self.positions.copy()
        if self.stateful_face:
            face = self.shape(self._skin[None, :])[0]
            self._friction = face[:NUM_BLENDSHAPES].copy()
            self._shown = deque([face] * (self.params.tracker_latency_frames + 1),
                                maxlen=self.params.tracker_latency_frames + 1)

    def actuator_matrices(self, dt: float):
        """(A, b): the actuators' state [position, velocity] <- A state + b command per step
        (first order: the velocity is unused)."""
        p = self.params
        if p.natural_frequency_hz > 0:
            return second_order_step(p.natural_frequency_hz, p.damping_ratio, dt)
        alpha = 1.0 - np.exp(-dt / p.time_constant_s)
        return np.array([[1.0 - alpha, 0.0], [0.0, 0.0]]), np.array([alpha, 0.0])

    def skin_follow(self, dt: float) -> float:
        """Fraction of the way the skin moves toward the motors' pose per step (1: no lag)."""
        tau = self.params.skin_time_constant_s
        return 1.0 - np.exp(-dt / tau) if tau > 0 else 1.0

    def step(self, command, dt: float) -> np.ndarray:
        """Advance the motors toward `command` (normalised) by dt seconds."""
        target = np.clip(np.asarray(command, float), 0.0, 1.0)
        if self.params.natural_frequency_hz > 0:
            a, b = self.actuator_matrices(dt)
            self.positions, self.velocity = (a[0, 0] * self.positions + a[0, 1] * self.velocity
                                             + b[0] * target,
                                             a[1, 0] * self.positions + a[1, 1] * self.velocity
                                             + b[1] * target)
            # overshoot ends at the motor's end stop, where it stops dead
            stopped = (self.positions < 0.0) | (self.positions > 1.0)
            self.positions = np.clip(self.positions, 0.0, 1.0)
            self.velocity = np.where(stopped, 0.0, self.velocity)
        else:
            alpha = 1.0 - np.exp(-dt / self.params.time_constant_s)
            self.positions = self.positions + alpha * (target - self.positions)
        self._carry_skin(dt)
        return self.positions

    def drift(self, positions, dt: float) -> np.ndarray:
        """Motors moved by something other than their drive (a limp face sagging), at rest
        when the drive takes over again; the skin and the tracker follow them as they follow
        the drive."""
        self.positions = np.clip(np.asarray(positions, float), 0.0, 1.0)
        self.velocity = np.zeros_like(self.positions)
        self._carry_skin(dt)
        return self.positions

    def _carry_skin(self, dt: float) -> None:
        """Backlash, skin lag, skin friction and the tracker's delay, one step of dt after
        the motors moved."""
        self._backlash = self._apply_backlash(self._backlash, self.positions)
        follow = self.skin_follow(dt)
        self._skin = (self._skin + follow * (self._backlash - self._skin) if follow < 1.0
                      else self._backlash)
        if self.stateful_face:
            face = self.shape(self._skin[None, :])[0]
            if self.params.skin_friction > 0:
                self._friction = play(self._friction, face[:NUM_BLENDSHAPES],
                                      self.params.skin_friction)
                face[:NUM_BLENDSHAPES] = self._friction
            self._shown.append(face)

    def _apply_backlash(self, state, positions):
        h = self.params.hysteresis
        if h <= 0:
            return positions.copy()
        return play(state, positions, h)

    def observe(self, noise: bool = True) -> np.ndarray:
        """What the face shows now (61 channels), as a tracker facing the robot reads it."""
        if self.stateful_face:
            out = self._shown[0].copy()
        else:
            effective = self._skin if self.params.skin_time_constant_s > 0 else (
                self._backlash if self.params.hysteresis > 0 else self.positions)
            out = self.shape(effective[None, :])[0]
        if noise:
            out = self.add_noise(out[None, :])[0]
        return out

    def reseed_noise(self, seed) -> None:
        """Restart the tracker noise, so a recording's noise depends on its own seed and not
        on what this twin recorded before it (a resumed run records what a fresh one would)."""
        self._noise_rng = np.random.default_rng(seed)

    def add_noise(self, values: np.ndarray) -> np.ndarray:
        """Measurement noise of a tracker reading the face (per channel, Gaussian)."""
        p = self.params
        if p.noise_std <= 0:
            return values
        noise = self._noise_rng.normal(0.0, p.noise_std, values.shape)
        if p.noise_correlation > 0:
            # one disturbance shared by every channel of a frame (lighting, head pose)
            shared = self._noise_rng.normal(0.0, p.noise_std, (len(values), 1))
            noise = (np.sqrt(1.0 - p.noise_correlation) * noise
                     + np.sqrt(p.noise_correlation) * shared)
        noisy = values + noise
        noisy[:, :NUM_BLENDSHAPES] = np.clip(noisy[:, :NUM_BLENDSHAPES], 0.0, 1.0)
        return noisy

    # ---- forward model ---------------------------------------------------------------------
    def shape(self, positions: np.ndarray) -> np.ndarray:
        """Static forward model: (N, n_motors) normalised positions -> (N, 61), no noise."""
        x = np.clip(np.asarray(positions, float), 0.0, 1.0)
        delta = x - self.neutral
        if self.params.coupling > 0:
            delta = delta @ self.coupling.T
        up = np.clip(delta / self.up_span, 0.0, 1.0)
        down = np.clip(-delta / self.down_span, 0.0, 1.0)
        up, down = self._transmission(up), self._transmission(down)
        if self.params.jaw_coupling > 0 and self.jaw is not None:
            reach = 1.0 - self.params.jaw_coupling * x[:, self.jaw:self.jaw + 1]
            up = np.where(self.corner_motors, up * reach, up)
        up = up * self.gain
        down = down * self.gain
        out = self.rest + self._mix(up, down)
        self._interact(out)
        shapes = out[:, :NUM_BLENDSHAPES]
        if self.params.saturation < 1.0:
            # skin tightens: soft saturation toward the saturation ceiling
            s = self.params.saturation
            shapes = s * np.tanh(np.maximum(shapes, 0.0) / s)
        out[:, :NUM_BLENDSHAPES] = np.clip(shapes, 0.0, 1.0)
        return out

    def _mix(self, up: np.ndarray, down: np.ndarray) -> np.ndarray:
        """What the motors add to each channel: their sum, or with twin.skin_mixing the skin
        units saturate as several motors pull them (toward 1 - prod(1 - pull), so two motors
        pulling 0.5 each give 0.75, not 1); negative gains stay additive."""
        added = up @ self.up + down @ self.down
        m = self.params.skin_mixing
        if m <= 0:
            return added
        pulls = (up[:, :, None] * np.maximum(self.up, 0.0)[None]
                 + down[:, :, None] * np.maximum(self.down, 0.0)[None])
        pushes = added - pulls.sum(axis=1)
        combined = 1.0 - np.prod(1.0 - np.clip(pulls, 0.0, 1.0), axis=1)
        return (1.0 - m) * added + m * (combined + pushes)

    def _interact(self, out: np.ndarray) -> None:
        """Interactions between channels that do not add (in place; each is off at 0)."""
        p = self.params
        if p.brow_masking > 0:
            lifted = np.maximum(out[:, _BROW_UP], out[:, [_BROW_INNER]])
            lowered = np.maximum(out[:, _BROW_DOWN], 0.0)
            out[:, _BROW_UP] *= np.clip(1.0 - p.brow_masking * lowered, 0.0, 1.0)
            out[:, _BROW_INNER] *= np.clip(1.0 - p.brow_masking * lowered.mean(axis=1), 0.0, 1.0)
            out[:, _BROW_DOWN] *= np.clip(1.0 - p.brow_masking * lifted, 0.0, 1.0)
        if p.jaw_masking > 0:
            opening = np.clip(out[:, [_JAW]], 0.0, 1.0)
            out[:, _JAW_MASKED] *= 1.0 - p.jaw_masking * opening
        if p.squint_gain > 0:
            beyond = np.maximum(out[:, _SMILE] - p.squint_threshold, 0.0)
            for channels in _SQUINT:
                out[:, channels] += p.squint_gain * beyond

    def _transmission(self, u: np.ndarray) -> np.ndarray:
        p = self.params
        if p.slack > 0:                                    # cable slack dead zone
            u = np.maximum(u - p.slack, 0.0) / (1.0 - p.slack)
        if p.linkage_angle > 0:                            # crank: sinusoidal transmission
            u = np.sin(p.linkage_angle * u) / np.sin(p.linkage_angle)
        if p.gamma != 1.0:
            u = u ** p.gamma
        if p.skin_engagement != 1.0:
            # soft tissue: the skin stretches before it moves, and stiffens near its end
            k = p.skin_engagement
            u = u ** k / (u ** k + (1.0 - u) ** k)
        return u

    def forward(self, positions: np.ndarray, noise: bool = False,
                dt: float | None = None) -> np.ndarray:
        """Forward model over a time sequence (T, n_motors) of motor positions, one per step:
        backlash, skin lag and friction carried through time from the current state, and the
        tracker's latency (the twin's own state is not changed); dt: the step (the profile's
        control period when None)."""
        positions = np.clip(np.asarray(positions, float), 0.0, 1.0)
        effective = positions.copy()
        if self.params.hysteresis > 0:
            effective = np.empty_like(positions)
            state = self._backlash.copy()
            for t, row in enumerate(positions):
                state = self._apply_backlash(state, row)
                effective[t] = state
        follow = self.skin_follow(dt or 1.0 / self.profile.control_rate_hz)
        if follow < 1.0:
            state = self._skin.copy()
            for t, row in enumerate(effective):
                state = state + follow * (row - state)
                effective[t] = state
        out = self.shape(effective)
        if self.params.skin_friction > 0:
            state = self._friction.copy()
            for t in range(len(out)):
                state = play(state, out[t, :NUM_BLENDSHAPES], self.params.skin_friction)
                out[t, :NUM_BLENDSHAPES] = state
        if self.stateful_face:
            latency = self.params.tracker_latency_frames
            if latency:
                out = np.concatenate([np.array(self._shown)[1:], out])[:len(out)]
        return self.add_noise(out) if noise else out

    def random_poses(self, count: int, rng: np.random.Generator, spread: float = 1.0,
                     symmetric: bool = False) -> np.ndarray:
        """Random safe poses: each motor uniform within its range around neutral."""
        lo = self.neutral - spread * self.neutral
        hi = self.neutral + spread * (1.0 - self.neutral)
        poses = rng.uniform(lo, hi, size=(count, self.profile.num_motors))
        if symmetric and self.profile.pairs:
            pairs = self.profile.pair_indices()
            poses[:, pairs[:, 1]] = poses[:, pairs[:, 0]]
        return poses
