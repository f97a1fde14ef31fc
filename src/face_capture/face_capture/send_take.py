"""Stand-in iPhone: send a Live Link Face CSV take as real Live Link Face UDP packets.

For demos and benchmarks without a phone: packets are byte-for-byte what the app sends
(version 6, 61 big-endian floats), paced at the take's own timing. ROS-free.
"""
import argparse
import signal
import socket
import sys
import time
import uuid

from face_capture.bundled import bundled_take_path
from face_capture.livelink import DEFAULT_PORT, pack_packet
from face_capture.takes import TakeFormatError, read_take
from face_common.pacing import paced

# The packet's frame number is an int32: a take looped for months wraps instead of overflowing.
_FRAME_NUMBERS = 2**31


def strip_ros_args(argv):
    """Drop a trailing '--ros-args ...' block (added when ros2 launch starts us as a node)."""
    return argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv


def send_take(take, host: str, port: int, rate: float = 1.0, loop: bool = False,
              device_id: str = '', subject: str = 'iPhone', max_frames: int = 0,
              no_face_every: int = 0, start_s: float = 0.0, log=print) -> int:
    """Send the take's frames over UDP at its timing, from start_s seconds into the take (a
    loop starts over at the beginning); returns the number of packets sent."""
    device_id = device_id or str(uuid.uuid4()).upper()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent, frame_offset = 0, 0
    span = int(take.frame_numbers[-1] - take.frame_numbers[0]) + 2
    first = int(take.times.searchsorted(start_s))
    try:
        while True:
            for offset, _ in paced(take.times[first:], rate):
                i = first + offset
                frame = (int(take.frame_numbers[i]) + frame_offset) % _FRAME_NUMBERS
                if no_face_every and sent % no_face_every == no_face_every - 1:
                    packet = pack_packet(device_id, subject, frame)       # no face in view
                else:
                    packet = pack_packet(device_id, subject, frame, take.values[i])
                sock.sendto(packet, (host, port))
                sent += 1
                if max_frames and sent >= max_frames:
                    return sent
            if not loop:
                return sent
            first = 0
            frame_offset += span
    finally:
        sock.close()
        log(f'send_take: {sent} packets sent to {host}:{port}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('take', nargs='?', default='',
                        help='Live Link Face CSV export (default: the bundled real take)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address the receiver listens on (default: %(default)s)')
    parser.add_argument('--port', type=int, default=DEFAULT_PORT,
                        help='its UDP port (default: %(default)s, Live Link Face\'s)')
    parser.add_argument('--rate', type=float, default=1.0, help='speed factor')
    parser.add_argument('--loop', nargs='?', const='true', default='false',
                        choices=('true', 'false'), help='start over at the end')
    parser.add_argument('--device-id', default='', help='default: a random UUID')
    parser.add_argument('--subject', default='iPhone',
                        help='subject name in each packet (default: %(default)s)')
    parser.add_argument('--frames', type=int, default=0, help='stop after this many packets')
    parser.add_argument('--start', type=float, default=0.0,
                        help='seconds into the take to start from')
    parser.add_argument('--start-delay', type=float, default=0.0,
                        help='seconds to wait before the first packet')
    args = parser.parse_args(strip_ros_args(sys.argv[1:] if argv is None else argv))
    if args.rate <= 0:
        parser.error('--rate must be positive')
    path = args.take or bundled_take_path()
    try:
        take = read_take(path)
    except (OSError, TakeFormatError) as exc:
        print(f'send_take: cannot read {path}: {exc}', file=sys.stderr)
        return 2
    print(f'send_take: "{take.name}" {len(take)} frames ({take.duration:.1f} s, '
          f'{take.mean_rate:.1f} fps) from {args.start:.1f} s -> udp://{args.host}:{args.port} '
          f'at x{args.rate}',
          flush=True)
    try:
        time.sleep(args.start_delay)
        send_take(take, args.host, args.port, args.rate, args.loop == 'true', args.device_id,
                  args.subject, args.frames, start_s=args.start)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C on the way out (a terminal signals the whole group and `ros2 launch`
        # signals each process again) must not end in a traceback at interpreter shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return 0


if __name__ == '__main__':
    sys.exit(main())
