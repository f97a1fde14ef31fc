"""Start a ROS 2 YAML launch file without ros2cli (`face-launch FILE name:=value ...`).

The project's launch files are standard launch_ros YAML files: on a ROS 2 install,
`ros2 launch launch/<file>.launch.yaml` runs them. PyPI carries no `launch`/`launch_ros`, so
this runner interprets the subset of the format the project uses (arg, let, node, include,
if/unless, param files and values, remaps, args) the way launch_ros does: one process per
node, `--ros-args -r __node:=NAME --params-file FILE -p NAME:=VALUE`. Anything outside that
subset is an error, never silently skipped, so the two worlds cannot drift apart.
"""
import argparse
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import yaml

_SUBSTITUTION = re.compile(r'\$\(([a-z-]+)((?:\s+[^)\s]+)*)\s*\)')
_TRUE = ('true', '1', 'yes', 'on')
_FALSE = ('false', '0', 'no', 'off', '')


class LaunchFileError(ValueError):
    """The launch file uses something this runner does not support, or is invalid."""


@dataclass
class NodeSpec:
    """One process to start, as launch_ros would start it."""

    package: str
    executable: str
    name: str
    namespace: str = ''
    param_files: list = field(default_factory=list)
    params: dict = field(default_factory=dict)        # name -> string value (YAML-typed)
    remaps: list = field(default_factory=list)        # (from, to)
    args: list = field(default_factory=list)
    shutdown_on_exit: bool = False
    output: str = 'screen'

    @property
    def fqn(self) -> str:
        return (self.namespace.rstrip('/') + '/' + self.name) if self.namespace else '/' + self.name

    def command(self, executable_path: str) -> list:
        cmd = [executable_path, *self.args, '--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            cmd += ['-r', f'__ns:={self.namespace}']
        for path in self.param_files:
            cmd += ['--params-file', path]
        for key, value in self.params.items():
            cmd += ['-p', f"{key}:={value if value != '' else chr(39) * 2}"]   # '' = YAML empty
        for source, target in self.remaps:
            cmd += ['-r', f'{source}:={target}']
        return cmd


def find_package_share(package: str) -> str:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    try:
        return get_package_share_directory(package)
    except PackageNotFoundError:
        raise LaunchFileError(f'package {package!r} not found: is install/setup.bash '
                              'sourced?') from None


def find_executable(package: str, executable: str) -> str:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        raise LaunchFileError(f'package {package!r} not found') from None
    path = Path(prefix) / 'lib' / package / executable
    if not os.access(path, os.X_OK):
        raise LaunchFileError(f'executable {executable!r} not found in package {package!r}')
    return str(path)


class _Context:
    def __init__(self, launch_file: Path, variables: dict):
        self.file = launch_file
        self.variables = variables

    def substitute(self, value):
        if not isinstance(value, str):
            return value

        def replace(match):
            kind, rest = match.group(1), match.group(2).split()
            if kind == 'var':
                if rest[0] not in self.variables:
                    raise LaunchFileError(f'{self.file.name}: undefined launch argument '
                                          f'{rest[0]!r}')
                return str(self.variables[rest[0]])
            if kind == 'find-pkg-share':
                return find_package_share(rest[0])
            if kind == 'dirname':
                return str(self.file.parent)
            if kind == 'env':
                if rest[0] in os.environ:
                    return os.environ[rest[0]]
                if len(rest) > 1:
                    return ' '.join(rest[1:])
                raise LaunchFileError(f'environment variable {rest[0]} is not set')
            raise LaunchFileError(f'{self.file.name}: substitution $({kind}) not supported')
        previous = None
        while previous != value:                       # nested $(var ...) inside values
            previous, value = value, _SUBSTITUTION.sub(replace, value)
        return value

    def condition(self, entry: dict) -> bool:
        for key, wanted in (('if', True), ('unless', False)):
            if key in entry:
                text = str(self.substitute(entry[key])).strip().lower()
                if text not in _TRUE + _FALSE:
                    raise LaunchFileError(f'{self.file.name}: {key}: {text!r} is not a boolean')
                if (text in _TRUE) != wanted:
                    return False
        return True


def _check_keys(file: Path, tag: str, entry: dict, allowed: set) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise LaunchFileError(f'{file.name}: <{tag}> attribute(s) {sorted(unknown)} not '
                              'supported by face-launch')


def _yaml_scalar(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def load_launch_file(path, arguments: dict | None = None) -> list:
    """Resolve a YAML launch file into the NodeSpecs it starts, given name:=value arguments."""
    path = Path(path).resolve()
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LaunchFileError(f'cannot read {path}: {exc}') from None
    if not isinstance(document, dict) or not isinstance(document.get('launch'), list):
        raise LaunchFileError(f'{path.name}: top level must be "launch:" with a list')
    context = _Context(path, {})
    given = dict(arguments or {})
    nodes = []
    for item in document['launch']:
        if not isinstance(item, dict) or len(item) != 1:
            raise LaunchFileError(f'{path.name}: each entry must be one tag, got {item!r}')
        (tag, entry), = item.items()
        if tag == 'arg':
            _check_keys(path, tag, entry, {'name', 'default', 'description'})
            name = entry['name']
            if name in given:
                context.variables[name] = given.pop(name)
            elif 'default' in entry:
                context.variables[name] = context.substitute(_yaml_scalar(entry['default']))
            else:
                raise LaunchFileError(f'{path.name}: argument {name!r} is required')
        elif tag == 'let':
            _check_keys(path, tag, entry, {'name', 'value'})
            context.variables[entry['name']] = context.substitute(_yaml_scalar(entry['value']))
        elif tag == 'node':
            _check_keys(path, tag, entry, {'pkg', 'exec', 'name', 'namespace', 'param', 'remap',
                                           'args', 'output', 'on_exit', 'if', 'unless'})
            if context.condition(entry):
                nodes.append(_node(context, entry))
        elif tag == 'include':
            _check_keys(path, tag, entry, {'file', 'arg', 'if', 'unless'})
            if context.condition(entry):
                child_args = {a['name']: context.substitute(_yaml_scalar(a['value']))
                              for a in entry.get('arg', [])}
                nodes.extend(load_launch_file(context.substitute(entry['file']), child_args))
        else:
            raise LaunchFileError(f'{path.name}: tag <{tag}> not supported by face-launch')
    if given:
        raise LaunchFileError(f'{path.name}: unknown launch argument(s) {sorted(given)}')
    return nodes


def _node(context: _Context, entry: dict) -> NodeSpec:
    sub = context.substitute
    spec = NodeSpec(package=sub(entry['pkg']), executable=sub(entry['exec']),
                    name=sub(entry.get('name', entry['exec'])),
                    namespace=sub(entry.get('namespace', '')),
                    args=shlex.split(sub(entry.get('args', ''))),
                    output=sub(entry.get('output', 'screen')))
    on_exit = entry.get('on_exit')
    if on_exit not in (None, 'shutdown'):
        raise LaunchFileError(f'{context.file.name}: on_exit: {on_exit!r} (only "shutdown")')
    spec.shutdown_on_exit = on_exit == 'shutdown'
    for param in entry.get('param', []):
        if 'from' in param:
            _check_keys(context.file, 'param', param, {'from'})
            spec.param_files.append(sub(param['from']))
        else:
            _check_keys(context.file, 'param', param, {'name', 'value'})
            spec.params[param['name']] = sub(_yaml_scalar(param['value']))
    for remap in entry.get('remap', []):
        _check_keys(context.file, 'remap', remap, {'from', 'to'})
        spec.remaps.append((sub(remap['from']), sub(remap['to'])))
    return spec


class ProcessGroup:
    """Runs the nodes as child processes, prefixes their output, and shuts them down in
    order: SIGINT to all, then SIGTERM, then SIGKILL for any that do not exit in time."""

    def __init__(self, specs, log_dir=None):
        self.specs = specs
        self.log_dir = Path(log_dir) if log_dir else None
        self.processes = {}
        self.shutdown_requested = threading.Event()
        self._threads = []

    def start(self) -> None:
        for spec in self.specs:
            cmd = spec.command(find_executable(spec.package, spec.executable))
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.processes[spec.name] = proc
            thread = threading.Thread(target=self._pump, args=(spec, proc), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, spec: NodeSpec, proc) -> None:
        log = None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f'{spec.name}.log', 'w')
        for raw in proc.stdout:
            line = raw.decode(errors='replace').rstrip()
            if spec.output == 'screen':
                print(f'[{spec.name}] {line}', flush=True)
            if log:
                log.write(line + '\n')
                log.flush()
        if log:
            log.close()

    def wait(self, duration: float = 0.0) -> int:
        """Block until Ctrl-C/SIGTERM, a shutdown-on-exit node ends, or duration passes."""
        start = time.monotonic()
        reported = set()
        while not self.shutdown_requested.is_set():
            for spec in self.specs:
                code = self.processes[spec.name].poll()
                if code is not None and spec.name not in reported:
                    reported.add(spec.name)
                    print(f'[face-launch] {spec.name} exited with code {code}', flush=True)
                    if spec.shutdown_on_exit:
                        self.shutdown_requested.set()
            if duration and time.monotonic() - start >= duration:
                break
            time.sleep(0.05)
        return self.stop()

    def stop(self, grace_s: float = 5.0) -> int:
        worst = 0
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 2.0),
                            (signal.SIGKILL, 1.0)):
            alive = [p for p in self.processes.values() if p.poll() is None]
            if not alive:
                break
            for proc in alive:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            for proc in alive:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for thread in self._threads:
            thread.join(timeout=1.0)
        for proc in self.processes.values():
            code = proc.returncode
            if code not in (0, None, -signal.SIGINT, -signal.SIGTERM, 130):
                worst = worst or code
        return worst


