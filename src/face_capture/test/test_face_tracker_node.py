"""face_tracker in its own process: real sensor_msgs/Image frames of the portrait in, real
face_msgs/Blendshapes out, neutral capture through the service, no-face and bad images, in
geometric mode and in blendshapes mode (the real face_landmarker.task in test/data)."""
from pathlib import Path
import threading

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import matplotlib.cbook
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from conftest import wait_until
from face_common import qos, topics
from face_common.arkit import channel_index
from face_common.images import image_msg
from face_msgs.msg import Blendshapes
from face_msgs.srv import CaptureNeutral

pytestmark = pytest.mark.ros
TASK = Path(__file__).parent / 'data' / 'face_landmarker.task'


def portrait_640x480():
    path = matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)
    photo = cv2.imread(str(path))
    canvas = np.zeros((480, 640, 3), np.uint8)
    small = cv2.resize(photo, (400, 468))
    canvas[6:474, 120:520] = small
    return canvas


class Camera:
    """Publishes one image over and over, freshly stamped, like a camera node."""

    def __init__(self, ros_node):
        self.node = ros_node.node
        self.publisher = self.node.create_publisher(Image, '/' + topics.HUMAN_IMAGE.name,
                                                    qos.of(topics.HUMAN_IMAGE))
        self.image = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(1 / 30):
            image = self.image
            if image is None:
                continue
            # a ready-made message is stamped afresh too: stamped once, it would turn stale
            # (max_age_s) while the tracker is busy on a slow machine and never reach decoding
            now = self.node.get_clock().now().to_msg()
            if isinstance(image, Image):
                image.header.stamp = now
                msg = image
            else:
                msg = image_msg(image, now, 'webcam0')
            self.publisher.publish(msg)

    def close(self):
        self.stop.set()
        self.thread.join()


def tracker_status(diagnostics):
    for array in reversed(diagnostics.snapshot()):
        for status in array.status:
            if status.name.endswith('face_tracker'):
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_face_tracker_publishes_blendshapes_from_images(ros_node, node_process, tmp_path):
    frames = ros_node.subscribe(Blendshapes, '/face/human/blendshapes')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    tracker = node_process('face_capture', 'face_tracker', params={
        'performer_calibration_dir': str(tmp_path / 'calib'), 'diagnostics_period_s': 0.2})
    camera = Camera(ros_node)
    try:
        camera.image = portrait_640x480()
        tracked = wait_until(lambda: [m for m in frames.snapshot() if m.face_tracked], 30.0)
        assert tracked, tracker.output()
        msg = tracked[-1]
        assert msg.source == 'webcam' and msg.device_id == 'webcam0' and len(msg.weights) == 52
        weights = dict(zip(msg.names, msg.weights, strict=True))
        assert weights['EyeBlinkLeft'] < 0.4 and weights['EyeBlinkRight'] < 0.4
        assert weights['JawOpen'] < 0.4

        # neutral capture through the base class's service: the face now reads as neutral
        # 20 s for 10 tracked frames: a shared 2-core machine has run the tracker at 1.6 fps
        request = CaptureNeutral.Request(profile='grace', num_frames=10, timeout_s=20.0)
        result = ros_node.call(CaptureNeutral, '/face/human/capture_neutral', request, 30.0)
        assert result.success, result.message
        assert (tmp_path / 'calib' / 'grace.tracker.json').is_file()
        frames.clear()
        calibrated = wait_until(lambda: [m for m in frames.snapshot() if m.calibrated], 15.0)
        assert max(calibrated[-1].raw_weights[:channel_index('HeadYaw')]) < 0.35
        assert max(calibrated[-1].weights) < 0.35
        assert abs(calibrated[-1].head_rotation[2]) < 0.05          # roll offset removed
        # the eyes look where they looked at neutral: not their offset subtracted twice
        # (once by the estimator's new neutral, once more by the profile: 0.19 rad here).
        # The iris estimate on a still image wanders +-0.1 rad frame to frame as the tracked
        # crop moves, so the check is on the mean of 15 frames (as the neutral is a mean).
        calibrated = wait_until(
            lambda: (lambda c: c if len(c) >= 15 else [])(
                [m for m in frames.snapshot() if m.calibrated]), 15.0)
        eyes = np.mean([[*m.left_eye_rotation, *m.right_eye_rotation]
                        for m in calibrated[-15:]], axis=0)
        assert np.abs(eyes).max() < 0.1, eyes

        # no face: not tracked
        camera.image = np.zeros((480, 640, 3), np.uint8)
        frames.clear()
        assert wait_until(lambda: [m for m in frames.snapshot() if not m.face_tracked], 15.0)

        # an image the tracker cannot read: counted, the node goes on
        bad = image_msg(np.zeros((480, 640, 3), np.uint8), ros_node.node.get_clock().now()
                        .to_msg())
        bad.encoding = 'rgba16'
        camera.image = bad
        assert wait_until(lambda: int(tracker_status(diagnostics).get('bad_image', 0)) > 0,
                          15.0)
        status = tracker_status(diagnostics)
        assert int(status['no_face']) > 0 and 'geometric' in status['mode']
        assert float(status['inference_ms_mean']) > 0
        camera.image = portrait_640x480()
        frames.clear()
        assert wait_until(lambda: [m for m in frames.snapshot() if m.face_tracked], 15.0)
        assert tracker.alive
        assert 'face_tracker mode: geometric' in tracker.output()

        # a restart reads the performer's neutral features and profile again
        tracker.stop()
        tracker = node_process('face_capture', 'face_tracker', params={
            'performer_calibration_dir': str(tmp_path / 'calib')})
        frames.clear()
        calibrated = wait_until(lambda: [m for m in frames.snapshot() if m.calibrated], 30.0)
        assert calibrated and max(calibrated[-1].raw_weights[:channel_index('HeadYaw')]) < 0.35
        assert 'neutral face features from' in tracker.output()

        # reset: raw estimates against the default neutral again
        assert ros_node.call(Trigger, '/face/human/reset_calibration', Trigger.Request()).success
        frames.clear()
        assert wait_until(lambda: [m for m in frames.snapshot()
                                   if m.face_tracked and not m.calibrated], 15.0)
    finally:
        camera.close()


