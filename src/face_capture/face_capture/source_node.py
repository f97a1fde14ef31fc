"""Base class for nodes that publish human blendshape frames (UDP receiver, take player).

Frames are produced on the subclass's own thread (socket loop or playback clock) and handed
to publish_frame(), which applies neutral calibration, clamps blendshapes into 0..1, counts
every intervention and publishes. The calibration services live here, so every source offers
the same ones. A neutral capture waits for its frames on a worker thread of its own callback
group (run_source_node spins a MultiThreadedExecutor), so diagnostics and the other services
keep running while it collects.
"""
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from std_srvs.srv import Trigger

from face_capture.calibration import CalibrationError, NeutralCapture, ProfileStore, check_name
from face_common import qos, topics
from face_common.arkit import NUM_BLENDSHAPES
from face_common.latency import DECODE, PREPROCESS
from face_common.messages import blendshapes_msg, latency_msg
from face_common.node import OK, WARN, FaceNode, apply_realtime_priority, publish_status, run_node
from face_common.stats import RateMeter, SlidingWindow
from face_msgs.msg import Blendshapes, LatencyTrace
from face_msgs.srv import CaptureNeutral, SelectCalibration

DEFAULT_CALIBRATION_DIR = '~/.local/share/face_shadowing/calibration'
# One worker may wait in a neutral capture while the other serves the timer and services.
EXECUTOR_THREADS = 2


def run_source_node(node_class, args=None) -> None:
    """run_node with the executor a BlendshapeSourceNode needs (see the module docstring)."""
    run_node(node_class, args, lambda: MultiThreadedExecutor(num_threads=EXECUTOR_THREADS))


