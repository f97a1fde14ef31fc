"""The project's QoS profiles, in one place so every node chooses them the same way.

- Live streams (blendshapes, commands, images, traces): best effort, keep last, small depth.
  A late face frame is worth less than the next one; retransmitting it only adds latency.
Commands that must not be lost (neutral capture, e-stop) are services, not topics.
"""
from rclpy.qos import (
                       DurabilityPolicy,
                       HistoryPolicy,
                       QoSProfile,
                       ReliabilityPolicy,
                       qos_profile_system_default,
)

LIVE_STREAM_DEPTH = 2

LIVE_STREAM = QoSProfile(
    reliability=ReliabilityPolicy.BEST_EFFORT,
    history=HistoryPolicy.KEEP_LAST,
    depth=LIVE_STREAM_DEPTH,
    durability=DurabilityPolicy.VOLATILE,
)

# Per-frame latency traces: best effort like the streams, deeper so bursts from three nodes
# are not lost before the joiner reads them.
TRACE = QoSProfile(
    reliability=ReliabilityPolicy.BEST_EFFORT,
    history=HistoryPolicy.KEEP_LAST,
    depth=50,
    durability=DurabilityPolicy.VOLATILE,
)

# The recorder: best effort (hears every publisher), and a queue deep enough that a writer
# scheduled late (the pipeline runs at real-time priority, the recorder does not) loses none of
# a burst: with depth 2 it lost ~3 % of the traces, three of which arrive per frame.
RECORD = QoSProfile(
    reliability=ReliabilityPolicy.BEST_EFFORT,
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    durability=DurabilityPolicy.VOLATILE,
)

# /diagnostics follows the ROS convention (reliable, volatile) so rqt_robot_monitor sees it.
DIAGNOSTICS = qos_profile_system_default


def of(topic) -> QoSProfile:
    """The profile a face_common.topics entry names (what its publishers use)."""
    return globals()[topic.qos]
