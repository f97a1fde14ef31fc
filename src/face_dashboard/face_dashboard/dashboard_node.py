"""Dashboard node: the pipeline in a browser, on localhost (http://127.0.0.1:8080/ by default).

Subscribes to the human and robot faces, the applied commands, latency_monitor's summary
(percentiles and histogram) and /diagnostics (node health); a websocket pushes the state to
each open page update_hz times a second. The page's buttons call the pipeline's services
(neutral capture, e-stop, resume) when the page was opened with this run's token: the URL
with ?token=... logged at start (the token is FACE_DASHBOARD_TOKEN when set, as make demo
does, else random per run); see server.py for the other checks.

Cheap whatever the pipeline's rate: the face streams and commands are subscriptions with a
queue of one on a second node that no executor spins; the page push takes the newest message
of each straight from its subscription, update_hz times a second (rclpy's per-callback cost
was most of this node's CPU when it took all 150 messages a second, and an executor's wait
set per push was still a third of it).

Names are relative: a dashboard started in a namespace (launch/shadow_pair.launch.yaml) shows
that namespace's robot, and of /diagnostics only that namespace's nodes and the shared ones
at the root (one dashboard per robot, each on its own port).
"""
import os
from pathlib import Path
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from face_actuation.profile import ProfileError, load_profile
from face_common import qos, topics
from face_common.arkit import CHANNEL_NAMES
from face_common.messages import blendshapes_to_array
from face_common.node import OK, WARN, FaceNode, publish_status, run_node
from face_common.paths import share_path
from face_dashboard.server import TOKEN_ENV, DashboardServer
from face_dashboard.state import DashboardState
from face_msgs.msg import Blendshapes, ControlValues, LatencySummary
from face_msgs.srv import CaptureNeutral

FACE_TOPICS = {'human': topics.HUMAN_BLENDSHAPES.name, 'robot': topics.ROBOT_BLENDSHAPES.name}
ACTIONS = {'estop': (Trigger, topics.actuation_service('estop').name),
           'resume': (Trigger, topics.actuation_service('enable').name),
           'neutral': (Trigger, topics.actuation_service('go_to_neutral').name),
           'capture_neutral': (CaptureNeutral, topics.CAPTURE_NEUTRAL.name)}
# Confirmed by a second request the server checks, not only by the page's dialog: resuming
# makes the face move again next to a person.
CONFIRM = {'resume': 'Resume following the performer? The robot face will move again.'}
REFUSAL_LOG_PERIOD_S = 5.0


def web_dir() -> Path:
    """The page's assets: installed share/face_dashboard/web, else the source tree."""
    return share_path('face_dashboard', 'web', Path(__file__).resolve().parent.parent / 'web')