class BlendshapeSourceNode(FaceNode):
    """Publishes /face/human/blendshapes with calibration, counters and diagnostics."""

    def __init__(self, node_name: str, source: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self.source = source
        self.declare_parameter(
            'performer_calibration_dir', DEFAULT_CALIBRATION_DIR, ParameterDescriptor(
                description='Directory of per-performer neutral profiles (JSON).'))
        self.declare_parameter('neutral_frames', 60, ParameterDescriptor(
            description='Frames averaged by a neutral capture when the request says 0.'))
        self.declare_parameter('neutral_timeout_s', 5.0, ParameterDescriptor(
            description='Neutral capture gives up after this long without enough frames.'))
        self.declare_parameter('frame_id', 'performer', ParameterDescriptor(
            description='header.frame_id of published frames.'))
        self.declare_parameter('diagnostics_period_s', 1.0, ParameterDescriptor(
            description='Period of /diagnostics messages.'))

        self.frame_id = self.get_parameter('frame_id').value
        self.store = ProfileStore(self.get_parameter('performer_calibration_dir').value)
        self.counters = {'published': 0, 'no_face': 0, 'clamped_values': 0}
        self.rate = RateMeter()
        self.latency_ms = SlidingWindow(600)       # frame arrival -> published
        self._lock = threading.Lock()
        self._capture = None
        self._capture_done = threading.Event()
        self._last_frame_time = None
        self._last_subject = ''
        self.profile = None
        try:
            self.profile = self.store.load_active()
        except CalibrationError as exc:
            self.get_logger().error(f'active calibration profile unusable, running raw: {exc}')
        self._log_profile()

        self.publisher = self.create_publisher(Blendshapes, topics.HUMAN_BLENDSHAPES.name,
                                               qos.of(topics.HUMAN_BLENDSHAPES))
        self.trace_pub = self.create_publisher(LatencyTrace, topics.LATENCY.name,
                                               qos.of(topics.LATENCY))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        # Reentrant: a second request while one collects is answered (refused) at once.
        self.create_service(CaptureNeutral, topics.CAPTURE_NEUTRAL.name, self._on_capture,
                            callback_group=ReentrantCallbackGroup())
        self.create_service(SelectCalibration, topics.SELECT_CALIBRATION.name,
                            self._on_select)
        self.create_service(Trigger, topics.RESET_CALIBRATION.name, self._on_reset)
        self.create_timer(self.get_parameter('diagnostics_period_s').value,
                          self._publish_diagnostics)
        self.scheduling = apply_realtime_priority(self)

    # ---- frames ---------------------------------------------------------------------
    def publish_frame(self, values: np.ndarray, frame_number: int, subject: str,
                      device_id: str, stamp=None) -> None:
        """Publish one tracked frame of 61 wire-order values (finite, checked by caller);
        its latency trace covers arrival -> parsed (decode) and calibration (preprocessing)."""
        entered_ns = time.time_ns()
        stamp = stamp or self.get_clock().now().to_msg()
        stamp_ns = stamp.sec * 10**9 + stamp.nanosec
        raw = np.asarray(values, dtype=np.float32)
        shapes = raw[:NUM_BLENDSHAPES]
        out_of_range = int(np.count_nonzero((shapes < 0.0) | (shapes > 1.0)))
        if out_of_range:
            raw = raw.copy()
            np.clip(raw[:NUM_BLENDSHAPES], 0.0, 1.0, out=raw[:NUM_BLENDSHAPES])
        with self._lock:
            if self._capture is not None:
                self._capture.add(raw)
                if self._capture.done:
                    self._capture_done.set()
            profile = self.profile
            self.counters['clamped_values'] += out_of_range
        calibrated = profile.apply(raw) if profile is not None else raw

        msg = blendshapes_msg(calibrated, stamp, source=self.source, subject=subject,
                              frame_id=self.frame_id, device_id=device_id,
                              frame_number=frame_number, raw=raw,
                              profile=profile.name if profile is not None else '')
        self.publisher.publish(msg)
        published_ns = time.time_ns()
        self.latency_ms.add((published_ns - stamp_ns) / 1e6)
        self.trace_pub.publish(latency_msg(stamp, frame_number, 'capture', (
            (DECODE, stamp_ns, max(0, entered_ns - stamp_ns) / 1e6),
            (PREPROCESS, entered_ns, (published_ns - entered_ns) / 1e6))))
        self._note_published(subject)

    def publish_no_face(self, frame_number: int, subject: str, device_id: str) -> None:
        """Tell listeners the performer is out of view (no weights)."""
        msg = Blendshapes()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        msg.subject = subject
        msg.source = self.source
        msg.device_id = device_id
        msg.frame_number = int(frame_number)
        msg.face_tracked = False
        self.publisher.publish(msg)
        with self._lock:
            self.counters['no_face'] += 1

    def _note_published(self, subject: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.counters['published'] += 1
            self._last_frame_time = now
            self._last_subject = subject
        self.rate.tick(now)

    # ---- calibration services --------------------------------------------------------
    def _on_capture(self, request, response):
        num = int(request.num_frames) or int(self.get_parameter('neutral_frames').value)
        timeout = float(request.timeout_s) or float(self.get_parameter('neutral_timeout_s').value)
        name = request.profile or self._last_subject or 'performer'
        response.profile = name
        try:
            check_name(name)
            capture = NeutralCapture(name, num)
        except CalibrationError as exc:
            response.success, response.message = False, str(exc)
            return response
        with self._lock:
            if self._capture is not None:
                response.success, response.message = False, 'a neutral capture is running'
                return response
            self._capture = capture
            self._capture_done.clear()
        self.get_logger().info(f'capturing neutral face "{name}" over {num} frames')
        finished = self._capture_done.wait(timeout) and capture.done
        with self._lock:
            self._capture = None
        response.frames_used = capture.collected
        if not finished:
            response.success = False
            response.message = (f'timed out after {timeout:.1f} s with {capture.collected}/'
                                f'{num} tracked frames; is a face in view?')
            self.get_logger().warn(response.message)
            return response
        profile = capture.profile()
        try:
            path = self.store.save(profile)
            self.store.set_active(profile.name)
        except (OSError, CalibrationError) as exc:
            response.success, response.message = False, f'could not save profile: {exc}'
            self.get_logger().error(response.message)
            return response
        with self._lock:
            self.profile = profile
        response.success, response.path = True, str(path)
        response.message = f'neutral profile "{name}" saved to {path} and active'
        self._log_profile()
        return response

    def _on_select(self, request, response):
        try:
            self.store.set_active(request.profile)
            profile = self.store.load_active()
        except (OSError, CalibrationError) as exc:
            response.success, response.message = False, str(exc)
            return response
        with self._lock:
            self.profile = profile
        response.success = True
        response.message = f'active profile: {request.profile or "none (raw)"}'
        self._log_profile()
        return response

    def _on_reset(self, request, response):
        try:
            self.store.set_active('')
        except OSError as exc:
            response.success, response.message = False, f'could not clear active profile: {exc}'
            return response
        with self._lock:
            self.profile = None
        response.success, response.message = True, 'calibration reset: frames go out raw'
        self._log_profile()
        return response

    def _log_profile(self) -> None:
        if self.profile is None:
            self.get_logger().info('calibration: none (publishing raw weights)')
        else:
            self.get_logger().info(f'calibration: profile "{self.profile.name}" '
                                   f'({self.profile.frames} frames, {self.profile.created})')

    def destroy_node(self):
        self._capture_done.set()            # a capture still waiting for frames gives up now
        super().destroy_node()

    # ---- diagnostics -----------------------------------------------------------------
    def diagnostic_values(self) -> dict:
        """Counters a subclass adds to the diagnostics status."""
        return {}

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        with self._lock:
            values = dict(self.counters)
            last = self._last_frame_time
            profile = self.profile
        values.update(self.diagnostic_values())
        rate = self.rate.rate(now)
        if last is None or now - last > 1.0:
            level, message = WARN, 'no face frames in the last second'
        else:
            level, message = OK, f'streaming at {rate:.1f} Hz'
        values['rate_hz'] = f'{rate:.2f}'
        latency = self.latency_ms.summary()
        values['latency_ms_mean'] = f'{latency.mean:.3f}'
        values['latency_ms_p99'] = f'{latency.p99:.3f}'
        values['calibration_profile'] = profile.name if profile else ''
        values['scheduling'] = self.scheduling
        publish_status(self, self.diagnostics_pub, f'face_capture: {self.get_name()}',
                       self.source, level, message, values)
