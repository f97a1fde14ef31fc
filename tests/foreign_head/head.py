"""A robot head that no part of the product describes (issue 16, item 6): its physics in plain
numpy, written apart from face_actuation.twin, for tests that must not be tuned to the
product's own twins. The product sees only its motor list (foreign.yaml beside this file) and
what it reports on the ROS topics: measured, noisy motor positions and a delayed, noisy
tracker reading of its face.

Physics, per control tick (integrated in sub-steps of SUBSTEP_S):
- actuators: second order, x'' = w^2 (c - x) - 2 z w x', so they overshoot; hard stops at 0
  and 1 (velocity zeroed there);
- backlash: the skin follows the motor only once it has moved more than a dead band;
- skin units: each mixes 2-3 motors (signed weights on their displacement from neutral,
  normalised by the way left to travel) and saturates, a = s tanh(g max(u, 0) / s); the
  smile and stretch units lose reach as the jaw opens; each unit moves 1-3 blendshapes;
- tracker: reads the face `delay_frames` tracker frames late, with noise correlated across
  channels (a few latent factors) and in time (AR(1)), clipped to 0..1;
- encoders: the reported positions are the measured ones (plus white noise, 12-bit steps),
  not the commands.

The seeded sampler `sample_params(seed)` draws one head from these ranges:

| parameter                    | range          | what it is                              |
|------------------------------|----------------|-----------------------------------------|
| natural_frequency (rad/s)    | 16 .. 30       | per motor, actuator stiffness           |
| damping                      | 0.35 .. 0.7    | per motor, < 1: overshoot               |
| backlash                     | 0.005 .. 0.02  | per motor, dead band (normalised)       |
| unit weight scale            | 0.6 .. 1.4     | per unit and motor, times the layout's  |
| unit gain g                  | 1.0 .. 2.5     | per unit                                |
| unit saturation s            | 0.3 .. 0.7     | per unit: most a unit can show          |
| channel gain                 | 0.6 .. 1.2     | per unit and channel, times the layout's|
| jaw_masking                  | 0.2 .. 0.5     | smile/stretch reach lost at full jaw    |
| delay_frames                 | 1 .. 3         | tracker frames (1/30 s) of delay        |
| tracker_noise                | 0.004 .. 0.012 | per-channel std of the tracker noise    |
| noise_correlation (AR(1))    | 0.3 .. 0.8     | frame-to-frame correlation of the noise |
| encoder_noise                | 0.002 .. 0.006 | std of the reported motor positions     |
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_common.arkit import CHANNEL_INDEX, NUM_BLENDSHAPES, NUM_CHANNELS

PROFILE = Path(__file__).resolve().parent / 'foreign.yaml'
SUBSTEP_S = 1.0 / 240.0
TRACKER_FRAME_S = 1.0 / 30.0
LATENT_FACTORS = 6

# The skin's layout, per side ('{s}': l/r for motors, Left/Right for channels):
# (unit, {motor: weight}, {channel: gain}). Weights act on the motor's displacement from
# neutral; a negative weight means the unit is driven by that motor moving down.
SIDED_UNITS = (
    ('brow_raise', {'brow_in_{s}': 1.0, 'brow_out_{s}': 0.6},
     {'browInnerUp': 0.5, 'browOuterUp{S}': 0.9}),
    ('brow_lower', {'brow_in_{s}': -1.0, 'lid_up_{s}': -0.3}, {'browDown{S}': 0.9}),
    ('blink', {'lid_up_{s}': -1.0, 'lid_low_{s}': 0.4, 'cheek_{s}': 0.3},
     {'eyeBlink{S}': 1.0, 'eyeSquint{S}': 0.3}),
    ('widen', {'lid_up_{s}': 1.0, 'brow_out_{s}': 0.3}, {'eyeWide{S}': 0.9}),
    ('squint', {'lid_low_{s}': 1.0, 'cheek_{s}': 0.5},
     {'eyeSquint{S}': 0.8, 'cheekSquint{S}': 0.5}),
    ('sneer', {'nose_{s}': 1.0, 'lip_up_{s}': 0.4},
     {'noseSneer{S}': 0.9, 'mouthUpperUp{S}': 0.3}),
    ('smile', {'corner_up_{s}': 1.0, 'corner_out_{s}': 0.5, 'cheek_{s}': 0.3},
     {'mouthSmile{S}': 1.0, 'cheekSquint{S}': 0.2, 'mouthDimple{S}': 0.3}),
    ('stretch', {'corner_out_{s}': 1.0, 'corner_down_{s}': 0.4},
     {'mouthStretch{S}': 0.9}),
    ('frown', {'corner_down_{s}': 1.0, 'lip_low_{s}': 0.3},
     {'mouthFrown{S}': 0.9, 'mouthPress{S}': 0.3}),
    ('lower_lip', {'lip_low_{s}': 1.0, 'jaw_{s}': 0.3}, {'mouthLowerDown{S}': 0.9}),
    ('upper_lip', {'lip_up_{s}': 1.0, 'nose_{s}': 0.3}, {'mouthUpperUp{S}': 0.9}),
    ('pucker', {'pucker_{s}': 1.0, 'corner_out_{s}': -0.5},
     {'mouthPucker': 0.5, 'mouthFunnel': 0.3}),
)
SHARED_UNITS = (
    ('jaw', {'jaw_l': 0.5, 'jaw_r': 0.5}, {'jawOpen': 1.0}),
    ('roll', {'lip_low_l': -0.5, 'lip_low_r': -0.5, 'pucker_l': 0.3},
     {'mouthRollLower': 0.6, 'mouthShrugLower': 0.4}),
)
JAW_MASKED = ('smile', 'stretch')


def skin_layout(motor_names):
    """(unit names, (U, n) motor weights, (U, 61) channel gains) of the layout above."""
    index = {name: i for i, name in enumerate(motor_names)}
    units = [(f'{name}_{s}', {m.format(s=s): w for m, w in motors.items()},
              {c.format(S=side): g for c, g in channels.items()})
             for s, side in (('l', 'Left'), ('r', 'Right'))
             for name, motors, channels in SIDED_UNITS] + list(SHARED_UNITS)
    weights = np.zeros((len(units), len(motor_names)))
    gains = np.zeros((len(units), NUM_CHANNELS))
    for u, (_, motors, channels) in enumerate(units):
        for motor, weight in motors.items():
            weights[u, index[motor]] = weight
        for channel, gain in channels.items():
            gains[u, CHANNEL_INDEX[channel.lower()]] += gain / 2 if channel in (
                'browInnerUp', 'mouthPucker', 'mouthFunnel') else gain
    return [name for name, _, _ in units], weights, gains


@dataclass
class HeadParams:
    natural_frequency: np.ndarray
    damping: np.ndarray
    backlash: np.ndarray
    weights: np.ndarray          # (U, n)
    unit_gain: np.ndarray        # (U,)
    saturation: np.ndarray       # (U,)
    channel_gains: np.ndarray    # (U, 61)
    jaw_masking: float
    delay_frames: int
    tracker_noise: float
    noise_correlation: float
    noise_mixing: np.ndarray     # (61, LATENT_FACTORS + 61): latent and own noise per channel
    encoder_noise: float


def sample_params(seed: int, motor_names) -> HeadParams:
    """One head drawn from the ranges in the module's table."""
    rng = np.random.default_rng(seed)
    n = len(motor_names)
    _, weights, gains = skin_layout(motor_names)
    units = len(weights)
    mixing = np.hstack([rng.normal(0.0, 1.0, (NUM_CHANNELS, LATENT_FACTORS)),
                        0.5 * np.eye(NUM_CHANNELS)])
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)      # unit variance per channel
    mixing[NUM_BLENDSHAPES:] = 0.0                               # no head/eye rotations
    return HeadParams(
        natural_frequency=rng.uniform(16.0, 30.0, n),
        damping=rng.uniform(0.35, 0.7, n),
        backlash=rng.uniform(0.005, 0.02, n),
        weights=weights * rng.uniform(0.6, 1.4, weights.shape),
        unit_gain=rng.uniform(1.0, 2.5, units),
        saturation=rng.uniform(0.3, 0.7, units),
        channel_gains=gains * rng.uniform(0.6, 1.2, gains.shape),
        jaw_masking=float(rng.uniform(0.2, 0.5)),
        delay_frames=int(rng.integers(1, 4)),
        tracker_noise=float(rng.uniform(0.004, 0.012)),
        noise_correlation=float(rng.uniform(0.3, 0.8)),
        noise_mixing=mixing,
        encoder_noise=float(rng.uniform(0.002, 0.006)))