def tracker_on_jpegs(ros_node, node_process, tmp_path):
    """A face_tracker reading the JPEG topic, its diagnostics, send(data) that publishes one
    freshly stamped CompressedImage, and the portrait as a JPEG."""
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    tracker = node_process('face_capture', 'face_tracker', params={
        'performer_calibration_dir': str(tmp_path / 'calib'), 'diagnostics_period_s': 0.2,
        'compressed': True})
    publisher = ros_node.node.create_publisher(
        CompressedImage, '/' + topics.HUMAN_IMAGE_COMPRESSED.name,
        qos.of(topics.HUMAN_IMAGE_COMPRESSED))

    def send(data):
        msg = CompressedImage(format='jpeg', data=data)
        msg.header.stamp = ros_node.node.get_clock().now().to_msg()
        publisher.publish(msg)
    return tracker, diagnostics, send, cv2.imencode('.jpg', portrait_640x480())[1].tobytes()


def test_face_tracker_reads_jpeg_frames_when_compressed(ros_node, node_process, tmp_path):
    frames = ros_node.subscribe(Blendshapes, '/face/human/blendshapes')
    tracker, diagnostics, send, jpeg = tracker_on_jpegs(ros_node, node_process, tmp_path)
    tracked = wait_until(lambda: send(jpeg) or [m for m in frames.snapshot() if m.face_tracked],
                         30.0, 0.05)
    assert tracked, tracker.output()
    weights = dict(zip(tracked[-1].names, tracked[-1].weights, strict=True))
    assert weights['EyeBlinkLeft'] < 0.4 and weights['EyeBlinkRight'] < 0.4
    assert wait_until(lambda: send(b'not a jpeg') or int(
        tracker_status(diagnostics).get('bad_image', 0)) > 0, 15.0, 0.05)
    assert tracker.alive and 'image/compressed' in tracker.output()


def test_a_second_neutral_capture_while_one_runs_does_not_spoil_the_first(ros_node,
                                                                         node_process,
                                                                         tmp_path):
    """A second capture request (a double click) is refused by the base class, but the
    tracker used to reset and then take away the running capture's feature samples, so the
    first capture saved no neutral features and kept the blendshape neutral in the profile."""
    frames = ros_node.subscribe(Blendshapes, '/face/human/blendshapes')
    tracker = node_process('face_capture', 'face_tracker', params={
        'performer_calibration_dir': str(tmp_path / 'calib')})
    camera = Camera(ros_node)
    try:
        camera.image = portrait_640x480()
        assert wait_until(lambda: [m for m in frames.snapshot() if m.face_tracked], 30.0), (
            tracker.output())
        first = {}
        running = threading.Thread(target=lambda: first.update(result=ros_node.call(
            CaptureNeutral, '/face/human/capture_neutral',
            CaptureNeutral.Request(profile='grace', num_frames=30, timeout_s=60.0), 70.0)))
        running.start()
        assert wait_until(lambda: 'capturing neutral face "grace"' in tracker.output(), 15.0)
        second = ros_node.call(CaptureNeutral, '/face/human/capture_neutral',
                               CaptureNeutral.Request(profile='other', num_frames=5), 30.0)
        assert not second.success and 'running' in second.message
        running.join(75.0)
        assert first['result'].success, first['result'].message
        assert (tmp_path / 'calib' / 'grace.tracker.json').is_file()
    finally:
        camera.close()


