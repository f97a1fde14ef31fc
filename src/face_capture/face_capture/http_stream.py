"""The VividFace-compatible HTTP endpoint: `POST /stream` with a raw JPEG body, one request a
frame (the paper's iOS app: application/octet-stream, ~480x360, ~30 fps, keep-alive).

Standard library only (http.server with a thread per connection): one route, bodies of a few
hundred kB, no need for a framework. Everything a client sends is checked before it costs
much: the sender against the allowlist, the method and path, the optional token (header
`Authorization: Bearer <token>` or, for an app whose URL is all one can configure,
`?token=<token>`), Content-Length against the limit before reading and the bytes read against
it while reading (chunked bodies too), the JPEG's start marker and its frame header
(dimensions within a pixel budget, so a small file that claims a huge image cannot make the
decoder allocate gigabytes), then the full decode. Each refusal is a 4xx with a one-line
reason, counted by kind. Slow clients: every read times out after `read_timeout_s`, and a
whole request after `request_timeout_s` (the server's poll loop shuts such sockets), and at
most `max_clients` connections are served at once (503 beyond).
ROS-free: the node (http_stream_node) wires `on_frame` to the image topics.
"""
from dataclasses import dataclass, field
import hmac
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import ipaddress
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np

from face_common.jpeg import CorruptJpeg, jpeg_to_bgr8

DEFAULT_PORT = 5000                  # the VividFace app's server port
ROUTE = '/stream'
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_PIXELS = 4096 * 4096
READ_CHUNK = 64 * 1024
MAX_LENGTH_DIGITS = 18           # any real Content-Length; more would be a huge int
LINGER_S = 0.5                    # reading what a refused client still sends
JPEG_START = b'\xff\xd8\xff'
# Start-of-frame markers (baseline, extended, progressive, lossless, arithmetic); C4, C8 and
# CC share the range but are other segments.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
# Rejection kinds, as counted in /diagnostics.
REJECTIONS = ('forbidden', 'bad_request', 'unauthorized', 'too_large', 'not_jpeg',
              'undecodable', 'timed_out', 'busy')


class NotJpeg(ValueError):
    """The body is not a JPEG this endpoint accepts."""


def jpeg_dimensions(data) -> tuple:
    """(width, height) from the first start-of-frame segment; NotJpeg if there is none
    before the scan data, or the bytes are not JPEG at all."""
    if bytes(data[:3]) != JPEG_START:
        raise NotJpeg('not a JPEG (no FF D8 FF start marker)')
    position, size = 2, len(data)
    while position + 4 <= size:
        if data[position] != 0xFF:
            raise NotJpeg(f'corrupt JPEG: no marker at byte {position}')
        marker = data[position + 1]
        if marker == 0xFF:                              # fill byte
            position += 1
            continue
        if marker in _STANDALONE or marker == 0xD8:
            position += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        length = int.from_bytes(data[position + 2:position + 4], 'big')
        if length < 2:
            raise NotJpeg(f'corrupt JPEG: segment length {length} at byte {position}')
        if marker in _SOF_MARKERS:
            if position + 9 > size or length < 7:
                break
            height = int.from_bytes(data[position + 5:position + 7], 'big')
            width = int.from_bytes(data[position + 7:position + 9], 'big')
            return width, height
        position += 2 + length
    raise NotJpeg('corrupt JPEG: no frame header (SOF) before the image data')


def decode_jpeg(data, max_pixels: int) -> np.ndarray:
    """BGR pixels of a JPEG body within the pixel budget; NotJpeg (reason) otherwise."""
    width, height = jpeg_dimensions(data)
    if width == 0 or height == 0:
        raise NotJpeg(f'JPEG of {width}x{height} pixels')
    if width * height > max_pixels:
        raise NotJpeg(f'JPEG of {width}x{height} pixels is over the limit of {max_pixels}')
    try:
        return jpeg_to_bgr8(data)
    except CorruptJpeg as exc:
        raise NotJpeg(f'corrupt JPEG: {exc}') from None


@dataclass
class StreamConfig:
    networks: list                       # allowed senders (face_capture.sender_gate)
    token: str = ''                      # empty: no token asked
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    read_timeout_s: float = 5.0          # silence on a connection before it is dropped
    request_timeout_s: float = 10.0      # one whole request, first byte to last
    max_clients: int = 8


