"""face-demo (`make demo`): the shadowing demo on its embedded defaults.

The stand-in iPhone sends the bundled real Live Link Face take as real UDP packets; the
receiver publishes the human face (neutral calibration from the take or captured live); the
ExFace diffusion model (shipped checkpoint) retargets it; the actuation node drives the
robot's digital twin through the safety layer; the recorder writes the session to a rosbag2
bag; the dashboard shows it in a browser. At the end: side-by-side video, summary (JSON +
markdown) and the bag in the output folder (one folder per robot with two robots).

  make demo                                   # 30 s, Micheal, ExFace, stand-in iPhone
  make demo ARGS="--robot ameca --model mlp"  # another robot / model
  make demo ARGS="--robot hobbs,ameca --model exface,mlp"  # two robots shadow one face
  make demo ARGS="--duration 0"               # until Ctrl-C
  make demo ARGS="--input udp --allow 192.168.1.23"  # a real iPhone running Live Link Face
  make demo ARGS="--input take --take my.csv" # a take file played onto the topics
  make demo ARGS="--input tcp"                # the stand-in sends over TCP to the TCP bridge
  make demo ARGS="--start 0"                  # the bundled take from its beginning
  make demo ARGS="--input camera --device 0"  # a webcam (needs the face tracker)
  make demo ARGS="--input video --video clip.mp4"  # a video file or stream URL (same)
  make demo ARGS="--input http"               # the VividFace app posting JPEGs (same)

Image inputs (camera, video, http) start the camera or HTTP stream node and the face tracker
(images -> blendshapes; capture.launch.yaml includes launch/camera.launch.yaml for them); the
tracker calibrates its own neutral.

The bundled take starts at its held-out part (from 94 s: no shipped model trained on it, the
part face-retarget-eval scores), the performer's neutral taken from the take's first second.
The nodes run under the project's launch runner (face-launch: launch/shadow.launch.yaml, or
launch/shadow_pair.launch.yaml with two robots). A wrong argument, or a node that dies while
the demo runs, ends it at once with one line saying why and a non-zero exit status.
"""
import argparse
from dataclasses import dataclass
from datetime import datetime
import json
import os
from pathlib import Path
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

from face_actuation.profile import ProfileError, load_profile
from face_dashboard.server import TOKEN_ENV

LAUNCH_DIR = Path('launch')        # the checkout's launch files (make demo runs at its root)
IMAGE_INPUTS = ('camera', 'video', 'http')     # need the face tracker for blendshapes
STANDIN_DELAY_S = 6.0              # every node is up (PyTorch loads in ~3 s) before frame one
EXITED = '[face-launch] '
POLL_S = 0.1


class DemoError(Exception):
    """Why the demo stopped (a node died, no command reached the robot): one line."""
    status = 1


class UsageError(DemoError):
    """A wrong argument: said before anything starts."""
    status = 2


@dataclass
class Robot:
    profile: str         # as given: a bundled robot's name or a profile YAML
    name: str            # the profile's name: also the namespace with two robots
    model: str
    out: Path            # bag/, summary, video
    dashboard_port: int


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='face-demo', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    parser.add_argument('--duration', type=float, default=30.0,
                        help='seconds from the first human frame; 0 = until Ctrl-C')
    parser.add_argument('--robot', default='micheal',
                        help='robot profile, or two comma-separated (hobbs,ameca)')
    parser.add_argument('--model', default='exface',
                        help='retarget model, or one per robot comma-separated')
    parser.add_argument('--input', choices=('standin', 'udp', 'take', 'tcp', *IMAGE_INPUTS),
                        default='standin',
                        help='stand-in iPhone, a real iPhone over UDP, a take file, the stand-in '
                             'over TCP to the TCP bridge, or images (a camera, a video, the '
                             'VividFace HTTP stream) through the face tracker')
    parser.add_argument('--device', default='0', help='with --input camera: device index')
    parser.add_argument('--video', default='', help='with --input video: file or stream URL')
    parser.add_argument('--http-port', type=int, default=5000,
                        help='with --input http: port of POST /stream (on every interface '
                             'with --allow, else loopback only)')
    parser.add_argument('--take', default='', help='take file (empty: the bundled take)')
    parser.add_argument('--start', type=float, default=None,
                        help='seconds into the take (default: the held-out part of the '
                             'bundled take, else 0)')
    parser.add_argument('--port', type=int, default=11111, help='Live Link UDP port')
    parser.add_argument('--tcp-port', type=int, default=11112,
                        help='with --input tcp: the TCP bridge\'s port (on 127.0.0.1)')
    parser.add_argument('--allow', default='',
                        help='with --input udp: the phone(s) the receiver accepts, '
                             'ADDR[,ADDR|SUBNET] (required: udp listens on every interface)')
    parser.add_argument('--dashboard-port', type=int, default=8080,
                        help='dashboard port (a free one if taken; the next for a second '
                             'robot)')
    parser.add_argument('--out', default='', help='output folder (default out/demo/<date-time>)')
    return parser.parse_args(argv)


