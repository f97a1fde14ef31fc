"""Image input per-frame paths: the camera node's capture -> publish and the HTTP stream's
JPEG decode -> publish, in process on a real rclpy publisher, and the whole hop
POST /stream -> http_stream node -> /face/human/image subscriber.

Baselines, measured in the same run:
- capture -> publish vs the OpenCV read alone (a 640x480 MJPG video file): what conversion,
  the JPEG encode and publishing add;
- decode -> publish vs cv2.imdecode alone (a 480x360 JPEG, the VividFace app's size): what
  the header checks, conversion and publishing add;
- POST -> node -> subscriber vs a POST to a bare http.server that only reads the body.
Raw image delivery: the camera node playing a 640x480 clip at --hz, and a plain rclpy subscriber
counting its raw bgr8 Images (~0.9 MB each, best effort) against its JPEGs, with the Fast DDS
profile the project ships (scripts/env.sh) and without it (Fast DDS's built-in transports).
Run: make bench (or python bench/camera.py in the activated workspace).
"""
import argparse
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import os
from pathlib import Path
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import node_and_probe, report, time_calls
from face_capture.http_stream import decode_jpeg


def face_frame(width: int, height: int, index: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    image = np.dstack([(x + index) % 256, y % 256, (x + y) % 256]).astype(np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 3, (190, 170, 150), -1)
    return image


def write_video(path: str, frames: int = 60) -> None:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 30.0, (640, 480))
    for index in range(frames):
        writer.write(face_frame(640, 480, index))
    writer.release()


def bench_in_process(iterations: int) -> None:
    import rclpy
    from sensor_msgs.msg import CompressedImage, Image

    from face_common import qos, topics
    from face_common.images import compressed_from_bytes, compressed_image, image_msg

    rclpy.init()
    node = rclpy.create_node('bench_camera')
    image_pub = node.create_publisher(Image, topics.HUMAN_IMAGE.name, qos.LIVE_STREAM)
    compressed_pub = node.create_publisher(CompressedImage, topics.HUMAN_IMAGE_COMPRESSED.name,
                                           qos.LIVE_STREAM)
    clock = node.get_clock()
    try:
        with tempfile.TemporaryDirectory() as folder:
            video = os.path.join(folder, 'clip.avi')
            write_video(video)
            capture = cv2.VideoCapture(video)

            def read():
                ok, frame = capture.read()
                if not ok:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, frame = capture.read()
                return frame

            def capture_and_publish():
                frame = read()
                stamp = clock.now().to_msg()
                image_pub.publish(image_msg(frame, stamp, 'camera'))
                compressed_pub.publish(compressed_image(frame, stamp, 'camera', quality=80))
            report('camera: capture -> Image + JPEG published (640x480)',
                   time_calls(capture_and_publish, iterations, warmup=30),
                   time_calls(read, iterations, warmup=30), 'OpenCV read alone')
            capture.release()
        jpeg = cv2.imencode('.jpg', face_frame(480, 360), [cv2.IMWRITE_JPEG_QUALITY, 80])[1]
        body = jpeg.tobytes()

        def decode_and_publish():
            bgr = decode_jpeg(body, 4096 * 4096)
            stamp = clock.now().to_msg()
            image_pub.publish(image_msg(bgr, stamp, 'camera'))
            compressed_pub.publish(compressed_from_bytes(body, stamp, 'camera'))
        report('http: JPEG decode -> Image + JPEG published (480x360)',
               time_calls(decode_and_publish, iterations, warmup=30),
               time_calls(lambda: cv2.imdecode(jpeg, cv2.IMREAD_COLOR), iterations, warmup=30),
               'cv2.imdecode alone')
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


class _DrainHandler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_POST(self):
        self.rfile.read(int(self.headers['Content-Length']))
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


def post_round_trips(port: int, body, frames: int, hz: float, on_sent=None) -> list:
    """POST frames bodies (one body, or a list taken in turn) on one keep-alive connection."""
    bodies = body if isinstance(body, list) else [body]
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    samples = []
    for index in range(frames):
        t0 = time.perf_counter_ns()
        if on_sent:
            on_sent(t0)
        connection.request('POST', '/stream', body=bodies[index % len(bodies)])
        connection.getresponse().read()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        time.sleep(1.0 / hz)
    connection.close()
    return samples


