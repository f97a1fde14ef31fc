"""The VividFace HTTP endpoint on a real loopback server, driven by real HTTP clients
(http.client, urllib) and raw sockets for what a well-behaved client would never send."""
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from test_nodes import diag_values

from conftest import free_port, wait_until
from face_capture.http_stream import (
    Endpoint,
    NotJpeg,
    StreamConfig,
    StreamServer,
    decode_jpeg,
    jpeg_dimensions,
)
from face_capture.sender_gate import parse_allowlist
from face_common import qos
from face_common.images import image_to_array


def face_like_jpeg(width=480, height=360, quality=80) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    image = np.dstack([x % 256, y % 256, (x + y) % 256]).astype(np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 3, (200, 180, 160), -1)
    return cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


JPEG = face_like_jpeg()


class Running:
    """A StreamServer on an ephemeral loopback port, serving on its own thread."""

    def __init__(self, **config):
        networks = parse_allowlist(config.pop('allow', '127.0.0.0/8'))
        self.frames, self.rejections = [], []
        self.endpoint = Endpoint(StreamConfig(networks, **config),
                                 lambda jpeg, image, client: self.frames.append((jpeg, image)),
                                 lambda kind, client, reason: self.rejections.append(kind))
        self.server = StreamServer(('127.0.0.1', 0), self.endpoint)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def post(self, body, headers=None, path='/stream', method='POST'):
        return self.post_to(self.port, body, headers, path, method)

    @staticmethod
    def post_to(port, body, headers=None, path='/stream', method='POST'):
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
        connection.request(method, path, body=body,
                           headers={'Content-Type': 'application/octet-stream', **(headers or {})})
        response = connection.getresponse()
        result = response.status, response.read().decode()
        connection.close()
        return result

    def raw(self, data: bytes, shut_write=True, timeout=10.0) -> bytes:
        with socket.create_connection(('127.0.0.1', self.port), timeout=timeout) as sock:
            sock.sendall(data)
            if shut_write:
                sock.shutdown(socket.SHUT_WR)
            return _read_all(sock)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _read_all(sock) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b''.join(chunks)


@pytest.fixture
def server(request):
    params = getattr(request, 'param', {})
    running = Running(**params)
    yield running
    running.stop()


def test_a_jpeg_posted_like_the_vividface_app_is_decoded_and_handed_on(server):
    status, text = server.post(JPEG)
    assert (status, text) == (200, 'ok\n')
    jpeg, image = server.frames[-1]
    assert jpeg == JPEG and image.shape == (360, 480, 3)
    assert server.endpoint.stats.as_dict()['accepted'] == 1


def test_keep_alive_connection_posts_many_frames(server):
    connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
    for _ in range(20):
        connection.request('POST', '/stream', body=JPEG)
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    connection.close()
    assert len(server.frames) == 20


