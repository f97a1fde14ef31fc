"""Start a ROS 2 YAML launch file without ros2cli (`face-launch FILE name:=value ...`).

The project's launch files are standard launch_ros YAML files: on a ROS 2 install,
`ros2 launch launch/<file>.launch.yaml` runs them. PyPI carries no `launch`/`launch_ros`, so
this runner interprets the subset of the format the project uses (arg, let, node, include,
group with push_ros_namespace and set_remap, if/unless, param files and values, remaps, args)
the way launch_ros does: one process per
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

_SUBSTITUTION_NAME = re.compile(r'[a-z-]+')
MAX_SUBSTITUTION_DEPTH = 8          # $( inside $( ... ): launch files use at most 2
MAX_VALUE_CHARS = 65536             # any one value, before and after substitution
MAX_INCLUDE_DEPTH = 16
# safe_load's loader, in C where PyYAML has libyaml (the pip wheels do): 10x faster.
_YAML_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
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

    @property
    def label(self) -> str:
        """How the runner names the process (its output's prefix, its log DIR/LABEL.log):
        the name, with its namespace when it has one (two pipelines' nodes stay apart)."""
        return self.fqn.lstrip('/')

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
    except ValueError as exc:                  # ament_index: not a valid package name
        raise LaunchFileError(str(exc)) from None


def find_executable(package: str, executable: str) -> str:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        raise LaunchFileError(f'package {package!r} not found') from None
    except ValueError as exc:                  # ament_index: not a valid package name
        raise LaunchFileError(str(exc)) from None
    path = Path(prefix) / 'lib' / package / executable
    if not os.access(path, os.X_OK):
        raise LaunchFileError(f'executable {executable!r} not found in package {package!r}')
    return str(path)


class _Context:
    """Variables of one launch file and the $(...) substitutions over them.

    As in launch_ros, a substitution's result is text: it is never scanned again (a value
    given as take:='$(var take)x' is those characters, not a reference to itself), while a
    substitution's arguments may hold nested ones ($(find-pkg-share $(var pkg))). Nesting and
    result size are bounded, so any input ends quickly in a value or one LaunchFileError."""

    def __init__(self, launch_file: Path, variables: dict):
        self.file = launch_file
        self.variables = variables

    def error(self, message: str) -> LaunchFileError:
        return LaunchFileError(f'{self.file.name}: {message}')

    def substitute(self, value):
        if not isinstance(value, str):
            return value
        if len(value) > MAX_VALUE_CHARS:
            raise self.error(f'a value of {len(value)} characters (limit {MAX_VALUE_CHARS})')
        text, _ = self._expand(value, 0, 0, inside=False)
        return text

    def _expand(self, text: str, pos: int, depth: int, inside: bool):
        """Text from pos up to the end (inside=False) or to the end of one substitution
        argument (inside=True: whitespace or ')'); returns (result, next position)."""
        out, size = [], 0
        while pos < len(text):
            if text.startswith('$(', pos):
                piece, pos = self._substitution(text, pos + 2, depth + 1)
            elif inside and (text[pos] == ')' or text[pos].isspace()):
                break
            else:
                piece, pos = text[pos], pos + 1
            out.append(piece)
            size += len(piece)
            if size > MAX_VALUE_CHARS:
                raise self.error(f'a substituted value grows past {MAX_VALUE_CHARS} characters')
        return ''.join(out), pos

    def _substitution(self, text: str, pos: int, depth: int):
        """The value of the substitution whose name starts at pos (just after '$(')."""
        if depth > MAX_SUBSTITUTION_DEPTH:
            raise self.error(f'substitutions nested deeper than {MAX_SUBSTITUTION_DEPTH}')
        match = _SUBSTITUTION_NAME.match(text, pos)
        if not match:
            raise self.error(f'"$(" without a substitution name in {text!r:.80}')
        kind, pos = match.group(0), match.end()
        arguments = []
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                raise self.error(f'$({kind} ...) is not closed with ")" in {text!r:.80}')
            if text[pos] == ')':
                return self._resolve(kind, arguments), pos + 1
            argument, pos = self._expand(text, pos, depth, inside=True)
            arguments.append(argument)

    def _resolve(self, kind: str, rest: list) -> str:
        wanted = {'var': (1, 1), 'find-pkg-share': (1, 1), 'dirname': (0, 0),
                  'env': (1, None)}.get(kind)
        if wanted is None:
            raise self.error(f'substitution $({kind}) not supported')
        low, high = wanted
        if len(rest) < low or (high is not None and len(rest) > high):
            raise self.error(f'$({kind}) takes {low if low == high else f"{low} or more"} '
                             f'argument(s), got {len(rest)}')
        if kind == 'var':
            if rest[0] not in self.variables:
                raise self.error(f'undefined launch argument {rest[0]!r}')
            return str(self.variables[rest[0]])
        if kind == 'find-pkg-share':
            return find_package_share(rest[0])
        if kind == 'dirname':
            return str(self.file.parent)
        if rest[0] in os.environ:
            return os.environ[rest[0]]
        if len(rest) > 1:
            return ' '.join(rest[1:])
        raise self.error(f'environment variable {rest[0]} is not set')

    def text(self, entry: dict, key: str, tag: str, default=None) -> str:
        """entry[key] as substituted text; a missing required key or a list/mapping where
        a scalar belongs is an error."""
        if key not in entry:
            if default is None:
                raise self.error(f'<{tag}> needs "{key}"')
            return default
        value = entry[key]
        if value is None or isinstance(value, (list, dict)):
            raise self.error(f'<{tag}> {key}: expected a scalar, got {value!r}')
        return self.substitute(_yaml_scalar(value))

    def condition(self, entry: dict, tag: str) -> bool:
        for key, wanted in (('if', True), ('unless', False)):
            if key in entry:
                text = self.text(entry, key, tag).strip().lower()
                if text not in _TRUE + _FALSE:
                    raise self.error(f'{key}: {text!r} is not a boolean')
                if (text in _TRUE) != wanted:
                    return False
        return True


def _check_keys(file: Path, tag: str, entry, allowed: set) -> None:
    if not isinstance(entry, dict):
        raise LaunchFileError(f'{file.name}: <{tag}> must be a mapping, got {entry!r:.80}')
    unknown = set(entry) - allowed
    if unknown:
        raise LaunchFileError(f'{file.name}: <{tag}> attribute(s) {sorted(map(str, unknown))} '
                              'not supported by face-launch')


def _entries(context: _Context, entry: dict, key: str, tag: str) -> list:
    """A list-valued attribute (param, remap, include args): each item a mapping."""
    items = entry.get(key) or []
    if not isinstance(items, list):
        raise context.error(f'<{tag}> {key}: expected a list, got {items!r:.80}')
    return items


def _yaml_scalar(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


@dataclass(frozen=True)
class _Scope:
    """What a group pushes onto the nodes inside it (and inside the files it includes)."""

    namespace: str = ''
    remaps: tuple = ()

    def pushed(self, namespace: str) -> '_Scope':
        """launch_ros PushROSNamespace: a relative namespace nests, an absolute one replaces."""
        if namespace.startswith('/'):
            return _Scope(namespace.rstrip('/'), self.remaps)
        return _Scope(f'{self.namespace}/{namespace.strip("/")}', self.remaps)


def load_launch_file(path, arguments: dict | None = None, _includes: tuple = (),
                     _scope: _Scope = _Scope()) -> list:
    """Resolve a YAML launch file into the NodeSpecs it starts, given name:=value arguments."""
    path = Path(path).resolve()
    if path in _includes or len(_includes) >= MAX_INCLUDE_DEPTH:
        chain = ' -> '.join(p.name for p in (*_includes, path))
        raise LaunchFileError(f'includes loop or nest deeper than {MAX_INCLUDE_DEPTH}: {chain}')
    try:
        document = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise LaunchFileError(f'cannot read {path}: {exc}') from None
    if not isinstance(document, dict) or not isinstance(document.get('launch'), list):
        raise LaunchFileError(f'{path.name}: top level must be "launch:" with a list')
    given = dict(arguments or {})
    nodes = _load_entries(_Context(path, {}), document['launch'], given, _includes, _scope)
    if given:
        raise LaunchFileError(f'{path.name}: unknown launch argument(s) {sorted(given)}')
    return nodes


def _load_entries(context: _Context, items: list, given: dict, _includes: tuple,
                  scope: _Scope) -> list:
    """The NodeSpecs of a list of entries (a file's launch: list, or a group's)."""
    path = context.file
    nodes = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise LaunchFileError(f'{path.name}: each entry must be one tag, got {item!r:.80}')
        (tag, entry), = item.items()
        if tag == 'arg':
            _check_keys(path, tag, entry, {'name', 'default', 'description'})
            name = context.text(entry, 'name', tag)
            if name in given:
                context.variables[name] = given.pop(name)
            elif 'default' in entry:
                context.variables[name] = context.text(entry, 'default', tag)
            else:
                raise LaunchFileError(f'{path.name}: argument {name!r} is required')
        elif tag == 'let':
            _check_keys(path, tag, entry, {'name', 'value'})
            context.variables[context.text(entry, 'name', tag)] = context.text(entry, 'value', tag)
        elif tag == 'node':
            _check_keys(path, tag, entry, {'pkg', 'exec', 'name', 'namespace', 'param', 'remap',
                                           'args', 'output', 'on_exit', 'if', 'unless'})
            if context.condition(entry, tag):
                nodes.append(_node(context, entry, scope))
        elif tag == 'include':
            _check_keys(path, tag, entry, {'file', 'arg', 'if', 'unless'})
            if context.condition(entry, tag):
                child_args = {}
                for argument in _entries(context, entry, 'arg', tag):
                    _check_keys(path, 'include arg', argument, {'name', 'value'})
                    child_args[context.text(argument, 'name', 'include arg')] = \
                        context.text(argument, 'value', 'include arg')
                nodes.extend(load_launch_file(context.text(entry, 'file', tag), child_args,
                                              (*_includes, path), scope))
        elif tag == 'group':
            # launch_ros YAML: `- group: [entries]`; scoped, as launch's default is.
            if not isinstance(entry, list):
                raise context.error(f'<group> must be a list of entries, got {entry!r:.80}')
            nodes.extend(_load_entries(_Context(path, dict(context.variables)), entry, given,
                                       _includes, scope))
        elif tag in ('push_ros_namespace', 'push-ros-namespace'):
            _check_keys(path, tag, entry, {'namespace'})
            scope = scope.pushed(context.text(entry, 'namespace', tag))
        elif tag == 'set_remap':
            _check_keys(path, tag, entry, {'from', 'to'})
            scope = _Scope(scope.namespace, (*scope.remaps, (
                context.text(entry, 'from', tag), context.text(entry, 'to', tag))))
        else:
            raise LaunchFileError(f'{path.name}: tag <{tag}> not supported by face-launch')
    return nodes


def _node(context: _Context, entry: dict, scope: _Scope = _Scope()) -> NodeSpec:
    def text(key, default=None):
        return context.text(entry, key, 'node', default)
    try:
        args = shlex.split(text('args', ''))
    except ValueError as exc:                                # an unclosed quote
        raise context.error(f'<node> args: {exc}') from None
    spec = NodeSpec(package=text('pkg'), executable=text('exec'),
                    name=text('name', text('exec')),
                    args=args, output=text('output', 'screen'))
    on_exit = entry.get('on_exit')
    if on_exit not in (None, 'shutdown'):
        raise context.error(f'on_exit: {on_exit!r} (only "shutdown")')
    spec.shutdown_on_exit = on_exit == 'shutdown'
    namespace = text('namespace', '')
    spec.namespace = namespace if namespace.startswith('/') else \
        scope.pushed(namespace).namespace if namespace else scope.namespace
    spec.remaps.extend(scope.remaps)
    for param in _entries(context, entry, 'param', 'node'):
        if isinstance(param, dict) and 'from' in param:
            _check_keys(context.file, 'param', param, {'from'})
            spec.param_files.append(context.text(param, 'from', 'param'))
        else:
            _check_keys(context.file, 'param', param, {'name', 'value'})
            spec.params[context.text(param, 'name', 'param')] = context.text(param, 'value',
                                                                              'param')
    for remap in _entries(context, entry, 'remap', 'node'):
        _check_keys(context.file, 'remap', remap, {'from', 'to'})
        spec.remaps.append((context.text(remap, 'from', 'remap'),
                            context.text(remap, 'to', 'remap')))
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
            self.processes[spec.label] = proc
            thread = threading.Thread(target=self._pump, args=(spec, proc), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, spec: NodeSpec, proc) -> None:
        log = None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f'{spec.label.replace("/", ".")}.log', 'w')
        for raw in proc.stdout:
            line = raw.decode(errors='replace').rstrip()
            if spec.output == 'screen':
                print(f'[{spec.label}] {line}', flush=True)
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
                code = self.processes[spec.label].poll()
                if code is not None and spec.label not in reported:
                    reported.add(spec.label)
                    print(f'[face-launch] {spec.label} exited with code {code}', flush=True)
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
          + ', '.join(s.label for s in specs), flush=True)
    return group.wait(options.duration)


if __name__ == '__main__':
    sys.exit(main())
