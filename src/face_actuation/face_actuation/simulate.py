"""Run a sequence of commands through the safety layer and a robot's twin, offline (ROS-free):
what evaluation, bootstrap data collection and tests need, at any speed."""
from dataclasses import dataclass

import numpy as np

from face_actuation.safety import SafetyLayer
from face_actuation.twin import FaceTwin
from face_common.arkit import NUM_CHANNELS


@dataclass
class Rollout:
    commands: np.ndarray        # (T, n) what was asked
    applied: np.ndarray         # (T, n) what the safety layer let through
    positions: np.ndarray       # (T, n) where the twin's motors were
    observed: np.ndarray        # (T, 61) what a tracker facing the robot read


def rollout(twin: FaceTwin, commands: np.ndarray, dt: float, noise: bool = True,
            safety: SafetyLayer | None = None) -> Rollout:
    """Drive the twin with `commands` (T, n), one per dt, through `safety` (a fresh, already
    powered-up layer starting at the twin's pose when None)."""
    commands = np.asarray(commands, dtype=np.float64)
    if safety is None:
        safety = SafetyLayer(twin.profile)
        safety.start_active(twin.positions)
    count = len(commands)
    applied = np.empty_like(commands)
    positions = np.empty_like(commands)
    observed = np.empty((count, NUM_CHANNELS))
    now = 0.0
    for t in range(count):
        now += dt
        safety.command(commands[t], now)
        out = safety.update(dt)
        applied[t] = out if out is not None else twin.positions
        positions[t] = twin.step(applied[t], dt)
        observed[t] = twin.observe(noise=noise)
    return Rollout(commands, applied, positions, observed)