@pytest.mark.parametrize('body, status, reason, kind', [
    (b'GIF89a' + bytes(100), 415, 'not a JPEG', 'not_jpeg'),
    (cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes(), 415, 'not a JPEG',
     'not_jpeg'),
    (b'', 415, 'not a JPEG', 'not_jpeg'),
    (JPEG[:3] + bytes(200), 415, 'corrupt JPEG', 'undecodable'),
    (JPEG[:200], 415, 'JPEG', 'undecodable'),
    (JPEG[:-2] + bytes(16) + JPEG[-2:], 415, 'corrupt JPEG: Corrupt JPEG data', 'undecodable'),
    (JPEG[:len(JPEG) // 2], 415, 'corrupt JPEG: Premature end of JPEG file', 'undecodable'),
])
def test_bodies_that_are_not_a_usable_jpeg_get_a_415_with_the_reason(server, capfd, body,
                                                                       status, reason, kind):
    """libjpeg's warnings (extraneous bytes, a truncated file) are refusals here, not a
    half-decoded frame and a line on the process's stderr."""
    got_status, text = server.post(body)
    assert got_status == status and reason in text
    assert server.endpoint.stats.as_dict()[kind] == 1
    assert not server.frames
    assert 'JPEG' not in capfd.readouterr().err


def test_a_jpeg_that_claims_a_huge_image_is_refused_before_decoding(server):
    bomb = bytearray(face_like_jpeg(64, 48))
    width, height = jpeg_dimensions(bomb)
    at = bytes(bomb).index(height.to_bytes(2, 'big') + width.to_bytes(2, 'big'))
    bomb[at:at + 4] = (60000).to_bytes(2, 'big') + (60000).to_bytes(2, 'big')
    status, text = server.post(bytes(bomb))
    assert status == 415 and '60000x60000 pixels is over the limit' in text


@pytest.mark.parametrize('server', [{'max_body_bytes': 10_000}], indirect=True)
def test_oversized_bodies_are_refused_from_content_length_without_reading_them(server):
    start = time.monotonic()
    # announces 100 MB, sends none of it: the answer comes at once, from the header alone
    reply = server.raw(b'POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n',
                       shut_write=False)
    assert reply.startswith(b'HTTP/1.1 413') and b'over the limit of 10000' in reply
    assert time.monotonic() - start < 2.0
    status, _ = server.post(JPEG)                # 30 kB > 10 kB
    assert status == 413
    assert server.endpoint.stats.as_dict()['too_large'] == 2


@pytest.mark.parametrize('server', [{'max_body_bytes': 10_000}], indirect=True)
def test_chunked_bodies_are_limited_while_reading(server):
    def chunked(body, size=4096):
        parts = [f'{len(body[i:i + size]):x}\r\n'.encode() + body[i:i + size] + b'\r\n'
                 for i in range(0, len(body), size)]
        return b''.join(parts) + b'0\r\n\r\n'
    head = b'POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
    small = face_like_jpeg(64, 48)
    assert server.raw(head + chunked(small)).startswith(b'HTTP/1.1 200')
    reply = server.raw(head + chunked(JPEG))
    assert reply.startswith(b'HTTP/1.1 413') and b'chunked body over the limit' in reply
    assert server.raw(head + b'zz\r\n').startswith(b'HTTP/1.1 400')


def test_a_transfer_coding_split_over_two_headers_is_refused(server):
    """Two Transfer-Encoding fields are one list, "chunked, gzip": chunked is not the last
    coding, so the body's length is unknown; only the first field was read, and the body
    was taken as plain chunked."""
    body = f'{len(JPEG):x}\r\n'.encode() + JPEG + b'\r\n0\r\n\r\n'
    reply = server.raw(b'POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                       b'Transfer-Encoding: gzip\r\n\r\n' + body)
    assert reply.startswith(b'HTTP/1.1 400') and b"'chunked, gzip' not supported" in reply
    assert not server.frames


def test_a_request_with_both_chunked_coding_and_a_length_closes_the_connection(server):
    """RFC 9112 6.1: the chunked coding wins over Content-Length, and the server must close
    the connection after answering (where the request ends is in doubt: a request smuggled
    after it must not be served). It stayed open and served the next request."""
    body = f'{len(JPEG):x}\r\n'.encode() + JPEG + b'\r\n0\r\n\r\n'
    smuggled = (b'POST /stream HTTP/1.1\r\nHost: x\r\n'
                + f'Content-Length: {len(JPEG)}\r\n\r\n'.encode() + JPEG)
    reply = server.raw(b'POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                       b'Content-Length: 4\r\n\r\n' + body + smuggled)
    assert reply.startswith(b'HTTP/1.1 200') and b'Connection: close' in reply
    assert reply.count(b'HTTP/1.1 ') == 1 and len(server.frames) == 1


@pytest.mark.parametrize('server', [{'token': 's3cret'}], indirect=True)
def test_a_token_is_required_when_configured(server):
    status, text = server.post(JPEG)
    assert status == 401 and 'token' in text
    assert server.post(JPEG, {'Authorization': 'Bearer wrong'})[0] == 401
    assert server.post(JPEG, path='/stream?token=wrong')[0] == 401
    assert server.post(JPEG, {'Authorization': 'Bearer s3cret'})[0] == 200
    assert server.post(JPEG, path='/stream?token=s3cret')[0] == 200       # the app's URL
    assert server.post(JPEG, path='/stream?token=s3cret' + '&x' * 20)[0] == 401  # no parse bomb
    assert server.endpoint.stats.as_dict()['unauthorized'] == 4
    assert len(server.frames) == 2


@pytest.mark.parametrize('server', [{'allow': '10.9.8.7'}], indirect=True)
def test_senders_outside_the_allowlist_get_403(server):
    status, text = server.post(JPEG)
    assert status == 403 and '127.0.0.1 is not allowed' in text
    assert not server.frames


def expect_continue(port, headers: bytes, body: bytes) -> tuple:
    """A client that sends `Expect: 100-continue` and waits for the interim answer before
    uploading (as curl does for large bodies): (first answer, final answer or b'')."""
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
        sock.sendall(b'POST /stream HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n' + headers
                     + f'Content-Length: {len(body)}\r\n\r\n'.encode())
        first = sock.recv(65536)
        if not first.startswith(b'HTTP/1.1 100 Continue\r\n\r\n'):
            return first + _read_all(sock), b''            # a refusal closes the connection
        rest = first[len(b'HTTP/1.1 100 Continue\r\n\r\n'):]
        sock.sendall(body)
        sock.shutdown(socket.SHUT_WR)
        return first[:len(b'HTTP/1.1 100 Continue')], rest + _read_all(sock)


@pytest.mark.parametrize('server', [{'token': 's3cret', 'max_body_bytes': 40_000}],
                         indirect=True)
def test_expect_100_continue_gets_the_verdict_before_the_body(server):
    """http.server sent `100 Continue` while parsing the headers, so a client was told to
    upload a body that the token or size check then refused."""
    first, _ = expect_continue(server.port, b'', JPEG)
    assert first.startswith(b'HTTP/1.1 401') and b'token' in first
    first, _ = expect_continue(server.port, b'Authorization: Bearer s3cret\r\n',
                               bytes(50_000))
    assert first.startswith(b'HTTP/1.1 413') and b'over the limit of 40000' in first
    first, _ = expect_continue(server.port, b'Authorization: Bearer s3cret\r\n', JPEG[:10])
    assert first == b'HTTP/1.1 100 Continue'      # accepted headers: now the body is judged
    first, final = expect_continue(server.port, b'Authorization: Bearer s3cret\r\n', JPEG)
    assert first == b'HTTP/1.1 100 Continue' and final.startswith(b'HTTP/1.1 200')
    assert len(server.frames) == 1
    stats = server.endpoint.stats.as_dict()
    assert (stats['unauthorized'], stats['too_large'], stats['undecodable']) == (1, 1, 1)


@pytest.mark.parametrize('server', [{'allow': '10.9.8.7'}], indirect=True)
def test_expect_100_continue_from_a_sender_not_allowed_gets_403_first(server):
    first, _ = expect_continue(server.port, b'', JPEG)
    assert first.startswith(b'HTTP/1.1 403')
    assert b'100 Continue' not in first


def test_a_client_expecting_100_on_a_chunked_body_gets_it(server):
    with socket.create_connection(('127.0.0.1', server.port), timeout=5) as sock:
        sock.sendall(b'POST /stream HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n'
                     b'Transfer-Encoding: chunked\r\n\r\n')
        assert sock.recv(64) == b'HTTP/1.1 100 Continue\r\n\r\n'
        sock.sendall(f'{len(JPEG):x}\r\n'.encode() + JPEG + b'\r\n0\r\n\r\n')
        sock.shutdown(socket.SHUT_WR)
        assert _read_all(sock).startswith(b'HTTP/1.1 200')


def test_wrong_routes_and_methods_and_malformed_requests_get_4xx(server):
    assert server.post(JPEG, path='/other')[0] == 404
    request = urllib.request.Request(f'http://127.0.0.1:{server.port}/stream')
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 405
    assert server.post(JPEG, method='PUT')[0] == 405
    assert server.raw(b'POST /stream HTTP/1.1\r\nHost: x\r\n\r\n').startswith(b'HTTP/1.1 411')
    assert server.raw(b'POST /stream HTTP/1.1\r\nContent-Length: -5\r\n\r\n').startswith(
        b'HTTP/1.1 400')
    assert server.raw(b'POST /stream HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n'
                      b'\r\n').startswith(b'HTTP/1.1 400')
    assert server.raw(b'\x00\xff garbage\r\n\r\n').startswith(b'HTTP/1.1 400')
    assert server.raw(b'POST http://[x/stream HTTP/1.1\r\n\r\n').startswith(b'HTTP/1.1 400')
    assert server.raw(b'POST /stream HTTP/1.1\r\nContent-Length: ' + b'9' * 5000 +
                      b'\r\n\r\n').startswith(b'HTTP/1.1 400')
    assert server.raw(b'GET /stream\r\n').startswith(b'HTTP/1.1 405')      # HTTP/0.9 style
    assert server.raw(b'POST /' + b'a' * 70000 + b' HTTP/1.1\r\n\r\n').startswith(
        b'HTTP/1.1 414')
    assert server.raw(b'POST /stream HTTP/1.1\r\n' + b'X: y\r\n' * 200 + b'\r\n').startswith(
        b'HTTP/1.1 431')
    # a body shorter than announced, then the client closes
    assert server.raw(b'POST /stream HTTP/1.1\r\nContent-Length: 5000\r\n\r\n' + JPEG[:100]
                      ).startswith(b'HTTP/1.1 400')
    assert not server.frames
    assert server.post(JPEG)[0] == 200                     # and the server still serves


@pytest.mark.parametrize('server', [{'read_timeout_s': 0.3, 'request_timeout_s': 1.0}],
                         indirect=True)
def test_slow_clients_time_out_without_blocking_others(server):
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as silent:
        silent.sendall(b'POST /stream HTTP/1.1\r\nContent-Length: 1000\r\n\r\n' + JPEG[:10])
        assert server.post(JPEG)[0] == 200                  # served while the other waits
        reply = _read_all(silent)
    assert reply.startswith(b'HTTP/1.1 408')
    # slow loris: a byte at a time, each within the read timeout, never finishing
    start = time.monotonic()
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as loris:
        try:
            for byte in b'POST /stream HTTP/1.1\r\nX-Slow: ' + b'a' * 100:
                loris.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass                                            # the server shut it
        elapsed = time.monotonic() - start
    assert elapsed < 5.0, 'a slow-loris request outlived the request timeout'
    assert server.endpoint.stats.as_dict()['timed_out'] >= 2


@pytest.mark.parametrize('server', [{'max_clients': 2, 'read_timeout_s': 3.0}], indirect=True)
def test_connections_beyond_max_clients_get_503(server):
    idle = [socket.create_connection(('127.0.0.1', server.port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        # the reply comes on connecting (nothing sent yet, so nothing unread resets it)
        reply = server.raw(b'', shut_write=False)
        assert reply.startswith(b'HTTP/1.1 503')
        assert server.endpoint.stats.as_dict()['busy'] == 1
    finally:
        for sock in idle:
            sock.close()




def test_jpeg_dimensions_and_decode_checks():
    assert jpeg_dimensions(face_like_jpeg(64, 48)) == (64, 48)
    assert decode_jpeg(face_like_jpeg(64, 48), 64 * 48).shape == (48, 64, 3)
    with pytest.raises(NotJpeg, match='over the limit'):
        decode_jpeg(face_like_jpeg(64, 48), 64 * 48 - 1)
    for junk in (b'', b'\xff\xd8\xff', b'\xff\xd8\xff\xe0\x00\x01', b'\xff\xd8\xff\xd9',
                 b'\xff\xd8\xffx' + bytes(20)):
        with pytest.raises(NotJpeg):
            decode_jpeg(junk, 10**6)


# -- through the node, with real rclpy subscribers ---------------------------------------------
def post_until_published(port, collector, body, timeout=20.0):
    """Post frames until the subscription sees one (discovery takes a moment)."""
    def attempt():
        try:
            connection = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
            connection.request('POST', '/stream', body=body)
            connection.getresponse().read()
            connection.close()
        except OSError:                      # the node is not listening yet
            pass
        return collector.snapshot()
    return wait_until(attempt, timeout, 0.05)


@pytest.mark.ros
def test_http_stream_node_publishes_posted_jpegs_and_refuses_hostile_bodies(ros_node,
                                                                            node_process):
    port = free_port(socket.SOCK_STREAM)
    images = ros_node.subscribe(Image, '/face/human/image')
    compressed = ros_node.subscribe(CompressedImage, '/face/human/image/compressed')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    node = node_process('face_capture', 'http_stream',
                        params={'port': port, 'diagnostics_period_s': 0.2,
                                'max_body_bytes': 200_000, 'token': 'letmein'})
    body = face_like_jpeg(320, 240)
    assert not post_until_published(port, images, body, timeout=3.0)     # no token: 401
    status, text = Running.post_to(port, body)
    assert status == 401 and 'token' in text
    connection_headers = {'Authorization': 'Bearer letmein'}
    assert wait_until(lambda: Running.post_to(port, body, connection_headers)[0] == 200
                      and images.snapshot() and compressed.snapshot(), 20.0), node.output()
    image = images.snapshot()[-1]
    assert (image.encoding, image.width, image.height) == ('bgr8', 320, 240)
    np.testing.assert_array_equal(image_to_array(image),
                                  cv2.imdecode(np.frombuffer(body, np.uint8),
                                               cv2.IMREAD_COLOR))
    assert bytes(compressed.snapshot()[-1].data) == body          # the JPEG, unchanged
    assert abs(image.header.stamp.sec - time.time()) < 5
    # hostile requests: each a 4xx with its reason, counted; the node carries on
    assert Running.post_to(port, b'<html>' * 10, connection_headers) == (
        415, 'not a JPEG (no FF D8 FF start marker)\n')
    assert Running.post_to(port, bytes(300_000), connection_headers)[0] == 413
    values = wait_until(lambda: (v := diag_values(diagnostics, 'http_stream')).get(
        'not_jpeg') == '1' and v.get('too_large') == '1' and v, 10.0)
    assert values, diag_values(diagnostics, 'http_stream')
    assert int(values['unauthorized']) >= 1 and int(values['accepted']) >= 1
    assert int(values['published']) >= 1 and 'dropped' in values
    assert node.alive
    assert 'refused (not_jpeg)' in node.output()


@pytest.mark.ros
def test_http_stream_node_on_the_network_needs_an_allowlist(node_process):
    node = node_process('face_capture', 'http_stream',
                        params={'bind_address': '0.0.0.0', 'port': free_port(socket.SOCK_STREAM)})
    assert wait_until(lambda: not node.alive, 20.0)
    assert 'allow is empty' in node.output() and 'Traceback' not in node.output()
    # it named the Live Link receiver's launch argument (livelink_allow) before
    assert 'http_stream: bind_address 0.0.0.0' in node.output()
    assert 'launch argument http_allow' in node.output()


@pytest.mark.ros
@pytest.mark.parametrize('name, value', [('read_timeout_s', -1.0), ('read_timeout_s', 0.0),
                                         ('request_timeout_s', 0.0), ('max_body_bytes', 0),
                                         ('max_pixels', -1)])
def test_http_stream_node_refuses_limits_that_would_refuse_or_break_every_request(
        node_process, name, value):
    """A negative read timeout made every connection end in a traceback with no answer;
    zero limits made the endpoint refuse every frame while it looked up and running."""
    node = node_process('face_capture', 'http_stream',
                        params={'port': free_port(socket.SOCK_STREAM), name: value})
    assert wait_until(lambda: not node.alive, 20.0), node.output()
    assert f"parameter '{name}'" in node.output() and 'Traceback' not in node.output()


def test_a_bad_frame_keeps_the_connection_and_a_wrong_route_closes_it(server):
    connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
    connection.request('POST', '/stream', body=b'not a jpeg')
    response = connection.getresponse()
    assert response.status == 415 and response.getheader('Connection') is None
    response.read()
    connection.request('POST', '/stream', body=JPEG)          # same connection, next frame
    assert connection.getresponse().status == 200
    connection.close()
    # a refused route leaves its body unread: the server closes rather than read it as the
    # next request
    reply = server.raw(b'POST /other HTTP/1.1\r\nContent-Length: 20\r\n\r\n'
                       b'GET /x HTTP/1.1\r\n\r\n\r\n')
    assert reply.startswith(b'HTTP/1.1 404') and reply.count(b'HTTP/1.1') == 1
    assert b'Connection: close' in reply
