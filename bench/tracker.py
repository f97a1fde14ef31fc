"""Face tracker per-frame path: a 640x480 BGR frame -> 61 ARKit channels (face_tracker's work
for each camera image), and its stages.

Baseline, measured in the same run: the detector on every frame (what the tracker does
after losing the face), against which tracking from the last frame's landmarks is compared.
Stages: detector, landmark model, one iris, the geometric estimator. Blendshapes mode
(mediapipe's face_landmarker.task, --task; the test copy by default): the same frame -> 61
channels with the task's models, against the geometric mode. Then the node hop:
raw Image and JPEG CompressedImage messages published at --hz into a face_tracker process,
latency from each image's stamp to its Blendshapes message arriving here (same clock), and
how many came out (JPEG includes the node's decoding).
End to end into the retarget node, for each image input: a clip of the portrait turning
slightly, played by the camera node (stamped at capture) or POSTed as JPEGs to the http_stream
node -> face_tracker -> retarget (ExFace, shipped checkpoint, robot micheal) -> face/command;
latency from the image stamp to the command, against the tracker alone on the same frames.
Run: make bench (or python bench/tracker.py [--frames N] [--threads T] [--task PATH]
[--per-frame-only]).
"""
import argparse
from pathlib import Path
import socket
import sys
import tempfile
import threading
import time

import cv2
import matplotlib.cbook
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from camera import post_round_trips

from common import node_and_probe, report, time_calls
from face_capture.face_expressions import ExpressionEstimator, face_features
from face_capture.face_landmarker_task import TaskFaceTracker
from face_capture.face_tracking import (
    FACE_CROP_SCALE,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    FaceTracker,
    rect_around,
)

TEST_TASK = (Path(__file__).resolve().parent.parent / 'src' / 'face_capture' / 'test' / 'data'
             / 'face_landmarker.task')


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

    with node_and_probe([('face_capture', 'face_tracker', 'bench_face_tracker',
                          {'performer_calibration_dir': '/tmp/face-bench-calib',
                           'compressed': compressed})],
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


def turning_clip(frames: int = 60) -> list:
    """The portrait turning slightly: a yaw-like horizontal squeeze and a small roll, back
    and forth, so the tracker follows a moving face rather than one still image."""
    base = portrait_frame()
    clip = []
    for index in range(frames):
        phase = np.sin(2 * np.pi * index / frames)
        squeeze = 1.0 - 0.08 * abs(phase)
        matrix = cv2.getRotationMatrix2D((320, 240), 4.0 * phase, 1.0)
        matrix[0, :2] *= squeeze
        matrix[0, 2] += 320 * (1 - squeeze) + 20 * phase
        clip.append(cv2.warpAffine(base, matrix, (640, 480)))
    return clip


def write_clip(path: str, clip: list, fps: float) -> None:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, (640, 480))
    for frame in clip:
        writer.write(frame)
    writer.release()


