"""face-capture-neutral: ask the running capture node to capture the performer's neutral face
(the /face/human/capture_neutral service), for machines without `ros2 service call`."""
import argparse
import sys

import rclpy

from face_msgs.srv import CaptureNeutral


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='', help='performer name (default: the subject)')
    parser.add_argument('--frames', type=int, default=0, help='frames to average (0: default)')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds to wait')
    args = parser.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node('capture_neutral_cli')
    try:
        client = node.create_client(CaptureNeutral, '/face/human/capture_neutral')
        if not client.wait_for_service(timeout_sec=args.timeout):
            print('face-capture-neutral: no capture node is running', file=sys.stderr)
            return 2
        future = client.call_async(CaptureNeutral.Request(
            profile=args.profile, num_frames=max(0, args.frames), timeout_s=args.timeout))
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout + 5)
        result = future.result()
        if result is None:
            print('face-capture-neutral: the service did not answer', file=sys.stderr)
            return 2
        print(f'face-capture-neutral: {result.message}')
        return 0 if result.success else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
