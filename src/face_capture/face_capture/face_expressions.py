"""ARKit channels from face landmarks: a documented geometric estimator (ROS-free).

Every expression is a ratio or offset of landmark distances, measured in a face frame (x
along the eye line towards the subject's left, y down the face, unit = distance between the
eye centres), so it does not change with the face's size, position or roll in the image.
Each channel compares one measure with the same measure on the performer's neutral face
(NEUTRAL_DEFAULTS until a neutral capture replaces them) and maps the change onto 0..1 by
the span of that measure between neutral and the full expression (SPANS, rough figures for
an adult face). "Left"/"right" are the subject's (ARKit's), so the subject's left eye is on
the image's right in an unmirrored camera image. Channels this geometry cannot measure
(cheek puff, tongue, jaw forward/sideways, ...) are in NOT_ESTIMATED and stay 0.
"""
import math

import numpy as np

from face_common.arkit import CHANNEL_INDEX, HEAD, LEFT_EYE, NUM_CHANNELS, RIGHT_EYE

# MediaPipe face mesh indices (subject's right = image left).
RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS = (33, 133), (362, 263)
RIGHT_LIDS = ((159, 145), (158, 153), (160, 144))
LEFT_LIDS = ((386, 374), (385, 380), (387, 373))
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
LIP_INNER_UPPER, LIP_INNER_LOWER = 13, 14
NOSE_TIP, CHIN = 1, 152
RIGHT_BROW_INNER, RIGHT_BROW_OUTER = 107, 70
LEFT_BROW_INNER, LEFT_BROW_OUTER = 336, 300
RIGHT_CHEEK, LEFT_CHEEK, FOREHEAD = 234, 454, 10

FEATURES = (
    'eye_open_right', 'eye_open_left', 'lip_gap', 'nose_chin', 'mouth_width',
    'corner_lift_right', 'corner_lift_left', 'brow_inner_right', 'brow_inner_left',
    'brow_outer_right', 'brow_outer_left', 'gaze_x_right', 'gaze_y_right', 'gaze_x_left',
    'gaze_y_left', 'head_yaw', 'head_pitch', 'head_roll')
F = {name: i for i, name in enumerate(FEATURES)}

# Neutral values until a neutral capture replaces them: measured on a neutral portrait
# (matplotlib's grace_hopper.jpg), rounded. The iris sits a little above and nose-wards of
# the middle of the eye corners when looking straight ahead.
NEUTRAL_DEFAULTS = np.array([
    0.27, 0.27, 0.01, 1.0, 0.83, 0.012, 0.012, 0.30, 0.30, 0.20, 0.20, 0.06, -0.07, -0.06,
    -0.07, 0.0, 0.0, 0.0])

# Change from neutral that means a full (1.0) expression.
SPANS = {
    'blink': 0.75,          # eye opening falls to 25 % of neutral
    'wide': 0.35,           # eye opening 35 % above neutral
    'jaw': 0.30,            # nose-chin distance 30 % longer
    'smile': 0.10,          # mouth corner 0.1 eye-distance above neutral
    'frown': 0.08,
    'narrow': 0.25,         # mouth 25 % narrower (pucker, funnel)
    'funnel_gap': 0.12,     # lips apart by 0.12 eye-distance while narrow
    'brow_up': 0.25,        # brow 25 % further above the eye
    'brow_down': 0.20,
    'gaze': 0.12,           # iris off the eye's centre by 12 % of the eye's width
}
GAZE_RADIANS = math.radians(30.0)   # eye rotation at a full gaze channel

ESTIMATED = (
    'EyeBlinkLeft', 'EyeBlinkRight', 'EyeWideLeft', 'EyeWideRight', 'JawOpen',
    'MouthSmileLeft', 'MouthSmileRight', 'MouthFrownLeft', 'MouthFrownRight', 'MouthPucker',
    'MouthFunnel', 'BrowInnerUp', 'BrowDownLeft', 'BrowDownRight', 'BrowOuterUpLeft',
    'BrowOuterUpRight', 'EyeLookInLeft', 'EyeLookOutLeft', 'EyeLookUpLeft', 'EyeLookDownLeft',
    'EyeLookInRight', 'EyeLookOutRight', 'EyeLookUpRight', 'EyeLookDownRight',
    'HeadYaw', 'HeadPitch', 'HeadRoll', 'LeftEyeYaw', 'LeftEyePitch', 'RightEyeYaw',
    'RightEyePitch')
