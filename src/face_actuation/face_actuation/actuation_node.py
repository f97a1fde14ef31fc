"""Actuation node: /face/command -> safety layer -> driver, at a fixed control rate and at
once when a command arrives (executed in its own callback when the min tick gap allows).

Commands are matched to the robot's motors by name. A dedicated thread runs the control loop
(default 60 Hz, up to 200 Hz, plus a tick per new command): safety update, driver write (or
limp), and for the simulated
driver the digital twin, which also publishes what the robot face shows
(/face/robot/blendshapes, stamped with the human frame the applied command came from) and a
rendered image of it. Services (std_srvs/Trigger): estop latches (hold or limp, as the
profile says) and is persisted in the state folder, so a restarted node starts e-stopped;
reset clears the latch and eases to neutral without following commands; resume follows
commands again (refused while latched); enable = reset + resume (the dashboard's button);
go_to_neutral.

The loop cannot die quietly: any exception from the driver is caught, counted by type and
reported as ERROR in /diagnostics; the driver is closed and reopened with exponential backoff,
and while it is down the reported mode is 'driver_down', commands are refused (counted) and
services say the motors cannot move. The loop refreshes a heartbeat every tick; if the thread
ever stops or stalls, /diagnostics says ERROR at its next message.
"""
from collections import Counter
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from face_actuation.drivers import DriverError, UnencodableValue, make_driver
from face_actuation.estop_store import EstopStore
from face_actuation.profile import ProfileError, load_profile
from face_actuation.safety import MIN_TICK_PERIODS, Mode, SafetyLayer
from face_common import qos, topics
from face_common.images import image_msg
from face_common.latency import QUEUE, SAFETY_DRIVER
from face_common.messages import blendshapes_msg, control_values_msg, latency_msg
from face_common.node import (
    ERROR,
    OK,
    WARN,
    FaceNode,
    apply_realtime_priority,
    publish_status,
    run_node,
    start_publishing_thread,
)
from face_common.render import draw_face
from face_common.stats import RateMeter, SlidingWindow
from face_msgs.msg import Blendshapes, ControlValues, LatencyTrace

# Dropped commands worth a log line (each is also a counter in /diagnostics).
REJECTION_LINES = {
    'future_stamps': 'command stamped {ahead:.3f} s ahead of this clock dropped (over '
                     'future_stamp_tolerance_s): check the sender\'s clock',
    'zero_stamps': 'command with a zero stamp dropped: stamp commands with their frame time',
    'ignored_commands': 'command counted, not executed',
}
RECENT_ERROR_S = 5.0         # a driver error keeps /diagnostics at ERROR this long after it
ERROR_POLL_S = 1.0           # how often the hardware's own error state is read
HARDWARE_DRIVER = 'hardware'  # driver:=hardware: the profile's own driver, typed in a shell


def error_kind(exc: BaseException) -> str:
    """An exception's type as a counter key: 'OSError', 'termios.error',
    'serial.SerialException', 'face_actuation.DriverError'."""
    kind = type(exc)
    package = kind.__module__.split('.')[0]
    return kind.__qualname__ if package == 'builtins' else f'{package}.{kind.__qualname__}'