def bench_http_baseline(body: bytes, frames: int, hz: float) -> list:
    server = ThreadingHTTPServer(('127.0.0.1', 0), _DrainHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return post_round_trips(server.server_address[1], body, frames, hz)
    finally:
        server.shutdown()
        server.server_close()


def bench_node_hop(body: bytes, frames: int, hz: float):
    """POST -> http_stream node process -> Image at a subscriber here, per frame (ms)."""
    import rclpy
    from sensor_msgs.msg import Image

    from face_common import qos, topics

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    with node_and_probe([('face_capture', 'http_stream', 'bench_http_stream',
                          {'port': str(port)})], 'bench_http_probe') as node:
        sent_at, latencies = [], []
        arrived = threading.Event()

        def on_image(msg):
            if sent_at:
                latencies.append((time.perf_counter_ns() - sent_at.pop()) / 1e6)
            arrived.set()
        node.create_subscription(Image, topics.HUMAN_IMAGE.name, on_image, qos.LIVE_STREAM)
        threading.Thread(target=rclpy.spin, args=(node,), daemon=True).start()
        deadline = time.monotonic() + 30
        while not arrived.is_set() and time.monotonic() < deadline:      # start, discovery
            try:
                post_round_trips(port, body, 1, 10.0)
            except OSError:
                time.sleep(0.2)
            arrived.wait(0.1)
        if not arrived.is_set():
            raise RuntimeError('http_stream node never published')
        time.sleep(0.5)
        latencies.clear()

        def mark(t0):
            sent_at.clear()
            sent_at.append(t0)
        post_round_trips(port, body, frames, hz, on_sent=mark)
        time.sleep(0.3)
        return latencies


def count_raw_images(frames: int, hz: float) -> None:
    """Prints how many of the camera node's images arrived here raw, of those it published
    (its JPEGs, which arrive in full, tell what was published)."""
    import rclpy
    from sensor_msgs.msg import CompressedImage, Image

    from face_common import qos, topics
    with tempfile.TemporaryDirectory() as folder:
        video = os.path.join(folder, 'clip.avi')
        write_video(video)
        with node_and_probe([('face_capture', 'camera', 'bench_camera_node',
                              {'source': video, 'rate_hz': hz})],
                            'bench_raw_delivery_probe') as node:
            published, raw = set(), set()

            def stamp_ns(msg):
                return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            node.create_subscription(CompressedImage, topics.HUMAN_IMAGE_COMPRESSED.name,
                                     lambda msg: published.add(stamp_ns(msg)), qos.LIVE_STREAM)
            node.create_subscription(Image, topics.HUMAN_IMAGE.name,
                                     lambda msg: raw.add(stamp_ns(msg)), qos.LIVE_STREAM)
            threading.Thread(target=rclpy.spin, args=(node,), daemon=True).start()
            deadline = time.monotonic() + 30
            while not published and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
            start = max(published)
            time.sleep(frames / hz)
            end = max(published)
            time.sleep(0.5)
            sent = {stamp for stamp in published if start < stamp <= end}
            print(f'{len(sent)} {len(sent & raw)}', flush=True)


def raw_delivery(frames: int, hz: float, profile: bool):
    """(published, received raw) from count_raw_images in a child process, with or without
    the project's Fast DDS profile (it must apply to both participants)."""
    env = dict(os.environ)
    if not profile:
        env.pop('FASTRTPS_DEFAULT_PROFILES_FILE', None)
    out = subprocess.run([sys.executable, __file__, '--count-raw-images', '--frames', str(frames),
                          '--hz', str(hz)], env=env, capture_output=True, text=True, check=True)
    sent, received = out.stdout.split()[-2:]
    return int(sent), int(received)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=600)
    parser.add_argument('--frames', type=int, default=300, help='frames through the node')
    parser.add_argument('--hz', type=float, default=30.0)
    parser.add_argument('--count-raw-images', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_raw_images:
        count_raw_images(args.frames, args.hz)
        return
    print(f'== camera and HTTP image inputs ({os.cpu_count()} cores)')
    bench_in_process(args.iterations)
    body = cv2.imencode('.jpg', face_frame(480, 360), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    baseline = bench_http_baseline(body, args.frames, args.hz)
    latencies = bench_node_hop(body, args.frames, args.hz)
    report(f'POST /stream -> node -> Image subscriber ({args.hz:.0f} Hz)', latencies, baseline,
           'POST to a bare http.server')
    print(f'frames posted {args.frames}, images received {len(latencies)}')
    for profile, kind in ((False, "Fast DDS's built-in transports"),
                          (True, "the project's Fast DDS profile")):
        sent, received = raw_delivery(args.frames, args.hz, profile)
        print(f'camera 640x480 bgr8 Images at {args.hz:g} Hz, {kind}: published {sent}, '
              f'received {received} by a plain subscriber', flush=True)


if __name__ == '__main__':
    main()