class ForeignHead:
    """The head's state and physics. `step(command, dt)` advances it under one command and
    returns what it reports: (measured positions (n,), tracker reading (61,))."""

    def __init__(self, params: HeadParams, neutral: np.ndarray, unit_names, seed: int = 0):
        self.p = params
        self.neutral = np.asarray(neutral, np.float64)
        self.up_span = np.maximum(1.0 - self.neutral, 1e-6)
        self.down_span = np.maximum(self.neutral, 1e-6)
        self.jaw_unit = unit_names.index('jaw')
        self.masked = np.array([name.rsplit('_', 1)[0] in JAW_MASKED for name in unit_names])
        self.seed = seed
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(self.seed if seed is None else seed)
        self.position = self.neutral.copy()
        self.velocity = np.zeros_like(self.position)
        self.skin_input = self.neutral.copy()
        self.clock_s = 0.0
        self.next_tracker_s = 0.0
        self.faces = [self.face(self.skin_input)] * (self.p.delay_frames + 1)
        self.latent = np.zeros(self.p.noise_mixing.shape[1])
        self.reading = self.faces[0]

    def face(self, motors: np.ndarray) -> np.ndarray:
        """What the skin shows for the positions the skin feels ((..., n) -> (..., 61), no
        noise)."""
        delta = motors - self.neutral
        displacement = np.where(delta >= 0, delta / self.up_span, delta / self.down_span)
        drive = np.maximum(displacement @ self.p.weights.T, 0.0)
        s = self.p.saturation
        activation = s * np.tanh(self.p.unit_gain * drive / s)
        jaw = activation[..., self.jaw_unit:self.jaw_unit + 1] / s[self.jaw_unit]
        activation = np.where(self.masked, activation * (1.0 - self.p.jaw_masking * jaw),
                              activation)
        out = activation @ self.p.channel_gains
        out[..., :NUM_BLENDSHAPES] = np.clip(out[..., :NUM_BLENDSHAPES], 0.0, 1.0)
        return out

    def step(self, command, dt: float):
        target = np.clip(np.asarray(command, np.float64), 0.0, 1.0)
        w, z = self.p.natural_frequency, self.p.damping
        for _ in range(max(1, int(round(dt / SUBSTEP_S)))):
            accel = w * w * (target - self.position) - 2.0 * z * w * self.velocity
            self.velocity = self.velocity + SUBSTEP_S * accel
            self.position = self.position + SUBSTEP_S * self.velocity
            stopped = (self.position < 0.0) | (self.position > 1.0)
            self.position = np.clip(self.position, 0.0, 1.0)
            self.velocity[stopped] = 0.0
            self.skin_input = np.clip(self.skin_input, self.position - self.p.backlash,
                                      self.position + self.p.backlash)
        self.clock_s += dt
        while self.next_tracker_s <= self.clock_s + 1e-9:     # the tracker's own frames
            self.next_tracker_s += TRACKER_FRAME_S
            self.faces = [*self.faces[1:], self.face(self.skin_input)]
            self.reading = self._tracked(self.faces[0])
        measured = self.position + self.rng.normal(0.0, self.p.encoder_noise,
                                                   self.position.shape)
        return np.round(np.clip(measured, 0.0, 1.0) * 4095) / 4095, self.reading.copy()

    def _tracked(self, face: np.ndarray) -> np.ndarray:
        rho = self.p.noise_correlation
        self.latent = rho * self.latent + np.sqrt(1 - rho * rho) * self.rng.normal(
            0.0, 1.0, self.latent.shape)
        noisy = face + self.p.tracker_noise * (self.p.noise_mixing @ self.latent)
        noisy[:NUM_BLENDSHAPES] = np.clip(noisy[:NUM_BLENDSHAPES], 0.0, 1.0)
        return noisy


def build_head(seed: int, motor_names, neutral, noise_seed: int = 0) -> ForeignHead:
    """The head drawn by `seed` for a robot with these motors."""
    names, _, _ = skin_layout(motor_names)
    return ForeignHead(sample_params(seed, motor_names), neutral, names, noise_seed)
