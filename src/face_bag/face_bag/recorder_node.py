"""Recorder node: the face topics into a rosbag2 (MCAP) bag, crash-safe.

Messages are stored as the serialized bytes that arrived (no decode/encode per frame) with
their receive time as the bag's log time; each message keeps the human frame's stamp in its
header, so export can align input, command and response. Topic types come from the graph,
as `ros2 bag record` finds them. A write failure (disk full) stops the recording with an
ERROR in /diagnostics and a log line; what was written stays readable (face-bag-recover).
Topics are named relative to the recorder's namespace, and the bag stores them that way
(/hobbs/face/command, recorded under /hobbs, is /face/command in the bag), so a namespaced
pipeline's bag exports and replays like any other; a topic outside the namespace keeps its
full name.
"""
from datetime import datetime
import importlib
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor

from face_bag.store import FACE_TOPICS, BagError, BagWriter, typestore
from face_common import qos, topics
from face_common.node import ERROR, OK, WARN, FaceNode, publish_status, run_node


def ros_message_class(msgtype: str):
    """The rclpy class of 'pkg/msg/Name'."""
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


class RecorderNode(FaceNode):

    def __init__(self):
        super().__init__('recorder')
        self.declare_parameter('output', '', ParameterDescriptor(
            description='Bag folder to create; empty = bags/face_<date-time>.'))
        self.declare_parameter('topics', [topic.name for topic in topics.RECORDED],
                               ParameterDescriptor(
            description='Topics to record, relative to this namespace (types are found on '
                        'the graph).'))
        self.declare_parameter('flush_period_s', 1.0, ParameterDescriptor(
            description='Chunks reach the disk at least this often: what a crash can lose.'))
        self.declare_parameter('diagnostics_period_s', 1.0, ParameterDescriptor(
            description='Period of /diagnostics messages.'))
        output = self.get_parameter('output').value or \
            f'bags/face_{datetime.now().strftime("%Y%m%d_%H%M%S")}'
        try:
            self.writer = BagWriter(Path(output), self.get_parameter('flush_period_s').value)
        except (BagError, OSError) as exc:
            raise SystemExit(f'recorder: {exc}') from None
        self.wanted = list(self.get_parameter('topics').value)
        self.bag_names = {topic: self._bag_name(topic) for topic in self.wanted}
        self.counts = dict.fromkeys(self.bag_names.values(), 0)
        self.counters = {'messages': 0, 'write_errors': 0, 'unknown_types': 0}
        self._subscribed = {}
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        self._discover()
        self.create_timer(0.5, self._discover)
        self.create_timer(self.writer.flush_period_s, self._flush)
        self.create_timer(self.get_parameter('diagnostics_period_s').value,
                          self._publish_diagnostics)
        self.get_logger().info(f'recording {", ".join(self.wanted)} into {self.writer.path}')

    def _bag_name(self, topic: str) -> str:
        """The topic's name in the bag: its full name less this node's namespace."""
        full = self.resolve_topic_name(topic)
        namespace = self.get_namespace().rstrip('/')
        return full[len(namespace):] if namespace and full.startswith(namespace + '/') else full

    def _discover(self) -> None:
        """Subscribe to each wanted topic once its type is known (graph, else the face
        defaults)."""
        on_graph = dict(self.get_topic_names_and_types())
        for topic in self.wanted:
            if topic in self._subscribed:
                continue
            name = self.bag_names[topic]
            types = on_graph.get(self.resolve_topic_name(topic)) or \
                ([FACE_TOPICS[name]] if name in FACE_TOPICS else [])
            if not types:
                continue
            msgtype = types[0]
            if msgtype not in typestore().types:
                self.counters['unknown_types'] += 1
                self.get_logger().error(f'cannot record {topic}: type {msgtype} unknown to the '
                                        'bag type store')
                self._subscribed[topic] = None
                continue
            # Face streams are best effort; a best-effort subscription hears reliable
            # publishers too.
            self._subscribed[topic] = self.create_subscription(
                ros_message_class(msgtype), topic,
                lambda data, t=name, m=msgtype: self._on_message(t, m, data),
                qos.RECORD if name in FACE_TOPICS else 10, raw=True)

    def _on_message(self, topic: str, msgtype: str, data: bytes) -> None:
        if self.writer.failed:
            return
        try:
            self.writer.write(topic, msgtype, self.get_clock().now().nanoseconds, data)
        except BagError as exc:
            self.counters['write_errors'] += 1
            self.get_logger().error(str(exc))
            return
        self.counts[topic] += 1
        self.counters['messages'] += 1

    def _flush(self) -> None:
        try:
            self.writer.flush()
        except BagError as exc:
            self.counters['write_errors'] += 1
            self.get_logger().error(str(exc))

    def _publish_diagnostics(self) -> None:
        if self.writer.failed:
            level, message = ERROR, self.writer.failed
        elif self.counters['messages'] == 0:
            level, message = WARN, 'nothing received yet'
        else:
            level, message = OK, f'recording into {self.writer.path}'
        values = {'bag': str(self.writer.path), 'bytes': self.writer.bytes, **self.counters,
                  **{f'count {topic}': n for topic, n in self.counts.items()}}
        publish_status(self, self.diagnostics_pub, topics.STATUS_RECORDER, str(self.writer.path),
                       level, message, values)

    def destroy_node(self):
        try:
            self.writer.close()
            if not self.writer.failed:
                self.get_logger().info(f'closed {self.writer.path}: '
                                       f'{self.counters["messages"]} messages')
        except BagError as exc:
            self.get_logger().error(str(exc))
        super().destroy_node()


def main(args=None):
    run_node(RecorderNode, args)


if __name__ == '__main__':
    main()
