"""Who may drive the face over UDP: a sender allowlist, a lock to one device id, a per-sender
rate cap and a cheap pre-check of the packet bytes, all decided before the full Live Link
parse so that a flood of junk costs as little as possible per packet.

The same rules (allowlist, size bounds, version byte, locked device id) can also be compiled
into a classic BPF socket filter, so the kernel drops most junk before Python ever sees it.
ROS-free: the receiver node wires it to its socket, its log and /diagnostics.
"""
from collections import OrderedDict
import ctypes
from dataclasses import dataclass
import enum
import ipaddress
import socket
import struct

from face_capture.livelink import (
    MAX_PACKET_BYTES,
    MIN_PACKET_BYTES,
    PACKET_VERSION,
    MalformedPacket,
    device_id_prefix,
    packet_device_id,
    precheck,
)

LOOPBACK = ipaddress.IPv4Network('127.0.0.0/8')
NOMINAL_RATE_HZ = 60.0              # Live Link Face streams at 60 fps
BURST_S = 0.5                       # a phone on Wi-Fi may deliver half a second at once
MAX_TRACKED_SENDERS = 256           # rate buckets and "already logged" entries kept
MAX_LOGGED_PER_KIND = 16            # senders / device ids named in the log, per kind


class GateConfigError(ValueError):
    """The receiver's network parameters do not make a safe configuration."""


class Verdict(enum.Enum):
    ACCEPT = 'accept'
    SENDER_REJECTED = 'rejected_senders'
    PRECHECK_FAILED = 'precheck_rejects'
    OTHER_DEVICE = 'other_device_frames'
    RATE_CAPPED = 'rate_capped'


def parse_allowlist(value) -> list:
    """Addresses and CIDR subnets from a list of strings or one comma/space-separated string
    (the form a launch argument takes). IPv4 only, like the receiver's socket."""
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = str(value).replace(',', ' ').split()
    networks = []
    for item in items:
        try:
            network = ipaddress.ip_network(str(item).strip(), strict=False)
        except ValueError as exc:
            raise GateConfigError(f'allow: {exc}') from None
        if network.version != 4:
            raise GateConfigError(f'allow: {item} is IPv6; the receiver listens on IPv4')
        networks.append(network)
    return networks


def effective_allowlist(bind_address: str, allow, launch_argument: str = 'livelink_allow'
                        ) -> list:
    """The networks the receiver accepts: the given ones, or loopback only when it is bound to
    loopback. Bound to the network with an empty allowlist is refused: nothing would say which
    phone may drive the face (allow:=0.0.0.0/0 opts into any sender explicitly)."""
    networks = parse_allowlist(allow)
    if networks:
        return networks
    try:
        bound = ipaddress.IPv4Address(bind_address)
    except ValueError as exc:
        raise GateConfigError(f'bind_address: {exc}') from None
    if bound.is_loopback:
        return [LOOPBACK]
    raise GateConfigError(
        f'bind_address {bind_address} listens on the network but allow is empty: give the '
        'phone\'s address or subnet, e.g. allow:=192.168.1.23 or allow:=192.168.1.0/24 '
        f'(launch argument {launch_argument}; allow:=0.0.0.0/0 accepts any sender)')


@dataclass
class Decision:
    verdict: Verdict
    first: bool = False             # the first time this sender / device id is turned away
    detail: str = ''                # the reason or the foreign device id, for the log line
    last_logged: bool = False       # the last one named: later new ones are only counted


