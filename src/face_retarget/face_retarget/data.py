"""Commands that drive a robot for training data (random interpolation: the paper's control
condition and the delay probe; smooth exploration noise on a model's commands), and a twin
recording helper. The training pipeline (face_retarget.bootstrap) records through rosbag2;
command t is paired with the face reading `delay` frames later (face_bag.export.windows).
"""
import numpy as np

from face_actuation.simulate import rollout
from face_actuation.twin import FaceTwin
from face_bag.export import Episode, estimate_delay, windows


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
           'windows']
