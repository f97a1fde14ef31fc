"""Terminal monitor: the human face stream and, when a robot runs, what its face shows.

Rate, frame-number gaps (frames this monitor missed, or the sender lost; the session
report from the bag tells which) and latency of face/human/blendshapes; the robot's
face/robot/blendshapes rate and end-to-end latency (from the human frame's capture stamp
to the robot's reading); the per-stage latency percentiles (latency_monitor's summary) and
the safety layer's interventions (the actuation node's /diagnostics); and a few channels as
bars, human above robot. Names are relative: `face-monitor --ros-args -r __ns:=/hobbs` watches
the pipeline in /hobbs (its human input remapped as the launch file does).
What `make demo` shows in the terminal. On a TTY it redraws in place; otherwise it prints a
summary every 5 seconds (logs, CI).
"""
import argparse
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.time import Time

from face_capture.sequence import FrameSequence
from face_common import qos, topics
from face_common.latency import END_TO_END
from face_common.node import shutdown_context, start_cli_node
from face_common.stats import RateMeter, SlidingWindow
from face_msgs.msg import Blendshapes, LatencySummary

SHOWN = ('JawOpen', 'EyeBlinkLeft', 'EyeBlinkRight', 'MouthSmileLeft', 'MouthSmileRight',
         'BrowInnerUp', 'MouthFunnel', 'CheekPuff')
BAR_WIDTH = 40
SAFETY_KEYS = ('clamped_values', 'velocity_limited', 'acceleration_limited', 'late_commands',
               'stale_commands', 'non_finite_values', 'watchdog_trips', 'estops',
               'hold_rule_ramps')


def ms(value: float) -> str:
    return 'n/a' if value != value else f'{value:.2f}'


def bar(value: float, width: int = BAR_WIDTH) -> str:
    filled = max(0, min(width, round(value * width)))
    return '#' * filled + '.' * (width - filled)