def parse_arguments(items) -> dict:
    result = {}
    for item in items:
        if ':=' not in item:
            raise LaunchFileError(f'launch arguments are name:=value, got {item!r}')
        name, value = item.split(':=', 1)
        result[name] = value
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Start a ROS 2 YAML launch file without ros2cli (like `ros2 launch`).')
    parser.add_argument('launch_file')
    parser.add_argument('arguments', nargs='*', help='launch arguments, name:=value')
    parser.add_argument('--print', action='store_true',
                        help='print the resolved processes and exit')
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop everything after this many seconds (0 = run until Ctrl-C)')
    parser.add_argument('--log-dir', help='also write each node\'s output to DIR/NAME.log')
    options = parser.parse_args(argv)
    try:
        specs = load_launch_file(options.launch_file, parse_arguments(options.arguments))
        if options.print:
            for spec in specs:
                print(' '.join(shlex.quote(c) for c in spec.command(
                    find_executable(spec.package, spec.executable))))
            return 0
        group = ProcessGroup(specs, options.log_dir)
        signal.signal(signal.SIGTERM, lambda *_: group.shutdown_requested.set())
        signal.signal(signal.SIGINT, lambda *_: group.shutdown_requested.set())
        group.start()
    except LaunchFileError as exc:
        print(f'face-launch: {exc}', file=sys.stderr)
        return 2
    print(f'[face-launch] started {len(specs)} process(es): '
          + ', '.join(s.name for s in specs), flush=True)
    return group.wait(options.duration)


if __name__ == '__main__':
    sys.exit(main())
