"""Camera node: a webcam, a video file or a network stream (OpenCV) -> face/human/image (bgr8)
and face/human/image/compressed (JPEG), stamped at capture, newest frame wins.

The capture runs on its own thread (face_capture.camera); a source that cannot be opened or
stops delivering is retried with backoff and counted, never a crash. A video file plays at
its own frame rate and starts over at its end unless `loop` is off.
"""
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from face_capture.camera import CaptureLoop, parse_source
from face_capture.image_source_node import ImageSourceNode
from face_common.node import run_node

# Waits between attempts to reopen a source: zero would retry in a busy loop.
_RECONNECT_RANGE = FloatingPointRange(from_value=0.05, to_value=3600.0)


class CameraNode(ImageSourceNode):

    def __init__(self):
        super().__init__('camera', 'camera')
        self.declare_parameter('source', '0', ParameterDescriptor(
            dynamic_typing=True,
            description='A device index (0 = /dev/video0), a video file path or a URL '
                        '(rtsp://, http://...).'))
        self.declare_parameter('loop', True, ParameterDescriptor(
            description='A video file starts over at its end (false: capture ends there).'))
        self.declare_parameter('rate_hz', 0.0, ParameterDescriptor(
            description='Frames read per second; 0: a file\'s own rate, as delivered for '
                        'devices and streams.',
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1000.0)]))
        for name, what in (('width', 'width'), ('height', 'height')):
            self.declare_parameter(name, 0, ParameterDescriptor(
                description=f'Capture {what} asked of a device (0: its default).',
                integer_range=[IntegerRange(from_value=0, to_value=16384, step=1)]))
        self.declare_parameter('reconnect_min_s', 0.5, ParameterDescriptor(
            description='First wait before reopening a source that failed (doubles up to '
                        'reconnect_max_s).',
            floating_point_range=[_RECONNECT_RANGE]))
        self.declare_parameter('reconnect_max_s', 5.0, ParameterDescriptor(
            description='Longest wait between attempts to reopen a source.',
            floating_point_range=[_RECONNECT_RANGE]))
        try:
            source = parse_source(self.get_parameter('source').value)
        except ValueError as exc:
            raise SystemExit(f'camera: {exc}') from None
        backoff = (float(self.get_parameter('reconnect_min_s').value),
                   float(self.get_parameter('reconnect_max_s').value))
        self.capture = CaptureLoop(
            source, self.offer, self._on_event, loop_video=bool(self.get_parameter('loop').value),
            rate_hz=float(self.get_parameter('rate_hz').value),
            width=int(self.get_parameter('width').value),
            height=int(self.get_parameter('height').value), backoff_s=backoff)
        self.get_logger().info(f'capturing from {self.capture.kind} {source!r}')
        self.capture.start()

    def _on_event(self, level: str, text: str) -> None:
        self.log_limited(level, level, text)

    def idle_message(self) -> str:
        return {'reconnecting': f'cannot read {self.capture.source!r}; reconnecting',
                'finished': 'video ended'}.get(self.capture.state, 'no frames in the last second')

    def diagnostic_values(self) -> dict:
        counters = self.capture.counters
        return {'source': str(self.capture.source), 'source_kind': self.capture.kind,
                'state': self.capture.state, 'captured': counters.frames,
                'open_failures': counters.open_failures, 'reconnects': counters.reconnects,
                'empty_opens': counters.empty_opens,
                'loops': counters.loops, 'source_fps': f'{self.capture.source_fps:.2f}'}

    def destroy_node(self):
        self.capture.stop()
        super().destroy_node()


def main(args=None):
    run_node(CameraNode, args)


if __name__ == '__main__':
    main()