class TokenBucket:
    """A rate cap with a burst allowance (also the TCP bridge's per-client frame cap)."""

    __slots__ = ('stamp', 'tokens')

    def __init__(self, tokens: float, stamp: float):
        self.tokens = tokens
        self.stamp = stamp

    def take(self, now: float, rate_hz: float, burst: float) -> bool:
        """Refill at rate_hz up to burst since the last call; spend one token if there is."""
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate_hz)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class PacketGate:
    """Decides, per datagram, whether it goes on to the full parse. Single-threaded (the
    receive thread); the counters are plain ints another thread may read."""

    def __init__(self, networks, device_id: str = '', max_rate_hz: float = 2 * NOMINAL_RATE_HZ):
        self.networks = list(networks)
        self._any_sender = any(n.prefixlen == 0 for n in self.networks)
        self.max_rate_hz = float(max_rate_hz)
        self._burst = max(1.0, self.max_rate_hz * BURST_S)
        self.counters = {verdict.value: 0 for verdict in Verdict if verdict is not Verdict.ACCEPT}
        self._allowed = OrderedDict()          # sender address -> allowed?
        self._buckets = OrderedDict()          # sender address -> TokenBucket
        self._logged = OrderedDict()           # (verdict, key) already logged
        self._named = dict.fromkeys(Verdict, 0)    # keys logged per verdict
        self.device_id = ''
        self._prefix = b''
        if device_id:
            self.lock(device_id)

    def lock(self, device_id: str) -> None:
        """From now on only packets of this device id pass."""
        self.device_id = device_id
        self._prefix = device_id_prefix(device_id)

    def admit(self, data, sender, now: float) -> Decision:
        """The verdict for one datagram `data` from `sender` = (address, port) at `now` (s)."""
        address = sender[0]
        if not self._sender_allowed(address):
            return self._reject(Verdict.SENDER_REJECTED, address)
        reason = precheck(data)
        if reason:
            return self._reject(Verdict.PRECHECK_FAILED, detail=reason)
        prefix = self._prefix
        if prefix and data[1:1 + len(prefix)] != prefix:
            try:
                other = packet_device_id(data)
            except MalformedPacket as exc:
                return self._reject(Verdict.PRECHECK_FAILED, detail=str(exc))
            return self._reject(Verdict.OTHER_DEVICE, other, other)
        if not self._within_rate(address, now):
            return self._reject(Verdict.RATE_CAPPED, address)
        return Decision(Verdict.ACCEPT)

    def _sender_allowed(self, address: str) -> bool:
        allowed = self._allowed.get(address)
        if allowed is None:
            ip = ipaddress.IPv4Address(address)
            allowed = self._any_sender or any(ip in network for network in self.networks)
            _remember(self._allowed, address, allowed)
        return allowed

    def _within_rate(self, address: str, now: float) -> bool:
        """Per sender address: a sender picks its source ports freely (a new socket per
        packet would otherwise get a fresh burst every time)."""
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(self._burst, now)
            _remember(self._buckets, address, bucket)
        return bucket.take(now, self.max_rate_hz, self._burst)

    def _reject(self, verdict: Verdict, key=None, detail: str = '') -> Decision:
        """Count a rejection; `first` tells whether this key (sender, device id) is new, for a
        log line once per key, up to MAX_LOGGED_PER_KIND keys (a flood of made-up ids must
        not become a flood of log lines). Pre-check rejects have no key: the node throttles
        those."""
        self.counters[verdict.value] += 1
        first = (key is not None and self._named[verdict] < MAX_LOGGED_PER_KIND
                 and (verdict, key) not in self._logged)
        if first:
            _remember(self._logged, (verdict, key), True)
            self._named[verdict] += 1
        return Decision(verdict, first, detail, self._named[verdict] == MAX_LOGGED_PER_KIND)

    def diagnostic_values(self) -> dict:
        values = dict(self.counters)
        values['allow'] = ','.join(str(n) for n in self.networks)
        values['locked_device_id'] = self.device_id
        values['max_rate_hz'] = f'{self.max_rate_hz:g}'
        return values


def _remember(table: OrderedDict, key, value) -> None:
    """Insert into a bounded table, forgetting the oldest entry (a flood of new senders must
    not grow memory without limit)."""
    table[key] = value
    if len(table) > MAX_TRACKED_SENDERS:
        table.popitem(last=False)


