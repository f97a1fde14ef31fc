"""UDP receiver for Live Link Face: packets from an iPhone -> /face/human/blendshapes.

The socket is read on its own thread (lowest latency: no executor hop), drained in a tight
loop. Only the allowed sender drives the face: a PacketGate (and, optionally, a kernel socket
filter) drops packets from senders outside the allowlist, of the wrong size or version, of
another device than the locked one, or over the per-sender rate cap, before the full parse.
Each accepted packet is stamped, parsed, checked against the stream's frame numbers and
published.
Bad packets are counted by kind and logged (throttled, or once per sender / device id);
nothing a sender does stops the node.
"""
import select
import socket
import threading
import time

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor

from face_capture.listener import declare_listener
from face_capture.livelink import (
    DEFAULT_PORT,
    MAX_PACKET_BYTES,
    MalformedPacket,
    NonFiniteValues,
    parse_packet,
)
from face_capture.sender_gate import (
    NOMINAL_RATE_HZ,
    GateConfigError,
    PacketGate,
    Verdict,
    attach_kernel_filter,
    kernel_drops,
    kernel_filter,
)
from face_capture.sequence import FrameSequence, FrameVerdict
from face_capture.source_node import BlendshapeSourceNode, run_source_node

_POLL_MS = 200                      # how often the receive thread checks for shutdown
_LOG_EVERY_S = 5.0                  # pre-check rejects: at most one log line per period
# kernel_filter:=auto installs the filter once rejected packets (that it would drop) exceed
# this rate over a short window: far above any misconfigured phone, far below a flood.
FLOOD_REJECTS_PER_S = 1000
_FLOOD_WINDOW_S = 0.1
_KERNEL_FILTER_MODES = ('auto', 'always', 'never')
_KERNEL_DROPPABLE = (Verdict.SENDER_REJECTED, Verdict.PRECHECK_FAILED, Verdict.OTHER_DEVICE)


