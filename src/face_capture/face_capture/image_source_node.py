"""Base of the nodes that put the performer's camera frames on face/human/image (bgr8) and
face/human/image/compressed (JPEG): the camera node and the HTTP stream endpoint.

A producer thread (capture loop, HTTP handlers) stamps each frame when it arrives and offers
it to a one-frame slot; the publishing thread takes the newest, so a slow subscriber or a
JPEG encode never makes frames queue up or age (replaced frames are counted as drops).
Rate, drops and the subclass's counters go to /diagnostics.
"""
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from sensor_msgs.msg import CompressedImage, Image

from face_capture.latest import LatestSlot
from face_common import qos, topics
from face_common.images import compressed_from_bytes, compressed_image, image_msg
from face_common.node import OK, WARN, FaceNode, publish_status, start_publishing_thread
from face_common.stats import RateMeter, SlidingWindow

_TAKE_TIMEOUT_S = 0.2               # how often the publishing thread checks for shutdown
LOG_EVERY_S = 5.0                   # one log line per kind of trouble per period


class ImageSourceNode(FaceNode):

    def __init__(self, node_name: str, source: str):
        super().__init__(node_name)
        self.source = source
        self.declare_parameter('frame_id', 'camera', ParameterDescriptor(
            description='header.frame_id of published images.'))
        self.declare_parameter('publish_compressed', True, ParameterDescriptor(
            description='Also publish face/human/image/compressed (JPEG).'))
        self.declare_parameter('jpeg_quality', 80, ParameterDescriptor(
            description='JPEG quality of the compressed topic (frames that arrive as JPEG '
                        'are passed on unchanged).',
            integer_range=[IntegerRange(from_value=1, to_value=100, step=1)]))
        self.declare_parameter('diagnostics_period_s', 1.0, ParameterDescriptor(
            description='Period of /diagnostics messages.'))
        self.frame_id = str(self.get_parameter('frame_id').value)
        self.publish_compressed = bool(self.get_parameter('publish_compressed').value)
        self.jpeg_quality = int(self.get_parameter('jpeg_quality').value)
        self.image_pub = self.create_publisher(Image, topics.HUMAN_IMAGE.name,
                                               qos.of(topics.HUMAN_IMAGE))
        self.compressed_pub = self.create_publisher(
            CompressedImage, topics.HUMAN_IMAGE_COMPRESSED.name,
            qos.of(topics.HUMAN_IMAGE_COMPRESSED))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        self.slot = LatestSlot()
        self.published = 0
        self.unconvertible = 0
        self.rate = RateMeter()
        self.latency_ms = SlidingWindow(600)        # arrival -> both topics published
        self._last_published = None
        self._next_log = {}
        self._running = True
        self._publisher_thread = start_publishing_thread(self, self._publish_loop,
                                                         f'{node_name}_publish')
        self.create_timer(self.get_parameter('diagnostics_period_s').value,
                          self._publish_diagnostics)

    def offer(self, bgr, jpeg: bytes | None = None) -> None:
        """A frame just captured or received (any thread): stamped now, newest wins."""
        self.slot.put((self.get_clock().now().to_msg(), time.monotonic(), bgr, jpeg))

    def log_limited(self, kind: str, level: str, text: str) -> None:
        """At most one line per kind of trouble per LOG_EVERY_S (floods must not flood)."""
        now = time.monotonic()
        if now < self._next_log.get(kind, 0.0):
            return
        self._next_log[kind] = now + LOG_EVERY_S
        getattr(self.get_logger(), level)(f'{text} (at most one such line per {LOG_EVERY_S:g} s)')

    def _publish_loop(self) -> None:
        while self._running:
            item = self.slot.take(_TAKE_TIMEOUT_S)
            if item is None:
                continue
            try:
                self.publish_frame(*item)
            except ValueError as exc:        # a frame that is not 8-bit BGR (odd devices)
                self.unconvertible += 1
                self.log_limited('unconvertible', 'warn', f'frame not published: {exc}')

    def publish_frame(self, stamp, arrived: float, bgr, jpeg) -> None:
        self.image_pub.publish(image_msg(bgr, stamp, self.frame_id))
        if self.publish_compressed:
            self.compressed_pub.publish(
                compressed_from_bytes(jpeg, stamp, self.frame_id) if jpeg is not None else
                compressed_image(bgr, stamp, self.frame_id, quality=self.jpeg_quality))
        now = time.monotonic()
        self.latency_ms.add((now - arrived) * 1e3)
        self.rate.tick(now)
        self.published += 1
        self._last_published = now

    def diagnostic_values(self) -> dict:
        """The subclass's own counters."""
        return {}

    def idle_message(self) -> str:
        return 'no frames in the last second'

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        rate = self.rate.rate(now)
        last = self._last_published
        if last is None or now - last > 1.0:
            level, message = WARN, self.idle_message()
        else:
            level, message = OK, f'publishing at {rate:.1f} Hz'
        latency = self.latency_ms.summary()
        values = {'published': self.published, 'dropped': self.slot.dropped,
                  'unconvertible': self.unconvertible,
                  'rate_hz': f'{rate:.2f}', 'latency_ms_mean': f'{latency.mean:.3f}',
                  'latency_ms_p99': f'{latency.p99:.3f}', **self.diagnostic_values()}
        publish_status(self, self.diagnostics_pub, f'face_capture: {self.get_name()}',
                       self.source, level, message, values)

    def destroy_node(self):
        self._running = False
        self.slot.close()
        self._publisher_thread.join(timeout=1.0)
        super().destroy_node()
