"""Face tracker per-frame path: a 640x480 BGR frame -> 61 ARKit channels (face_tracker's work
for each camera image), and its stages.

Baseline, measured in the same run: the detector on every frame (what the tracker does
after losing the face), against which tracking from the last frame's landmarks is compared.
Stages: detector, landmark model, one iris, the geometric estimator. Then the node hop:
raw Image and JPEG CompressedImage messages published at --hz into a face_tracker process,
latency from each image's stamp to its Blendshapes message arriving here (same clock), and
how many came out (JPEG includes the node's decoding).
Run: make bench (or python bench/tracker.py [--frames N] [--threads T]).
"""
import argparse
from pathlib import Path
import sys
import threading
import time

import cv2
import matplotlib.cbook
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import node_and_probe, report, time_calls
from face_capture.face_expressions import ExpressionEstimator, face_features
from face_capture.face_tracking import (
    FACE_CROP_SCALE,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    FaceTracker,
    rect_around,
)


def portrait_frame() -> np.ndarray:
    """The test portrait placed in a 640x480 camera frame."""
    photo = cv2.imread(str(matplotlib.cbook.get_sample_data('grace_hopper.jpg',
                                                            asfileobj=False)))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[6:474, 120:520] = cv2.resize(photo, (400, 468))
    return frame


def bench_node_hop(frame: np.ndarray, frames: int, hz: float, compressed: bool):
    """Stamp -> Blendshapes latencies (ms) through a face_tracker process, and images sent
    (raw bgr8 Image messages, or JPEG CompressedImage ones)."""
    import rclpy
    from sensor_msgs.msg import CompressedImage, Image

    from face_common import qos, topics
    from face_common.images import image_msg
    from face_msgs.msg import Blendshapes

    with node_and_probe('face_capture', 'face_tracker', 'bench_face_tracker',
                        {'performer_calibration_dir': '/tmp/face-bench-calib',
                         'compressed': compressed},
                        'bench_tracker_probe') as node:
        latencies = []
        arrived = threading.Event()

        def on_frame(msg):
            if msg.face_tracked:
                stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                latencies.append((time.time_ns() - stamp_ns) / 1e6)
                arrived.set()
        node.create_subscription(Blendshapes, topics.HUMAN_BLENDSHAPES.name, on_frame,
                                 qos.of(topics.HUMAN_BLENDSHAPES))
        topic = topics.HUMAN_IMAGE_COMPRESSED if compressed else topics.HUMAN_IMAGE
        publisher = node.create_publisher(CompressedImage if compressed else Image, topic.name,
                                          qos.of(topic))
        threading.Thread(target=rclpy.spin, args=(node,), daemon=True).start()
        jpeg = cv2.imencode('.jpg', frame)[1].tobytes()

        def send():
            stamp = node.get_clock().now().to_msg()
            if compressed:
                msg = CompressedImage(format='jpeg', data=jpeg)
                msg.header.stamp = stamp
            else:
                msg = image_msg(frame, stamp, 'bench')
            publisher.publish(msg)
        deadline = time.monotonic() + 30
        while not arrived.is_set() and time.monotonic() < deadline:      # start-up, discovery
            send()
            arrived.wait(0.1)
        if not arrived.is_set():
            raise RuntimeError('face_tracker never published a tracked frame')
        time.sleep(0.5)
        latencies.clear()
        for _ in range(frames):
            send()
            time.sleep(1.0 / hz)
        time.sleep(0.5)
        return list(latencies), frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=300, help='frames per measurement')
    parser.add_argument('--threads', type=int, default=1, help='threads per inference')
    parser.add_argument('--hz', type=float, default=30.0, help='camera rate for the node hop')
    args, _ = parser.parse_known_args()     # make bench passes every bench the same flags
    frame = portrait_frame()
    tracker = FaceTracker(threads=args.threads)
    estimator = ExpressionEstimator()

    def frame_to_channels():
        face = tracker.track(frame)
        return estimator.channels(face_features(face.landmarks, face.irises))

    def detector_every_frame():
        tracker.reset()
        return frame_to_channels()

    warmup = min(50, args.frames)
    tracked = time_calls(frame_to_channels, args.frames, warmup)
    baseline = time_calls(detector_every_frame, args.frames, warmup)
    result = report(f'face tracker 640x480 -> 61 channels ({args.threads} thr)', tracked,
                    baseline, 'detector every frame')
    print(f'{"":<44} = {1000.0 / result["mean"]:.1f} fps mean, '
          f'{1000.0 / result["p99"]:.1f} fps at p99', flush=True)

    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    face = tracker.track(frame)
    roi = rect_around(face.landmarks, RIGHT_EYE_OUTER, LEFT_EYE_OUTER, FACE_CROP_SCALE)
    stages = args.frames
    report('  stage: BGR->RGB conversion', time_calls(lambda: cv2.cvtColor(
        frame, cv2.COLOR_BGR2RGB), stages, warmup))
    report('  stage: face detector (letterbox + model)', time_calls(
        lambda: tracker.detect(rgb), stages, warmup))
    report('  stage: face landmarks (crop + model)', time_calls(
        lambda: tracker._landmarks(rgb, roi), stages, warmup))
    report('  stage: one iris (crop + model)', time_calls(lambda: tracker._iris(
        rgb, face.landmarks, (RIGHT_EYE_OUTER, RIGHT_EYE_INNER), False), stages, warmup))
    report('  stage: geometric estimator', time_calls(lambda: estimator.channels(
        face_features(face.landmarks, face.irises)), stages, warmup))

    for compressed, kind in ((False, 'raw bgr8'), (True, 'JPEG')):
        latencies, sent = bench_node_hop(frame, args.frames, args.hz, compressed)
        report(f'stamp -> face_tracker -> Blendshapes, {kind}', latencies)
        print(f'{"":<44} {len(latencies)}/{sent} images at {args.hz:g} Hz came out as tracked '
              'frames', flush=True)


if __name__ == '__main__':
    main()
