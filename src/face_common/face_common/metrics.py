"""Shadowing quality figures, one definition for offline evaluation and live sessions."""
import numpy as np

from face_common.arkit import NUM_BLENDSHAPES


def jitter(commands: np.ndarray) -> float:
    """Mean absolute second difference of a command sequence (T, M): 0 for smooth motion."""
    commands = np.asarray(commands, np.float64)
    if len(commands) < 3:
        return float('nan')
    return float(np.abs(np.diff(commands, n=2, axis=0)).mean())


def blendshape_distance(human: np.ndarray, robot: np.ndarray, delay: int = 0) -> float:
    """MSE over the 52 blendshapes between human frames and the robot face `delay` frames
    later (when it has had time to respond)."""
    n = len(human) - delay
    return float(np.mean((np.asarray(robot)[delay:delay + n, :NUM_BLENDSHAPES]
                          - np.asarray(human)[:n, :NUM_BLENDSHAPES]) ** 2))
