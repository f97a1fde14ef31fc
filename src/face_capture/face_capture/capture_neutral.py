"""face-capture-neutral: ask the running capture node to capture the performer's neutral face
(the /face/human/capture_neutral service), for machines without `ros2 service call`; or, with
--take, compute it offline from a recorded take's first frames (the performer at rest) into a
calibration folder, made active there for the capture nodes that start from it."""
import argparse
from pathlib import Path
import sys

from face_capture.calibration import CalibrationError, ProfileStore, neutral_from_frames
from face_capture.takes import TakeFormatError, read_take
from face_common import topics

TAKE_NEUTRAL_FRAMES = 30            # the first second of a take


def from_take(path: str, name: str, frames: int, directory) -> int:
    from face_capture.bundled import bundled_take_path
    path = path or str(bundled_take_path())
    try:
        take = read_take(path)
        profile = neutral_from_frames(name or 'performer', take.values[:frames])
        store = ProfileStore(directory)
        saved = store.save(profile)
        store.set_active(profile.name)
    except (OSError, TakeFormatError, CalibrationError) as exc:
        print(f'face-capture-neutral: {exc}', file=sys.stderr)
        return 2
    print(f'face-capture-neutral: neutral profile "{profile.name}" from the first '
          f'{profile.frames} frames of {Path(path).name} saved to {saved} and active')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='', help='performer name (default: the subject)')
    parser.add_argument('--frames', type=int, default=0, help='frames to average (0: default)')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds to wait')
    parser.add_argument('--take', nargs='?', const='', default=None, metavar='CSV',
                        help='offline: from the first frames of this take (no CSV: the '
                             'bundled take) instead of the running capture node')
    parser.add_argument('--dir', default='~/.local/share/face_shadowing/calibration',
                        help='with --take: the calibration folder to write')
    args = parser.parse_args(argv)
    if args.take is not None:
        return from_take(args.take, args.profile, args.frames or TAKE_NEUTRAL_FRAMES, args.dir)
    import rclpy

    from face_common.node import shutdown_context, start_cli_node
    from face_msgs.srv import CaptureNeutral
    rclpy.init()
    node = start_cli_node(lambda: rclpy.create_node('capture_neutral_cli'))
    if node is None:
        shutdown_context()
        return 130
    try:
        client = node.create_client(CaptureNeutral, topics.CAPTURE_NEUTRAL.name)
        if not client.wait_for_service(timeout_sec=args.timeout):
            print('face-capture-neutral: no capture node is running', file=sys.stderr)
            return 2
        future = client.call_async(CaptureNeutral.Request(
            profile=args.profile, num_frames=max(0, args.frames), timeout_s=args.timeout))
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout + 5)
        result = future.result()
        if not rclpy.ok():                  # Ctrl-C while it waited for the answer
            return 130
        if result is None:
            print('face-capture-neutral: the service did not answer', file=sys.stderr)
            return 2
        print(f'face-capture-neutral: {result.message}')
        return 0 if result.success else 1
    except KeyboardInterrupt:               # stopped while waiting (a demo whose node died)
        return 130
    finally:
        node.destroy_node()
        shutdown_context()


if __name__ == '__main__':
    sys.exit(main())
