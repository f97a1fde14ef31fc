"""Draw a clear 2-D face from the 61 ARKit channels (wire order), for people to look at:
the human input and the robot's face side by side, demo videos, test artifacts.

Not photoreal: every blendshape moves a visible feature (lids, pupils, brows, mouth corners,
lips, jaw, cheeks, nose), and head rotation turns and tilts the whole face.
"""
import cv2
import numpy as np

from face_common.arkit import CHANNEL_INDEX

SKIN = {'human': (176, 198, 232), 'robot': (196, 204, 210)}
INK = (40, 40, 48)
MOUTH_INSIDE = (50, 40, 90)


def _v(values, name: str) -> float:
    return float(values[CHANNEL_INDEX[name.lower()]])


def draw_face(values, size: int = 320, style: str = 'human', label: str = '') -> np.ndarray:
    """Render one frame of 61 channels to a BGR image of size x size pixels."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    s = size / 320.0
    img = np.full((size, size, 3), 245, np.uint8)
    yaw, pitch, roll = _v(values, 'HeadYaw'), _v(values, 'HeadPitch'), _v(values, 'HeadRoll')
    cx = size / 2 + 90 * s * np.sin(yaw)
    cy = size / 2 + 10 * s - 70 * s * np.sin(pitch)

    def p(x, y):
        """Face-local point (x right, y down, in 320-px units) to image pixels."""
        c, si = np.cos(roll), np.sin(roll)
        xr, yr = x * c - y * si, x * si + y * c
        return int(round(cx + xr * s)), int(round(cy + yr * s))

    puff = _v(values, 'CheekPuff')
    axes = (int((105 + 14 * puff) * s), int(138 * s))
    cv2.ellipse(img, p(0, 0), axes, float(np.degrees(roll)), 0, 360, SKIN[style], -1,
                cv2.LINE_AA)
    cv2.ellipse(img, p(0, 0), axes, float(np.degrees(roll)), 0, 360, INK, 2, cv2.LINE_AA)
    if style == 'robot':       # seam lines of a robot skin
        cv2.line(img, p(-60, -120), p(-75, 100), (170, 176, 182), 1, cv2.LINE_AA)
        cv2.line(img, p(60, -120), p(75, 100), (170, 176, 182), 1, cv2.LINE_AA)

    for side, sign in (('Left', -1), ('Right', 1)):
        ex, ey = 42 * sign, -30
        # brows
        inner = _v(values, 'BrowInnerUp')
        down = _v(values, f'BrowDown{side}')
        outer = _v(values, f'BrowOuterUp{side}')
        brow = [p(ex - 22 * sign, ey - 28 - 16 * inner + 10 * down),
                p(ex, ey - 34 - 8 * inner - 6 * outer + 8 * down),
                p(ex + 24 * sign, ey - 26 - 16 * outer + 4 * down)]
        cv2.polylines(img, [np.array(brow)], False, INK, max(2, int(4 * s)), cv2.LINE_AA)
        # eye: openness from blink, wide and squint
        blink = _v(values, f'EyeBlink{side}')
        wide = _v(values, f'EyeWide{side}')
        squint = _v(values, f'EyeSquint{side}')
        open_ = np.clip(1.0 - blink + 0.5 * wide - 0.35 * squint, 0.05, 1.5)
        eye_axes = (int(20 * s), max(1, int(11 * open_ * s)))
        cv2.ellipse(img, p(ex, ey), eye_axes, float(np.degrees(roll)), 0, 360, (255, 255, 255),
                    -1, cv2.LINE_AA)
        look_x = (_v(values, f'EyeLookOut{side}') - _v(values, f'EyeLookIn{side}')) * sign
        look_x += np.sin(_v(values, f'{side}EyeYaw')) * 1.5
        look_y = _v(values, f'EyeLookDown{side}') - _v(values, f'EyeLookUp{side}')
        look_y -= np.sin(_v(values, f'{side}EyePitch')) * 1.5
        pupil = p(ex + 11 * np.clip(look_x, -1, 1), ey + 6 * np.clip(look_y, -1, 1) * open_)
        if open_ > 0.15:
            cv2.circle(img, pupil, max(1, int(6 * s * min(1.0, open_))), INK, -1, cv2.LINE_AA)
        cv2.ellipse(img, p(ex, ey), eye_axes, float(np.degrees(roll)), 0, 360, INK, 2,
                    cv2.LINE_AA)
        # cheek squint
        cheek = _v(values, f'CheekSquint{side}')
        if cheek > 0.05:
            cv2.ellipse(img, p(ex + 6 * sign, ey + 26), (int(16 * s), int(6 * s)), 0, 200, 340,
                        INK, 1 + int(2 * cheek), cv2.LINE_AA)
        # nose sneer wrinkles
        sneer = _v(values, f'NoseSneer{side}')
        if sneer > 0.05:
            for k in range(1 + int(3 * sneer)):
                cv2.line(img, p(10 * sign, -8 + 5 * k), p(20 * sign, -12 + 5 * k), INK, 1,
                         cv2.LINE_AA)

    # nose
    cv2.polylines(img, [np.array([p(0, -15), p(-9, 22), p(9, 22)])], False, INK, 2, cv2.LINE_AA)

    # mouth
    jaw = _v(values, 'JawOpen')
    shift = 14 * (_v(values, 'MouthRight') - _v(values, 'MouthLeft')) \
        + 10 * (_v(values, 'JawRight') - _v(values, 'JawLeft'))
    pucker = max(_v(values, 'MouthPucker'), _v(values, 'MouthFunnel'))
    mouth_y = 62 + 6 * _v(values, 'JawForward')
    corners = []
    for side, sign in (('Left', -1), ('Right', 1)):
        smile, frown = _v(values, f'MouthSmile{side}'), _v(values, f'MouthFrown{side}')
        stretch, dimple = _v(values, f'MouthStretch{side}'), _v(values, f'MouthDimple{side}')
        half = 36 + 10 * stretch + 8 * smile + 4 * dimple - 16 * pucker
        corners.append((shift + sign * half, mouth_y - 14 * smile + 12 * frown + 4 * jaw))
    upper_up = 0.5 * (_v(values, 'MouthUpperUpLeft') + _v(values, 'MouthUpperUpRight'))
    lower_down = 0.5 * (_v(values, 'MouthLowerDownLeft') + _v(values, 'MouthLowerDownRight'))
    close = _v(values, 'MouthClose')
    gap = np.clip(40 * jaw + 10 * lower_down + 6 * upper_up - 30 * close, 0, 60) \
        + 10 * _v(values, 'MouthFunnel')
    upper_y = mouth_y - 6 * upper_up - 3 * _v(values, 'MouthShrugUpper') \
        + 2 * _v(values, 'MouthRollUpper')
    lower_y = mouth_y + gap - 3 * _v(values, 'MouthRollLower') \
        - 4 * _v(values, 'MouthShrugLower')
    (lx, ly), (rx, ry) = corners
    top = [p(lx, ly), p(shift - 12, upper_y - 3), p(shift, upper_y), p(shift + 12, upper_y - 3),
           p(rx, ry)]
    bottom = [p(rx, ry), p(shift + 14, lower_y), p(shift, lower_y + 2), p(shift - 14, lower_y),
              p(lx, ly)]
    outline = np.array(top + bottom[1:-1])
    if gap > 2:
        cv2.fillPoly(img, [outline], MOUTH_INSIDE, cv2.LINE_AA)
        tongue = _v(values, 'TongueOut')
        if tongue > 0.1:
            cv2.ellipse(img, p(shift, lower_y), (int(14 * s), int((6 + 14 * tongue) * s)), 0,
                        0, 180, (90, 90, 210), -1, cv2.LINE_AA)
    lip = max(2, int(3 * s))
    cv2.polylines(img, [np.array(top)], False, (60, 60, 150), lip, cv2.LINE_AA)
    cv2.polylines(img, [np.array(bottom)], False, (60, 60, 150), lip, cv2.LINE_AA)

    if label:
        cv2.putText(img, label, (8, size - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * s, INK, 1,
                    cv2.LINE_AA)
    return img


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two renders next to each other with a thin divider."""
    divider = np.full((left.shape[0], 4, 3), 200, np.uint8)
    return np.hstack([left, divider, right])
