"""Build the project's rclpy messages from arrays, in one place (every node fills them the
same). ROS glue: the pure reading side (message -> 61 values) is face_common.frames."""
import numpy as np

from face_common.arkit import BLENDSHAPE_NAMES, HEAD, LEFT_EYE, NUM_BLENDSHAPES, RIGHT_EYE
from face_common.frames import blendshapes_to_array
from face_msgs.msg import Blendshapes, ControlValues, LatencyTrace, StageTiming

_NAMES = list(BLENDSHAPE_NAMES)
# nodes read frames through here too, so one import serves a node's both directions
__all__ = ['blendshapes_msg', 'blendshapes_to_array', 'control_values_msg', 'latency_msg']


def blendshapes_msg(values, stamp, *, source: str, subject: str = '', frame_id: str = '',
                    device_id: str = '', frame_number: int = 0, raw=None,
                    profile: str = '') -> Blendshapes:
    """A tracked face frame from 61 wire-order values (raw: the uncalibrated ones)."""
    values = np.asarray(values, dtype=np.float32)
    msg = Blendshapes()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.subject = subject
    msg.source = source
    msg.device_id = device_id
    msg.frame_number = int(frame_number)
    msg.face_tracked = True
    msg.names = _NAMES
    msg.weights = values[:NUM_BLENDSHAPES].tolist()
    msg.raw_weights = (values if raw is None else np.asarray(raw, np.float32))[
        :NUM_BLENDSHAPES].tolist()
    msg.calibrated = bool(profile)
    msg.calibration_profile = profile
    msg.head_rotation = values[HEAD].tolist()
    msg.left_eye_rotation = values[LEFT_EYE].tolist()
    msg.right_eye_rotation = values[RIGHT_EYE].tolist()
    return msg


def control_values_msg(values, names, stamp, *, robot: str, source: str,
                       frame_id: str = 'command') -> ControlValues:
    msg = ControlValues()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.robot_id = robot
    msg.source = source
    msg.motor_names = list(names)
    msg.values = np.asarray(values, np.float32).tolist()
    return msg


def latency_msg(stamp, frame_number: int, node: str, stages) -> LatencyTrace:
    """One node's stage timings for one human frame: stages = [(name, start_ns, ms)]."""
    msg = LatencyTrace()
    msg.header.stamp = stamp
    msg.frame_number = int(frame_number)
    for name, start_ns, duration_ms in stages:
        timing = StageTiming(stage=name, node=node, duration_ms=float(duration_ms))
        timing.start.sec, timing.start.nanosec = divmod(int(start_ns), 10**9)
        msg.stages.append(timing)
    return msg