@dataclass
class StreamStats:
    requests: int = 0
    accepted: int = 0
    body_bytes: int = 0
    rejected: dict = field(default_factory=lambda: dict.fromkeys(REJECTIONS, 0))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, kind: str) -> None:
        with self.lock:
            self.rejected[kind] += 1

    def as_dict(self) -> dict:
        with self.lock:
            return {'requests': self.requests, 'accepted': self.accepted,
                    'body_bytes': self.body_bytes, **self.rejected}


class Endpoint:
    """What a request handler needs: the rules, the counters, and where frames and
    refusals go. on_frame(jpeg_bytes, bgr, client_address) and on_reject(kind, client_address,
    reason) are called on the connection's thread."""

    def __init__(self, config: StreamConfig, on_frame, on_reject=None):
        self.config = config
        self.stats = StreamStats()
        self.on_frame = on_frame
        self.on_reject = on_reject or (lambda kind, client, reason: None)
        self._any_sender = any(n.prefixlen == 0 for n in config.networks)
        self._token = config.token.encode()

    def sender_allowed(self, address: str) -> bool:
        if self._any_sender:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.config.networks)

    def token_ok(self, authorization: str, query: str) -> bool:
        if not self._token:
            return True
        offered = ''
        scheme, _, credentials = (authorization or '').partition(' ')
        if scheme.lower() == 'bearer':
            offered = credentials.strip()
        elif query:
            try:
                offered = (parse_qs(query, max_num_fields=8).get('token') or [''])[0]
            except ValueError:                       # more fields than any app sends
                return False
        return hmac.compare_digest(offered.encode('utf-8', 'surrogateescape'), self._token)


class _Refused(Exception):
    """A request answered with a 4xx (status, kind, reason); close: drop the connection after
    (the rest of the body was not read)."""

    def __init__(self, status: HTTPStatus, kind: str, reason: str, close: bool = False):
        super().__init__(reason)
        self.status, self.kind, self.reason, self.close = status, kind, reason, close