# ---- kernel socket filter (classic BPF, Linux SO_ATTACH_FILTER) -------------------------------
# On a UDP socket the filter sees the datagram from its UDP header (8 bytes) on; the IPv4
# header is reachable at the "network" offset, where the source address sits at byte 12.
SO_ATTACH_FILTER = 26
SO_MEMINFO, SK_MEMINFO_DROPS = 55, 8
_UDP_HEADER = 8
_SKF_NET_OFF = -0x100000
_LD_W_ABS, _LD_H_ABS, _LD_B_ABS, _LD_W_LEN = 0x20, 0x28, 0x30, 0x80
_AND_K, _JEQ_K, _JGT_K, _JGE_K, _RET_K = 0x54, 0x15, 0x25, 0x35, 0x06
_ACCEPT, _DROP = 0xFFFFFFFF, 0
_MAX_JUMP = 255                     # classic BPF jump offsets are one byte


def kernel_filter(networks, device_id: str = '') -> list:
    """A classic BPF program, as (code, jt, jf, k) tuples, that passes only datagrams within
    the v6 size bounds, starting with the version byte, from an allowed network and (when
    given) carrying this device id. Raises GateConfigError if it does not fit BPF's jumps."""
    prefix = device_id_prefix(device_id) if device_id else b''
    shortest = MIN_PACKET_BYTES - 4 + len(prefix) if prefix else MIN_PACKET_BYTES
    program = [(_LD_W_LEN, 0, 0, 0)]
    to_drop = []                                 # (index, drop when the test is true?)

    def test(code, k, drop_when_true=False):
        to_drop.append((len(program), drop_when_true))
        program.append((code, 0, 0, k))

    test(_JGE_K, _UDP_HEADER + shortest)
    test(_JGT_K, _UDP_HEADER + MAX_PACKET_BYTES, drop_when_true=True)
    program.append((_LD_B_ABS, 0, 0, _UDP_HEADER))
    test(_JEQ_K, PACKET_VERSION)
    if not any(network.prefixlen == 0 for network in networks):
        matches = []
        for network in networks:
            program.append((_LD_W_ABS, 0, 0, (_SKF_NET_OFF + 12) & 0xFFFFFFFF))
            program.append((_AND_K, 0, 0, int(network.netmask)))
            matches.append(len(program))
            program.append((_JEQ_K, 0, 0, int(network.network_address)))
        program.append((_RET_K, 0, 0, _DROP))
        for index in matches:
            program[index] = _with_jumps(program[index], len(program) - index - 1, 0)
    start = 0
    for size, load in ((4, _LD_W_ABS), (2, _LD_H_ABS), (1, _LD_B_ABS)):
        while len(prefix) - start >= size:
            program.append((load, 0, 0, _UDP_HEADER + 1 + start))
            test(_JEQ_K, int.from_bytes(prefix[start:start + size], 'big'))
            start += size
    program.append((_RET_K, 0, 0, _ACCEPT))
    drop = len(program)
    program.append((_RET_K, 0, 0, _DROP))
    for index, drop_when_true in to_drop:
        distance = drop - index - 1
        program[index] = _with_jumps(program[index], *((distance, 0) if drop_when_true
                                                        else (0, distance)))
    return program


def _with_jumps(instruction, jt: int, jf: int):
    if jt > _MAX_JUMP or jf > _MAX_JUMP:
        raise GateConfigError(f'kernel filter too long for BPF\'s one-byte jumps ({jt}, {jf})')
    return (instruction[0], jt, jf, instruction[3])


def attach_kernel_filter(sock: socket.socket, program) -> None:
    """Install (or replace) the socket's BPF filter (Linux; raises OSError elsewhere)."""
    raw = b''.join(struct.pack('HBBI', *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack('HL', len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def kernel_drops(sock: socket.socket) -> str:
    """Datagrams the kernel dropped for this socket (filtered out, or the queue was full), as
    a diagnostics value; 'n/a' where SO_MEMINFO is not available."""
    try:
        meminfo = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * (SK_MEMINFO_DROPS + 1))
    except OSError:
        return 'n/a'
    return str(struct.unpack_from('I', meminfo, 4 * SK_MEMINFO_DROPS)[0])
