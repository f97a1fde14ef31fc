"""What the bootstrap learns about a robot from its own static poses, before any model drives
it (issue 16, item 5), from the motor list and the recorded pose/face pairs alone:

- where each motor's travel still changes the face (`useful_travel`): past the point where the
  skin saturates, or beyond what the motor was seen to reach, a command only pushes the
  model's outputs towards the ends of the range, so poses and driven commands keep within it;
- where the faces humans make lie in command space (`poses_towards_humans`): a linear inverse
  fitted on the first static pairs, applied to human training frames, gives the commands to
  draw the remaining static poses around, so the static data sit where humans are;
- how well the static faces cover the human ones (`coverage`), for the report.
"""
from dataclasses import dataclass

import numpy as np

from face_common.arkit import NUM_BLENDSHAPES
from face_retarget.baselines import LinearRetarget

# Travel fractions (of the way from neutral to an end) where a motor direction's face gain
# is allowed to change: the face's response is fitted as piecewise linear between them.
TRAVEL_KNOTS = (0.0, 0.15, 0.3, 0.45, 0.6)
# Poses that must reach into a stretch of travel before its gain is judged (fewer: the
# stretch takes the verdict of the one before it, as skin that saturated stays saturated).
MIN_POSES_PER_STRETCH = 6
# Ridge on the piecewise-linear fit, relative to the mean feature energy: enough to tame
# motors that always moved with their partner. It shrinks the changes of slope, so more of
# it hides a knee (1e-2 showed a flat stretch at 0.15 of the knee's slope, 1e-3 at 0).
RELATIVE_RIDGE = 1e-3


@dataclass
class TravelLimits:
    """Per motor, the lowest and highest command worth sending (normalised 0..1), and the
    face gain per unit travel of each stretch the limits were decided from."""
    low: np.ndarray
    high: np.ndarray
    gains: np.ndarray            # (n, 2 directions: up, down, stretches)

    def clip(self, commands: np.ndarray) -> np.ndarray:
        return np.clip(commands, self.low, self.high)

    @classmethod
    def whole_range(cls, motors: int) -> 'TravelLimits':
        return cls(np.zeros(motors), np.ones(motors), np.zeros((motors, 2, len(TRAVEL_KNOTS))))


def _travel(poses: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(N, n, 2): the way travelled from neutral up (towards 1) and down (towards 0), as a
    fraction of the way there was."""
    up = (poses - neutral) / np.maximum(1.0 - neutral, 1e-6)
    down = (neutral - poses) / np.maximum(neutral, 1e-6)
    return np.clip(np.stack([up, down], axis=-1), 0.0, 1.0)


def useful_travel(poses, readings, neutral, min_gain: float = 0.25) -> TravelLimits:
    """The travel limits decided from static pairs (poses the robot reached, the faces read).

    The face is fitted (ridge) as piecewise linear in each motor's travel up and down, with
    slopes free to change at TRAVEL_KNOTS; a stretch's gain is the size of its slope over the
    52 blendshapes. A motor direction ends at the outer end of its last stretch whose gain is
    at least `min_gain` times the motor's largest (a flat outer stretch: saturated skin, a
    hard stop, a direction that moves nothing), and never beyond the furthest travel the
    robot reached there. A stretch too few poses reached takes the verdict of the stretch
    before it (the first one: useful). `min_gain` 0: only the reached travel limits."""
    poses = np.asarray(poses, np.float64)
    faces = np.asarray(readings, np.float64)[:, :NUM_BLENDSHAPES]
    neutral = np.asarray(neutral, np.float64)
    n, knots = len(neutral), np.asarray(TRAVEL_KNOTS)
    travel = _travel(poses, neutral)                                   # (N, n, 2)
    reached = travel.max(0) if len(poses) else np.zeros((n, 2))
    features = np.maximum(travel[..., None] - knots, 0.0).reshape(len(poses), -1)
    gains = np.zeros((n, 2, len(knots)))
    if len(poses) > 1:
        x = features - features.mean(0)
        y = faces - faces.mean(0)
        gram = x.T @ x
        ridge = RELATIVE_RIDGE * max(np.trace(gram) / len(gram), 1e-12)
        coef = np.linalg.solve(gram + ridge * np.eye(len(gram)), x.T @ y)
        slopes = np.cumsum(coef.reshape(n, 2, len(knots), -1), axis=2)
        # Each stretch's slope along the direction's overall response: noise on the 52
        # channels then averages out instead of adding up to a floor no stretch falls below.
        overall = slopes.sum(2, keepdims=True)
        overall /= np.maximum(np.linalg.norm(overall, axis=-1, keepdims=True), 1e-12)
        gains = (slopes * overall).sum(-1)
    judged = (travel[..., None] > knots).sum(0) >= MIN_POSES_PER_STRETCH   # (n, 2, K)
    peak = np.where(judged, gains, 0.0).max(axis=(1, 2))
    limit = reached.copy()
    for m in range(n):
        for d in range(2):
            useful = (gains[m, d] >= min_gain * peak[m]) | (min_gain <= 0.0)
            for j in range(len(knots)):
                if not judged[m, d, j]:
                    useful[j] = useful[j - 1] if j else True
            inside = knots < reached[m, d]
            kept = np.flatnonzero(useful & inside)
            if not len(kept):               # nothing worth moving: a first stretch of room
                limit[m, d] = min(reached[m, d], knots[1])
            elif kept[-1] + 1 < len(knots):
                limit[m, d] = min(reached[m, d], knots[kept[-1] + 1])
    high = neutral + limit[:, 0] * (1.0 - neutral)
    low = neutral - limit[:, 1] * neutral
    return TravelLimits(low, high, gains)


def human_sample(takes, count: int, rng) -> np.ndarray:
    """`count` human frames drawn at random from the training takes (61 channels)."""
    frames = np.concatenate([np.asarray(t, np.float64) for t in takes])
    return frames[rng.integers(0, len(frames), count)]


def poses_towards_humans(poses, readings, human, limits: TravelLimits, rng) -> np.ndarray:
    """One static pose per human frame: the command a ridge map fitted on the static pairs
    (face -> pose) gives for it, plus Gaussian spread of the map's own residual size per
    motor (where it is unsure, the poses spread wider), kept within the travel limits."""
    inverse = LinearRetarget.fit(readings, poses)
    spread = (inverse.predict(readings) - poses).std(0)
    centres = inverse.predict(human)
    return limits.clip(centres + rng.normal(0.0, 1.0, centres.shape) * spread)


def coverage(human, readings) -> float:
    """Mean over human frames of the blendshape distance (mean squared over the 52
    blendshapes) to the nearest static face: how far the static data sit from the faces
    people make. Lower is better."""
    h = np.asarray(human, np.float64)[:, :NUM_BLENDSHAPES]
    r = np.asarray(readings, np.float64)[:, :NUM_BLENDSHAPES]
    if not len(r):
        return float('inf')
    squared = (h * h).sum(1)[:, None] - 2.0 * h @ r.T + (r * r).sum(1)[None, :]
    return float(np.maximum(squared.min(1), 0.0).mean() / NUM_BLENDSHAPES)
