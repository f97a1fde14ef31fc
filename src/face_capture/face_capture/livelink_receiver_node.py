"""UDP receiver for Live Link Face: packets from an iPhone -> /face/human/blendshapes.

The socket is read on its own thread (lowest latency: no executor hop); each packet is
stamped on arrival, parsed, checked against the stream's frame numbers and published.
Bad packets are counted by kind and logged (throttled); nothing a sender does stops the node.
"""
import socket
import threading

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor

from face_capture.livelink import (
    DEFAULT_PORT,
    MalformedPacket,
    NonFiniteValues,
    UnsupportedVersion,
    parse_packet,
)
from face_capture.sequence import FrameSequence, FrameVerdict
from face_capture.source_node import BlendshapeSourceNode
from face_common.node import run_node

_MAX_DATAGRAM = 65535
_MAX_TRACKED_DEVICES = 16      # frame counters kept per sending device


class LiveLinkReceiverNode(BlendshapeSourceNode):

    def __init__(self):
        super().__init__('livelink_receiver', 'livelink_udp')
        self.declare_parameter('port', DEFAULT_PORT, ParameterDescriptor(
            description='UDP port Live Link Face sends to (the app\'s default is 11111).',
            integer_range=[IntegerRange(from_value=0, to_value=65535, step=1)]))
        self.declare_parameter('bind_address', '0.0.0.0', ParameterDescriptor(
            description='Local address to listen on; 0.0.0.0 = every interface.'))
        for key in ('packets', 'malformed', 'unsupported_version', 'non_finite',
                    'stale_frames', 'dropped_frames', 'sender_restarts'):
            self.counters[key] = 0
        self._sequences = {}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.get_parameter('bind_address').value,
                         self.get_parameter('port').value))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.get_logger().info(f'listening for Live Link Face on UDP port {self.port}')
        self._running = True
        self._thread = threading.Thread(target=self._receive_loop, name='livelink_rx',
                                        daemon=True)
        self._thread.start()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def _receive_loop(self) -> None:
        while self._running:
            try:
                data, sender = self._sock.recvfrom(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                if self._running:
                    self.get_logger().error('UDP socket failed; receiver stopped')
                return
            stamp = self.get_clock().now().to_msg()
            self._count('packets')
            try:
                self._handle(data, sender, stamp)
            except Exception as exc:      # a bug must not kill the receive thread
                self.get_logger().error(f'unexpected error on a packet from {sender}: {exc!r}',
                                        throttle_duration_sec=5.0)

    def _handle(self, data: bytes, sender, stamp) -> None:
        try:
            frame = parse_packet(data)
        except UnsupportedVersion as exc:
            self._count('unsupported_version')
            self.get_logger().warn(f'{sender[0]}: {exc}', throttle_duration_sec=5.0)
            return
        except NonFiniteValues as exc:
            self._count('non_finite')
            self.get_logger().warn(f'{sender[0]}: dropped packet with {exc}',
                                   throttle_duration_sec=5.0)
            return
        except MalformedPacket as exc:
            self._count('malformed')
            self.get_logger().warn(f'{sender[0]}: malformed packet ({len(data)} bytes): {exc}',
                                   throttle_duration_sec=5.0)
            return
        if frame is None:
            self.publish_no_face(-1, '', '')
            return
        sequence = self._sequences.get(frame.device_id)
        if sequence is None:
            if len(self._sequences) >= _MAX_TRACKED_DEVICES:
                self._sequences.pop(next(iter(self._sequences)))
            sequence = self._sequences[frame.device_id] = FrameSequence()
        before = sequence.counters.dropped
        verdict = sequence.observe(frame.frame_number)
        with self._lock:
            self.counters['dropped_frames'] += sequence.counters.dropped - before
        if verdict is FrameVerdict.STALE:
            self._count('stale_frames')
            return
        if verdict is FrameVerdict.RESTART:
            self._count('sender_restarts')
            self.get_logger().info(f'{frame.device_id}: frame counter restarted')
        self.publish_frame(frame.values, frame.frame_number, frame.subject, frame.device_id,
                           stamp)

    def destroy_node(self):
        self._running = False
        self._thread.join(timeout=1.0)
        self._sock.close()
        super().destroy_node()


def main(args=None):
    run_node(LiveLinkReceiverNode, args)


if __name__ == '__main__':
    main()
