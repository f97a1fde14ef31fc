"""The shadowing pipeline in one process (launch/shadow.launch.yaml composed:=true): the Live
Link receiver, the retarget node and the actuation node share one rclpy context, so the two
topic hops between them (human frame -> retarget, command -> actuation) are delivered inside
the process instead of over the shared-memory transport.

Each node keeps its own executor on its own thread (face_common.node.run_nodes): a command or
an e-stop is never queued behind an inference, the receiver keeps its two-thread executor for
neutral captures, and the receive and control-loop threads are the nodes' own as before.
The e-stop, watchdog and safety layer are the actuation node's, unchanged.

Arguments: `--receiver false` leaves the receiver out (another input feeds the topic); each
node's parameters as `NODE:NAME=VALUE` (values typed as YAML, as launch and `-p` type
them), e.g. `livelink_receiver:port=11111 actuation:port=/dev/ttyACM0` (not `:=`, which rcl
would take for a remapping rule), which a single
process needs since two nodes have a parameter of the same name; parameter files keyed by
node name (the shipped config/*.yaml) work as usual after --ros-args. Real-time priority is
the process's: the last node's nonzero realtime_priority holds for every thread.
"""
import argparse
import sys

from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
import rclpy.utilities
import yaml

from face_actuation.actuation_node import ActuationNode
from face_capture.livelink_receiver_node import LiveLinkReceiverNode
from face_capture.source_node import EXECUTOR_THREADS
from face_common.node import run_nodes
from face_retarget.retarget_node import RetargetNode

NODE_CLASSES = {'livelink_receiver': LiveLinkReceiverNode, 'retarget': RetargetNode,
                'actuation': ActuationNode}


def node_parameter(text: str) -> tuple:
    """'NODE:NAME=VALUE' -> (NODE, Parameter); the value typed as YAML ('' stays text)."""
    target, sep, value = text.partition('=')
    node, colon, name = target.partition(':')
    if not sep or not colon or not name:
        raise argparse.ArgumentTypeError(f'{text!r}: expected NODE:NAME=VALUE')
    if node not in NODE_CLASSES:
        raise argparse.ArgumentTypeError(
            f'{text!r}: unknown node {node!r} (one of {", ".join(NODE_CLASSES)})')
    try:
        typed = yaml.safe_load(value) if value else ''
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f'{text!r}: {exc}') from None
    if typed is None:
        typed = ''
    try:
        return node, Parameter(name, value=typed)
    except TypeError as exc:
        raise argparse.ArgumentTypeError(f'{text!r}: {exc}') from None


def _bool(text: str) -> bool:
    if text.lower() not in ('true', 'false'):
        raise argparse.ArgumentTypeError(f'{text!r}: expected true or false')
    return text.lower() == 'true'


def parse(argv: list) -> tuple:
    """(whether the receiver runs, {node: [Parameter]}) from the non-ROS arguments."""
    parser = argparse.ArgumentParser(prog='shadow_composed', description=__doc__.split('\n')[0])
    parser.add_argument('--receiver', type=_bool, default=True,
                        help='run the Live Link receiver in this process (true/false)')
    parser.add_argument('parameters', nargs='*', type=node_parameter,
                        metavar='NODE:NAME=VALUE',
                        help='a parameter of one of the composed nodes, e.g. '
                             'retarget:model=exface (the launch file passes them)')
    options = parser.parse_args(argv)
    overrides = {name: [] for name in NODE_CLASSES}
    for node, parameter in options.parameters:
        overrides[node].append(parameter)
    return options.receiver, overrides


def main(args=None):
    argv = sys.argv if args is None else args
    receiver, overrides = parse(rclpy.utilities.remove_ros_args(argv)[1:])

    def node(name):
        return lambda: NODE_CLASSES[name](parameter_overrides=overrides[name])
    nodes = [(node('retarget'), None), (node('actuation'), None)]
    if receiver:
        nodes.insert(0, (node('livelink_receiver'),
                         lambda: MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)))
    run_nodes(nodes, argv)


if __name__ == '__main__':
    main()
