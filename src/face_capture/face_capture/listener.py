"""The parameters every network input declares alike, declared once: `port`, `bind_address`
and `allow` for livelink_receiver (UDP), tcp_bridge and http_stream, with the allowlist rule
of sender_gate (empty: loopback only when bound to loopback; refused on the network)."""
from dataclasses import dataclass

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor

from face_capture.sender_gate import GateConfigError, effective_allowlist


@dataclass(frozen=True)
class Listener:
    port: int                # 0: any free port
    bind_address: str
    networks: list           # the senders accepted (sender_gate networks)


def declare_listener(node, default_port: int, port_description: str,
                     allow_argument: str) -> Listener:
    """Declare the three parameters on node and resolve them; a network binding without an
    allowlist stops the node with one line naming allow_argument (the launch argument)."""
    node.declare_parameter('port', default_port, ParameterDescriptor(
        description=port_description,
        integer_range=[IntegerRange(from_value=0, to_value=65535, step=1)]))
    node.declare_parameter('bind_address', '127.0.0.1', ParameterDescriptor(
        description='Local IPv4 address to listen on: 127.0.0.1 (default) for senders on '
                    'this machine, 0.0.0.0 (every interface, needs `allow`) for the network.'))
    node.declare_parameter('allow', '', ParameterDescriptor(
        dynamic_typing=True,
        description='Senders accepted: addresses or CIDR subnets, a list or one comma-'
                    'separated string. Empty: loopback only when bound to loopback; bound '
                    'to the network, empty is refused (0.0.0.0/0 = any sender).'))
    bind_address = str(node.get_parameter('bind_address').value)
    try:
        networks = effective_allowlist(bind_address, node.get_parameter('allow').value,
                                       allow_argument)
    except GateConfigError as exc:
        raise SystemExit(f'{node.get_name()}: {exc}') from None
    return Listener(int(node.get_parameter('port').value), bind_address, networks)
