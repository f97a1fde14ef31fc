"""The default training recipe on a robot's twin: the data the ExFace bootstrap would collect,
generated offline, and the human take split into a training part and a held-out part."""
from dataclasses import dataclass

import numpy as np

from face_actuation.twin import FaceTwin
from face_capture.calibration import neutral_from_frames
from face_capture.takes import Take
from face_retarget.baselines import LinearRetarget
from face_retarget.data import (
    Episode,
    estimate_delay,
    interpolation_commands,
    record,
    static_poses,
    static_windows,
    windows,
)

NEUTRAL_FRAMES = 30          # the first second of a take, before the performance starts
TRAIN_END_S = 94.0           # the bundled take: training before, held out after


def calibrated_take(take: Take, neutral_frames: int = NEUTRAL_FRAMES) -> np.ndarray:
    """The take's frames relative to the performer's neutral (ExFace III-A), the neutral
    captured from its first frames as the capture node would."""
    if neutral_frames <= 0:
        return take.values.copy()
    return neutral_from_frames('take', take.values[:neutral_frames]).apply(take.values)


def split_take(take: Take, train_end_s: float):
    """(training frames, held-out frames) of the calibrated take, split at train_end_s."""
    frames = calibrated_take(take)
    cut = int(np.searchsorted(take.times, train_end_s))
    return frames[:cut], frames[cut:]


@dataclass
class Dataset:
    observed: np.ndarray        # (W, T, 61)
    commands: np.ndarray        # (W, T, M)
    delay: int
    linear: LinearRetarget
    validation: list            # held-out twin episodes (ground-truth commands exist)
    counts: dict


def build_dataset(twin: FaceTwin, human_train: np.ndarray, window: int, seed: int = 0,
                  static_count: int = 600, static_frames: int = 72_000,
                  interpolation_frames: int = 12_000, human_passes: int = 3,
                  rate: float = 30.0, stride: int = 2) -> Dataset:
    rng = np.random.default_rng(seed)
    poses, readings = static_poses(twin, static_count, rng)
    linear = LinearRetarget.fit(readings, poses, robot=twin.profile.name)
    static_obs, static_cmd = static_windows(poses, readings, window, static_frames, rng, twin)

    episodes = []
    for start in range(0, interpolation_frames, 1000):
        commands = interpolation_commands(twin, min(1000, interpolation_frames - start), rng,
                                          rate)
        episodes.append(record(twin, commands, rate, 'interpolation'))
    # Human-driven: the first model (linear, from the static poses) drives the robot from the
    # training part of the take, with small smooth perturbations so each pass explores.
    base = linear.predict(human_train)
    for _ in range(human_passes):
        wobble = interpolation_commands(twin, len(base), rng, rate) - twin.neutral
        commands = np.clip(base + 0.15 * wobble, 0.0, 1.0)
        episodes.append(record(twin, commands, rate, 'human_driven'))
    delay = estimate_delay(episodes)
    dyn_obs, dyn_cmd = windows(episodes, window, stride, delay)

    validation = validation_episodes(twin, linear, human_train[::-1], rng, rate)
    observed = np.concatenate([static_obs, dyn_obs]).astype(np.float32)
    commands = np.concatenate([static_cmd, dyn_cmd]).astype(np.float32)
    counts = {'static_poses': static_count, 'static_windows': len(static_obs),
              'dynamic_episodes': len(episodes), 'dynamic_windows': len(dyn_obs),
              'dynamic_frames': int(sum(len(e.commands) for e in episodes)), 'delay': delay}
    return Dataset(observed, commands, delay, linear, validation, counts)


def validation_episodes(twin: FaceTwin, linear: LinearRetarget, human: np.ndarray,
                        rng: np.random.Generator, rate: float = 30.0, frames: int = 600):
    """Held-out twin recordings with known commands (for motor distance): one random
    interpolation, one driven from human frames by the linear model with a small wobble."""
    episodes = [record(twin, interpolation_commands(twin, frames, rng, rate), rate,
                       'validation_interpolation')]
    if len(human):
        base = linear.predict(human[:frames])
        wobble = interpolation_commands(twin, len(base), rng, rate) - twin.neutral
        episodes.append(record(twin, np.clip(base + 0.1 * wobble, 0.0, 1.0), rate,
                               'validation_human_driven'))
    return episodes


__all__ = ['Dataset', 'Episode', 'build_dataset', 'calibrated_take', 'split_take',
           'validation_episodes']
