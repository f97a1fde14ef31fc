"""The bootstrap's robot on the ROS graph: a running actuation node (real hardware, or a twin
in real time) driven through face/command, its response recorded into a bag. Names are the
topic table's, relative: a bootstrap node started in a robot's namespace drives that robot.

One command goes out per frame on an absolute schedule; face/robot/applied and
face/robot/blendshapes (the twin's forward model, or a tracker facing the real face) are
recorded as they arrive with their receive times, the human frames and commands as sent.
"""
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message

from face_bag import messages
from face_bag.export import COMMAND, HUMAN
from face_bag.store import BagWriter
from face_common import qos, topics
from face_common.messages import control_values_msg
from face_common.pacing import paced
from face_msgs.msg import Blendshapes, ControlValues

RESPONSE_TOPICS = {topics.ROBOT_APPLIED: ControlValues, topics.ROBOT_BLENDSHAPES: Blendshapes}
# A robot silent this long (beyond the settle time) at the end of a recording has stopped: an
# actuation node answers every control tick (at 1 Hz, once a second)
STOPPED_AFTER_S = 2.0


class LiveRobot:

    def __init__(self, profile, rate: float = 30.0, settle_s: float = 0.5, context=None):
        self.profile = profile
        self.rate = rate
        self.settle_s = settle_s
        self.name = f'{profile.name} on the ROS graph ({topics.COMMAND.name})'
        self._own_context = context is None
        self.context = context or rclpy.Context()
        if self._own_context:
            rclpy.init(context=self.context)
        self.node = rclpy.create_node('bootstrap_robot', context=self.context)
        self.publisher = self.node.create_publisher(ControlValues, topics.COMMAND.name,
                                                    qos.LIVE_STREAM)
        self._writer = None
        self._lock = threading.Lock()
        self.received = {topic.name: 0 for topic in RESPONSE_TOPICS}
        self._last_response = -float('inf')       # time.monotonic() of the newest response
        for topic, cls in RESPONSE_TOPICS.items():
            self.node.create_subscription(
                cls, topic.name, lambda data, t=topic: self._on_response(t, data),
                qos.LIVE_STREAM, raw=True)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while self._spinning and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _now(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _on_response(self, topic, data: bytes) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.write(topic.bag_name, topic.msgtype, self._now(), data)
                self.received[topic.name] += 1
                self._last_response = time.monotonic()

    def wait_for_robot(self, timeout_s: float = 15.0) -> None:
        """Block until an actuation node listens on face/command and publishes its response
        topics: commands sent before discovery would be lost and the bag's start empty."""
        deadline = time.monotonic() + timeout_s
        while not self._connected():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f'no actuation node on the ROS graph after {timeout_s:.0f} s: nothing '
                    f'subscribes {topics.COMMAND.name} or publishes '
                    f'{", ".join(t.name for t in RESPONSE_TOPICS)} (is face_actuation running?)')
            time.sleep(0.05)

    def _connected(self) -> bool:
        return (self.node.count_subscribers(topics.COMMAND.name) > 0
                and all(self.node.count_publishers(t.name) > 0 for t in RESPONSE_TOPICS))

    def record(self, commands, bag, human=None, source: str = ''):
        self.wait_for_robot()
        writer = BagWriter(bag)
        with self._lock:
            self._writer = writer
        names, robot = self.profile.motor_names, self.profile.name
        try:
            for i, _ in paced([k / self.rate for k in range(len(commands))]):
                command = commands[i]
                now = self.node.get_clock().now()
                msg = control_values_msg(command, names, now.to_msg(), robot=robot,
                                         source=source)
                self.publisher.publish(msg)
                with self._lock:
                    stamp = now.nanoseconds
                    if human is not None:
                        writer.write_message(HUMAN, messages.BLENDSHAPES,
                                             stamp, messages.blendshapes(
                                                 human[i], stamp, source=source,
                                                 frame_number=i))
                    writer.write(COMMAND, messages.CONTROL_VALUES, stamp,
                                 serialize_message(msg))
            time.sleep(self.settle_s)            # the last responses
        finally:
            with self._lock:
                self._writer = None
                silent_s = time.monotonic() - self._last_response
            writer.close()
        if silent_s > self.settle_s + STOPPED_AFTER_S:
            raise RuntimeError(
                f'{self.name} stopped answering during the recording (nothing on '
                f'{", ".join(t.name for t in RESPONSE_TOPICS)} for the last {silent_s:.1f} s '
                f'of {bag}): did the robot process stop?')
        return bag

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        if self._own_context:
            self.context.try_shutdown()
