"""Player node: replays a bag onto its topics with the original timing (rate factor, loop,
start offset), publishing the recorded bytes unchanged (header stamps included) on the
project's QoS. With restamp, each header stamp becomes the replay time less the latency the
message had when recorded, so the nodes downstream see fresh frames (they drop stale ones).
Each bag topic is published relative to the player's namespace (see the recorder)."""
from dataclasses import replace
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor

from face_bag.play import load, play
from face_bag.recorder_node import ros_message_class
from face_bag.store import FACE_TOPICS, BagError, serialize
from face_common import qos, topics
from face_common.node import OK, WARN, FaceNode, publish_status, run_node, start_publishing_thread


class PlayerNode(FaceNode):

    def __init__(self):
        super().__init__('player')
        self.declare_parameter('bag', '', ParameterDescriptor(description='Bag folder to play.'))
        self.declare_parameter('topics', [''], ParameterDescriptor(
            description='Topics to play; [""] = all of them.'))
        self.declare_parameter('rate', 1.0, ParameterDescriptor(
            description='Playback speed factor (1.0 = original timing).',
            floating_point_range=[FloatingPointRange(from_value=0.01, to_value=100.0)]))
        self.declare_parameter('loop', False, ParameterDescriptor(description='Start over.'))
        self.declare_parameter('start_s', 0.0, ParameterDescriptor(
            description='Seconds into the bag to start from.'))
        self.declare_parameter('wait_for_subscribers_s', 0.0, ParameterDescriptor(
            description='Before playing, wait up to this long until every topic has a '
                        'subscriber (0: start at once).'))
        self.declare_parameter('restamp', True, ParameterDescriptor(
            description='Shift header stamps to replay time (live-looking frames).'))
        wanted = [t for t in self.get_parameter('topics').value if t] or None
        path = self.get_parameter('bag').value
        try:
            self.messages = load(path, wanted, self.get_parameter('start_s').value)
        except (BagError, OSError) as exc:
            raise SystemExit(f'player: cannot play {path!r}: {exc}') from None
        self.restamp = bool(self.get_parameter('restamp').value)
        self.publishers_ = {}
        for message in self.messages:
            if message.topic not in self.publishers_:
                self.publishers_[message.topic] = self.create_publisher(
                    ros_message_class(message.msgtype), message.topic.lstrip('/'),
                    qos.LIVE_STREAM if message.topic in FACE_TOPICS else 10)
        self.counters = {'published': 0, 'loops': 0, 'messages_in_bag': len(self.messages)}
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f'playing {len(self.messages)} messages of {path} on '
                               f'{", ".join(self.publishers_)}')
        self.finished = threading.Event()
        self._running = True
        self._thread = start_publishing_thread(self, self._play, 'player')

    def _publish(self, message) -> None:
        data = message.data
        if message is self.messages[0] and self.counters['published']:
            self.counters['loops'] += 1
        if self.restamp:
            decoded = message.decode()           # decoded once, by load()
            header = getattr(decoded, 'header', None)
            if header is not None:
                # Now, less the latency the message had when it was recorded; on copies, so
                # the loaded message keeps its recorded stamp for the next loop.
                recorded_age = message.timestamp_ns - (header.stamp.sec * 10**9 +
                                                       header.stamp.nanosec)
                stamp_ns = self.get_clock().now().nanoseconds - max(0, recorded_age)
                sec, nanosec = divmod(stamp_ns, 10**9)
                stamp = replace(header.stamp, sec=sec, nanosec=nanosec)
                data = serialize(replace(decoded, header=replace(header, stamp=stamp)),
                                 message.msgtype)
        self.publishers_[message.topic].publish(data)
        self.counters['published'] += 1

    def _play(self) -> None:
        deadline = time.monotonic() + float(self.get_parameter('wait_for_subscribers_s').value)
        while self._running and time.monotonic() < deadline and not all(
                publisher.get_subscription_count() for publisher in self.publishers_.values()):
            time.sleep(0.05)
        if self.get_parameter('wait_for_subscribers_s').value > 0:
            time.sleep(0.3)         # discovery is two-sided: let the subscriber's side match
        play(self.messages, self._publish, float(self.get_parameter('rate').value),
             bool(self.get_parameter('loop').value), running=lambda: self._running)
        self.finished.set()
        self.get_logger().info(f'finished: {self.counters["published"]} messages published')

    def _publish_diagnostics(self) -> None:
        level, message = (OK, 'finished') if self.finished.is_set() else (OK, 'playing')
        if not self.messages:
            level, message = WARN, 'nothing to play'
        publish_status(self, self.diagnostics_pub, topics.STATUS_PLAYER,
                       self.get_parameter('bag').value, level, message, self.counters)

    def destroy_node(self):
        self._running = False
        self._thread.join(timeout=2.0)
        super().destroy_node()


def main(args=None):
    run_node(PlayerNode, args)


if __name__ == '__main__':
    main()
