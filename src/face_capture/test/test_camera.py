"""The camera capture on real video files written by cv2.VideoWriter (synthetic frames whose
index shows as a grey level), directly and through the camera node with real rclpy
subscribers; a source that does not exist is retried and counted, never a crash."""
from itertools import pairwise
import os
from pathlib import Path
import signal
import subprocess
import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from test_nodes import diag_values

from conftest import wait_until
from face_capture.camera import DEVICE, FILE, URL, CaptureLoop, parse_source, source_kind
from face_common import qos
from face_common.images import compressed_to_array, image_to_array
from face_common.launch_runner import load_launch_file

WIDTH, HEIGHT = 160, 120


def write_video(path, frames=10, fps=30.0):
    """An MJPG .avi (OpenCV's built-in writer) whose frame i is flat grey 20 * i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for index in range(frames):
        writer.write(np.full((HEIGHT, WIDTH, 3), 20 * index, np.uint8))
    writer.release()
    return path


def frame_index(bgr) -> int:
    return int(round(float(bgr.mean()) / 20))


def test_sources_are_device_indices_files_or_urls():
    assert parse_source('0') == 0 and parse_source(2) == 2
    assert parse_source(' clip.mp4 ') == 'clip.mp4'
    assert (source_kind(0), source_kind('a.avi'), source_kind('rtsp://cam/1')) == (
        DEVICE, FILE, URL)
    with pytest.raises(ValueError, match='empty'):
        parse_source('  ')


def run_capture(source, seconds, **kwargs):
    frames, events = [], []
    loop = CaptureLoop(source, frames.append, lambda level, text: events.append((level, text)),
                       **kwargs)
    loop.start()
    time.sleep(seconds)
    loop.stop()
    return loop, frames, events


def test_a_video_file_plays_every_frame_in_order_at_its_rate_and_loops(tmp_path):
    video = write_video(tmp_path / 'clip.avi', frames=10, fps=20.0)
    loop, frames, _ = run_capture(str(video), 1.2, backoff_s=(0.05, 0.1))
    indices = [frame_index(f) for f in frames]
    assert indices[:10] == list(range(10))
    assert 18 <= len(frames) <= 30, f'{len(frames)} frames in 1.2 s at 20 fps'
    assert loop.counters.loops >= 1 and indices[10] == 0
    assert frames[0].shape == (HEIGHT, WIDTH, 3)
    assert loop.source_fps == pytest.approx(20.0)


def test_without_loop_the_capture_ends_at_the_end_of_the_file(tmp_path):
    video = write_video(tmp_path / 'clip.avi', frames=5)
    loop, frames, events = run_capture(str(video), 0.8, loop_video=False, rate_hz=100.0)
    assert len(frames) == 5 and loop.state == 'finished'
    assert ('info', f"video {str(video)!r} ended (loop is off)") in events


def test_a_missing_source_is_retried_with_backoff_and_counted(tmp_path):
    missing = str(tmp_path / 'nowhere.avi')
    loop, frames, events = run_capture(missing, 0.5, backoff_s=(0.05, 0.2))
    assert not frames and loop.state == 'reconnecting'
    assert 2 <= loop.counters.open_failures <= 6          # 0.05, 0.1, 0.2, 0.2 ...
    assert events[0][0] == 'error' and 'cannot open file' in events[0][1]


def truncated_recording(tmp_path):
    """A real AVI cut after its headers and the first frame chunk's header, as a recording
    that was interrupted: OpenCV opens it, and every read fails."""
    data = write_video(tmp_path / 'clip.avi').read_bytes()
    path = tmp_path / 'truncated.avi'
    path.write_bytes(data[:data.index(b'00dc', data.index(b'movi')) + 8])
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened() and not capture.read()[0]
    capture.release()
    return path


def test_a_source_that_opens_but_never_delivers_is_retried_with_growing_waits(tmp_path):
    """Only sources that failed to open backed off; one that opened and then delivered
    nothing was reopened every reconnect_min_s, forever (16 times in 0.8 s here)."""
    source = str(truncated_recording(tmp_path))
    loop, frames, events = run_capture(source, 0.8, backoff_s=(0.05, 0.4))
    assert not frames and loop.state == 'reconnecting'
    assert 3 <= loop.counters.empty_opens <= 6             # 0.05, 0.1, 0.2, 0.4, 0.4
    assert loop.counters.reconnects == 0
    waits = [float(text.rsplit('in ', 1)[1].split()[0]) for _, text in events]
    assert waits[:4] == [0.05, 0.1, 0.2, 0.4]
    assert events[0][0] == 'error' and 'opened but delivered no frame' in events[0][1]


@pytest.mark.ros
def test_camera_node_publishes_bgr8_and_jpeg_stamped_at_capture(ros_node, node_process,
                                                                 tmp_path):
    video = write_video(tmp_path / 'clip.avi', frames=10, fps=30.0)
    images = ros_node.subscribe(Image, '/face/human/image')
    compressed = ros_node.subscribe(CompressedImage, '/face/human/image/compressed')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    camera = node_process('face_capture', 'camera',
                          params={'source': str(video), 'diagnostics_period_s': 0.2,
                                  'jpeg_quality': 90})
    assert wait_until(lambda: len(images.snapshot()) >= 20 and compressed.snapshot(), 20.0), \
        camera.output()
    received = images.snapshot()
    first = received[-1]
    assert (first.encoding, first.width, first.height, first.step) == (
        'bgr8', WIDTH, HEIGHT, WIDTH * 3)
    assert first.header.frame_id == 'camera'
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in received]
    assert all(b > a for a, b in pairwise(stamps))
    assert abs(stamps[-1] - time.time()) < 5.0
    indices = {frame_index(image_to_array(m)) for m in received}
    assert len(indices) >= 8                                    # distinct frames, looping
    jpeg = compressed.snapshot()[-1]
    assert jpeg.format == 'bgr8; jpeg compressed bgr8'
    assert compressed_to_array(jpeg).shape == (HEIGHT, WIDTH, 3)
    values = wait_until(lambda: (v := diag_values(diagnostics, 'camera')).get('loops', '0')
                        != '0' and v, 10.0)
    assert values['state'] == 'streaming' and values['source_kind'] == 'file'
    assert 15.0 <= float(values['rate_hz']) <= 45.0
    assert int(values['published']) >= 10 and 'dropped' in values
    assert camera.alive


@pytest.mark.ros
def camera_retrying(ros_node, node_process, source, counter: str, attempts: int,
                    reconnect_max_s: float):
    """A camera node on a source it cannot use, and its diagnostics once `counter` reached
    `attempts`."""
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    camera = node_process('face_capture', 'camera',
                          params={'source': str(source), 'diagnostics_period_s': 0.2,
                                  'reconnect_min_s': 0.1, 'reconnect_max_s': reconnect_max_s})
    values = wait_until(lambda: int(diag_values(diagnostics, 'camera').get(
        counter, 0)) >= attempts and diag_values(diagnostics, 'camera'), 20.0)
    assert values, camera.output()
    return camera, values


def test_camera_node_survives_a_missing_source_and_counts_attempts(ros_node, node_process,
                                                                   tmp_path):
    camera, values = camera_retrying(ros_node, node_process, tmp_path / 'missing.mp4',
                                     'open_failures', 3, 0.2)
    assert values['state'] == 'reconnecting' and values['published'] == '0'
    assert camera.alive
    assert 'cannot open file' in camera.output()
    # the log says it once per period, not once per attempt
    assert camera.output().count('cannot open file') < int(values['open_failures'])


@pytest.mark.ros
def test_camera_node_backs_off_from_a_source_that_opens_but_never_delivers(ros_node,
                                                                           node_process,
                                                                           tmp_path):
    camera, values = camera_retrying(ros_node, node_process, truncated_recording(tmp_path),
                                     'empty_opens', 4, 0.4)
    assert values['state'] == 'reconnecting' and values['published'] == '0'
    assert values['open_failures'] == '0' and values['reconnects'] == '0'
    assert camera.alive and 'opened but delivered no frame' in camera.output()


@pytest.mark.ros
@pytest.mark.parametrize('name', ['reconnect_min_s', 'reconnect_max_s'])
def test_camera_node_refuses_a_reconnect_wait_that_would_spin(node_process, tmp_path, name):
    """A zero or negative wait turned a missing source into a busy loop (tens of thousands
    of open attempts a second, a whole core): such values are refused at start."""
    camera = node_process('face_capture', 'camera',
                          params={'source': str(tmp_path / 'missing.mp4'), name: 0.0})
    assert wait_until(lambda: not camera.alive, 10.0), camera.output()
    assert f"parameter '{name}'" in camera.output()
    assert 'Traceback' not in camera.output()


LAUNCH_FILE = Path(__file__).resolve().parents[3] / 'launch' / 'camera.launch.yaml'


@pytest.mark.parametrize('arguments, executable, params', [
    ({}, 'camera', {'source': '0'}),
    ({'input': 'video', 'video': 'clip.avi', 'video_loop': 'false'}, 'camera',
     {'source': 'clip.avi', 'loop': 'false'}),
    ({'input': 'http', 'http_port': '5055', 'http_token': 't'}, 'http_stream',
     {'port': '5055', 'token': 't', 'bind_address': '127.0.0.1'}),
])
def test_camera_launch_file_starts_the_chosen_input(arguments, executable, params):
    specs = load_launch_file(LAUNCH_FILE, arguments)
    assert [spec.executable for spec in specs] == [executable]
    assert params.items() <= specs[0].params.items()


def test_camera_launch_file_starts_the_tracker_only_when_asked():
    specs = load_launch_file(LAUNCH_FILE, {'input': 'http', 'tracker': 'true'})
    assert [spec.executable for spec in specs] == ['http_stream', 'face_tracker']
    assert specs[1].params['face_landmarker_task'] == ''             # geometric mode
    task = str(Path(__file__).parent / 'data' / 'face_landmarker.task')
    specs = load_launch_file(LAUNCH_FILE, {'input': 'http', 'tracker': 'true',
                                           'tracker_task': task})
    assert specs[1].params['face_landmarker_task'] == task            # blendshapes mode


@pytest.mark.ros
def test_camera_launch_file_plays_a_video_onto_the_image_topic(ros_node, tmp_path):
    video = write_video(tmp_path / 'clip.avi')
    images = ros_node.subscribe(Image, '/face/human/image')
    runner = subprocess.Popen(['face-launch', str(LAUNCH_FILE), 'input:=video',
                               f'video:={video}'], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_until(lambda: len(images.snapshot()) >= 5, 30.0)
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output = runner.communicate(timeout=20)[0].decode()
    assert images.snapshot()[-1].width == WIDTH, output
