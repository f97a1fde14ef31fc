"""Retarget node: /face/human/blendshapes -> model -> /face/command, same stamp.

Frames are matched by channel name; frames without a face, with non-finite values or older
than max_frame_age_s are dropped and counted. The model is chosen by parameter.
"""
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.time import Time
import torch

from face_actuation.profile import ProfileError, load_profile
from face_common import qos, topics
from face_common.arkit import CHANNEL_NAMES
from face_common.latency import INFERENCE
from face_common.messages import blendshapes_to_array, control_values_msg, latency_msg
from face_common.node import OK, WARN, FaceNode, apply_realtime_priority, publish_status, run_node
from face_common.stats import RateMeter, SlidingWindow
from face_msgs.msg import Blendshapes, ControlValues, LatencyTrace
from face_retarget.training import (
    MODELS,
    CheckpointError,
    default_checkpoint_dir,
    open_retargeter,
)

RESET_AFTER_S = 0.5          # a longer gap in the input starts the model's memory afresh
WARM_UP_STEPS = 5            # inferences on a resting face before the first real frame


class RetargetNode(FaceNode):

    def __init__(self, **kwargs):
        super().__init__('retarget', **kwargs)
        self.declare_parameter('robot', 'micheal', ParameterDescriptor(
            description='Robot profile the commands are for.'))
        self.declare_parameter('model', 'exface', ParameterDescriptor(
            description=f'Retargeting model: {", ".join(MODELS)}.'))
        self.declare_parameter('checkpoint', '', ParameterDescriptor(
            description='Model file; empty = the shipped checkpoint for this robot.'))
        self.declare_parameter('deterministic', True, ParameterDescriptor(
            description='ExFace: fixed sampling noise (repeatable commands).'))
        self.declare_parameter('threads', 1, ParameterDescriptor(
            description='PyTorch threads for inference. One: the per-frame network is small, '
                        'and with two threads on a 2-core machine shared with the other '
                        'nodes, OpenMP spin-waiting made a 4 ms step take 15-150 ms.'))
        self.declare_parameter('max_frame_age_s', 0.2, ParameterDescriptor(
            description='Human frames older than this are dropped (stale).'))
        self.declare_parameter('diagnostics_period_s', 1.0, ParameterDescriptor(
            description='Period of /diagnostics messages.'))
        torch.set_num_threads(max(1, int(self.get_parameter('threads').value)))
        try:
            self.profile = load_profile(self.get_parameter('robot').value)
        except ProfileError as exc:
            raise SystemExit(f'retarget: {exc}') from None
        name = self.get_parameter('model').value
        if name not in MODELS:
            raise SystemExit(f'retarget: unknown model {name!r}; available: {MODELS}')
        try:
            self.stream, source = open_retargeter(
                name, self.profile, default_checkpoint_dir() / self.profile.name,
                self.get_parameter('checkpoint').value or None,
                bool(self.get_parameter('deterministic').value))
        except (CheckpointError, OSError, ValueError) as exc:
            raise SystemExit(f'retarget: {exc}') from None
        self.get_logger().info(f'model "{name}" for {self.profile.name} ({source})')
        # The first steps pay PyTorch's one-time set-up (the demo's first command took 195 ms):
        # paid here, on a resting face, not on the performer's first frames.
        self.stream.reset(self.profile.neutral)
        for _ in range(WARM_UP_STEPS):
            self.stream.step(np.zeros(len(CHANNEL_NAMES)))
        self.stream.reset(self.profile.neutral)
        self._last_frame_ns = None
        self.max_age_ns = int(self.get_parameter('max_frame_age_s').value * 1e9)
        self.counters = {'frames': 0, 'published': 0, 'no_face': 0, 'bad_frames': 0,
                         'stale_frames': 0, 'memory_resets': 0}
        self.compute_ms = SlidingWindow(600)
        self.rate = RateMeter()
        self._index_cache = {}
        self.publisher = self.create_publisher(ControlValues, topics.COMMAND.name,
                                               qos.of(topics.COMMAND))
        self.trace_pub = self.create_publisher(LatencyTrace, topics.LATENCY.name,
                                               qos.of(topics.LATENCY))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        self.create_subscription(Blendshapes, topics.HUMAN_BLENDSHAPES.name, self._on_frame,
                                 qos.of(topics.HUMAN_BLENDSHAPES))
        self.create_timer(self.get_parameter('diagnostics_period_s').value,
                          self._publish_diagnostics)
        self.scheduling = apply_realtime_priority(self)

    def _on_frame(self, msg: Blendshapes) -> None:
        self.counters['frames'] += 1
        if not msg.face_tracked:
            self.counters['no_face'] += 1
            self._last_frame_ns = None              # the next face starts a fresh memory
            return
        now_ns = self.get_clock().now().nanoseconds
        age = now_ns - Time.from_msg(msg.header.stamp).nanoseconds
        if age > self.max_age_ns:
            self.counters['stale_frames'] += 1
            self.get_logger().warn(f'dropping a frame {age / 1e6:.0f} ms old',
                                   throttle_duration_sec=5.0)
            return
        started = time.perf_counter()
        values = blendshapes_to_array(msg, self._index_cache)
        if values is None:
            self.counters['bad_frames'] += 1
            self.get_logger().warn('dropping an unusable frame (lengths or non-finite values)',
                                   throttle_duration_sec=5.0)
            return
        if self._last_frame_ns is None or now_ns - self._last_frame_ns > RESET_AFTER_S * 1e9:
            self.stream.reset(self.profile.neutral)
            self.counters['memory_resets'] += 1
        self._last_frame_ns = now_ns
        command = self.stream.step(values)
        compute_ms = (time.perf_counter() - started) * 1e3
        self.compute_ms.add(compute_ms)
        self.publisher.publish(control_values_msg(
            command, self.profile.motor_names, msg.header.stamp, robot=self.profile.name,
            source=self.stream.name))
        self.trace_pub.publish(latency_msg(msg.header.stamp, msg.frame_number, 'retarget',
                                           ((INFERENCE, now_ns, compute_ms),)))
        self.counters['published'] += 1
        self.rate.tick(time.monotonic())

    def _publish_diagnostics(self) -> None:
        compute = self.compute_ms.summary()
        rate = self.rate.rate(time.monotonic())
        level, message = (OK, f'{rate:.1f} Hz') if rate > 0 else (WARN, 'no human frames')
        values = {'model': self.stream.name, 'robot': self.profile.name, 'rate_hz': f'{rate:.1f}',
                  'compute_ms_mean': f'{compute.mean:.3f}', 'compute_ms_p99': f'{compute.p99:.3f}',
                  'scheduling': self.scheduling, **self.counters}
        publish_status(self, self.diagnostics_pub, topics.STATUS_RETARGET, self.stream.name,
                       level, message, values)


def main(args=None):
    run_node(RetargetNode, args)


if __name__ == '__main__':
    main()
