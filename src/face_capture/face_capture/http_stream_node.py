"""VividFace HTTP stream node: `POST /stream` with a raw JPEG body (the paper's iOS app) ->
face/human/image (bgr8) and face/human/image/compressed (the JPEG unchanged), newest frame
wins. The endpoint and every check on what a client sends are in face_capture.http_stream;
this node wires it to parameters, topics, the log (rate-limited) and /diagnostics.
"""
import threading

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from face_capture.http_stream import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_PORT,
    ROUTE,
    Endpoint,
    StreamConfig,
    StreamServer,
)
from face_capture.image_source_node import ImageSourceNode
from face_capture.listener import declare_listener
from face_common.node import run_node

_POLL_S = 0.2                # the server loop's period: shutdown and request deadlines
# Limits outside these would refuse every frame (0 bytes, 0 pixels, no time to send) or
# break every connection (a negative socket timeout).
_TIMEOUT_RANGE = FloatingPointRange(from_value=0.1, to_value=3600.0)
_SIZE_RANGE = IntegerRange(from_value=1, to_value=2**32, step=1)


class HttpStreamNode(ImageSourceNode):

    def __init__(self):
        super().__init__('http_stream', 'vividface_http')
        listener = declare_listener(
            self, DEFAULT_PORT, 'TCP port of the endpoint (the VividFace app posts to '
            ':5000/stream).', 'http_allow')
        self.declare_parameter('token', '', ParameterDescriptor(
            description='If set, clients must send `Authorization: Bearer <token>` or post to '
                        '/stream?token=<token>; others get 401.'))
        self.declare_parameter('max_body_bytes', DEFAULT_MAX_BODY_BYTES, ParameterDescriptor(
            description='Largest JPEG body accepted (413 beyond, judged from Content-Length '
                        'before reading).',
            integer_range=[_SIZE_RANGE]))
        self.declare_parameter('max_pixels', DEFAULT_MAX_PIXELS, ParameterDescriptor(
            description='Largest image (width x height from the JPEG header) decoded.',
            integer_range=[_SIZE_RANGE]))
        self.declare_parameter('read_timeout_s', 5.0, ParameterDescriptor(
            description='A connection silent this long is closed.',
            floating_point_range=[_TIMEOUT_RANGE]))
        self.declare_parameter('request_timeout_s', 10.0, ParameterDescriptor(
            description='A request not complete after this long is dropped (slow clients).',
            floating_point_range=[_TIMEOUT_RANGE]))
        self.declare_parameter('max_clients', 8, ParameterDescriptor(
            description='Connections served at once; more get 503.',
            integer_range=[IntegerRange(from_value=1, to_value=1024, step=1)]))
        config = StreamConfig(
            listener.networks, token=str(self.get_parameter('token').value),
            max_body_bytes=int(self.get_parameter('max_body_bytes').value),
            max_pixels=int(self.get_parameter('max_pixels').value),
            read_timeout_s=float(self.get_parameter('read_timeout_s').value),
            request_timeout_s=float(self.get_parameter('request_timeout_s').value),
            max_clients=int(self.get_parameter('max_clients').value))
        self.endpoint = Endpoint(config, self._on_frame, self._on_reject)
        bind_address, port = listener.bind_address, listener.port
        try:
            self.server = StreamServer((bind_address, port), self.endpoint)
        except (OSError, OverflowError) as exc:
            raise SystemExit(f'http_stream: cannot listen on {bind_address}:{port}: '
                             f'{exc}') from None
        self.address = f'{bind_address}:{self.server.server_address[1]}'
        allowed = ','.join(str(n) for n in config.networks)
        self.get_logger().info(
            f'VividFace stream: POST JPEG frames to http://{self.address}{ROUTE} (senders '
            f'{allowed}, token {"required" if config.token else "not required"}, bodies up to '
            f'{config.max_body_bytes} bytes)')
        self._server_thread = threading.Thread(
            target=self.server.serve_forever, kwargs={'poll_interval': _POLL_S},
            name='http_stream', daemon=True)
        self._server_thread.start()

    def _on_frame(self, jpeg: bytes, bgr, client) -> None:
        self.offer(bgr, jpeg)

    def _on_reject(self, kind: str, client, reason: str) -> None:
        self.log_limited(kind, 'warn', f'{client[0]}: refused ({kind}): {reason}')

    def idle_message(self) -> str:
        return f'no frames posted to http://{self.address}{ROUTE} in the last second'

    def diagnostic_values(self) -> dict:
        return {'address': self.address, **self.endpoint.stats.as_dict()}

    def destroy_node(self):
        self.server.shutdown()
        self.server.server_close()
        super().destroy_node()


def main(args=None):
    run_node(HttpStreamNode, args)


if __name__ == '__main__':
    main()
