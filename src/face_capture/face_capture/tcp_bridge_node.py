"""TCP bridge: JSON lines or length-framed Live Link Face frames -> /face/human/blendshapes.

One thread serves every client through a selector (non-blocking sockets): a slow, silent or
half-open client costs one idle entry and can never block another, which a thread per client
blocked in recv() would only avoid at the price of a thread each and of joins on shutdown.
The framing is detected per connection (tcp_protocol.StreamDecoder). Latest frame wins: of
the frames one read completes, only the newest is published (the others are counted as
superseded). Frames go through the same BlendshapeSourceNode.publish_frame as UDP frames:
same calibration, clamping and latency trace.

Bad input: one error reply line (JSON) to the client, a counter in /diagnostics and a throttled
log line; a bad frame keeps the connection, a lost framing closes it. Replies never block: a
client that does not read its replies loses them (replies_dropped).
"""
import ipaddress
import selectors
import socket
import threading
import time

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from face_capture.listener import declare_listener
from face_capture.sender_gate import BURST_S, TokenBucket
from face_capture.source_node import BlendshapeSourceNode, run_source_node
from face_capture.tcp_protocol import DEFAULT_TCP_PORT, DecodeError, StreamDecoder

_POLL_S = 0.1                       # selector timeout: shutdown and idle checks
_READ_BYTES = 64 * 1024
_LOG_EVERY_S = 5.0
_COUNTERS = ('clients_accepted', 'rejected_clients', 'over_capacity', 'idle_timeouts',
             'vanished_mid_frame', 'bad_json', 'invalid_frames', 'framing_errors',
             'line_too_long', 'rate_capped', 'superseded', 'replies_dropped')


class _Client:
    __slots__ = ('address', 'decoder', 'frames', 'last_frame', 'rate', 'sock')

    def __init__(self, sock, address, burst: float, now: float):
        self.sock = sock
        self.address = address
        self.decoder = StreamDecoder()
        self.rate = TokenBucket(burst, now)
        self.last_frame = now           # connect time counts as the last sign of life
        self.frames = 0