class BlendshapeMonitor(Node):

    def __init__(self):
        super().__init__('blendshape_monitor')
        self.frames = 0
        self.no_face = 0
        self.sequence = FrameSequence()
        self.rate = RateMeter()
        self.latency_ms = SlidingWindow(300)
        self.last = None
        self.robot_last = None
        self.robot_rate = RateMeter()
        self.robot_latency_ms = SlidingWindow(300)
        self.create_subscription(Blendshapes, topics.HUMAN_BLENDSHAPES.name, self._on_frame,
                                 qos.of(topics.HUMAN_BLENDSHAPES))
        self.create_subscription(Blendshapes, topics.ROBOT_BLENDSHAPES.name, self._on_robot,
                                 qos.of(topics.ROBOT_BLENDSHAPES))
        self.latency = None
        self.create_subscription(LatencySummary, topics.LATENCY_SUMMARY.name, self._on_latency,
                                 qos.of(topics.LATENCY_SUMMARY))
        self.actuation_status = topics.namespaced_status(self.get_namespace(),
                                                         topics.STATUS_ACTUATION)
        self.safety = {}
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS.name, self._on_diagnostics,
                                 qos.DIAGNOSTICS)

    def _on_latency(self, msg: LatencySummary) -> None:
        self.latency = {stage.name: stage for stage in msg.stages}

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == self.actuation_status:
                self.safety = {kv.key: kv.value for kv in status.values}

    def pipeline_lines(self) -> list:
        """Latency percentiles per stage and the safety layer's interventions."""
        lines = []
        total = (self.latency or {}).get(END_TO_END)
        if total is not None:
            lines.append('latency (ms, p99): ' + '  '.join(
                f'{name} {stage.p99_ms:.1f}' for name, stage in self.latency.items()))
            lines.append(f'end-to-end (ms): mean {total.mean_ms:.1f}  p95 {total.p95_ms:.1f}  '
                         f'p99 {total.p99_ms:.1f}  max {total.max_ms:.1f}')
        safety = self.safety
        if safety:
            lines.append(f'safety: mode {safety.get("mode")}  ' + '  '.join(
                f'{key.replace("_", " ")} {safety[key]}' for key in SAFETY_KEYS if key in safety))
        return lines

    def _on_robot(self, msg: Blendshapes) -> None:
        if not msg.face_tracked:
            return
        self.robot_rate.tick(time.monotonic())
        if msg.frame_number > 0:             # 0: no human frame behind this reading yet
            age = (self.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6
            self.robot_latency_ms.add(age)
        self.robot_last = msg

    def _on_frame(self, msg: Blendshapes) -> None:
        now = self.get_clock().now()
        if not msg.face_tracked:
            self.no_face += 1
            return
        self.frames += 1
        self.sequence.observe(msg.frame_number)
        self.rate.tick(time.monotonic())
        self.latency_ms.add((now - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6)
        self.last = msg

    def render(self) -> str:
        lat = self.latency_ms.summary()
        counters = self.sequence.counters
        lines = [
            f'{self.resolve_topic_name(topics.HUMAN_BLENDSHAPES.name)}  '
            f'rate {self.rate.rate(time.monotonic()):5.1f} Hz  '
            f'frames {self.frames}  gaps here {counters.dropped}  stale {counters.stale}  '
            f'no-face {self.no_face}',
            f'latency from capture stamp (ms): mean {ms(lat.mean)}  p99 {ms(lat.p99)}  '
            f'max {ms(lat.max)}',
        ]
        robot = self.robot_last
        if robot is not None:
            rl = self.robot_latency_ms.summary()
            rate = self.robot_rate.rate(time.monotonic())
            lines.append(f'robot "{robot.subject}" face {rate:5.1f} Hz  human frame -> robot '
                         f'face (ms): mean {ms(rl.mean)}  p99 {ms(rl.p99)}')
        lines.extend(self.pipeline_lines())
        msg = self.last
        if msg is None:
            lines.append('waiting for frames...')
            return '\n'.join(lines)
        lines.append(f'subject "{msg.subject}"  source {msg.source}  frame {msg.frame_number}  '
                     f'calibration: {msg.calibration_profile or "none"}')
        index = {name: i for i, name in enumerate(msg.names)}
        robot_index = {n: i for i, n in enumerate(robot.names)} if robot is not None else {}
        for name in SHOWN:
            if name in index:
                value = msg.weights[index[name]]
                lines.append(f'  {name:<16} human {bar(value)} {value:4.2f}')
                if name in robot_index:
                    shown = robot.weights[robot_index[name]]
                    lines.append(f'  {"":<16} robot {bar(shown)} {shown:4.2f}')
        return '\n'.join(lines)

    def summary_line(self) -> str:
        lat = self.latency_ms.summary()
        line = (f'monitor: {self.frames} frames, {self.rate.rate(time.monotonic()):.1f} Hz, '
                f'gaps here {self.sequence.counters.dropped}, latency mean {ms(lat.mean)} ms '
                f'p99 {ms(lat.p99)} ms')
        if self.robot_last is not None:
            rl = self.robot_latency_ms.summary()
            line += (f'; robot face {self.robot_rate.rate(time.monotonic()):.1f} Hz, human '
                     f'frame -> robot face mean {ms(rl.mean)} ms p99 {ms(rl.p99)} ms')
        return '\n'.join([line, *self.pipeline_lines()])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=0.0,
                        help='seconds to run, counted from the first human frame (from the '
                             'start while none has come); 0 = until Ctrl-C')
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv)
    rclpy.init(args=['face-monitor', *argv])
    node = start_cli_node(BlendshapeMonitor)
    if node is None:
        shutdown_context()
        return
    tty = sys.stdout.isatty()
    start = last_draw = time.monotonic()
    first_frame = None
    shown_lines = 0
    try:
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.05)
            now = time.monotonic()
            if node.frames and first_frame is None:
                first_frame = now
            if args.duration and now - (first_frame or start) >= args.duration:
                break
            if tty and now - last_draw >= 0.1:
                text = node.render()
                sys.stdout.write(f'\x1b[{shown_lines}F\x1b[J' if shown_lines else '')
                sys.stdout.write(text + '\n')
                sys.stdout.flush()
                shown_lines = text.count('\n') + 1
                last_draw = now
            elif not tty and now - last_draw >= 5.0:
                print(node.summary_line(), flush=True)
                last_draw = now
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        print(node.summary_line(), flush=True)
        node.destroy_node()
        shutdown_context()


if __name__ == '__main__':
    main()