NOT_ESTIMATED = tuple(
    name for name in (
        'EyeSquintLeft', 'EyeSquintRight', 'JawForward', 'JawLeft', 'JawRight', 'MouthClose',
        'MouthLeft', 'MouthRight', 'MouthDimpleLeft', 'MouthDimpleRight', 'MouthStretchLeft',
        'MouthStretchRight', 'MouthRollLower', 'MouthRollUpper', 'MouthShrugLower',
        'MouthShrugUpper', 'MouthPressLeft', 'MouthPressRight', 'MouthLowerDownLeft',
        'MouthLowerDownRight', 'MouthUpperUpLeft', 'MouthUpperUpRight', 'CheekPuff',
        'CheekSquintLeft', 'CheekSquintRight', 'NoseSneerLeft', 'NoseSneerRight', 'TongueOut',
        'LeftEyeRoll', 'RightEyeRoll'))


def face_features(landmarks: np.ndarray, irises: np.ndarray) -> np.ndarray:
    """The FEATURES of one face: landmarks (468, 3) and irises (2, 5, 3) in image pixels."""
    points = landmarks[:, :2]
    right_eye = points[list(RIGHT_EYE_CORNERS)].mean(axis=0)
    left_eye = points[list(LEFT_EYE_CORNERS)].mean(axis=0)
    across = left_eye - right_eye
    unit = float(np.hypot(*across))
    if not unit > 1e-6:
        raise ValueError('degenerate landmarks (eyes coincide)')
    x_axis = across / unit
    y_axis = np.array([-x_axis[1], x_axis[0]])               # down the face
    eye_line = (right_eye + left_eye) / 2

    def along(point_a, point_b=None, axis=y_axis):
        delta = point_a - (eye_line if point_b is None else point_b)
        return float(delta @ axis) / unit

    def distance(i, j):
        return float(np.hypot(*(points[i] - points[j]))) / unit

    def eye_open(lids, corners):
        return float(np.mean([distance(a, b) for a, b in lids])) / max(distance(*corners), 1e-6)

    def gaze(iris, corners):
        centre = points[list(corners)].mean(axis=0)
        width = max(distance(*corners), 1e-6)
        return along(iris[0, :2], centre, x_axis) / width, along(iris[0, :2], centre) / width

    lip_centre = points[[LIP_INNER_UPPER, LIP_INNER_LOWER]].mean(axis=0)
    gaze_right = gaze(irises[0], RIGHT_EYE_CORNERS)
    gaze_left = gaze(irises[1], LEFT_EYE_CORNERS)
    # Head pose from the mesh's depth: the cheek line turning in depth is yaw, the
    # forehead-chin line pitch, the eye line in the image roll.
    cheeks = landmarks[LEFT_CHEEK] - landmarks[RIGHT_CHEEK]
    vertical = landmarks[CHIN] - landmarks[FOREHEAD]
    yaw = math.atan2(float(cheeks[2]), float(np.hypot(cheeks[0], cheeks[1])))
    pitch = math.atan2(-float(vertical[2]), float(np.hypot(vertical[0], vertical[1])))
    roll = math.atan2(float(x_axis[1]), float(x_axis[0]))
    return np.array([
        eye_open(RIGHT_LIDS, RIGHT_EYE_CORNERS), eye_open(LEFT_LIDS, LEFT_EYE_CORNERS),
        distance(LIP_INNER_UPPER, LIP_INNER_LOWER), distance(NOSE_TIP, CHIN),
        distance(MOUTH_RIGHT, MOUTH_LEFT),
        along(lip_centre, points[MOUTH_RIGHT]), along(lip_centre, points[MOUTH_LEFT]),
        -along(points[RIGHT_BROW_INNER], right_eye), -along(points[LEFT_BROW_INNER], left_eye),
        -along(points[RIGHT_BROW_OUTER], right_eye), -along(points[LEFT_BROW_OUTER], left_eye),
        *gaze_right, *gaze_left, yaw, pitch, roll])