def checked(args) -> list:
    """The robots and models to run, or UsageError for a wrong argument."""
    from face_retarget.training import MODELS
    names = [n.strip() for n in args.robot.split(',')]
    models = [m.strip() for m in args.model.split(',')]
    if len(names) > 2 or not all(names):
        raise UsageError(f'--robot takes one robot or two comma-separated, got {args.robot!r}')
    if len(models) == 1:
        models *= len(names)
    if len(models) != len(names):
        raise UsageError(f'--model: give one model or one per robot ({len(names)}), got '
                        f'{args.model!r}')
    for model in models:
        if model not in MODELS:
            raise UsageError(f'unknown model {model!r}; available: {", ".join(MODELS)}')
    profiles = []
    for name in names:
        try:
            profiles.append((name, load_profile(name).name))
        except ProfileError as exc:
            raise UsageError(str(exc)) from None
    if len({name for _, name in profiles}) != len(profiles):
        raise UsageError(f'--robot names the same robot twice: {args.robot!r}')
    if args.input == 'udp' and not args.allow:
        raise UsageError('--input udp listens on the network: give the phone\'s address with '
                        '--allow (e.g. --allow 192.168.1.23, or a subnet --allow '
                        '192.168.1.0/24)')
    if args.input in IMAGE_INPUTS:
        check_image_input(args)
    if args.take and not Path(args.take).is_file():
        raise UsageError(f'--take {args.take}: no such file')
    if args.duration < 0:
        raise UsageError(f'--duration must be 0 (until Ctrl-C) or more, got {args.duration}')
    return list(zip(profiles, models, strict=True))


def check_image_input(args) -> None:
    if args.input == 'video' and not args.video:
        raise UsageError('--input video needs --video FILE (or a stream URL)')
    if args.video and '://' not in args.video and not Path(args.video).is_file():
        raise UsageError(f'--video {args.video}: no such file')
    from face_common.launch_runner import LaunchFileError, find_executable
    try:
        find_executable('face_capture', 'face_tracker')
    except LaunchFileError:
        raise UsageError(f'--input {args.input} needs the face tracker (face_capture\'s '
                         'face_tracker executable) to turn images into blendshapes; it is not '
                         'installed in this workspace') from None


def camera_arguments(args) -> dict:
    """name:=value arguments for an image input (capture.launch.yaml includes
    camera.launch.yaml with the face tracker for them)."""
    if args.input not in IMAGE_INPUTS:
        return {}
    return {'camera_device': args.device, 'video': args.video, 'http_port': args.http_port,
            'http_allow': args.allow,
            'http_bind_address': '0.0.0.0' if args.allow else '127.0.0.1'}


def launch_file(robots: int) -> Path:
    path = LAUNCH_DIR / ('shadow.launch.yaml' if robots == 1 else 'shadow_pair.launch.yaml')
    if not path.is_file():
        raise UsageError(f'no {path} here: run face-demo at the root of the checkout')
    return path


def free_port(wanted: int, taken=()) -> int:
    """The port asked for, or a free one if it is taken."""
    for port in (wanted, 0):
        if port and port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise DemoError('no free port for the dashboard')


