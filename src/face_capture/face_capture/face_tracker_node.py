"""face_tracker: camera images -> ARKit blendshapes without an iPhone.

/face/human/image (sensor_msgs/Image, bgr8; or with compressed:=true the JPEG/PNG
/face/human/image/compressed) in; /face/human/blendshapes (source "webcam")
out through the same BlendshapeSourceNode base as the UDP receiver, so neutral calibration,
clamping and the calibration services are the same. Images land in a one-frame slot and a
worker thread tracks the newest (latest frame wins: a frame replaced before it was tracked
counts as dropped; one older than max_age_s as stale). Two modes, logged at start and in
/diagnostics: "geometric" (the estimator in face_expressions on the models setup.sh extracts)
or, with a face_landmarker_task file, "blendshapes" (that file's 52-channel blendshape model,
face_landmarker_task; head and eye rotations still from the estimator). A task file that is
missing or unreadable stops the node at start with one line: the user asked for that mode.
In geometric mode a neutral capture also records the estimator's neutral landmark features,
saved beside the profile as <name>.tracker.json; the profile then keeps only the head
rotation offsets (the estimator already reads that face as 0, eyes included). In blendshapes
mode the profile is the usual one (the model's raw values, as from an iPhone).
"""
import json
from pathlib import Path
import threading
import time

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from sensor_msgs.msg import CompressedImage, Image

from face_capture.calibration import CalibrationError, NeutralProfile
from face_capture.face_expressions import ExpressionEstimator, face_features
from face_capture.face_landmarker_task import TaskFaceTracker, TaskFileError
from face_capture.face_tracking import (
    BadImage,
    CorruptImage,
    FaceTracker,
    ModelsMissing,
    decode_compressed,
)
from face_capture.source_node import BlendshapeSourceNode, run_source_node
from face_common import qos, topics
from face_common.arkit import LEFT_EYE, NUM_BLENDSHAPES, RIGHT_EYE
from face_common.images import image_to_bgr8
from face_common.stats import SlidingWindow

SOURCE = 'webcam'
GEOMETRIC_MODE = 'geometric (MediaPipe face mesh + iris landmarks on LiteRT)'
BLENDSHAPE_MODE = 'blendshapes (face_landmarker.task: 52 channels from its blendshape model)'


def _stamp_ns(stamp) -> int:
    return stamp.sec * 10**9 + stamp.nanosec