class StreamHandler(BaseHTTPRequestHandler):
    """One connection: requests until the client closes, a refusal drops it, or it times out."""

    protocol_version = 'HTTP/1.1'            # keep-alive: the app posts 30 frames a second
    server_version = 'face-http-stream'
    sys_version = ''

    @property
    def endpoint(self) -> Endpoint:
        return self.server.endpoint

    def setup(self):
        self.timeout = self.endpoint.config.read_timeout_s
        super().setup()

    def handle_one_request(self):
        watchdog = getattr(self.server, 'watch', None)
        if watchdog:
            watchdog(self.connection, self.endpoint.config.request_timeout_s)
        try:
            super().handle_one_request()
        finally:
            if watchdog:
                watchdog(self.connection, None)

    def parse_request(self) -> bool:
        """http.server's parsing (its own 400/414/431/505 answers), then this endpoint's
        rules for everything but the body."""
        with self.endpoint.stats.lock:
            self.endpoint.stats.requests += 1
        self._continue_expected = False
        if not super().parse_request():
            return False
        try:
            self._check_request()
        except _Refused as refusal:
            self._refuse(refusal)
            return False
        return True

    def handle_expect_100(self) -> bool:
        """http.server answers `Expect: 100-continue` while parsing the headers, before this
        endpoint has judged them; the 100 waits until the sender, route, token and length
        pass (_send_continue), so a client that would be refused gets the 4xx instead and
        never uploads the body."""
        self._continue_expected = True
        return True

    def _send_continue(self) -> None:
        if self._continue_expected:
            self._continue_expected = False
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()

    def _check_request(self) -> None:
        """Every refusal here closes the connection: the body is still unread."""
        endpoint = self.endpoint
        if not endpoint.sender_allowed(self.client_address[0]):
            raise _Refused(HTTPStatus.FORBIDDEN, 'forbidden',
                           f'{self.client_address[0]} is not allowed to stream', close=True)
        try:
            target = urlsplit(self.path)
        except ValueError:                           # 'http://[x' (an invalid IPv6 host)
            raise _Refused(HTTPStatus.BAD_REQUEST, 'bad_request', 'invalid request target',
                           close=True) from None
        if target.path != ROUTE:
            raise _Refused(HTTPStatus.NOT_FOUND, 'bad_request',
                           f'no route {target.path[:80]!r}: POST frames to {ROUTE}', close=True)
        if self.command != 'POST':
            raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, 'bad_request',
                           f'{self.command[:16]} is not allowed: POST a JPEG to {ROUTE}',
                           close=True)
        if not endpoint.token_ok(self.headers.get('Authorization', ''), target.query):
            raise _Refused(HTTPStatus.UNAUTHORIZED, 'unauthorized',
                           'missing or wrong token (Authorization: Bearer <token> or '
                           '?token=<token>)', close=True)

    def do_POST(self):
        try:
            body = self._read_body()
            try:
                image = decode_jpeg(body, self.endpoint.config.max_pixels)
            except NotJpeg as exc:
                kind = 'undecodable' if bytes(body[:3]) == JPEG_START else 'not_jpeg'
                raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, kind, str(exc)) from None
        except _Refused as refusal:
            self._refuse(refusal)
            return
        stats = self.endpoint.stats
        with stats.lock:
            stats.accepted += 1
            stats.body_bytes += len(body)
        self.endpoint.on_frame(body, image, self.client_address)
        self._reply(HTTPStatus.OK, 'ok')

    def _read_body(self) -> bytes:
        config = self.endpoint.config
        # several Transfer-Encoding fields are one list ("chunked, gzip"), read as a whole
        transfer = ', '.join(
            f.strip() for f in self.headers.get_all('Transfer-Encoding', ())).lower()
        deadline = time.monotonic() + config.request_timeout_s
        if transfer == 'chunked':
            if 'Content-Length' in self.headers:    # where it ends is in doubt (RFC 9112 6.1)
                self.close_connection = True
            self._send_continue()
            return self._read_chunked(config.max_body_bytes, deadline)
        if transfer:
            raise _Refused(HTTPStatus.BAD_REQUEST,
                           'bad_request', f'transfer encoding {transfer[:32]!r} not supported',
                           close=True)
        lengths = self.headers.get_all('Content-Length') or []
        if not lengths:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, 'bad_request',
                           'Content-Length (or chunked encoding) required', close=True)
        text = lengths[0].strip()
        if (len(set(lengths)) > 1 or not text.isdigit() or not text.isascii()
                or len(text) > MAX_LENGTH_DIGITS):
            raise _Refused(HTTPStatus.BAD_REQUEST, 'bad_request',
                           'invalid Content-Length', close=True)
        length = int(text)
        if length > config.max_body_bytes:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, 'too_large',
                           f'body of {length} bytes is over the limit of '
                           f'{config.max_body_bytes}', close=True)
        self._send_continue()
        return self._read_exactly(length, deadline)

    def _read_exactly(self, length: int, deadline: float) -> bytes:
        body = bytearray()
        while len(body) < length:
            body += self._read_some(min(READ_CHUNK, length - len(body)), deadline)
        return bytes(body)

    def _read_some(self, most: int, deadline: float) -> bytes:
        if time.monotonic() > deadline:
            raise _Refused(HTTPStatus.REQUEST_TIMEOUT, 'timed_out', 'request took too long',
                           close=True)
        try:
            chunk = self.rfile.read1(most)
        except TimeoutError:
            raise _Refused(HTTPStatus.REQUEST_TIMEOUT, 'timed_out',
                           'client stopped sending', close=True) from None
        except OSError:                      # the watchdog shut the socket, or a reset
            raise _Refused(HTTPStatus.REQUEST_TIMEOUT, 'timed_out', 'connection lost',
                           close=True) from None
        if not chunk:
            raise _Refused(HTTPStatus.BAD_REQUEST, 'bad_request', 'body ended early',
                           close=True)
        return chunk

    def _read_line(self, deadline: float) -> bytes:
        line = bytearray()
        while not line.endswith(b'\n'):
            if len(line) > 1024:
                raise _Refused(HTTPStatus.BAD_REQUEST, 'bad_request', 'chunk header too long',
                               close=True)
            line += self._read_some(1, deadline)
        return bytes(line)

    def _read_chunked(self, limit: int, deadline: float) -> bytes:
        body = bytearray()
        while True:
            size_text = self._read_line(deadline).split(b';', 1)[0].strip()
            try:
                if not size_text or not all(c in b'0123456789abcdefABCDEF' for c in size_text):
                    raise ValueError
                size = int(size_text, 16)
            except ValueError:
                raise _Refused(HTTPStatus.BAD_REQUEST, 'bad_request', 'invalid chunk size',
                               close=True) from None
            if size == 0:
                while self._read_line(deadline) not in (b'\r\n', b'\n'):   # trailers
                    pass
                return bytes(body)
            if len(body) + size > limit:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, 'too_large',
                               f'chunked body over the limit of {limit} bytes', close=True)
            body += self._read_exactly(size, deadline)
            if self._read_line(deadline) not in (b'\r\n', b'\n'):
                raise _Refused(HTTPStatus.BAD_REQUEST, 'bad_request', 'chunk not terminated',
                               close=True)

    def _refuse(self, refusal: _Refused) -> None:
        self.endpoint.stats.count(refusal.kind)
        self.endpoint.on_reject(refusal.kind, self.client_address, refusal.reason)
        if refusal.close:
            self.close_connection = True
        self._reply(refusal.status, refusal.reason)

    def finish(self):
        """Close gently: closing a socket with unread bytes (a refused body, requests
        after the last one served) sends a reset, which can destroy the last reply before the
        client reads it. So: end our side, then read what the client still sends, for at most
        LINGER_S."""
        super().finish()
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_S
            self.connection.settimeout(LINGER_S)
            while time.monotonic() < deadline and self.connection.recv(READ_CHUNK):
                pass
        except OSError:
            pass

    def _reply(self, status: HTTPStatus, text: str) -> None:
        body = (text + '\n').encode('utf-8', 'backslashreplace')
        if self.request_version == 'HTTP/0.9':      # http.server would omit the status line
            self.request_version = 'HTTP/1.0'
        try:
            self.send_response(status)
            self.send_header('Content-Type', 'text/plain; charset=utf-8')
            self.send_header('Content-Length', str(len(body)))
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header('WWW-Authenticate', 'Bearer')
            if self.close_connection:
                self.send_header('Connection', 'close')
            self.end_headers()
            self.wfile.write(body)
        except OSError:                       # the client is gone: nothing to tell it
            self.close_connection = True

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (malformed request line or headers): a short reason,
        no HTML page."""
        reason = message or HTTPStatus(code).phrase
        self.endpoint.stats.count('bad_request')
        self.endpoint.on_reject('bad_request', self.client_address, reason)
        self.close_connection = True
        self._reply(HTTPStatus(code), reason)

    def log_message(self, format, *args):
        """Quiet: refusals reach the node's log through on_reject, rate-limited."""