def output_dir(out: str) -> Path:
    """Each run keeps its own folder (a bag is never overwritten); out/demo/latest points at
    the newest."""
    if not out:
        base = Path('out/demo')
        base.mkdir(parents=True, exist_ok=True)
        folder = base / datetime.now().strftime('%Y%m%d_%H%M%S')
        latest = base / 'latest'
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(folder.name)
    else:
        folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def estop_warning(robot: str) -> str | None:
    """An e-stop pressed in an earlier run is still latched (it survives restarts)."""
    state = Path(os.environ.get('FACE_STATE_DIR') or
                 Path.home() / '.local/share/face_shadowing/state') / f'estop-{robot}.json'
    try:
        latched = json.loads(state.read_text()).get('estop', True)
    except (OSError, ValueError, AttributeError):
        return None if not state.exists() else f'{robot}: unreadable e-stop state {state}'
    if latched is False:
        return None
    return (f'{robot} is E-STOPPED (latched in {state}): the face holds until you press Resume '
            'on the dashboard (or call face/actuation/reset, then face/actuation/resume)')


def launch_arguments(args, robots: list, out: Path, start: float) -> tuple:
    """name:=value arguments of the launch file for one robot or two."""
    common = {'udp_port': args.port, 'livelink_allow': args.allow,
              'livelink_bind_address': '0.0.0.0' if args.input == 'udp' else '127.0.0.1',
              # an image input starts no blendshape receiver here (the tracker is the source)
              'input': args.input if args.input in ('tcp', *IMAGE_INPUTS) else 'udp',
              'tcp_port': args.tcp_port,
              'standin': str(args.input in ('standin', 'tcp')).lower(),
              'take_player': str(args.input == 'take').lower(), 'take': args.take,
              'performer_calibration_dir': out / 'calibration', 'record': 'true',
              'standin_delay': STANDIN_DELAY_S, 'start': start, **camera_arguments(args)}
    if len(robots) == 1:
        robot, = robots
        return {
            **common, 'robot': robot.profile, 'model': robot.model,
            'dashboard_port': robot.dashboard_port, 'bag': robot.out / 'bag'}
    pair = {}
    for suffix, robot in zip('ab', robots, strict=True):
        pair.update({f'robot_{suffix}': robot.profile, f'namespace_{suffix}': robot.name,
                     f'model_{suffix}': robot.model,
                     f'dashboard_port_{suffix}': robot.dashboard_port,
                     f'bag_{suffix}': robot.out / 'bag'})
    return {**common, **pair}


