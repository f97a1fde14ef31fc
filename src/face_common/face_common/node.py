"""What every node of the project does the same way: run, and report to /diagnostics."""
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException

from face_common.realtime import set_realtime_priority
from face_common.topics import namespaced_status

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def run_node(node_class, args=None, executor_factory=None) -> None:
    """rclpy.init, spin until Ctrl-C / SIGTERM / shutdown, then clean up (the ros2/examples
    main(), once). executor_factory: for a node that needs another executor than the default
    single-threaded one (made after rclpy.init)."""
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        rclpy.spin(node, executor_factory() if executor_factory else None)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def apply_realtime_priority(node) -> str:
    """The node's `realtime_priority` parameter applied to all its threads (see
    face_common.realtime); logged, and returned for the node's diagnostics."""
    node.declare_parameter('realtime_priority', 0, ParameterDescriptor(
        description='SCHED_FIFO priority for every thread of this node (1..99), so other '
                    'work on the machine cannot delay a frame; 0: normal scheduling. Needs '
                    'CAP_SYS_NICE or an rtprio limit; without, the node runs on normally.'))
    state = set_realtime_priority(int(node.get_parameter('realtime_priority').value))
    if 'not permitted' in state:
        node.get_logger().warn(state)
    elif state.startswith('SCHED_FIFO'):
        node.get_logger().info(f'real-time scheduling: {state}')
    return state


def start_publishing_thread(node, target, name: str) -> threading.Thread:
    """A daemon thread that publishes outside the executor. Ctrl-C shuts the context down
    under it, so its next publish fails: that ends the thread quietly, not with a traceback;
    any other error is still raised."""
    def run():
        try:
            target()
        except Exception:
            if node.context.ok():
                raise
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def publish_status(node, publisher, name: str, hardware_id: str, level, message: str,
                   values: dict) -> None:
    """One DiagnosticStatus (as rqt_robot_monitor shows it) on /diagnostics; a node in a
    namespace prefixes its name with it (two pipelines' statuses stay apart)."""
    status = DiagnosticStatus(name=namespaced_status(node.get_namespace(), name),
                              hardware_id=hardware_id, level=level, message=message)
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [status]
    publisher.publish(array)
