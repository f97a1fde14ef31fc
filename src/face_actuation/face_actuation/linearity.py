"""How linear a twin's static face is: the share of its blendshape variance that a
piecewise-linear map explains (ROS-free). A real face is far from linear; a twin that a
linear map inverts cannot show what a sequence model is for (issue 16)."""
import numpy as np

from face_actuation.twin import FaceTwin
from face_common.arkit import NUM_BLENDSHAPES


def piecewise_linear_r2(profile, fit_poses: int = 2000, test_poses: int = 1000,
                        seed: int = 0) -> float:
    """R² on `test_poses` held-out random poses of a least-squares map from each motor's
    displacement up and down from neutral (two features per motor, plus a constant) to the
    52 noise-free blendshapes, fitted on `fit_poses` others; pooled over the channels."""
    twin = FaceTwin(profile)
    poses = twin.random_poses(fit_poses + test_poses, np.random.default_rng(seed))
    shapes = twin.shape(poses)[:, :NUM_BLENDSHAPES]
    displacement = poses - twin.neutral
    features = np.hstack([np.maximum(displacement, 0.0), np.maximum(-displacement, 0.0),
                          np.ones((len(poses), 1))])
    weights, *_ = np.linalg.lstsq(features[:fit_poses], shapes[:fit_poses], rcond=None)
    held_out = shapes[fit_poses:]
    residual = held_out - features[fit_poses:] @ weights
    spread = held_out - held_out.mean(axis=0)
    return float(1.0 - np.sum(residual ** 2) / np.sum(spread ** 2))