class FaceTrackerNode(BlendshapeSourceNode):

    def __init__(self):
        super().__init__('face_tracker', SOURCE)
        self.declare_parameter('model_dir', '', ParameterDescriptor(
            description='Folder of the face models; empty: $FACE_TRACKER_MODELS or the one '
                        'scripts/setup.sh fills (<venv>/share/face_tracker).'))
        self.declare_parameter('threads', 1, ParameterDescriptor(
            description='CPU threads per model inference.',
            integer_range=[IntegerRange(from_value=1, to_value=64, step=1)]))
        self.declare_parameter('max_age_s', 0.5, ParameterDescriptor(
            description='Images stamped longer ago than this are skipped (0: never).',
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=3600.0)]))
        self.declare_parameter('face_landmarker_task', '', ParameterDescriptor(
            description='mediapipe face_landmarker.task: all 52 channels from its blendshape '
                        'model (run on LiteRT); empty: geometric mode.'))
        self.declare_parameter('compressed', False, ParameterDescriptor(
            description='Read JPEG/PNG frames from /face/human/image/compressed instead of raw '
                        'bgr8 ones (one small message per frame instead of 0.9 MB at VGA).'))
        self.declare_parameter('subject', 'performer', ParameterDescriptor(
            description='Subject name published with each frame.'))
        threads = int(self.get_parameter('threads').value)
        task = str(self.get_parameter('face_landmarker_task').value)
        try:
            if task:
                self.tracker = TaskFaceTracker(task, threads)
            else:
                self.tracker = FaceTracker(self.get_parameter('model_dir').value or None,
                                           threads)
        except (ModelsMissing, TaskFileError) as exc:
            raise SystemExit(f'face_tracker: {exc}') from None
        self.mode = BLENDSHAPE_MODE if task else GEOMETRIC_MODE
        self.max_age_ns = int(float(self.get_parameter('max_age_s').value) * 1e9)
        self.subject = str(self.get_parameter('subject').value)
        self.get_logger().info(f'face_tracker mode: {self.mode}; models from '
                               f'{self.tracker.model_dir}')
        for key in ('images', 'dropped', 'stale', 'bad_image', 'corrupt_jpeg', 'detector_runs',
                    'tracker_errors'):
            self.counters[key] = 0
        self.inference_ms = SlidingWindow(300)
        self._neutral_features = None        # a list while a neutral capture collects
        self._load_neutral_features()
        self._slot = None
        self._slot_ready = threading.Condition()
        self._running = True
        self.compressed = bool(self.get_parameter('compressed').value)
        if self.compressed:
            self._to_array = lambda msg: decode_compressed(msg.data)
            topic, msg_type = topics.HUMAN_IMAGE_COMPRESSED, CompressedImage
        else:
            self._to_array = image_to_bgr8
            topic, msg_type = topics.HUMAN_IMAGE, Image
        self.create_subscription(msg_type, topic.name, self._on_image, qos.of(topic))
        self.get_logger().info(f'reading images from {topic.name}')
        self._worker = threading.Thread(target=self._track_loop, name='face_tracker',
                                        daemon=True)
        self._worker.start()

    # ---- images ----------------------------------------------------------------------
    def _on_image(self, msg) -> None:
        with self._slot_ready:
            replaced = self._slot is not None
            self._slot = msg
            self._slot_ready.notify()
        with self._lock:
            self.counters['images'] += 1
            self.counters['dropped'] += int(replaced)

    def _track_loop(self) -> None:
        frame_number = 0
        while self._running:
            with self._slot_ready:
                self._slot_ready.wait_for(lambda: self._slot is not None or not self._running,
                                          timeout=0.2)
                msg, self._slot = self._slot, None
            if msg is None:
                continue
            frame_number += 1
            try:
                self._track(msg, frame_number)
            except Exception as exc:            # a bug must not stop the tracking thread
                self._count('tracker_errors')
                self.get_logger().error(f'tracking failed on frame {frame_number}: {exc!r}',
                                        throttle_duration_sec=5.0)

    def _track(self, msg, frame_number: int) -> None:
        stamp = msg.header.stamp
        if _stamp_ns(stamp) == 0:
            stamp = self.get_clock().now().to_msg()
        elif self.max_age_ns and time.time_ns() - _stamp_ns(stamp) > self.max_age_ns:
            self._count('stale')
            return
        started = time.perf_counter()
        try:
            face = self.tracker.track(self._to_array(msg))
        except CorruptImage as exc:
            self._count('corrupt_jpeg')
            self.get_logger().warn(f'corrupt frame skipped: {exc}', throttle_duration_sec=5.0)
            return
        except (BadImage, ValueError) as exc:
            self._count('bad_image')
            self.get_logger().warn(f'unreadable image skipped: {exc}', throttle_duration_sec=5.0)
            return
        if face is None:
            self.inference_ms.add((time.perf_counter() - started) * 1e3)
            self.publish_no_face(frame_number, self.subject, msg.header.frame_id)
            return
        try:
            features = face_features(face.landmarks, face.irises)
        except ValueError as exc:
            self._count('bad_image')
            self.get_logger().warn(f'face landmarks unusable: {exc}', throttle_duration_sec=5.0)
            return
        values = self.estimator.channels(features)
        if face.blendshapes is not None:
            values[:NUM_BLENDSHAPES] = face.blendshapes
        self.inference_ms.add((time.perf_counter() - started) * 1e3)
        with self._lock:
            self.counters['detector_runs'] += int(face.detected)
            if self._neutral_features is not None and face.blendshapes is None:
                self._neutral_features.append(features)
        self.publish_frame(values, frame_number, self.subject, msg.header.frame_id, stamp)

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    # ---- neutral features ----------------------------------------------------------
    def _features_path(self, profile: str) -> Path:
        return Path(self.store.directory) / f'{profile}.tracker.json'

    def _load_neutral_features(self) -> None:
        """The active profile's neutral features, or the defaults without one (or in
        blendshapes mode, where the estimator only gives rotations)."""
        self.estimator = ExpressionEstimator()
        if self.profile is None or self.mode == BLENDSHAPE_MODE:
            return
        path = self._features_path(self.profile.name)
        try:
            self.estimator.set_neutral(json.loads(path.read_text())['neutral_features'])
            self.get_logger().info(f'neutral face features from {path}')
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.get_logger().error(f'{path} unusable, default neutral features: {exc}')

    def _on_select(self, request, response):
        response = super()._on_select(request, response)
        self._load_neutral_features()
        return response

    def _on_reset(self, request, response):
        response = super()._on_reset(request, response)
        self._load_neutral_features()
        return response

    def _on_capture(self, request, response):
        if self.mode == BLENDSHAPE_MODE:        # the usual profile: nothing of our own to add
            return super()._on_capture(request, response)
        with self._lock:
            running = self._neutral_features is not None
            if not running:
                self._neutral_features = []
        response = super()._on_capture(request, response)
        if running:            # refused by the base class: the running capture keeps its samples
            return response
        with self._lock:
            samples, self._neutral_features = self._neutral_features, None
        if response.success and samples:
            neutral = np.mean(samples, axis=0)
            self.estimator.set_neutral(neutral)
            with self._lock:
                profile = self.profile
            # The estimator now reads this face as neutral by itself (blendshapes and eye
            # rotations, which it measures against its neutral): the profile keeps only the
            # head rotation offsets, so no neutral is subtracted twice.
            rebased = profile.neutral.copy()
            rebased[:NUM_BLENDSHAPES] = 0.0
            rebased[LEFT_EYE] = rebased[RIGHT_EYE] = 0.0
            profile = NeutralProfile(profile.name, rebased, profile.frames, profile.created)
            try:
                self._features_path(response.profile).write_text(json.dumps(
                    {'neutral_features': [float(v) for v in neutral]}))
                self.store.save(profile)
            except (OSError, CalibrationError) as exc:
                self.get_logger().error(f'could not save neutral face features: {exc}')
            with self._lock:
                self.profile = profile
        return response

    # ---- diagnostics -------------------------------------------------------------------
    def diagnostic_values(self) -> dict:
        inference = self.inference_ms.summary()
        return {'mode': self.mode, 'inference_ms_mean': f'{inference.mean:.2f}',
                'inference_ms_p99': f'{inference.p99:.2f}'}

    def destroy_node(self):
        self._running = False
        with self._slot_ready:
            self._slot_ready.notify_all()
        self._worker.join(timeout=2.0)
        super().destroy_node()


def main(args=None):
    run_source_node(FaceTrackerNode, args)
