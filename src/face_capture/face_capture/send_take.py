"""Stand-in iPhone: send a Live Link Face CSV take as real Live Link Face UDP packets.

For demos and benchmarks without a phone: packets are byte-for-byte what the app sends
(version 6, 61 big-endian floats), paced at the take's own timing. With --tcp the same frames
go to the TCP bridge instead, as JSON lines or length-framed Live Link Face packets. ROS-free.
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
from face_capture.tcp_protocol import (
    BINARY,
    DEFAULT_TCP_PORT,
    JSON,
    encode_binary_frame,
    encode_json_line,
)
from face_common.pacing import paced

# The packet's frame number is an int32: a take looped for months wraps instead of overflowing.
_FRAME_NUMBERS = 2**31
_CONNECT_RETRY_S = 0.2


class _UdpLink:
    def __init__(self, host: str, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.target = (host, port)

    def send(self, device_id, subject, frame, values) -> None:
        self.sock.sendto(pack_packet(device_id, subject, frame, values), self.target)


class _TcpLink:
    """One TCP connection to the bridge, retried until connect_timeout_s (the bridge may start
    after us in a launch file)."""

    def __init__(self, host: str, port: int, framing: str, connect_timeout_s: float):
        deadline = time.monotonic() + connect_timeout_s
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=5.0)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(_CONNECT_RETRY_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.framing = framing

    def send(self, device_id, subject, frame, values) -> None:
        if self.framing == BINARY:
            data = encode_binary_frame(pack_packet(device_id, subject, frame, values))
        else:
            data = encode_json_line(values, frame, subject, device_id, time.time())
        self.sock.sendall(data)


def strip_ros_args(argv):
    """Drop a trailing '--ros-args ...' block (added when ros2 launch starts us as a node)."""
    return argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv


def send_take(take, host: str, port: int, rate: float = 1.0, loop: bool = False,
              device_id: str = '', subject: str = 'iPhone', max_frames: int = 0,
              no_face_every: int = 0, start_s: float = 0.0, log=print, tcp: str = '',
              connect_timeout_s: float = 10.0) -> int:
    """Send the take's frames over UDP (or TCP in the framing `tcp` names: json or binary) at
    its timing, from start_s seconds into the take (a loop starts over at the beginning);
    returns the number of frames sent."""
    device_id = device_id or str(uuid.uuid4()).upper()
    link = (_TcpLink(host, port, tcp, connect_timeout_s) if tcp else _UdpLink(host, port))
    sent, frame_offset = 0, 0
    span = int(take.frame_numbers[-1] - take.frame_numbers[0]) + 2
    first = int(take.times.searchsorted(start_s))
    try:
        while True:
            for offset, _ in paced(take.times[first:], rate):
                i = first + offset
                frame = (int(take.frame_numbers[i]) + frame_offset) % _FRAME_NUMBERS
                no_face = no_face_every and sent % no_face_every == no_face_every - 1
                link.send(device_id, subject, frame, None if no_face else take.values[i])
                sent += 1
                if max_frames and sent >= max_frames:
                    return sent
            if not loop:
                return sent
            first = 0
            frame_offset += span
    finally:
        link.sock.close()
        log(f'send_take: {sent} frames sent to {"tcp" if tcp else "udp"}://{host}:{port}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('take', nargs='?', default='',
                        help='Live Link Face CSV export (default: the bundled real take)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address the receiver listens on (default: %(default)s)')
    parser.add_argument('--port', type=int, default=0,
                        help=f'its port (default: {DEFAULT_PORT}, Live Link Face\'s, for UDP; '
                             f'{DEFAULT_TCP_PORT} with --tcp)')
    parser.add_argument('--tcp', nargs='?', const=JSON, default='', choices=(JSON, BINARY),
                        help='send to the TCP bridge instead of UDP, as JSON lines (default) '
                             'or length-framed Live Link Face packets (binary)')
    parser.add_argument('--connect-timeout', type=float, default=10.0,
                        help='with --tcp: seconds to keep retrying the connection')
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
    port = args.port or (DEFAULT_TCP_PORT if args.tcp else DEFAULT_PORT)
    scheme = f'tcp ({args.tcp})' if args.tcp else 'udp'
    path = args.take or bundled_take_path()
    try:
        take = read_take(path)
    except (OSError, TakeFormatError) as exc:
        print(f'send_take: cannot read {path}: {exc}', file=sys.stderr)
        return 2
    print(f'send_take: "{take.name}" {len(take)} frames ({take.duration:.1f} s, '
          f'{take.mean_rate:.1f} fps) from {args.start:.1f} s -> {scheme} {args.host}:{port} '
          f'at x{args.rate}',
          flush=True)
    try:
        time.sleep(args.start_delay)
        send_take(take, args.host, port, args.rate, args.loop == 'true', args.device_id,
                  args.subject, args.frames, start_s=args.start, tcp=args.tcp,
                  connect_timeout_s=args.connect_timeout)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f'send_take: {scheme} {args.host}:{port}: {exc}', file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C on the way out (a terminal signals the whole group and `ros2 launch`
        # signals each process again) must not end in a traceback at interpreter shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return 0


if __name__ == '__main__':
    sys.exit(main())