class StreamServer(ThreadingHTTPServer):
    """Threads per connection, at most max_clients at once; the serve loop also shuts
    connections whose request has run past its deadline (slow-loris clients)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, endpoint: Endpoint):
        self.endpoint = endpoint
        self._deadlines = {}
        self._deadlines_lock = threading.Lock()
        self._active = threading.BoundedSemaphore(endpoint.config.max_clients)
        super().__init__(address, StreamHandler)

    def watch(self, connection, timeout_s) -> None:
        """Start (timeout_s) or stop (None) the deadline of the request on `connection`."""
        with self._deadlines_lock:
            if timeout_s is None:
                self._deadlines.pop(connection, None)
            else:
                self._deadlines[connection] = time.monotonic() + timeout_s

    def service_actions(self):
        now = time.monotonic()
        with self._deadlines_lock:
            late = [c for c, deadline in self._deadlines.items() if deadline < now]
            for connection in late:
                del self._deadlines[connection]
        for connection in late:
            self.endpoint.stats.count('timed_out')
            self.endpoint.on_reject('timed_out', _peer(connection), 'request took too long')
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def process_request(self, request, client_address):
        if not self._active.acquire(blocking=False):
            self.endpoint.stats.count('busy')
            self.endpoint.on_reject('busy', client_address, 'too many clients')
            try:
                request.sendall(b'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 17\r\n'
                                b'Connection: close\r\n\r\ntoo many clients\n')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._active.release()


def _peer(connection) -> tuple:
    try:
        return connection.getpeername()
    except OSError:
        return ('?', 0)