class DashboardNode(FaceNode):

    def __init__(self):
        super().__init__('dashboard')
        self.declare_parameter('robot', 'micheal', ParameterDescriptor(
            description='Robot profile: motor names and limits shown with the commands.'))
        self.declare_parameter('host', '127.0.0.1', ParameterDescriptor(
            description='Address to serve on (0.0.0.0: reachable from other machines).'))
        self.declare_parameter('port', 8080, ParameterDescriptor(
            description='HTTP/websocket port (0: any free port, logged).'))
        self.declare_parameter('update_hz', 25.0, ParameterDescriptor(
            description='Page updates per second.'))
        self.declare_parameter('diagnostics_period_s', 1.0, ParameterDescriptor(
            description='Period of /diagnostics messages.'))
        self.declare_parameter('max_connections', 4, ParameterDescriptor(
            description='Pages open at once; more are refused with a message.'))
        self.declare_parameter('allowed_hosts', '', ParameterDescriptor(
            description='Comma-separated extra host names the page is reached by (e.g. '
                        'robot-pc.local with host 0.0.0.0); addresses need none.'))
        try:
            self.profile = load_profile(self.get_parameter('robot').value)
        except ProfileError as exc:
            raise SystemExit(f'dashboard: {exc}') from None
        self.state = DashboardState()
        self.counters = {'bad_frames': 0, 'actions': 0, 'action_failures': 0}
        self._index_cache = {}
        self._refusal_logged = {}
        latest_only = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        # The face streams' own node, named after this one: the launch's `-r __node:=NAME`
        # reaches every node of the process, so without its own remap it would be a second
        # node called NAME (rclpy warns, and the graph lists it twice).
        self.streams = Node(f'{self.get_name()}_streams', context=self.context,
                            cli_args=['--ros-args', '-r', f'__node:={self.get_name()}_streams'])
        self.stream_subscriptions = [
            *(self.streams.create_subscription(
                Blendshapes, topic, lambda msg, w=which: self._on_face(w, msg), latest_only)
              for which, topic in FACE_TOPICS.items()),
            self.streams.create_subscription(ControlValues, topics.ROBOT_APPLIED.name,
                                             self._on_commands, latest_only)]
        self.create_subscription(LatencySummary, topics.LATENCY_SUMMARY.name,
                                 self._on_latency, qos.of(topics.LATENCY_SUMMARY))
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS.name, self._on_diagnostics,
                                 qos.DIAGNOSTICS)
        namespace = self.get_namespace().strip('/')
        self._status_prefix = namespace + '/' if namespace else None
        self.clients_ = {name: self.create_client(srv, service)
                         for name, (srv, service) in ACTIONS.items()}
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        self.create_timer(self.get_parameter('diagnostics_period_s').value,
                          self._publish_diagnostics)
        allowed = [h.strip() for h in self.get_parameter('allowed_hosts').value.split(',')]
        try:
            self.server = DashboardServer(
                web_dir(), self._snapshot, self._hello, self._on_action,
                self.get_parameter('host').value, int(self.get_parameter('port').value),
                float(self.get_parameter('update_hz').value),
                token=os.environ.get(TOKEN_ENV) or None,
                max_connections=int(self.get_parameter('max_connections').value),
                confirm=CONFIRM, allowed_hosts=[h for h in allowed if h],
                on_refusal=self._log_refusal)
            self.server.start()
        except (OSError, ValueError) as exc:
            raise SystemExit(f'dashboard: {exc}') from None
        self.get_logger().info(f'dashboard at {self.server.page_url} (without the token the '
                               'page is read-only)')

    # ---- inputs --------------------------------------------------------------------------
    def _on_face(self, which: str, msg: Blendshapes) -> None:
        values = blendshapes_to_array(msg, self._index_cache)
        if values is None:
            self.counters['bad_frames'] += 1
        else:
            self.state.set_face(which, values, msg.frame_number)

    def _on_commands(self, msg: ControlValues) -> None:
        if len(msg.values) == len(msg.motor_names):
            self.state.set_commands(msg.values)

    def _on_latency(self, msg: LatencySummary) -> None:
        self.state.set_latency(
            msg.frames,
            {s.name: {'mean': s.mean_ms, 'std': s.std_ms, 'p50': s.p50_ms, 'p95': s.p95_ms,
                      'p99': s.p99_ms, 'max': s.max_ms} for s in msg.stages},
            {s.name: (list(s.histogram_edges_ms), list(s.histogram_counts))
             for s in msg.stages})

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if '/' in status.name and not (self._status_prefix and
                                           status.name.startswith(self._status_prefix)):
                continue                  # another namespace's pipeline
            level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
            self.state.set_status(status.name, level, status.message,
                                  {kv.key: kv.value for kv in status.values})

    # ---- server callbacks (server thread) --------------------------------------------------
    def _hello(self) -> dict:
        return {'robot': self.profile.name, 'channel_names': list(CHANNEL_NAMES),
                'motor_names': list(self.profile.motor_names),
                'limits': [[m.min, m.max, m.unit] for m in self.profile.motors],
                'estop_mode': self.profile.safety.estop_mode}

    def _snapshot(self) -> dict:
        for subscription in self.stream_subscriptions:   # the newest of each stream, if any
            taken = take_newest(subscription)
            if taken is not None:
                subscription.callback(taken)
        return self.state.snapshot()

    def _on_action(self, action: str, reply) -> None:
        self.counters['actions'] += 1
        if action not in ACTIONS:
            reply({'ok': False, 'message': f'unknown action {action!r}'})
            return
        client = self.clients_[action]
        if not client.service_is_ready():
            self.counters['action_failures'] += 1
            reply({'ok': False, 'action': action,
                   'message': f'{ACTIONS[action][1]} is not available'})
            return
        request = ACTIONS[action][0].Request()
        future = client.call_async(request)
        self.get_logger().info(f'page asked for {action}')

        def done(result):
            try:
                response = result.result()
                reply({'ok': bool(response.success), 'action': action,
                       'message': response.message})
            except Exception as exc:       # the service vanished mid-call
                self.counters['action_failures'] += 1
                reply({'ok': False, 'action': action, 'message': str(exc)})
        future.add_done_callback(done)

    def _log_refusal(self, kind: str, message: str) -> None:
        """One line per kind of refusal every few seconds (server thread); all are counted."""
        now = time.monotonic()
        if now - self._refusal_logged.get(kind, -REFUSAL_LOG_PERIOD_S) >= REFUSAL_LOG_PERIOD_S:
            self._refusal_logged[kind] = now
            self.get_logger().warn(f'dashboard: {message}')

    def _publish_diagnostics(self) -> None:
        pages = len(self.server.clients)
        refused = dict(self.server.refused)
        level, message = (OK, f'{pages} page(s) open at {self.server.url}') if pages else \
            (OK, f'serving {self.server.url}, no page open')
        if refused['origins'] or refused['hosts']:
            level, message = WARN, (f'refused {refused["origins"]} websocket(s) from other web '
                                    f'sites and {refused["hosts"]} request(s) for other hosts')
        elif self.server.errors:
            level = WARN
        publish_status(self, self.diagnostics_pub, topics.STATUS_DASHBOARD,
                       self.server.url, level, message,
                       {'url': self.server.url, 'pages': pages, 'updates_sent': self.server.sent,
                        'server_errors': self.server.errors, **self.counters,
                        **{f'refused_{kind}': n for kind, n in refused.items()}})

    def destroy_node(self):
        self.server.stop()
        self.streams.destroy_node()
        super().destroy_node()


def take_newest(subscription):
    """The message waiting in a subscription's queue (None if none), taken the way rclpy's
    executors take it, without a wait set."""
    with subscription.handle:
        taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    return None if taken is None else taken[0]


def main(args=None):
    run_node(DashboardNode, args)


if __name__ == '__main__':
    main()