def _ramp(change, span):
    return float(np.clip(change / span, 0.0, 1.0))


class ExpressionEstimator:
    """Features -> 61 wire-order channels, relative to the performer's neutral features."""

    def __init__(self, neutral=None):
        self.neutral = NEUTRAL_DEFAULTS.copy()
        if neutral is not None:
            self.set_neutral(neutral)

    def set_neutral(self, neutral) -> None:
        neutral = np.asarray(neutral, dtype=np.float64)
        if neutral.shape != NEUTRAL_DEFAULTS.shape or not np.isfinite(neutral).all():
            raise ValueError(f'neutral features must be {len(FEATURES)} finite numbers')
        self.neutral = neutral

    def channels(self, features: np.ndarray) -> np.ndarray:
        n, f = self.neutral, features
        out = np.zeros(NUM_CHANNELS, np.float32)

        def put(name, value):
            out[CHANNEL_INDEX[name.lower()]] = value

        for side in ('Right', 'Left'):
            key = side.lower()
            opening = f[F['eye_open_' + key]] / max(n[F['eye_open_' + key]], 1e-6)
            put('EyeBlink' + side, _ramp(1.0 - opening, SPANS['blink']))
            put('EyeWide' + side, _ramp(opening - 1.0, SPANS['wide']))
            lift = f[F['corner_lift_' + key]] - n[F['corner_lift_' + key]]
            put('MouthSmile' + side, _ramp(lift, SPANS['smile']))
            put('MouthFrown' + side, _ramp(-lift, SPANS['frown']))
            inner = f[F['brow_inner_' + key]] / max(n[F['brow_inner_' + key]], 1e-6)
            outer = f[F['brow_outer_' + key]] / max(n[F['brow_outer_' + key]], 1e-6)
            put('BrowDown' + side, _ramp(1.0 - inner, SPANS['brow_down']))
            put('BrowOuterUp' + side, _ramp(outer - 1.0, SPANS['brow_up']))
            # Gaze: x grows towards the subject's left; "in" is towards the nose.
            gaze_x = (f[F['gaze_x_' + key]] - n[F['gaze_x_' + key]]) / SPANS['gaze']
            gaze_y = (f[F['gaze_y_' + key]] - n[F['gaze_y_' + key]]) / SPANS['gaze']
            towards_nose = -gaze_x if side == 'Left' else gaze_x
            put('EyeLookIn' + side, float(np.clip(towards_nose, 0, 1)))
            put('EyeLookOut' + side, float(np.clip(-towards_nose, 0, 1)))
            put('EyeLookDown' + side, float(np.clip(gaze_y, 0, 1)))
            put('EyeLookUp' + side, float(np.clip(-gaze_y, 0, 1)))
            eye = LEFT_EYE if side == 'Left' else RIGHT_EYE
            out[eye.start] = float(np.clip(gaze_x, -1, 1)) * GAZE_RADIANS
            out[eye.start + 1] = float(np.clip(-gaze_y, -1, 1)) * GAZE_RADIANS
        inner_up = (f[F['brow_inner_right']] / max(n[F['brow_inner_right']], 1e-6)
                    + f[F['brow_inner_left']] / max(n[F['brow_inner_left']], 1e-6)) / 2
        put('BrowInnerUp', _ramp(inner_up - 1.0, SPANS['brow_up']))
        put('JawOpen', _ramp(f[F['nose_chin']] / max(n[F['nose_chin']], 1e-6) - 1.0,
                             SPANS['jaw']))
        narrow = _ramp(1.0 - f[F['mouth_width']] / max(n[F['mouth_width']], 1e-6),
                       SPANS['narrow'])
        apart = _ramp(f[F['lip_gap']] - n[F['lip_gap']], SPANS['funnel_gap'])
        put('MouthFunnel', narrow * apart)
        put('MouthPucker', narrow * (1.0 - apart))
        out[HEAD] = [f[F['head_yaw']], f[F['head_pitch']], f[F['head_roll']]]
        return out
