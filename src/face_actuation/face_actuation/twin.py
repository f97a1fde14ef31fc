"""Digital twin of a robot face: what the motors do, and what an iPad facing the robot reads.

Two parts, both deterministic from the profile's seed:
1. Actuators: positions follow commands with first-order dynamics (time constant per robot).
2. Forward model: motor positions -> the 61 ARKit channels (52 blendshapes 0..1, then head/eye
   rotations in radians). Each motor moving up or down from its neutral adds to the blendshapes
   listed in the profile's twin.effects, shaped by the robot's physics:
   - cable heads: a slack dead zone before the skin moves, soft saturation as the skin tightens,
     cross-coupling between neighbouring cables in a group, and hysteresis (backlash);
   - linkage heads: crank geometry (sinusoidal transmission) and the jaw linkage reducing the
     mouth-corner linkages' reach as the jaw opens;
   - servo rigs (Ameca): a mild power-law response;
   - all: left/right gain asymmetry, measurement noise, and redundancy (several motors move the
     same blendshape, so the inverse is many-to-one).
"""
import numpy as np

from face_actuation.profile import RobotProfile
from face_common.arkit import CHANNEL_INDEX, NUM_BLENDSHAPES, NUM_CHANNELS


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
        self._backlash = self.positions.copy()

    def step(self, command, dt: float) -> np.ndarray:
        """Advance the motors toward `command` (normalised) by dt seconds."""
        alpha = 1.0 - np.exp(-dt / self.params.time_constant_s)
        target = np.clip(np.asarray(command, float), 0.0, 1.0)
        self.positions = self.positions + alpha * (target - self.positions)
        self._backlash = self._apply_backlash(self._backlash, self.positions)
        return self.positions

    def _apply_backlash(self, state, positions):
        h = self.params.hysteresis
        if h <= 0:
            return positions.copy()
        return np.clip(state, positions - h, positions + h)

    def observe(self, noise: bool = True) -> np.ndarray:
        """What the face shows now (61 channels), as a tracker facing the robot reads it."""
        effective = self._backlash if self.params.hysteresis > 0 else self.positions
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
        if self.params.noise_std <= 0:
            return values
        noisy = values + self._noise_rng.normal(0.0, self.params.noise_std, values.shape)
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
        out = self.rest + up @ self.up + down @ self.down
        shapes = out[:, :NUM_BLENDSHAPES]
        if self.params.saturation < 1.0:
            # skin tightens: soft saturation toward the saturation ceiling
            s = self.params.saturation
            shapes = s * np.tanh(np.maximum(shapes, 0.0) / s)
        out[:, :NUM_BLENDSHAPES] = np.clip(shapes, 0.0, 1.0)
        return out

    def _transmission(self, u: np.ndarray) -> np.ndarray:
        p = self.params
        if p.slack > 0:                                    # cable slack dead zone
            u = np.maximum(u - p.slack, 0.0) / (1.0 - p.slack)
        if p.linkage_angle > 0:                            # crank: sinusoidal transmission
            u = np.sin(p.linkage_angle * u) / np.sin(p.linkage_angle)
        if p.gamma != 1.0:
            u = u ** p.gamma
        return u

    def forward(self, positions: np.ndarray, noise: bool = False) -> np.ndarray:
        """Forward model over a time sequence (T, n_motors), hysteresis carried through time
        from the current backlash state (the twin's own state is not changed)."""
        positions = np.clip(np.asarray(positions, float), 0.0, 1.0)
        effective = positions
        if self.params.hysteresis > 0:
            effective = np.empty_like(positions)
            state = self._backlash.copy()
            for t, row in enumerate(positions):
                state = self._apply_backlash(state, row)
                effective[t] = state
        out = self.shape(effective)
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
