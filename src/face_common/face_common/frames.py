"""Face frames from Blendshapes messages, pure: the same 61 wire-order values whichever
library made the message (rclpy on the live graph, rosbags when a bag is read offline), so
bag tools and tests need no ROS install."""
import numpy as np

from face_common.arkit import BLENDSHAPE_NAMES, HEAD, LEFT_EYE, NUM_CHANNELS, RIGHT_EYE


def blendshapes_to_array(msg, index_cache: dict | None = None):
    """61 wire-order values from a Blendshapes message, matching channels by name; None when
    the message is unusable (no face, lengths that disagree, non-finite values)."""
    if not msg.face_tracked or len(msg.names) != len(msg.weights):
        return None
    names = tuple(msg.names)
    cache = index_cache if index_cache is not None else {}
    order = cache.get(names)
    if order is None:
        lookup = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
        order = cache[names] = np.array([lookup.get(n, -1) for n in names])
    values = np.zeros(NUM_CHANNELS, np.float32)
    weights = np.asarray(msg.weights, np.float32)
    known = order >= 0
    values[order[known]] = weights[known]
    values[HEAD] = msg.head_rotation
    values[LEFT_EYE] = msg.left_eye_rotation
    values[RIGHT_EYE] = msg.right_eye_rotation
    if not np.isfinite(values).all():
        return None
    return values
