"""The Fast DDS profile the project ships (src/face_common/config/fastdds.xml, exported by
scripts/env.sh): raw 640x480 bgr8 Images (~0.9 MB) published best effort at 30 Hz from one
process reach a plain subscriber in another. With Fast DDS's built-in transports (512 KiB
shared-memory segments) a third to a half of them arrived here."""
import os
from pathlib import Path
import subprocess
import sys

PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds.xml'
FRAMES = 90

# Child process: 'pub' sends FRAMES raw images once a subscriber matched; 'sub' counts them.
CHILD = '''
import sys, time
import rclpy
from sensor_msgs.msg import Image
from face_common import qos
rclpy.init()
if sys.argv[1] == 'pub':
    node = rclpy.create_node('profile_test_pub')
    publisher = node.create_publisher(Image, 'profile_test/image', qos.LIVE_STREAM)
    while publisher.get_subscription_count() == 0:
        time.sleep(0.05)
    time.sleep(1.0)
    data = bytes(range(256)) * (640 * 480 * 3 // 256)
    for index in range(int(sys.argv[2])):
        publisher.publish(Image(height=480, width=640, encoding='bgr8', step=1920, data=data))
        time.sleep(1 / 30)
    time.sleep(1.0)
else:
    node = rclpy.create_node('profile_test_sub')
    received = []
    node.create_subscription(Image, 'profile_test/image', received.append, qos.LIVE_STREAM)
    publisher = __import__('subprocess').Popen(
        [sys.executable, '-c', sys.argv[3], 'pub', sys.argv[2]])
    while publisher.poll() is None:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(len(received))
'''


def test_raw_images_arrive_in_full_across_processes():
    env = dict(os.environ, FASTRTPS_DEFAULT_PROFILES_FILE=str(PROFILE))
    out = subprocess.run([sys.executable, '-c', CHILD, 'sub', str(FRAMES), CHILD], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    received = int(out.stdout.split()[-1])
    assert received >= 0.9 * FRAMES, f'{received} of {FRAMES} raw images arrived'