class LiveLinkReceiverNode(BlendshapeSourceNode):

    def __init__(self, **kwargs):
        super().__init__('livelink_receiver', 'livelink_udp', **kwargs)
        listener = declare_listener(
            self, DEFAULT_PORT, 'UDP port Live Link Face sends to (the app\'s default is '
            '11111).', 'livelink_allow')
        self.declare_parameter('device_id', '', ParameterDescriptor(
            dynamic_typing=True,
            description='Live Link device id to accept; empty: lock to the first one seen.'))
        self.declare_parameter('max_rate_hz', 2 * NOMINAL_RATE_HZ, ParameterDescriptor(
            description='Per-sender cap on packets that reach the parser, packets/s.',
            floating_point_range=[FloatingPointRange(from_value=1.0, to_value=10000.0)]))
        self.declare_parameter('kernel_filter', 'auto', ParameterDescriptor(
            description='Drop disallowed senders, bad sizes/versions and (once locked) other '
                        'device ids in the kernel too (Linux BPF socket filter), before Python '
                        'sees them: auto (default) = from the first flood on (over '
                        f'{FLOOD_REJECTS_PER_S} rejected packets/s), always, or never. Kernel '
                        'drops are counted as kernel_drops, without per-sender log lines.'))
        self.declare_parameter('receive_buffer_bytes', 4 * 1024 * 1024, ParameterDescriptor(
            description='SO_RCVBUF asked for, so a burst of junk does not overflow the queue '
                        'ahead of the phone\'s packets (the kernel caps it at rmem_max).'))
        self.bind_address = listener.bind_address
        self.gate = PacketGate(listener.networks, str(self.get_parameter('device_id').value or ''),
                               self.get_parameter('max_rate_hz').value)
        for key in ('malformed', 'non_finite'):
            self.counters[key] = 0
        self.packets = 0                # every datagram read (only the receive thread writes)
        self._next_precheck_log = 0.0
        self._sequence = FrameSequence()     # counts stale, dropped frames and restarts
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                              int(self.get_parameter('receive_buffer_bytes').value))
        self.receive_buffer = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.kernel_filter = 'off'
        self.kernel_filter_mode = str(self.get_parameter('kernel_filter').value)
        if self.kernel_filter_mode not in _KERNEL_FILTER_MODES:
            raise SystemExit(f'livelink_receiver: kernel_filter is one of '
                             f'{", ".join(_KERNEL_FILTER_MODES)}, not {self.kernel_filter_mode!r}')
        if self.kernel_filter_mode == 'always':
            self._install_kernel_filter()
        self._flood_window = (0.0, 0)          # (start, rejects the kernel could have dropped)
        try:
            self._sock.bind((self.bind_address, listener.port))
        except (OSError, OverflowError) as exc:
            raise SystemExit(f'livelink_receiver: cannot listen on {self.bind_address}:'
                             f'{self.get_parameter("port").value}: {exc}') from None
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        allowed = self.gate.diagnostic_values()['allow']
        locked = self.gate.device_id or 'the first device seen'
        self.get_logger().info(
            f'listening for Live Link Face on UDP {self.bind_address}:{self.port}, senders '
            f'{allowed}, device {locked}, at most {self.gate.max_rate_hz:g} packets/s per '
            f'sender; kernel filter {self.kernel_filter} ({self.kernel_filter_mode})')
        self._running = True
        self._thread = threading.Thread(target=self._receive_loop, name='livelink_rx',
                                        daemon=True)
        self._thread.start()

    def _install_kernel_filter(self) -> None:
        """(Re)install the BPF filter for the gate's networks and locked device id; without
        one (not Linux, or an id too long for BPF's jumps) the PacketGate still checks all."""
        try:
            program = kernel_filter(self.gate.networks, self.gate.device_id)
            state = 'on' + (f' (device {self.gate.device_id})' if self.gate.device_id else '')
        except GateConfigError:
            state = 'on (device id checked in Python: too long for BPF)'
            try:
                program = kernel_filter(self.gate.networks)
            except GateConfigError as exc:          # an allowlist too long for BPF's jumps
                self._kernel_filter_unavailable(str(exc))
                return
        try:
            attach_kernel_filter(self._sock, program)
        except OSError as exc:
            self._kernel_filter_unavailable(str(exc.strerror))
            return
        self.kernel_filter = state

    def _kernel_filter_unavailable(self, why: str) -> None:
        self.kernel_filter = f'unavailable ({why})'
        self.get_logger().warn(f'kernel socket filter unavailable: {why}; packets are checked '
                               'in Python only')

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def _receive_loop(self) -> None:
        buffer = bytearray(MAX_PACKET_BYTES + 1)     # one byte more: oversize shows as too long
        view = memoryview(buffer)
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        receive = self._sock.recvfrom_into
        while self._running:
            if not poller.poll(_POLL_MS):
                continue
            while True:                              # drain: one wake-up per burst, not packet
                try:
                    size, sender = receive(buffer)
                except BlockingIOError:
                    break
                except OSError:
                    if self._running:
                        self.get_logger().error('UDP socket failed; receiver stopped')
                    return
                self.packets += 1
                try:
                    self._admit(view[:size], sender)
                except Exception as exc:      # a bug must not kill the receive thread
                    if not self.context.ok():     # Ctrl-C shut the context down under us
                        return
                    self.get_logger().error(
                        f'unexpected error on a packet from {sender}: {exc!r}',
                        throttle_duration_sec=5.0)

    def _admit(self, data, sender) -> None:
        now = time.monotonic()
        decision = self.gate.admit(data, sender, now)
        verdict = decision.verdict
        if verdict is Verdict.ACCEPT:
            self._handle(bytes(data), sender, self.get_clock().now().to_msg())
            return
        if verdict in _KERNEL_DROPPABLE and self.kernel_filter == 'off':
            self._watch_for_flood(now)
        if verdict is Verdict.PRECHECK_FAILED:
            # throttled here: rclpy's own throttle costs more per call than the whole check
            if now >= self._next_precheck_log:
                self._next_precheck_log = now + _LOG_EVERY_S
                self.get_logger().warn(f'{sender[0]}: dropped packet: {decision.detail} '
                                       f'(one line per {_LOG_EVERY_S:g} s)')
        elif decision.first:
            line = self._rejection_line(verdict, sender, decision.detail)
            if decision.last_logged:
                line += '; further ones are only counted'
            self.get_logger().warn(line)

    def _watch_for_flood(self, now: float) -> None:
        """kernel_filter:=auto: install the kernel filter once a flood shows."""
        start, rejects = self._flood_window
        if now - start > _FLOOD_WINDOW_S:
            start, rejects = now, 0
        rejects += 1
        self._flood_window = (start, rejects)
        if self.kernel_filter_mode == 'auto' and rejects > FLOOD_REJECTS_PER_S * _FLOOD_WINDOW_S:
            self._install_kernel_filter()
            self.get_logger().warn(
                f'flood: over {FLOOD_REJECTS_PER_S} rejected packets/s; kernel filter '
                f'{self.kernel_filter}: from now on such packets are counted in kernel_drops '
                'without log lines')

    def _rejection_line(self, verdict: Verdict, sender, detail: str) -> str:
        if verdict is Verdict.SENDER_REJECTED:
            return (f'{sender[0]} is not in allow ({self.gate.diagnostic_values()["allow"]}): '
                    'its packets are dropped (logged once per sender)')
        if verdict is Verdict.OTHER_DEVICE:
            return (f'frames of device {detail!r} from {sender[0]} dropped: locked to '
                    f'{self.gate.device_id!r} (logged once per device id)')
        return (f'{sender[0]} sends over {self.gate.max_rate_hz:g} packets/s: '
                'the excess is dropped (logged once per sender)')

    def _handle(self, data: bytes, sender, stamp) -> None:
        try:
            frame = parse_packet(data)
        except NonFiniteValues as exc:
            self._count('non_finite')
            self.get_logger().warn(f'{sender[0]}: dropped packet with {exc}',
                                   throttle_duration_sec=5.0)
            return
        except MalformedPacket as exc:
            self._count('malformed')
            self.get_logger().warn(f'{sender[0]}: malformed packet ({len(data)} bytes): {exc}',
                                   throttle_duration_sec=5.0)
            return
        if frame is None:
            self.publish_no_face(-1, '', '')
            return
        if not self.gate.device_id:
            self.gate.lock(frame.device_id)
            self.get_logger().info(f'locked to device {frame.device_id!r} from {sender[0]} '
                                   'for this session')
            if self.kernel_filter.startswith('on'):
                self._install_kernel_filter()
        verdict = self._sequence.observe(frame.frame_number)
        if verdict is FrameVerdict.STALE:
            return
        if verdict is FrameVerdict.RESTART:
            self.get_logger().info(f'{frame.device_id}: frame counter restarted')
        self.publish_frame(frame.values, frame.frame_number, frame.subject, frame.device_id,
                           stamp)

    def diagnostic_values(self) -> dict:
        values = self.gate.diagnostic_values()
        sequence = self._sequence.counters
        values.update(stale_frames=sequence.stale, dropped_frames=sequence.dropped,
                      sender_restarts=sequence.restarts)
        values['packets'] = self.packets
        values['bind_address'] = f'{self.bind_address}:{self.port}'
        values['kernel_filter'] = self.kernel_filter
        values['kernel_drops'] = kernel_drops(self._sock)
        values['receive_buffer_bytes'] = self.receive_buffer
        return values

    def destroy_node(self):
        self._running = False
        self._thread.join(timeout=1.0)
        self._sock.close()
        super().destroy_node()


def main(args=None):
    run_source_node(LiveLinkReceiverNode, args)


if __name__ == '__main__':
    main()
