"""What every node of the project does the same way: run, and report to /diagnostics."""
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import rclpy
from rclpy.executors import ExternalShutdownException

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def run_node(node_class, args=None) -> None:
    """rclpy.init, spin until Ctrl-C / SIGTERM / shutdown, then clean up (the ros2/examples
    main(), once)."""
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


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
    """One DiagnosticStatus (as rqt_robot_monitor shows it) on /diagnostics."""
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, level=level, message=message)
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [status]
    publisher.publish(array)
