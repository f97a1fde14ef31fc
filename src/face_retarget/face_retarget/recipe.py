"""The human take split into a training part and a held-out part, and the held-out twin
recordings the evaluation scores motor distance on."""
import numpy as np

from face_actuation.twin import FaceTwin
from face_capture.calibration import neutral_from_frames
from face_capture.takes import Take
from face_retarget.baselines import LinearRetarget
from face_retarget.data import interpolation_commands, record

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


__all__ = ['calibrated_take', 'split_take', 'validation_episodes']
