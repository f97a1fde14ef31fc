"""What every node of the project does the same way: run, and report to /diagnostics."""
import signal
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    NotInitializedException,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from face_common.realtime import set_realtime_priority
from face_common.topics import namespaced_status

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class FaceNode(Node):
    """rclpy's Node, taking parameters as a user types them: `rate:=2` for a double
    parameter (launch_ros and `-p` both hand the node an integer) is the double 2.0, at start
    and through `ros2 param set`; any other wrong type or out-of-range value stops the node
    with one line naming the parameter, not a traceback."""

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self.add_pre_set_parameters_callback(self._integers_as_doubles)

    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        given = None if ignore_override else self._given_value(name)
        if isinstance(value, float) and isinstance(given, int) and not isinstance(given, bool):
            value, ignore_override = float(given), True
        try:
            return super().declare_parameter(name, value, descriptor, ignore_override)
        except InvalidParameterTypeException:
            expected = Parameter.Type.from_parameter_value(value).name.lower()
            raise SystemExit(f'{self.get_name()}: parameter {name!r} takes a {expected}, '
                             f'got {given!r}') from None
        except InvalidParameterValueException as exc:
            raise SystemExit(f'{self.get_name()}: parameter {name!r}: {exc}') from None

    def _given_value(self, name):
        """The value the command line or a parameter file gives `name` (None if none), read
        by declaring it with dynamic typing (which takes any type) and undeclaring it again."""
        given = super().declare_parameter(
            name, None, ParameterDescriptor(dynamic_typing=True)).value
        self.undeclare_parameter(name)
        return given

    def _integers_as_doubles(self, parameters: list) -> list:
        """rclpy's pre-set callback: an integer for a declared double becomes that double."""
        return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
                if p.type_ == Parameter.Type.INTEGER and self.has_parameter(p.name)
                and self.get_parameter(p.name).type_ == Parameter.Type.DOUBLE else p
                for p in parameters]


def shutdown_context() -> None:
    """rclpy.try_shutdown, where rclpy's signal thread may have shut the context down between
    its check and its call ('rcl_shutdown already called', seen at the end of a launch)."""
    try:
        rclpy.try_shutdown()
    except RuntimeError:
        if rclpy.ok():
            raise


def start_cli_node(factory):
    """A command-line tool's node, or None when a Ctrl-C came while it was being made (a demo
    stopping a tool it has just started): rclpy's handler has then shut the context down, and
    making the node raises KeyboardInterrupt, NotInitializedException or (the signal landing
    inside rcl) RCLError 'the given context is not valid'. Any other failure propagates."""
    try:
        return factory()
    except KeyboardInterrupt:
        return None
    except (RuntimeError, NotInitializedException):
        if rclpy.ok():
            raise
        return None


def run_node(node_class, args=None, executor_factory=None) -> None:
    """rclpy.init, spin until Ctrl-C / SIGTERM / shutdown, then clean up (the ros2/examples
    main(), once). executor_factory: for a node that needs another executor than the default
    single-threaded one (made after rclpy.init)."""
    run_nodes([(node_class, executor_factory)], args)


def run_nodes(nodes, args=None) -> None:
    """run_node for several nodes in one process (one rclpy context, so topics between them
    never leave the process): `nodes` is a list of (factory, executor_factory or None), each
    node spun by its own executor on its own thread, so no node's callbacks wait behind
    another's (a command or an e-stop is not queued behind an inference). A callback that
    raises on a spinning thread ends the whole process with that error, as it would end a
    node of its own."""
    interrupted = threading.Event()
    failure = []

    def interrupt(signum, frame):
        interrupted.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)      # before rclpy.init, whose handler chains to it
    rclpy.init(args=args)
    made, executors, threads = [], [], []
    stopping = threading.Event()

    def spin_on_thread(executor):
        # Its own loop rather than executor.spin(): Executor.shutdown() destroys the guard
        # condition a spin() on another thread may still be waiting on (a segfault, 1 stop in
        # 60), so the main thread ends these loops and joins them before any shutdown.
        try:
            while not stopping.is_set():
                executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            pass
        except BaseException as exc:        # the main thread re-raises it after shutdown
            failure.append(exc)
            shutdown_context()

    try:
        for node_class, executor_factory in nodes:
            made.append(node_class())
            executor = executor_factory() if executor_factory else SingleThreadedExecutor()
            executor.add_node(made[-1])
            executors.append(executor)
        for executor in executors[1:]:
            threads.append(threading.Thread(
                target=spin_on_thread, args=(executor,), daemon=True,
                name=f'spin_{executor.get_nodes()[0].get_name()}'))
            threads[-1].start()
        executors[0].spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # A Ctrl-C that lands while rclpy turns a taken message into Python objects is raised
        # inside that conversion, and pybind11 replaces it with "Unable to convert call
        # argument '0' to Python object": still a Ctrl-C, not a failure (seen in CI at the
        # end of a launch, ros/joint_state_publisher#117). Any other RuntimeError propagates.
        if not interrupted.is_set():
            raise
    finally:
        # A second Ctrl-C while cleaning up (a terminal signals the whole group, and
        # `ros2 launch` then signals each node again) must not end it in a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Every spinning thread out of rcl before its executor shuts down, the nodes go and
        # the interpreter ends: a daemon thread still waiting inside rcl at exit is unwound
        # through C++ and aborts the process ('terminate called without an active
        # exception', 1 stop in 10 with three nodes composed).
        stopping.set()
        for thread in threads:
            thread.join(timeout=5.0)
        for executor in executors:
            executor.shutdown(timeout_sec=1.0)
        for node in reversed(made):
            node.destroy_node()
        shutdown_context()
    if failure and not interrupted.is_set():
        raise failure[0]


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
                   values: dict, stamp=None) -> None:
    """One DiagnosticStatus (as rqt_robot_monitor shows it) on /diagnostics; a node in a
    namespace prefixes its name with it (two pipelines' statuses stay apart). stamp: when
    the state was read (default: now)."""
    status = DiagnosticStatus(name=namespaced_status(node.get_namespace(), name),
                              hardware_id=hardware_id, level=level, message=message)
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = stamp if stamp is not None else node.get_clock().now().to_msg()
    array.status = [status]
    publisher.publish(array)