@pytest.mark.parametrize('name, value', [('threads', 0), ('max_age_s', -1.0)])
def test_face_tracker_refuses_parameters_that_would_break_it(node_process, tmp_path, name,
                                                             value):
    """threads 0 ended the node in a traceback from the TFLite runtime; a negative max_age_s
    marked every frame stale, so nothing was ever tracked."""
    tracker = node_process('face_capture', 'face_tracker', params={
        'performer_calibration_dir': str(tmp_path / 'calib'), name: value})
    assert wait_until(lambda: not tracker.alive, 30.0), tracker.output()
    assert f"parameter '{name}'" in tracker.output() and 'Traceback' not in tracker.output()


def test_blendshapes_mode_publishes_the_task_models_channels(ros_node, node_process, tmp_path):
    frames = ros_node.subscribe(Blendshapes, '/face/human/blendshapes')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    tracker = node_process('face_capture', 'face_tracker', params={
        'performer_calibration_dir': str(tmp_path / 'calib'), 'diagnostics_period_s': 0.2,
        'face_landmarker_task': str(TASK)})
    camera = Camera(ros_node)
    try:
        camera.image = portrait_640x480()
        tracked = wait_until(lambda: [m for m in frames.snapshot() if m.face_tracked], 30.0)
        assert tracked, tracker.output()
        weights = dict(zip(tracked[-1].names, tracked[-1].weights, strict=True))
        assert weights['EyeBlinkLeft'] < 0.3 and weights['JawOpen'] < 0.3
        # channels the geometric estimator never gives are measured in this mode
        assert weights['EyeSquintLeft'] > 0.05 and weights['EyeSquintRight'] > 0.05
        assert abs(tracked[-1].head_rotation[2]) > 0.05        # the estimator's head roll
        assert 'face_tracker mode: blendshapes' in tracker.output()
        assert wait_until(lambda: 'blendshapes' in tracker_status(diagnostics).get('mode', ''),
                          15.0)
        # the usual neutral profile: no estimator features of its own
        # 20 s for 10 tracked frames: a shared 2-core machine has run the tracker at 1.6 fps
        request = CaptureNeutral.Request(profile='grace', num_frames=10, timeout_s=20.0)
        result = ros_node.call(CaptureNeutral, '/face/human/capture_neutral', request, 30.0)
        assert result.success, result.message
        assert not (tmp_path / 'calib' / 'grace.tracker.json').exists()
        frames.clear()
        calibrated = wait_until(lambda: [m for m in frames.snapshot() if m.calibrated], 15.0)
        raw = dict(zip(calibrated[-1].names, calibrated[-1].raw_weights, strict=True))
        assert raw['EyeSquintRight'] > 0.05 and max(calibrated[-1].weights) < 0.35
        camera.image = np.zeros((480, 640, 3), np.uint8)
        frames.clear()
        assert wait_until(lambda: [m for m in frames.snapshot() if not m.face_tracked], 15.0)
        assert tracker.alive
    finally:
        camera.close()


@pytest.mark.parametrize('content, reason', [
    (None, 'no such file'), (b'PK\x03\x04 truncated', 'unreadable')])
def test_a_missing_or_corrupt_task_file_stops_the_node_with_one_line(node_process, tmp_path,
                                                                     content, reason):
    path = tmp_path / 'face_landmarker.task'
    if content is not None:
        path.write_bytes(content)
    tracker = node_process('face_capture', 'face_tracker', params={
        'performer_calibration_dir': str(tmp_path / 'calib'), 'face_landmarker_task': str(path)})
    assert wait_until(lambda: not tracker.alive, 30.0), tracker.output()
    assert f'face_tracker: face_landmarker_task {path}: {reason}' in tracker.output()
    assert 'Traceback' not in tracker.output()


def test_corrupt_jpegs_are_counted_and_logged_by_the_node_not_printed_per_frame(
        ros_node, node_process, tmp_path):
    """OpenCV's decoder printed libjpeg's 'Corrupt JPEG data: ...' on stderr for every such
    frame and tracked the damaged image; now each is skipped, counted as corrupt_jpeg and
    reported in the node's own throttled log line."""
    tracker, diagnostics, send, jpeg = tracker_on_jpegs(ros_node, node_process, tmp_path)
    corrupt = jpeg[:-2] + bytes(16) + jpeg[-2:]              # extraneous bytes before EOI
    assert wait_until(lambda: send(corrupt) or int(
        tracker_status(diagnostics).get('corrupt_jpeg', 0)) >= 20, 30.0, 0.05), tracker.output()
    output = tracker.output()
    warnings = [line for line in output.splitlines() if 'Corrupt JPEG data' in line]
    assert warnings and all('corrupt frame skipped: corrupt JPEG: Corrupt JPEG data' in line
                            for line in warnings), warnings
    assert len(warnings) <= 3                   # one line per 5 s, not one per frame
    assert tracker.alive and int(tracker_status(diagnostics).get('bad_image', 0)) == 0
