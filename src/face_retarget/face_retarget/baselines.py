"""Honest baselines for retargeting human blendshapes to robot motor values.

LinearRetarget: ridge regression from the 55 human input channels to normalised motor
values, fitted on random robot poses and the blendshapes the robot face showed for them (the
same data the ExFace paper's static bootstrap stage collects). Per frame, no memory: the floor
every learned model has to beat.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_common.arkit import RETARGET_INPUT


@dataclass
class LinearRetarget:
    weights: np.ndarray          # (55, n_motors)
    bias: np.ndarray             # (n_motors,)
    robot: str = ''
    name: str = 'linear'

    @classmethod
    def fit(cls, frames: np.ndarray, motors: np.ndarray, ridge: float = 1e-2,
            robot: str = '') -> 'LinearRetarget':
        """Least squares with a ridge penalty; frames (N, 61) wire order, motors (N, n)."""
        x = np.asarray(frames, np.float64)[:, RETARGET_INPUT]
        y = np.asarray(motors, np.float64)
        x_mean, y_mean = x.mean(0), y.mean(0)
        xc, yc = x - x_mean, y - y_mean
        gram = xc.T @ xc + ridge * len(x) * np.eye(x.shape[1])
        weights = np.linalg.solve(gram, xc.T @ yc)
        return cls(weights, y_mean - x_mean @ weights, robot)

    def predict(self, frames) -> np.ndarray:
        """(61,) or (N, 61) human frames -> normalised motor values in 0..1."""
        x = np.asarray(frames, np.float64)
        out = x[..., RETARGET_INPUT] @ self.weights + self.bias
        return np.clip(out, 0.0, 1.0)

    def save(self, path) -> None:
        np.savez(path, weights=self.weights, bias=self.bias, robot=self.robot, name=self.name)

    @classmethod
    def load(cls, path) -> 'LinearRetarget':
        data = np.load(Path(path))
        return cls(data['weights'], data['bias'], str(data['robot']), str(data['name']))


def fit_linear_on_twin(twin, count: int = 600, seed: int = 0, spread: float = 1.0,
                       symmetric: bool = False) -> LinearRetarget:
    """Fit the linear baseline on `count` random static poses of a digital twin, each read
    with measurement noise, as a robot owner would on the real head. `spread` < 1 keeps the
    poses nearer neutral and `symmetric` moves paired motors together: poses closer to the
    faces humans make (see twin.random_poses)."""
    rng = np.random.default_rng(seed)
    poses = twin.random_poses(count, rng, spread=spread, symmetric=symmetric)
    shown = twin.add_noise(twin.shape(poses))
    return LinearRetarget.fit(shown, poses, robot=twin.profile.name)