class TcpBridgeNode(BlendshapeSourceNode):

    def __init__(self):
        super().__init__('tcp_bridge', 'tcp')
        listener = declare_listener(
            self, DEFAULT_TCP_PORT, 'TCP port to listen on (0: any free port, logged).',
            'tcp_allow')
        self.declare_parameter('max_clients', 8, ParameterDescriptor(
            description='Connections served at once; more are told so and closed.',
            integer_range=[IntegerRange(from_value=1, to_value=1024, step=1)]))
        self.declare_parameter('idle_timeout_s', 5.0, ParameterDescriptor(
            description='A client without a complete frame for this long is closed (silent, '
                        'half-open or trickling clients).',
            floating_point_range=[FloatingPointRange(from_value=0.1, to_value=3600.0)]))
        self.declare_parameter('max_rate_hz', 120.0, ParameterDescriptor(
            description='Per-client cap on frames published, frames/s; the excess is dropped.',
            floating_point_range=[FloatingPointRange(from_value=1.0, to_value=10000.0)]))
        self.bind_address, self.networks = listener.bind_address, listener.networks
        self.max_clients = int(self.get_parameter('max_clients').value)
        self.idle_timeout = float(self.get_parameter('idle_timeout_s').value)
        self.max_rate_hz = float(self.get_parameter('max_rate_hz').value)
        self.burst = max(1.0, self.max_rate_hz * BURST_S)
        for key in _COUNTERS:
            self.counters[key] = 0
        self._next_log = {}
        self._connections = {}              # socket -> _Client (only the serve thread writes)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((self.bind_address, listener.port))
            self._listener.listen(self.max_clients)
        except (OSError, OverflowError) as exc:
            raise SystemExit(f'tcp_bridge: cannot listen on {self.bind_address}:'
                             f'{self.get_parameter("port").value}: {exc}') from None
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self.get_logger().info(
            f'listening for blendshape frames on TCP {self.bind_address}:{self.port} (JSON '
            f'lines or length-framed Live Link Face), clients {self._allow_text()}, at most '
            f'{self.max_clients} at once, {self.max_rate_hz:g} frames/s each, idle timeout '
            f'{self.idle_timeout:g} s')
        self._running = True
        self._thread = threading.Thread(target=self._serve, name='tcp_bridge', daemon=True)
        self._thread.start()

    def _allow_text(self) -> str:
        return ','.join(str(n) for n in self.networks)

    # ---- serve loop ------------------------------------------------------------------
    def _serve(self) -> None:
        while self._running:
            try:
                ready = self._selector.select(_POLL_S)
            except OSError:
                return                                   # selector closed on shutdown
            for key, _ in ready:
                try:
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        self._read(self._connections[key.fileobj])
                except Exception as exc:      # a bug must not kill the serve thread
                    if not self.context.ok():
                        return
                    self.get_logger().error(f'unexpected error serving a client: {exc!r}',
                                            throttle_duration_sec=5.0)
            self._close_idle(time.monotonic())

    def _accept(self) -> None:
        try:
            sock, address = self._listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        sock.setblocking(False)
        if not self._allowed(address[0]):
            self._refuse(sock, address, 'rejected_clients', f'{address[0]} is not in allow '
                         f'({self._allow_text()})')
            return
        if len(self._connections) >= self.max_clients:
            self._refuse(sock, address, 'over_capacity',
                         f'{self.max_clients} clients already connected (max_clients)')
            return
        client = _Client(sock, address, self.burst, time.monotonic())
        self._connections[sock] = client
        self._selector.register(sock, selectors.EVENT_READ)
        self._count('clients_accepted')
        self.get_logger().info(f'client {_name(address)} connected '
                               f'({len(self._connections)}/{self.max_clients})')

    def _allowed(self, address: str) -> bool:
        ip = ipaddress.IPv4Address(address)
        return any(ip in network for network in self.networks)

    def _refuse(self, sock, address, counter: str, why: str) -> None:
        self._count(counter)
        self._log(counter, f'client {_name(address)} refused: {why}')
        self._reply(sock, DecodeError(counter, why, True))
        sock.close()

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(_READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(client, f'connection error: {exc.strerror or exc}')
            return
        if not data:
            self._drop(client, 'disconnected')
            return
        latest = None
        stamp = self.get_clock().now().to_msg()
        for event in client.decoder.feed(data):
            if isinstance(event, DecodeError):
                self._bad_input(client, event)
            else:
                if latest is not None:
                    self._count('superseded')
                latest = event
        if latest is not None:
            self._publish(client, latest, stamp)
        if client.decoder.closed:
            self._drop(client, 'closed after a framing error')

    def _publish(self, client: _Client, frame, stamp) -> None:
        now = time.monotonic()
        client.last_frame = now
        if not client.rate.take(now, self.max_rate_hz, self.burst):
            self._count('rate_capped')
            self._log('rate_capped', f'client {_name(client.address)} sends over '
                      f'{self.max_rate_hz:g} frames/s: the excess is dropped')
            return
        client.frames += 1
        number = frame.frame_number if frame.frame_number is not None else client.frames
        device_id = frame.device_id or f'tcp:{_name(client.address)}'
        if frame.values is None:
            self.publish_no_face(number, frame.subject, device_id)
        else:
            self.publish_frame(frame.values, number, frame.subject, device_id, stamp)

    def _bad_input(self, client: _Client, error: DecodeError) -> None:
        self._count(error.kind)
        ending = '; closing the connection' if error.fatal else ''
        self._log(error.kind, f'client {_name(client.address)}: {error.message}{ending}')
        self._reply(client.sock, error)

    def _reply(self, sock, error: DecodeError) -> None:
        try:
            sock.send(error.reply())
        except OSError:                 # full send buffer (client not reading) or gone
            self._count('replies_dropped')

    def _close_idle(self, now: float) -> None:
        for client in [c for c in self._connections.values()
                       if now - c.last_frame > self.idle_timeout]:
            error = DecodeError('idle_timeouts', f'no complete frame for '
                                f'{self.idle_timeout:g} s (idle_timeout_s)', True)
            self._bad_input(client, error)
            self._drop(client, 'idle timeout')

    def _drop(self, client: _Client, why: str) -> None:
        pending = client.decoder.pending
        if pending:
            self._count('vanished_mid_frame')
            why += f' mid-frame ({pending} bytes of a frame dropped)'
        self._selector.unregister(client.sock)
        del self._connections[client.sock]
        client.sock.close()
        self.get_logger().info(f'client {_name(client.address)} {why} after '
                               f'{client.frames} frames')

    # ---- counters and logs -------------------------------------------------------------
    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def _log(self, kind: str, line: str) -> None:
        """At most one line per kind per _LOG_EVERY_S (the counters keep the full tally)."""
        now = time.monotonic()
        if now >= self._next_log.get(kind, 0.0):
            self._next_log[kind] = now + _LOG_EVERY_S
            self.get_logger().warn(f'{line} (one line per {_LOG_EVERY_S:g} s per kind)')

    def diagnostic_values(self) -> dict:
        return {'clients': len(self._connections), 'max_clients': self.max_clients,
                'bind_address': f'{self.bind_address}:{self.port}',
                'allow': self._allow_text(), 'max_rate_hz': f'{self.max_rate_hz:g}'}

    def destroy_node(self):
        self._running = False
        self._thread.join(timeout=1.0)
        for sock in list(self._connections):
            sock.close()
        self._listener.close()
        self._selector.close()
        super().destroy_node()


def _name(address) -> str:
    return f'{address[0]}:{address[1]}'


def main(args=None):
    run_source_node(TcpBridgeNode, args)


if __name__ == '__main__':
    main()