def bench_end_to_end(clip: list, source: str, frames: int, hz: float):
    """Image stamp -> face/command latencies (ms) through source (camera or http_stream),
    face_tracker and retarget processes, and how many images the source published."""
    import rclpy
    from sensor_msgs.msg import CompressedImage

    from face_common import qos, topics
    from face_msgs.msg import ControlValues

    with tempfile.TemporaryDirectory() as folder, socket.socket() as free:
        free.bind(('127.0.0.1', 0))
        port = free.getsockname()[1]
        video = str(Path(folder) / 'turning.avi')
        write_clip(video, clip, hz)
        free.close()
        source_params = {'source': video} if source == 'camera' else {'port': str(port)}
        nodes = [('face_capture', source, f'bench_{source}', source_params),
                 ('face_capture', 'face_tracker', 'bench_face_tracker',
                  {'performer_calibration_dir': '/tmp/face-bench-calib', 'compressed': True}),
                 ('face_retarget', 'retarget', 'bench_retarget',
                  {'robot': 'micheal', 'model': 'exface', 'max_frame_age_s': '1.0'})]
        with node_and_probe(nodes, f'bench_{source}_e2e_probe') as node:
            published, latencies = set(), []
            arrived = threading.Event()

            def stamp_ns(msg):
                return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

            def on_command(msg):
                stamp = stamp_ns(msg)
                if stamp in published:
                    latencies.append((time.time_ns() - stamp) / 1e6)
                arrived.set()
            node.create_subscription(ControlValues, topics.COMMAND.name, on_command,
                                     qos.of(topics.COMMAND))
            node.create_subscription(CompressedImage, topics.HUMAN_IMAGE_COMPRESSED.name,
                                     lambda msg: published.add(stamp_ns(msg)),
                                     qos.of(topics.HUMAN_IMAGE_COMPRESSED))
            threading.Thread(target=rclpy.spin, args=(node,), daemon=True).start()
            bodies = [cv2.imencode('.jpg', frame)[1].tobytes() for frame in clip]

            deadline = time.monotonic() + 60
            while not arrived.is_set() and time.monotonic() < deadline:   # start-up, discovery
                if source == 'http_stream':
                    try:
                        post_round_trips(port, bodies, 1, hz)
                    except OSError:
                        pass
                arrived.wait(0.1)
            if not arrived.is_set():
                raise RuntimeError(f'{source} -> face_tracker -> retarget never commanded')
            time.sleep(0.5)
            published.clear()
            latencies.clear()
            if source == 'camera':
                time.sleep(frames / hz)
            else:
                post_round_trips(port, bodies, frames, hz)
            sent = len(published)
            time.sleep(0.5)
            return list(latencies), sent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=300, help='frames per measurement')
    parser.add_argument('--threads', type=int, default=1, help='threads per inference')
    parser.add_argument('--hz', type=float, default=30.0, help='camera rate for the node hop')
    parser.add_argument('--task', default=str(TEST_TASK),
                        help='face_landmarker.task for the blendshapes mode')
    parser.add_argument('--per-frame-only', action='store_true',
                        help='skip the node hops and the end-to-end runs')
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

    task_tracker = TaskFaceTracker(args.task, threads=args.threads)

    def frame_to_channels_with_task():
        face = task_tracker.track(frame)
        values = estimator.channels(face_features(face.landmarks, face.irises))
        values[:len(face.blendshapes)] = face.blendshapes
        return values
    with_task = time_calls(frame_to_channels_with_task, args.frames, warmup)
    result = report(f'blendshapes mode (.task) -> 61 ch ({args.threads} thr)', with_task,
                    tracked, 'geometric mode')
    print(f'{"":<44} = {1000.0 / result["mean"]:.1f} fps mean, '
          f'{1000.0 / result["p99"]:.1f} fps at p99', flush=True)
    task_face = task_tracker.track(frame)
    report('  stage: task landmarks 256 px (crop + model)', time_calls(
        lambda: task_tracker._landmarks(rgb, roi), stages, warmup))
    report('  stage: task blendshape model (146 points)', time_calls(
        lambda: task_tracker._finish(rgb, np.vstack([task_face.landmarks,
                                                     task_face.irises.reshape(10, 3)]),
                                     1.0, False, [np.zeros(1, np.float32)]), stages, warmup))
    if args.per_frame_only:
        return

    for compressed, kind in ((False, 'raw bgr8'), (True, 'JPEG')):
        latencies, sent = bench_node_hop(frame, args.frames, args.hz, compressed)
        report(f'stamp -> face_tracker -> Blendshapes, {kind}', latencies)
        print(f'{"":<44} {len(latencies)}/{sent} images at {args.hz:g} Hz came out as tracked '
              'frames', flush=True)

    clip = turning_clip()
    counter = {'i': 0}

    def clip_frame_to_channels():
        counter['i'] = (counter['i'] + 1) % len(clip)
        face = tracker.track(clip[counter['i']])
        return estimator.channels(face_features(face.landmarks, face.irises))
    tracker_alone = time_calls(clip_frame_to_channels, args.frames, warmup)
    report('face tracker alone, turning portrait clip', tracker_alone)
    for source in ('camera', 'http_stream'):
        latencies, sent = bench_end_to_end(clip, source, args.frames, args.hz)
        report(f'{source} -> tracker -> retarget -> command', latencies, tracker_alone,
               'tracker alone')
        print(f'{"":<44} {len(latencies)}/{sent} images published at {args.hz:g} Hz came out '
              'as commands', flush=True)


if __name__ == '__main__':
    main()
