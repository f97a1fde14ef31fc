"""The project's topics, services and status names, in one table (ROS-free).

Every name is relative, so a node started in a namespace (`namespace:` or
`push_ros_namespace` in a launch file, `-r __ns:=/hobbs`) moves with its whole pipeline:
`face/command` is /face/command at the root and /hobbs/face/command under /hobbs. The one
exception is /diagnostics, absolute by ROS convention (rqt_robot_monitor listens there); a
namespaced node's status names carry its namespace instead (face_common.node.publish_status).
A bag stores each topic under its name relative to the recorder's namespace with a leading
'/', as `ros2 bag record` would at the root; the player publishes it back relative to its own.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str          # relative (resolved in the node's namespace), except /diagnostics
    msgtype: str       # ROS type name, also the bag's ('face_msgs/msg/Blendshapes')
    qos: str           # the face_common.qos profile publishers use
    purpose: str

    @property
    def bag_name(self) -> str:
        """The name in a bag recorded in the pipeline's namespace."""
        return '/' + self.name.lstrip('/')


@dataclass(frozen=True)
class Service:
    name: str
    srvtype: str
    purpose: str


BLENDSHAPES, CONTROL_VALUES, TRACE = ('face_msgs/msg/Blendshapes', 'face_msgs/msg/ControlValues',
                                      'face_msgs/msg/LatencyTrace')
# One line a topic: name, type, the publishers' QoS, what it carries.
HUMAN_BLENDSHAPES = Topic('face/human/blendshapes', BLENDSHAPES, 'LIVE_STREAM',
                          "the performer's face, calibrated (receiver or take player)")
HUMAN_IMAGE = Topic('face/human/image', 'sensor_msgs/msg/Image', 'LIVE_STREAM',
                    "the performer's camera (camera node, HTTP stream endpoint)")
HUMAN_IMAGE_COMPRESSED = Topic('face/human/image/compressed', 'sensor_msgs/msg/CompressedImage',
                               'LIVE_STREAM', 'the same frames as JPEG (remote viewers, bags)')
COMMAND = Topic('face/command', CONTROL_VALUES, 'LIVE_STREAM', 'retarget model -> motors')
ROBOT_APPLIED = Topic('face/robot/applied', CONTROL_VALUES, 'LIVE_STREAM', 'what safety passed')
ROBOT_BLENDSHAPES = Topic('face/robot/blendshapes', BLENDSHAPES, 'LIVE_STREAM', "the twin's face")
ROBOT_IMAGE = Topic('face/robot/image', 'sensor_msgs/msg/Image', 'LIVE_STREAM', 'twin rendering')
LATENCY = Topic('face/latency', TRACE, 'TRACE', "each node's per-frame stage timings")
LATENCY_FRAMES = Topic('face/latency/frames', TRACE, 'TRACE', 'joined traces, with end-to-end')
LATENCY_SUMMARY = Topic('face/latency/summary', 'face_msgs/msg/LatencySummary', 'DIAGNOSTICS',
                        'per-stage percentiles and histograms, once a second')
DIAGNOSTICS = Topic('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', 'DIAGNOSTICS',
                    "every node's health, key/values for rqt")

TOPICS = (HUMAN_BLENDSHAPES, HUMAN_IMAGE, HUMAN_IMAGE_COMPRESSED, COMMAND, ROBOT_APPLIED,
          ROBOT_BLENDSHAPES, ROBOT_IMAGE, LATENCY, LATENCY_FRAMES, LATENCY_SUMMARY, DIAGNOSTICS)
# What a session bag holds (the recorder's default, the exporter's and session report's input).
RECORDED = (HUMAN_BLENDSHAPES, COMMAND, ROBOT_APPLIED, ROBOT_BLENDSHAPES, LATENCY)

CAPTURE_NEUTRAL = Service('face/human/capture_neutral', 'face_msgs/srv/CaptureNeutral',
                          "record the performer's neutral face and make it active")
SELECT_CALIBRATION = Service('face/human/select_calibration', 'face_msgs/srv/SelectCalibration',
                             'make a saved neutral profile active')
RESET_CALIBRATION = Service('face/human/reset_calibration', 'std_srvs/srv/Trigger',
                            'follow raw blendshapes (no neutral)')
ACTUATION_SERVICES = ('estop', 'reset', 'resume', 'enable', 'go_to_neutral')


def actuation_service(name: str) -> Service:
    """face/actuation/<name>: the e-stop and its recovery (see the actuation node)."""
    if name not in ACTUATION_SERVICES:
        raise ValueError(f'no actuation service {name!r}')
    return Service(f'face/actuation/{name}', 'std_srvs/srv/Trigger', f'actuation: {name}')


# Diagnostic status names read by other packages (dashboard, terminal monitor, tests).
STATUS_LATENCY = 'face_dashboard: latency'
STATUS_ACTUATION = 'face_actuation: actuation'
STATUS_RETARGET = 'face_retarget: retarget'
STATUS_RECORDER = 'face_bag: recorder'
STATUS_PLAYER = 'face_bag: player'
STATUS_DASHBOARD = 'face_dashboard: dashboard'
STATUS_FOXGLOVE = 'face_dashboard: foxglove'


def namespaced_status(namespace: str, name: str) -> str:
    """A status name as a node in `namespace` publishes it ('hobbs/face_actuation: ...')."""
    namespace = namespace.strip('/')
    return f'{namespace}/{name}' if namespace else name
