"""Face messages as rosbags objects, for writing bags without rclpy (offline twin sessions,
tests); the same fields face_common.messages fills for rclpy."""
import numpy as np

from face_bag.store import message_class
from face_common.arkit import BLENDSHAPE_NAMES, HEAD, LEFT_EYE, NUM_BLENDSHAPES, RIGHT_EYE

BLENDSHAPES = 'face_msgs/msg/Blendshapes'
CONTROL_VALUES = 'face_msgs/msg/ControlValues'
_NAMES = list(BLENDSHAPE_NAMES)


def header(stamp_ns: int, frame_id: str = ''):
    sec, nanosec = divmod(int(stamp_ns), 10**9)
    return message_class('std_msgs/msg/Header')(
        stamp=message_class('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec),
        frame_id=frame_id)


def blendshapes(values, stamp_ns: int, *, source: str, subject: str = '',
                frame_number: int = 0):
    values = np.asarray(values, np.float32)
    weights = values[:NUM_BLENDSHAPES].copy()
    return message_class(BLENDSHAPES)(
        header=header(stamp_ns), subject=subject, source=source, device_id='',
        frame_number=int(frame_number), face_tracked=True, names=_NAMES, weights=weights,
        raw_weights=weights, calibrated=False, calibration_profile='',
        head_rotation=values[HEAD].copy(), left_eye_rotation=values[LEFT_EYE].copy(),
        right_eye_rotation=values[RIGHT_EYE].copy())


def control_values(values, names, stamp_ns: int, *, robot: str, source: str,
                   frame_id: str = 'command'):
    return message_class(CONTROL_VALUES)(
        header=header(stamp_ns, frame_id), robot_id=robot, source=source,
        motor_names=list(names), values=np.asarray(values, np.float32))
