"""Plays a Live Link Face CSV take onto /face/human/blendshapes, as if a performer were live.

Frames go out on their own thread at the take's original timing (times a rate factor),
stamped with the moment they are played; optionally looping. The take is validated on load:
short or truncated rows are skipped and counted (logged once, in diagnostics).
"""
import threading

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor

from face_capture.bundled import bundled_take_path
from face_capture.source_node import BlendshapeSourceNode, run_source_node
from face_capture.takes import TakeFormatError, read_take
from face_common.node import start_publishing_thread
from face_common.pacing import paced

LATE_S = 0.05           # a frame handed out later than this after its time counts as late


class TakePlayerNode(BlendshapeSourceNode):

    def __init__(self):
        super().__init__('take_player', 'take')
        self.declare_parameter('take', '', ParameterDescriptor(
            description='Live Link Face CSV export to play; empty = the bundled real take.'))
        self.declare_parameter('rate', 1.0, ParameterDescriptor(
            description='Playback speed factor (1.0 = original timing).',
            floating_point_range=[FloatingPointRange(from_value=0.01, to_value=100.0)]))
        self.declare_parameter('loop', False, ParameterDescriptor(
            description='Start over at the end of the take.'))
        self.declare_parameter('start_s', 0.0, ParameterDescriptor(
            description='Offset into the take to start from, seconds.'))
        self.declare_parameter('subject', 'take', ParameterDescriptor(
            description='Subject name published with the frames.'))
        path = self.get_parameter('take').value or str(bundled_take_path())
        try:
            self.take = read_take(path)
        except (OSError, TakeFormatError) as exc:
            raise SystemExit(f'take_player: cannot play {path}: {exc}') from None
        self.counters['skipped_rows'] = self.take.skipped_rows
        self.counters['loops'] = 0
        self.counters['late_frames'] = 0
        self.get_logger().info(
            f'take "{self.take.name}": {len(self.take)} frames, {self.take.duration:.1f} s, '
            f'{self.take.mean_rate:.1f} fps; {self.take.skipped_rows} short/bad rows skipped')
        self.finished = threading.Event()
        self._running = True
        self._thread = start_publishing_thread(self, self._play, 'take_player')

    def _play(self) -> None:
        rate = float(self.get_parameter('rate').value)
        loop = bool(self.get_parameter('loop').value)
        subject = self.get_parameter('subject').value
        times = self.take.times
        first = int(times.searchsorted(float(self.get_parameter('start_s').value)))
        frame_offset = 0
        span = int(self.take.frame_numbers[-1] - self.take.frame_numbers[0]) + 2
        while self._running:
            for offset, late_s in paced(times[first:], rate, lambda: self._running):
                i = first + offset
                if late_s > LATE_S:
                    with self._lock:
                        self.counters['late_frames'] += 1
                self.publish_frame(self.take.values[i], self.take.frame_numbers[i] + frame_offset,
                                   subject, '')
            if not self._running:
                return                  # stopped: not finished
            if not loop:
                break
            first = 0
            frame_offset += span
            with self._lock:
                self.counters['loops'] += 1
        self.get_logger().info('take finished')
        self.finished.set()

    def destroy_node(self):
        self._running = False
        self._thread.join(timeout=1.0)
        super().destroy_node()


def main(args=None):
    run_source_node(TakePlayerNode, args)


if __name__ == '__main__':
    main()
