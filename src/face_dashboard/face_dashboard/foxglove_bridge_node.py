"""Foxglove bridge node: the live pipeline in Foxglove without a ROS install.

A Foxglove WebSocket server (the official foxglove-sdk and its WebSocket protocol) on
ws://127.0.0.1:8765 by default. Each face topic becomes a channel with its ROS 2 message
definition (ros2msg schema, generated from the same .msg files the bags embed) and its
messages are forwarded as the CDR bytes rclpy received, so Foxglove decodes them exactly as it
decodes the bags. Subscriptions take serialized messages (no Python message objects) and are
best effort, which hears both best-effort and reliable publishers.
"""
import importlib

from diagnostic_msgs.msg import DiagnosticArray
import foxglove
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from face_bag.store import typestore
from face_common import qos, topics
from face_common.node import OK, FaceNode, publish_status, run_node

# What Foxglove shows: the bag's face topics, plus the twin's rendered face, the joined
# latency traces and their summary, and the nodes' health. Relative names: a bridge started in
# a robot's namespace serves that robot's pipeline.
SERVED_TOPICS = {topic.name: topic.msgtype for topic in (
    *topics.RECORDED, topics.ROBOT_IMAGE, topics.LATENCY_FRAMES, topics.LATENCY_SUMMARY,
    topics.DIAGNOSTICS)}
PARAMETERS = (
    ('host', '127.0.0.1', 'Address the WebSocket server listens on (0.0.0.0: every interface).'),
    ('port', 8765, 'WebSocket port (0: any free port, logged).'),
    ('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.'),
)
HEARS_EVERY_PUBLISHER = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                                   history=HistoryPolicy.KEEP_LAST, depth=10,
                                   durability=DurabilityPolicy.VOLATILE)


def message_class(msgtype: str):
    """The rclpy class of 'pkg/msg/Name'."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def ros2msg_schema(msgtype: str) -> foxglove.Schema:
    """The message definition with its dependencies, as rosbag2 writes it into MCAP."""
    definition, _ = typestore().generate_msgdef(msgtype, ros_version=2)
    return foxglove.Schema(name=msgtype, encoding='ros2msg', data=definition.encode())


class FoxgloveBridgeNode(FaceNode):

    def __init__(self):
        super().__init__('foxglove_bridge')
        for name, default, description in PARAMETERS:
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        host, port = self.get_parameter('host').value, self.get_parameter('port').value
        try:
            self.server = foxglove.start_server(name='face shadowing', host=host, port=port)
        except (RuntimeError, OverflowError, TypeError) as exc:   # port taken, bad address
            raise SystemExit(f'foxglove_bridge: cannot serve on {host}:{port}: {exc}') from None
        self.url = f'ws://{self.get_parameter("host").value}:{self.server.port}'
        self.forwarded = dict.fromkeys(SERVED_TOPICS, 0)
        for topic, msgtype in SERVED_TOPICS.items():
            channel = foxglove.Channel(self.resolve_topic_name(topic),
                                       schema=ros2msg_schema(msgtype), message_encoding='cdr')
            self.create_subscription(message_class(msgtype), topic,
                                     self._forwarder(topic, channel), HEARS_EVERY_PUBLISHER,
                                     raw=True)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        self.create_timer(self.get_parameter('diagnostics_period_s').value,
                          self._publish_diagnostics)
        self.get_logger().info(f'Foxglove WebSocket server at {self.url} '
                               f'({len(SERVED_TOPICS)} topics)')

    def _forwarder(self, topic: str, channel: foxglove.Channel):
        def forward(data: bytes) -> None:
            channel.log(data, log_time=self.get_clock().now().nanoseconds)
            self.forwarded[topic] += 1
        return forward

    def _publish_diagnostics(self) -> None:
        publish_status(self, self.diagnostics_pub, topics.STATUS_FOXGLOVE, self.url, OK,
                       f'serving {self.url}',
                       {'url': self.url, **{f'forwarded {t}': n
                                            for t, n in self.forwarded.items()}})

    def destroy_node(self):
        self.server.stop()
        super().destroy_node()


def main(args=None):
    run_node(FoxgloveBridgeNode, args)


if __name__ == '__main__':
    main()