class Pipeline:
    """face-launch in the background, its output in launch.log; tells when a node died."""

    def __init__(self, launch_file: Path, arguments: dict, out: Path):
        self.log = out / 'launch.log'
        self.logs = out / 'logs'
        self._read = 0                     # bytes of launch.log already scanned
        self._last_line = ''
        self._failure = None
        # An empty value is left to the launch default: `name:=` is malformed for ros2 launch.
        command = ['face-launch', str(launch_file),
                   *(f'{k}:={v}' for k, v in arguments.items() if str(v) != ''),
                   '--log-dir', str(self.logs)]
        # Its own session: Ctrl-C reaches the monitor, which ends; then stop() ends the nodes
        # in order, as the bash demo's background runner did.
        with open(self.log, 'w') as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def failure(self) -> str | None:
        """Why the pipeline is broken (a node exited, or the runner did), else None."""
        if self._failure is None:
            self._failure = self._scan()
        return self._failure

    def _scan(self) -> str | None:
        with open(self.log, 'rb') as log:
            log.seek(self._read)
            chunk = log.read()
        complete = chunk[:chunk.rfind(b'\n') + 1]
        self._read += len(complete)
        for line in complete.decode(errors='replace').splitlines():
            if line.strip():
                self._last_line = line.strip()
            if line.startswith(EXITED) and ' exited with code ' in line:
                node, code = line[len(EXITED):].split(' exited with code ')
                return f'node {node} died (exit code {code}): {self.last_words(node)}'
        code = self.process.poll()
        if code is not None:
            return f'face-launch exited with code {code}: {self._last_line}'
        return None

    def last_words(self, node: str) -> str:
        """The last line a node wrote (its error), from its log."""
        path = self.logs / f'{node.strip("/").replace("/", ".")}.log'
        try:
            lines = [line for line in path.read_text(errors='replace').splitlines()
                     if line.strip() and not line.startswith('Traceback')]
        except OSError:
            return f'see {self.log}'
        return lines[-1].strip() if lines else f'no output; see {self.log}'

    def stop(self) -> None:
        """Ctrl-C to the runner, which stops the nodes in order (each within 8 s); a runner
        still there after 30 s is hung and killed, with a line saying so."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                print('demo: face-launch did not stop within 30 s; killed', flush=True)
                self.process.kill()
                self.process.wait()


def watch(pipeline: Pipeline, process: subprocess.Popen) -> None:
    """Wait for a child (neutral capture, monitor) while the pipeline keeps running; a node
    dying ends the wait with DemoError."""
    while process.poll() is None:
        failure = pipeline.failure()
        if failure:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
            raise DemoError(failure)
        time.sleep(POLL_S)


def monitors(robots: list, duration: float, tty: bool) -> list:
    """One face-monitor per robot: the first on the terminal (on a TTY it redraws in place;
    otherwise its lines are also kept in monitor.log), a second one into its monitor.log."""
    started = []
    for index, robot in enumerate(robots):
        command = ['face-monitor', '--duration', f'{duration:g}']
        if len(robots) > 1:
            command += ['--ros-args', '-r', f'__ns:=/{robot.name}',
                        '-r', 'face/human/blendshapes:=/face/human/blendshapes']
        if index == 0 and tty:
            started.append(subprocess.Popen(command))
        elif index == 0:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            threading.Thread(target=_tee, args=(process.stdout, robot.out / 'monitor.log'),
                             daemon=True).start()
            started.append(process)
        else:
            with open(robot.out / 'monitor.log', 'w') as log:
                started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    return started


def _tee(lines, path: Path) -> None:
    with open(path, 'w') as log:
        for line in lines:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
            log.flush()


def follow(pipeline: Pipeline, running: list, stopping: threading.Event) -> None:
    """Until every monitor's duration is over, or Ctrl-C (the monitors get it too and end);
    a node dying ends the demo."""
    while any(process.poll() is None for process in running):
        failure = None if stopping.is_set() else pipeline.failure()
        if failure:
            for process in running:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(5)
                    except subprocess.TimeoutExpired:
                        process.kill()
            raise DemoError(failure)
        time.sleep(POLL_S)


def report(robot: Robot) -> None:
    """The session report from the robot's bag; a run whose robot never got a command is a
    failure, not a report of an unmoving face."""
    bag = robot.out / 'bag'
    subprocess.run(['face-bag-recover', str(bag)], stdout=subprocess.DEVNULL, check=False)
    result = subprocess.run(['face-session-report', str(bag), '--out', str(robot.out)],
                            capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ['no output']
        raise DemoError(f'{robot.name}: session report failed: {lines[-1]}')
    summary = json.loads((robot.out / 'summary.json').read_text())
    if not summary.get('commands'):
        raise DemoError(f'{robot.name}: no command reached the robot in '
                        f'{summary.get("duration_s", 0):.0f} s (see {robot.out / "logs"})')


def run(args) -> int:
    robots_models = checked(args)
    path = launch_file(len(robots_models))
    out = output_dir(args.out)
    robots, taken = [], set()
    for (profile, name), model in robots_models:
        folder = out if len(robots_models) == 1 else out / name
        if (folder / 'bag').exists():
            raise UsageError(f'{folder / "bag"} exists; choose another --out')
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port(args.dashboard_port + len(robots) if args.dashboard_port else 0,
                         taken)
        taken.add(port)
        robots.append(Robot(profile, name, model, folder, port))
    from face_retarget.recipe import TRAIN_END_S
    images = args.input in IMAGE_INPUTS
    start = args.start if args.start is not None else (
        TRAIN_END_S if not args.take and args.input in ('standin', 'take') else 0.0)
    # The dashboard's per-run token: the page may press the buttons only when opened with it
    # (the environment, unlike node parameters, is not visible to other users in ps).
    token = os.environ[TOKEN_ENV] = secrets.token_urlsafe(24)
    for robot in robots:
        label = '' if len(robots) == 1 else f' ({robot.name})'
        print(f'demo: dashboard{label} at http://127.0.0.1:{robot.dashboard_port}/?token={token}',
              flush=True)
    for robot in robots:
        warning = estop_warning(robot.name)
        if warning:
            print(f'demo: {warning}', flush=True)
    # Neutral calibration (ExFace III-A): a recorded take opens on the performer's resting
    # face. Played from later on, its neutral comes from that first second before the start;
    # from its beginning (or a real phone), it is captured live once the nodes run.
    live_neutral = not images and (args.input == 'udp' or start <= 0)
    if not images and not live_neutral:
        capture = subprocess.run(['face-capture-neutral', '--take', args.take, '--frames', '30',
                                  '--profile', 'performer', '--dir', str(out / 'calibration')],
                                 capture_output=True, text=True)
        if capture.returncode != 0:
            raise UsageError(f'neutral from the take: {capture.stderr.strip() or capture.stdout}')
        sys.stdout.write(capture.stdout)
    pipeline = Pipeline(path, launch_arguments(args, robots, out, start), out)
    stopping = threading.Event()

    def on_interrupt(*_):
        if not stopping.is_set():
            print('\ndemo: stopping', flush=True)
        stopping.set()
    signal.signal(signal.SIGINT, on_interrupt)
    try:
        chain = ' + '.join(f'retarget ({r.model}) -> actuation -> {r.name} twin' for r in robots)
        source = args.take or 'bundled take'
        print({'standin': f'demo: stand-in iPhone ({source} from {start:g} s) -> UDP '
                          f'{args.port} -> livelink_receiver -> {chain}',
               'udp': f'demo: listening for Live Link Face on UDP 0.0.0.0:{args.port} (every '
                      f'interface), frames accepted only from {args.allow} and one device (the '
                      'first seen); set the app\'s target to this machine\'s address',
               'take': f'demo: take player ({source} from {start:g} s) -> {chain}',
               'tcp': f'demo: stand-in ({source} from {start:g} s) -> TCP JSON lines '
                      f'127.0.0.1:{args.tcp_port} -> tcp_bridge -> {chain}',
               'camera': f'demo: camera {args.device} -> face_tracker -> {chain}',
               'video': f'demo: video {args.video} -> camera node -> face_tracker -> {chain}',
               'http': f'demo: POST JPEG frames to http://<this machine>:{args.http_port}'
                       f'/stream (VividFace app) -> face_tracker -> {chain}'}[args.input],
              flush=True)
        print(f'demo: recording into {", ".join(str(r.out / "bag") for r in robots)}; node '
              f'logs in {out / "logs"}; Ctrl-C to stop', flush=True)
        if live_neutral:
            neutral = subprocess.Popen(['face-capture-neutral', '--profile', 'performer',
                                        '--frames', '30', '--timeout', '15'])
            watch(pipeline, neutral)
            if neutral.returncode != 0 and not stopping.is_set():
                print('demo: no neutral captured; the robot follows raw blendshapes', flush=True)
        if not stopping.is_set():
            follow(pipeline, monitors(robots, args.duration, sys.stdout.isatty()), stopping)
        failure = None if stopping.is_set() else pipeline.failure()
        if failure:
            raise DemoError(failure)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)      # the nodes are stopping in order
        pipeline.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    print('demo: stopped every node; writing the session report', flush=True)
    for robot in robots:
        if len(robots) > 1:
            print(f'demo: {robot.name}', flush=True)
        report(robot)
    outputs = 'side_by_side.mp4, summary.json, summary.md, bag/'
    where = ', '.join(str(r.out) for r in robots)
    print(f'demo: outputs in {where}: {outputs}', flush=True)
    return 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # still stops the nodes
    try:
        return run(args)
    except DemoError as exc:
        print(f'demo: {exc}', file=sys.stderr, flush=True)
        return exc.status
    except KeyboardInterrupt:
        print('\ndemo: stopped before the nodes ran', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