class ActuationNode(FaceNode):

    def __init__(self, **kwargs):
        super().__init__('actuation', **kwargs)
        p = self.declare_parameter
        p('robot', 'micheal', ParameterDescriptor(
            description='Bundled robot (micheal, hobbs, ameca) or a profile YAML path.'))
        p('driver', HARDWARE_DRIVER, ParameterDescriptor(
            description='Driver type: sim (the digital twin), maestro, dynamixel or '
                        f'ameca_zmq; {HARDWARE_DRIVER} (or empty) = the robot profile\'s.'))
        p('port', '', ParameterDescriptor(
            description='Override the driver\'s serial port or ZeroMQ endpoint.'))
        p('control_rate_hz', 0.0, ParameterDescriptor(
            description='Control loop rate; 0 = the profile\'s (60 Hz by default).',
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=200.0)]))
        p('twin_rate_hz', 60.0, ParameterDescriptor(
            description='Rate of /face/robot/blendshapes from the simulated robot.'))
        p('render_rate_hz', 10.0, ParameterDescriptor(
            description='Rate of /face/robot/image renders (0 = off).'))
        p('robot_calibration_dir', '', ParameterDescriptor(
            description='Per-robot calibration overrides; empty = the default directory.'))
        p('max_command_age_s', 0.25, ParameterDescriptor(
            description='Commands older than this (from their human frame stamp) are dropped.'))
        p('diagnostics_period_s', 1.0, ParameterDescriptor(
            description='Period of /diagnostics messages.'))
        p('future_stamp_tolerance_s', 0.5, ParameterDescriptor(
            description='Commands stamped further ahead of this machine\'s clock are dropped.'))
        p('state_dir', '', ParameterDescriptor(
            description='Folder of the persisted e-stop; empty = $FACE_STATE_DIR, else '
                        '~/.local/share/face_shadowing/state.'))
        p('reconnect_min_s', 0.2, ParameterDescriptor(
            description='First wait before reopening a failed driver; doubles per failed try.'))
        p('reconnect_max_s', 5.0, ParameterDescriptor(
            description='Longest wait between tries to reopen a failed driver.'))
        p('execute_on_arrival', True, ParameterDescriptor(
            description='Execute a new command in the callback that receives it (when the '
                        'min tick gap allows), not on the control thread after a wake-up: '
                        'that hand-over was the command queue stage (0.5 ms p50).'))
        p('loop_stall_s', 0.5, ParameterDescriptor(
            description='A control loop without a tick for this long is reported as stalled '
                        '(ERROR in /diagnostics).'))
        g = self.get_parameter
        try:
            self.profile = load_profile(g('robot').value, g('robot_calibration_dir').value or None)
            overrides = {}
            if g('driver').value not in ('', HARDWARE_DRIVER):
                overrides['type'] = g('driver').value
            if g('port').value:
                key = 'endpoint' if (overrides.get('type') or self.profile.driver.type) \
                    == 'ameca_zmq' else 'port'
                overrides[key] = g('port').value
            self.driver = make_driver(self.profile, overrides)
            self.driver.connect()
        except (ProfileError, DriverError) as exc:
            raise SystemExit(f'actuation: {exc}') from None
        self.rate_hz = g('control_rate_hz').value or self.profile.control_rate_hz
        self.safety = SafetyLayer(self.profile, max_command_age_s=g('max_command_age_s').value,
                                  future_stamp_tolerance_s=g('future_stamp_tolerance_s').value,
                                  period_s=1.0 / self.rate_hz)
        self.estop_store = EstopStore(self.profile.name, g('state_dir').value)
        self.names = self.profile.motor_names
        self._lock = threading.Lock()
        self._name_cache = {}
        self.counters = {'commands': 0, 'unknown_motor_names': 0, 'bad_command_messages': 0,
                         'driver_errors': 0, 'driver_reconnects': 0, 'commands_refused': 0,
                         'overruns': 0, 'estop_restored': 0, 'state_write_errors': 0}
        self.driver_error_types = Counter()
        self._warned_at = {}
        self.loop_ms = SlidingWindow(600)
        self.command_latency_ms = SlidingWindow(600)
        self.command_rate = RateMeter()
        self._stamp = self.get_clock().now().to_msg()
        self._accepted = 0           # commands taken so far; 0 = the face shows no human yet
        self._received_ns = 0        # when the newest accepted command arrived
        self._traced = 0             # commands whose latency trace went out
        self._last_error = ''
        self._last_error_time = -np.inf
        self._down_cause = ''                     # the error that took the driver down
        self._new_command = threading.Event()     # a command or an e-stop: tick now
        self._tick_lock = threading.Lock()        # one tick at a time, loop or callback
        self._execute_on_arrival = g('execute_on_arrival').value
        self._period = 1.0 / self.rate_hz
        self._last_tick = self._next_tick = time.monotonic()
        self._driver_lock = threading.Lock()      # the loop and services share one port
        self._driver_up = True
        self._powering_up = True                  # driver still has its power-up settings
        self._reconnect_min = g('reconnect_min_s').value
        self._reconnect_max = max(g('reconnect_max_s').value, self._reconnect_min)
        self._reconnect_delay = self._reconnect_min
        self._reconnect_at = 0.0
        self._stall_s = g('loop_stall_s').value
        self._heartbeat = time.monotonic()
        self._loop_failure = ''
        self._last_poll = self._last_twin = self._last_render = -np.inf

        try:
            self._power_up_from_driver()
        except Exception as exc:                  # any failure: start from neutral
            self.get_logger().warn(f'could not read the power-up pose ({exc}); assuming neutral')
            self.safety.power_up(np.full(self.profile.num_motors, np.nan))
        self.get_logger().info(
            f'robot "{self.profile.name}" ({self.profile.num_motors} motors, '
            f'{self.profile.kind}{", calibrated" if self.profile.calibrated else ""}), driver '
            f'{self.driver.name}, {self.rate_hz:.0f} Hz; easing to neutral over '
            f'{self.profile.safety.power_up_s:.1f} s')
        self._restore_estop()

        self.trace_pub = self.create_publisher(LatencyTrace, topics.LATENCY.name,
                                               qos.of(topics.LATENCY))
        self.applied_pub = self.create_publisher(ControlValues, topics.ROBOT_APPLIED.name,
                                                 qos.of(topics.ROBOT_APPLIED))
        self.twin = getattr(self.driver, 'twin', None)
        if self.twin is not None:
            self.robot_pub = self.create_publisher(Blendshapes, topics.ROBOT_BLENDSHAPES.name,
                                                   qos.of(topics.ROBOT_BLENDSHAPES))
            self.image_pub = self.create_publisher(Image, topics.ROBOT_IMAGE.name,
                                                   qos.of(topics.ROBOT_IMAGE))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        self.create_subscription(ControlValues, topics.COMMAND.name, self._on_command_if_driving,
                                 qos.of(topics.COMMAND))
        # (name, callback, whether it may act while the motors cannot be commanded)
        for name, callback, while_down in (
                ('estop', self._on_estop, True), ('reset', self._on_reset, False),
                ('resume', self._on_resume, False), ('enable', self._on_enable, False),
                ('go_to_neutral', self._on_neutral, True)):
            self.create_service(Trigger, topics.actuation_service(name).name,
                                self._honest(callback, while_down))
        self.create_timer(g('diagnostics_period_s').value, self._publish_diagnostics)
        self._twin_hz = max(g('twin_rate_hz').value, 1e-3)
        self._render_hz = g('render_rate_hz').value
        self._running = True
        self.scheduling = apply_realtime_priority(self)
        self._thread = start_publishing_thread(self, self._control_loop, 'control')

    # ---- commands ---------------------------------------------------------------------------
    def _order(self, names) -> np.ndarray:
        key = tuple(names)
        order = self._name_cache.get(key)
        if order is None:
            lookup = {n: i for i, n in enumerate(names)}
            order = np.array([lookup.get(n, -1) for n in self.names])
            unknown = set(names) - set(self.names)
            if unknown:
                self.counters['unknown_motor_names'] += len(unknown)
                self.get_logger().warn(f'command names motors this robot lacks: '
                                       f'{sorted(unknown)[:5]}')
            if len(self._name_cache) > 8:
                self._name_cache.clear()
            self._name_cache[key] = order
        return order

    def _on_command(self, msg: ControlValues) -> None:
        now = time.time()
        if len(msg.motor_names) != len(msg.values) or not len(msg.values):
            self.counters['bad_command_messages'] += 1
            self.get_logger().warn('command with mismatched names/values dropped',
                                   throttle_duration_sec=5.0)
            return
        order = self._order(msg.motor_names)
        incoming = np.asarray(msg.values, dtype=np.float64)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9   # 0 = unstamped
        with self._lock:
            values = self.safety.target.copy()                 # motors not named: hold
            present = order >= 0
            values[present] = incoming[order[present]]
            accepted = self.safety.command(values, now, stamp)
            if accepted:
                self._stamp = msg.header.stamp
                self._accepted += 1
                self._received_ns = int(now * 1e9)
            else:
                self._explain_rejection(self.safety.rejection, stamp - now)
        if accepted and not self._tick_on_arrival():
            self._new_command.set()
        self.counters['commands'] += 1
        if accepted:
            self.command_rate.tick(time.monotonic())
            self.command_latency_ms.add((now - stamp) * 1e3)

    def _explain_rejection(self, kind: str, ahead_s: float) -> None:
        """One log line per kind of dropped command, at most every 5 s per kind."""
        now = time.monotonic()
        if kind not in REJECTION_LINES or now - self._warned_at.get(kind, -np.inf) < 5.0:
            return
        self._warned_at[kind] = now
        line = REJECTION_LINES[kind]
        if kind == 'ignored_commands':
            line += (' (e-stopped: call /face/actuation/reset, then resume)'
                     if self.safety.latched else ' (standby: call /face/actuation/resume)')
        self.get_logger().warn(line.format(ahead=ahead_s))

    # ---- driver health --------------------------------------------------------------------
    def _power_up_from_driver(self, follow: bool = True) -> None:
        """Ease to neutral from where the driver finds the motors (NaN entries: unknown), then
        follow commands if `follow`. A latched e-stop outlives a reconnect: then the pose is
        left as the e-stop holds it."""
        with self._driver_lock:
            measured = self.driver.read_positions()
        with self._lock:
            if self.safety.mode is not Mode.ESTOP:
                self.safety.power_up(self.profile.neutral if measured is None else measured,
                                     follow=follow)
            elif measured is not None:
                self.safety.lost_track(measured)
        self._powering_up = True

    def _measured_positions(self):
        """The driver's reading for services (None when it cannot give one): serialised with
        the control loop, and never an exception into the executor."""
        if not self._driver_up:
            return None
        try:
            with self._driver_lock:
                return self.driver.read_positions()
        except Exception as exc:
            self.get_logger().warn(f'could not read positions: {error_kind(exc)}: {exc}',
                                   throttle_duration_sec=2.0)
            return None

    def _count_driver_error(self, exc: BaseException, context: str) -> str:
        kind = error_kind(exc)
        self.counters['driver_errors'] += 1
        self.driver_error_types[kind] += 1
        self._last_error = f'{context}{kind}: {exc}'
        self._last_error_time = time.monotonic()
        return self._last_error

    def _close_driver(self) -> None:
        try:
            with self._driver_lock:
                self.driver.disconnect()
        except Exception as exc:                  # closing a port that is already gone
            self.get_logger().debug(f'closing the driver: {exc}')

    def _take_driver_down(self, exc: BaseException) -> None:
        text = self._count_driver_error(exc, '')
        self.get_logger().error(f'driver: {text}; closing it and reopening with backoff',
                                throttle_duration_sec=2.0)
        self._down_cause = text
        self._driver_up = False
        self._close_driver()
        self._reconnect_delay = self._reconnect_min
        self._reconnect_at = time.monotonic() + self._reconnect_delay

    def _reconnect(self) -> None:
        try:
            with self._driver_lock:
                self.driver.connect()
            # power came back after a fault: motion must not restart by itself (EN 60204-1
            # 7.5), so the face eases to neutral and waits for /face/actuation/resume
            self._power_up_from_driver(follow=False)
        except Exception as exc:
            text = self._count_driver_error(exc, 'reopen: ')
            self.get_logger().warn(f'driver: {text}; next try in '
                                   f'{self._reconnect_delay:.1f} s', throttle_duration_sec=5.0)
            self._close_driver()
            self._reconnect_at = time.monotonic() + self._reconnect_delay
            self._reconnect_delay = min(self._reconnect_delay * 2, self._reconnect_max)
            return
        self._driver_up = True
        self.counters['driver_reconnects'] += 1
        self.get_logger().warn('driver reopened: easing to neutral from the measured pose; '
                               'call /face/actuation/resume to follow commands again')

    def _motion_unavailable(self) -> str:
        """Why the motors cannot be commanded now ('' when they can)."""
        _, problem = self._loop_problem()
        if problem:
            return problem
        if not self._driver_up:
            return f'driver down ({self._down_cause})'
        return ''

    def _loop_problem(self) -> tuple:
        """(mode, reason) when the control loop has stopped or stalled, else ('', '')."""
        # the failure is recorded before the thread unwinds (its traceback can take a while
        # on a loaded machine), so no status in between still reads as running
        if self._loop_failure or not self._thread.is_alive():
            return 'loop_stopped', f'control loop stopped ({self._loop_failure or "ended"})'
        age = time.monotonic() - self._heartbeat
        if age > self._stall_s:
            return 'loop_stalled', f'control loop stalled (no tick for {age:.1f} s)'
        return '', ''

    def _on_command_if_driving(self, msg: ControlValues) -> None:
        """Commands are refused (and counted) while nothing could execute them: they must not
        pile up to run the moment the driver is back."""
        problem = self._motion_unavailable()
        if problem:
            self.counters['commands_refused'] += 1
            self.get_logger().warn(f'command refused: {problem}', throttle_duration_sec=5.0)
            return
        self._on_command(msg)

    def _honest(self, callback, acts_while_down: bool):
        """A Trigger service that never claims motion it cannot do. With the driver down or
        the loop stopped the answer is success=false and says why; a request that would start
        motion (reset, resume, enable) changes nothing then, since a failure must not take
        effect later by itself (a replugged cable would start motion), while the others are
        still recorded (an e-stop stays latched)."""
        def answer(request, response):
            if not acts_while_down and self._motion_unavailable():
                response.success, response.message = False, 'refused, nothing changed'
            else:
                response = callback(request, response)
            problem = self._motion_unavailable()
            if problem:
                response.success = False
                response.message = f'{response.message}; but {problem}: motors not commanded'
            return response
        return answer

    # ---- control loop ------------------------------------------------------------------------
    def _control_loop(self) -> None:
        """Runs the loop; if anything ever ends it, the reason is kept for /diagnostics."""
        try:
            self._run_control_loop()
        except BaseException as exc:
            self._loop_failure = f'{error_kind(exc)}: {exc}'
            raise

    def _run_control_loop(self) -> None:
        """Fixed-rate ticks, and one more as soon as a new command or an e-stop arrives: a
        command waits for no timer (that wait was most of the end-to-end latency), an e-stop
        acts within the min gap, not up to 1.25 periods later; and between commands
        the safety layer keeps ramping, the watchdog keeps watching. Every tick moves the
        motors by the time that actually passed, so speed and acceleration limits hold
        whatever the spacing; ticks are at least MIN_TICK_PERIODS of a period apart, which
        bounds the bus write rate. A command the callback executed itself
        (_tick_on_arrival) moves this loop's next tick as one woken here would. While the
        driver is down, ticks go on (heartbeat) and try to reopen it when the backoff
        allows."""
        min_gap = self._period * MIN_TICK_PERIODS     # bounds the bus write rate
        with self._tick_lock:               # the first tick's step counts from here
            self._last_tick = self._next_tick = time.monotonic()
        while self._running and self.context.ok():
            woken = self._new_command.wait(max(0.0, self._next_tick - time.monotonic()))
            self._heartbeat = time.monotonic()
            if woken:
                self._new_command.clear()
            with self._tick_lock:           # held while early: a callback cannot tick then
                if woken:
                    early = self._last_tick + min_gap - time.monotonic()
                    if early > 0:
                        time.sleep(early)
                elif time.monotonic() < self._next_tick:
                    continue                # a callback's tick moved the schedule on
                started = time.monotonic()
                self._heartbeat = started
                if self._driver_up:
                    self._timed_tick(started, woken)
                else:
                    self._schedule_after(started, woken)
                    if started >= self._reconnect_at:
                        self._reconnect()

    def _tick_on_arrival(self) -> bool:
        """Execute the command just accepted here in the callback, when the min tick gap
        since the last tick has passed and no tick is running: no hand-over to the control
        thread (a wake-up, then waiting for the GIL while the executor finishes its turn).
        False: the control loop executes it (woken by the caller), as before."""
        if not (self._execute_on_arrival and self._driver_up):
            return False
        if not self._tick_lock.acquire(blocking=False):
            return False
        try:
            started = time.monotonic()
            if started - self._last_tick < self._period * MIN_TICK_PERIODS:
                return False
            self._timed_tick(started, True)
            return True
        finally:
            self._tick_lock.release()

    def _timed_tick(self, started: float, for_command: bool) -> None:
        """One tick under _tick_lock: the motors move by the time since the last one."""
        dt = max(started - self._last_tick, 1e-4)
        self._tick(started, dt)
        self.loop_ms.add((time.monotonic() - started) * 1e3)
        self._schedule_after(started, for_command)

    def _schedule_after(self, started: float, for_command: bool) -> None:
        """The next tick without a command: after a command 1 + MIN_TICK_PERIODS periods on
        (a stream at the control rate then finds no fresh tick in its way, one just before
        it made the command wait the whole min gap, and the ramp still moves), else one
        period after the last scheduled one; far behind, from now (counted as an overrun)."""
        self._last_tick = started
        period = self._period
        self._next_tick = (started + period * (1 + MIN_TICK_PERIODS) if for_command
                           else self._next_tick + period)
        if self._next_tick < time.monotonic() - period:
            self.counters['overruns'] += 1
            self._next_tick = time.monotonic()

    def _tick(self, started: float, dt: float) -> None:
        tick_ns = time.time_ns()
        if self.twin is not None:
            self.driver.advance(dt)            # the elapsed time under the previous command
        with self._lock:
            positions = self.safety.update(dt)
            stamp = self._stamp
            accepted, received_ns = self._accepted, self._received_ns
        try:
            with self._driver_lock:
                self._drive(positions, started)
        except UnencodableValue as exc:          # nothing was sent; the link is fine
            text = self._count_driver_error(exc, '')
            self.get_logger().error(f'driver: {text}', throttle_duration_sec=2.0)
            return
        except Exception as exc:                 # serial, termios, OS, SDK errors, ...
            self._take_driver_down(exc)
            return
        executed = accepted != self._traced and positions is not None
        if executed:
            # The first tick that executes a new command closes its frame's trace.
            self._traced = accepted
            self.trace_pub.publish(latency_msg(stamp, accepted, 'actuation', (
                (QUEUE, received_ns, max(0, tick_ns - received_ns) / 1e6),
                (SAFETY_DRIVER, tick_ns, (time.time_ns() - tick_ns) / 1e6))))
        if positions is not None:
            self.applied_pub.publish(control_values_msg(
                positions, self.names, stamp, robot=self.profile.name, source='safety',
                frame_id='applied'))
        if self.twin is not None and started - self._last_twin >= 0.9 / self._twin_hz:
            self._last_twin = started
            render = (self._render_hz > 0
                      and started - self._last_render >= 0.9 / self._render_hz)
            if render:
                self._last_render = started
            self._publish_twin(stamp, render)

    def _drive(self, positions, started: float) -> None:
        """One tick's driver traffic: the positions (or limp), the end of power-up, and now
        and then the hardware's own error state."""
        if positions is None:
            self.driver.limp()
        else:
            self.driver.write(positions)
        # the controller's own power-up limits stay until the face has eased to neutral
        if self._powering_up and self._eased_to_neutral():
            self.driver.finish_power_up()
            self._powering_up = False
        if started - self._last_poll >= ERROR_POLL_S:
            self._last_poll = started
            reported = self.driver.poll_errors()
            if reported:
                text = self._count_driver_error(DriverError(reported), 'hardware reports ')
                self.get_logger().error(f'driver: {text}', throttle_duration_sec=2.0)

    def _eased_to_neutral(self) -> bool:
        """The power-up ease is over: following commands, or in standby at neutral."""
        mode = self.safety.mode
        return mode in (Mode.ACTIVE, Mode.WATCHDOG) or (
            mode is Mode.STANDBY and np.allclose(self.safety.position, self.safety.neutral,
                                                 atol=1e-4))

    def _publish_twin(self, stamp, render: bool) -> None:
        shown = self.twin.observe()
        # frame_number counts the commands applied so far: 0 means the stamp is not a human
        # frame's yet (the face has only been powered up), so latency tools skip it
        self.robot_pub.publish(blendshapes_msg(shown, stamp, source='robot_twin',
                                               subject=self.profile.name,
                                               frame_id='robot_face',
                                               frame_number=self._accepted))
        if render:
            image = draw_face(shown, 256, 'robot', f'{self.profile.name} (twin)')
            self.image_pub.publish(image_msg(image, stamp, 'robot_face'))

    # ---- services ---------------------------------------------------------------------------
    def _restore_estop(self) -> None:
        """A node (re)started after an e-stop starts e-stopped until someone resets it."""
        latch = self.estop_store.load()
        if latch is None:
            return
        with self._lock:
            self.safety.estop()
        self.counters['estop_restored'] = 1
        self.get_logger().warn(
            f'starting E-STOPPED ({latch["reason"]} since {latch["since"]}, '
            f'{self.estop_store.path}): call /face/actuation/reset, then resume')

    def _persist(self, latched: bool) -> str:
        """Save the latch; '' or a note for the service's answer when the disk refused."""
        try:
            self.estop_store.save(latched)
        except OSError as exc:
            self.counters['state_write_errors'] += 1
            self.get_logger().error(f'could not persist the e-stop state: {exc}')
            return f'; NOT persisted ({exc})'
        return ''

    def _on_estop(self, request, response):
        with self._lock:
            self.safety.estop()
            mode = 'limp' if self.safety.limp else 'hold'
        self._new_command.set()       # the loop ticks now, not up to 1.25 periods later
        self.get_logger().warn(f'E-STOP: motors {"hold" if mode == "hold" else "go limp"}')
        response.success = True
        response.message = f'e-stop engaged and latched ({mode})' + self._persist(True)
        return response

    def _on_reset(self, request, response):
        measured = self._measured_positions()
        with self._lock:
            response.success = self.safety.reset(measured)
        if response.success:
            response.message = ('reset: e-stop cleared, easing to neutral; commands are not '
                                'followed until /face/actuation/resume' + self._persist(False))
        else:
            response.message = 'nothing to reset: not e-stopped'
        self.get_logger().info(response.message)
        return response

    def _on_resume(self, request, response):
        with self._lock:
            response.success = self.safety.resume()
        response.message = ('following commands (after easing to neutral)' if response.success
                            else 'refused: e-stop latched; call /face/actuation/reset first')
        self.get_logger().info(response.message)
        return response

    def _on_enable(self, request, response):
        """Documented alias of reset + resume, for the dashboard's single button."""
        measured = self._measured_positions()
        with self._lock:
            was_following = self.safety.following
            was_stopped = self.safety.enable(measured)
        response.success = True
        if was_stopped:
            response.message = ('enabled: e-stop cleared, easing to neutral, then following '
                                'commands' + self._persist(False))
        else:
            response.message = 'already enabled' if was_following else 'following commands'
        self.get_logger().info(response.message)
        return response

    def _on_neutral(self, request, response):
        with self._lock:
            response.success = self.safety.command(self.profile.neutral, time.time())
            latched = self.safety.latched
        response.message = ('going to neutral' if response.success else
                            'refused: e-stop latched; call /face/actuation/reset (it eases to '
                            'neutral)' if latched else
                            'standby: already easing to / holding neutral')
        response.success = response.success or not latched
        return response

    # ---- diagnostics -----------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        stamp = self.get_clock().now().to_msg()      # when the state below was read
        with self._lock:
            mode = self.safety.mode
            counters = {**self.counters, **self.safety.counters.as_dict()}
            limp = self.safety.limp
        loop = self.loop_ms.summary()
        now = time.monotonic()
        loop_mode, loop_problem = self._loop_problem()
        reported_mode = mode.value
        if loop_problem:
            level, message, reported_mode = ERROR, loop_problem, loop_mode
        elif not self._driver_up:
            level, reported_mode = ERROR, 'driver_down'
            message = (f'driver down ({self._down_cause}); reopening, next try in '
                       f'{max(0.0, self._reconnect_at - now):.1f} s; last error: '
                       f'{self._last_error}')
        elif mode is Mode.ESTOP:
            level, message = WARN, 'e-stop: ' + ('limp' if limp else 'holding')
        elif now - self._last_error_time < RECENT_ERROR_S:
            level, message = ERROR, f'driver error: {self._last_error}'
        elif mode is Mode.WATCHDOG:
            level, message = WARN, 'no commands: easing to neutral'
        elif mode is Mode.STANDBY:
            level, message = WARN, 'standby after reset: call /face/actuation/resume'
        else:
            level, message = OK, mode.value
        values = {'mode': reported_mode, 'safety_mode': mode.value,
                  'driver_up': str(self._driver_up).lower(),
                  'last_driver_error': self._last_error, 'driver_down_cause': self._down_cause,
                  'loop_heartbeat_age_ms': f'{(now - self._heartbeat) * 1e3:.0f}',
                  'control_rate_hz': f'{self.rate_hz:.1f}',
                  'command_rate_hz': f'{self.command_rate.rate(now):.1f}',
                  'loop_ms_mean': f'{loop.mean:.3f}', 'loop_ms_p99': f'{loop.p99:.3f}',
                  'command_age_ms_p99': f'{self.command_latency_ms.summary().p99:.2f}',
                  'scheduling': self.scheduling, **counters,
                  **{f'driver_errors.{kind}': n for kind, n in self.driver_error_types.items()}}
        publish_status(self, self.diagnostics_pub, topics.STATUS_ACTUATION,
                       f'{self.profile.name}/{self.driver.name}', level, message, values, stamp)

    def destroy_node(self):
        self._running = False
        self._thread.join(timeout=2.0)
        self._close_driver()
        super().destroy_node()


def main(args=None):
    run_node(ActuationNode, args)


if __name__ == '__main__':
    main()
