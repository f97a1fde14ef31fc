"""Training data from a robot: pairs of (what the face showed, the commands that made it).

The ExFace bootstrap sources, generated on a robot's digital twin here (the bootstrap loop
collects the same from real hardware or a twin through rosbag2):
- static: random safe poses, each held until settled and read (the paper's stage 1: 600
  poses, replicated into windows);
- random interpolation: smooth moves between random poses (the paper's control condition);
- human-driven: a model drives the robot from human takes; the response is recorded.
Actuator delay is estimated from the data and compensated: command t is paired with the face
reading `delay` frames later.
"""
import numpy as np

from face_actuation.simulate import rollout
from face_actuation.twin import FaceTwin
from face_bag.export import Episode, estimate_delay, windows


def static_poses(twin: FaceTwin, count: int, rng: np.random.Generator,
                 symmetric: bool = False):
    """Random poses and the settled, noisy face reading of each (stage 1)."""
    poses = twin.random_poses(count, rng, symmetric=symmetric)
    readings = twin.add_noise(twin.shape(poses))
    return poses, readings


def static_windows(poses: np.ndarray, readings: np.ndarray, window: int, frames: int,
                   rng: np.random.Generator, twin: FaceTwin):
    """Expand static pairs into training windows the way the paper does (600 poses -> 72,000
    frames): each window holds one pose, read with fresh measurement noise per frame."""
    count = max(1, frames // window)
    pick = rng.integers(0, len(poses), count)
    motors = np.repeat(poses[pick][:, None, :], window, axis=1)
    clean = twin.shape(poses[pick])
    observed = twin.add_noise(np.repeat(clean[:, None, :], window, axis=1)
                              .reshape(-1, clean.shape[-1])).reshape(count, window, -1)
    return observed, motors


def interpolation_commands(twin: FaceTwin, frames: int, rng: np.random.Generator,
                           rate: float, min_s: float = 0.3, max_s: float = 1.5):
    """Smooth (smoothstep) moves between random poses, each lasting min_s..max_s."""
    out = np.empty((frames, twin.profile.num_motors))
    current = twin.random_poses(1, rng)[0]
    n = 0
    while n < frames:
        target = twin.random_poses(1, rng)[0]
        length = max(2, int(rng.uniform(min_s, max_s) * rate))
        s = np.linspace(0, 1, length)[:, None]
        s = s * s * (3 - 2 * s)
        segment = current + (target - current) * s
        take = min(length, frames - n)
        out[n:n + take] = segment[:take]
        n += take
        current = target
    return out


def exploration_noise(frames: int, motors: int, sigma: float, rng: np.random.Generator,
                      rate: float, time_constant_s: float = 0.3) -> np.ndarray:
    """Smooth zero-mean noise (Ornstein-Uhlenbeck, stationary std `sigma`) to add to a model's
    commands while it drives the robot: the recorded data then cover a neighbourhood of the
    model's trajectory, where the right commands lie, not only the trajectory itself (DART,
    Laskey et al. 2017). Smooth, so the robot sees plausible motion, not per-frame chatter."""
    decay = float(np.exp(-1.0 / (rate * time_constant_s)))
    kick = sigma * np.sqrt(1.0 - decay * decay)
    out = np.empty((frames, motors))
    value = rng.normal(0.0, sigma, motors)
    for i in range(frames):
        out[i] = value
        value = decay * value + kick * rng.normal(0.0, 1.0, motors)
    return out


def record(twin: FaceTwin, commands: np.ndarray, rate: float, source: str) -> Episode:
    """Drive the twin with commands through the safety layer and record the face."""
    result = rollout(twin, commands, 1.0 / rate)
    return Episode(result.observed, result.applied, source)


__all__ = ['Episode', 'estimate_delay', 'exploration_noise', 'interpolation_commands', 'record',
           'static_poses', 'static_windows', 'windows']
