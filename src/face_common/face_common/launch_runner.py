"""Start a ROS 2 YAML launch file without ros2cli (`face-launch FILE name:=value ...`).

The project's launch files are standard launch_ros YAML files: on a ROS 2 install,
`ros2 launch launch/<file>.launch.yaml` runs them. PyPI carries no `launch`/`launch_ros`, so
this runner interprets the subset of the format the project uses (arg, let, node, include,
group with push_ros_namespace and set_remap, if/unless, param files and values, remaps, args,
on_exit: shutdown) with Jazzy's semantics,
not friendlier ones: one launch configuration dictionary that includes do not scope, only
true/false/1/0 in conditions, a command-line argument no file declares set and ignored, a
required argument missing an error, `name:=` refused, `$(var)`, `$(env)`, `$(find-pkg-share)`,
`$(equals)` and `$(dirname)` evaluated when and as launch evaluates them; one process per
node, started with `--ros-args -r __node:=NAME --params-file FILE -p NAME:=VALUE`. Anything
outside that subset is an error, never silently skipped, so the two worlds cannot drift apart.

Exit status, as `ros2 launch` (LaunchService.run): 1 when the launch itself fails (a bad
file or argument; nothing is started), otherwise 0 once every process has exited or the
launch was stopped, whatever the nodes' own exit codes (each is reported as it exits).
"""
import argparse
from dataclasses import dataclass, field
import math
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

_IDENTIFIER = re.compile(r'[A-Za-z][A-Za-z0-9_-]*')       # grammar.lark IDENTIFIER
_ESCAPED = re.compile(r'\\(.)')
# substitution -> (fewest, most) arguments, as each one's parse() accepts them
_SUBSTITUTION_ARGUMENTS = {'var': (1, 2), 'env': (1, 2), 'find-pkg-share': (1, 1),
                           'dirname': (0, 0), 'equals': (2, 2)}
MAX_SUBSTITUTION_DEPTH = 8          # $( inside $( ... ): launch files use at most 2
MAX_VALUE_CHARS = 65536             # any one value, before and after substitution
MAX_INCLUDE_DEPTH = 16
# safe_load's loader, in C where PyYAML has libyaml (the pip wheels do): 10x faster.
_YAML_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
# launch.conditions.evaluate_condition_expression: anything else is an error
CONDITION_TRUE = ('true', '1')
CONDITION_FALSE = ('false', '0')
LAUNCH_ERROR_EXIT = 1               # LaunchService.run: 'Caught exception in launch'


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
    renamed: bool = True      # `name` given: -r __node (one process holding several nodes has none)

    @property
    def fqn(self) -> str:
        return (self.namespace.rstrip('/') + '/' + self.name) if self.namespace else '/' + self.name

    @property
    def label(self) -> str:
        """How the runner names the process (its output's prefix, its log DIR/LABEL.log):
        the name, with its namespace when it has one (two pipelines' nodes stay apart)."""
        return self.fqn.lstrip('/')

    def command(self, executable_path: str) -> list:
        cmd = [executable_path, *self.args, '--ros-args']
        if self.renamed:
            cmd += ['-r', f'__node:={self.name}']
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


@dataclass
class _Substitution:
    """One $(name arg ...) of a parsed value; each argument is itself a parsed value."""

    kind: str
    arguments: list


class _TemplateParser:
    """A value parsed as launch's frontend grammar parses it (launch/frontend/grammar.lark,
    parse_substitution): text and $(name arg ...) substitutions, arguments separated by one
    space, an argument quoted '...' or "..." as a whole, a backslash escaping the next
    character, and `$(` preceded by a backslash being plain text. The result is a list of
    str and _Substitution pieces."""

    def __init__(self, text: str, where: str):
        self.text, self.where, self.pos = text, where, 0

    def error(self, message: str) -> LaunchFileError:
        return LaunchFileError(f'{self.where}: {message} in {self.text!r:.80}')

    def starts_substitution(self) -> bool:
        return self.text.startswith('$(', self.pos) and \
            (self.pos == 0 or self.text[self.pos - 1] != '\\')

    def template(self) -> list:
        return self._pieces(stop=lambda char: False, depth=0)

    def _pieces(self, stop, depth: int, quote: str | None = None) -> list:
        """Text and substitutions up to a character that `stop` accepts (not consumed)."""
        pieces, chars = [], []
        while self.pos < len(self.text):
            if self.starts_substitution():
                if chars:
                    pieces.append(_unescape(''.join(chars)))
                    chars = []
                pieces.append(self._substitution(depth + 1, quote))
                continue
            char = self.text[self.pos]
            if char == '\\' and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos:self.pos + 2])
                self.pos += 2
                continue
            if stop(char):
                break
            chars.append(char)
            self.pos += 1
        if chars:
            pieces.append(_unescape(''.join(chars)))
        return pieces

    def _substitution(self, depth: int, quote: str | None) -> _Substitution:
        if depth > MAX_SUBSTITUTION_DEPTH:
            raise self.error(f'substitutions nested deeper than {MAX_SUBSTITUTION_DEPTH}')
        match = _IDENTIFIER.match(self.text, self.pos + 2)
        if not match:
            raise self.error('"$(" without a substitution name')
        self.pos = match.end()
        arguments = []
        while self.pos < len(self.text) and self.text[self.pos] == ' ':
            self.pos += 1
            arguments.append(self._argument(depth, quote))
        if self.pos == len(self.text) or self.text[self.pos] != ')':
            raise self.error(f'$({match.group(0)} ...) is not closed with ")" after '
                             'arguments separated by one space')
        self.pos += 1
        return _Substitution(match.group(0), arguments)

    def _argument(self, depth: int, quote: str | None) -> list:
        char = self.text[self.pos] if self.pos < len(self.text) else ''
        if quote is None and char in ('"', "'"):
            self.pos += 1
            pieces = self._pieces(lambda c: c == char, depth, quote=char)
            if self.pos == len(self.text):
                raise self.error(f'an argument opened with {char} is not closed')
            self.pos += 1
            return pieces
        forbidden = {' ', '(', ')', *(("'", '"') if quote is None else (quote,))}
        pieces = self._pieces(lambda c: c in forbidden, depth, quote)
        if not pieces:
            raise self.error('an empty substitution argument')
        return pieces


def _check_substitutions(pieces: list, where: str) -> None:
    """Every substitution known and given as many arguments as its parse() accepts: Jazzy
    parses a whole file when it includes it, so a bad one fails even where it is never
    evaluated (a node whose condition is false)."""
    for piece in pieces:
        if isinstance(piece, str):
            continue
        kind, arguments = piece.kind, piece.arguments
        wanted = _SUBSTITUTION_ARGUMENTS.get(kind)
        if wanted is None:
            raise LaunchFileError(f'{where}: substitution $({kind}) not supported by face-launch')
        if not wanted[0] <= len(arguments) <= wanted[1]:
            raise LaunchFileError(f'{where}: $({kind}) takes {wanted[0]}'
                                  f'{"" if wanted[0] == wanted[1] else f" to {wanted[1]}"} '
                                  f'argument(s), got {len(arguments)}')
        for argument in arguments:
            _check_substitutions(argument, where)


def _check_file_substitutions(name: str, entities: list) -> None:
    """Parse every attribute Jazzy parses as substitutions (not an argument's name,
    description, a node's output or on_exit)."""
    for item in entities:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        (tag, entry), = item.items()
        if tag == 'group' and isinstance(entry, list):
            _check_file_substitutions(name, entry)
            continue
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if key in ('description', 'output', 'on_exit') or (tag, key) in (
                    ('arg', 'name'), ('arg', 'choice')):
                continue
            for text in _attribute_strings(value):
                _check_substitutions(parse_value(text, f'{name}: <{tag}>'), f'{name}: <{tag}>')


def _attribute_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield from (v for v in item.values() if isinstance(v, str))


def _unescape(text: str) -> str:
    """launch.frontend.parse_substitution.replace_escaped_characters: `\\x` -> `x`."""
    return _ESCAPED.sub(r'\1', text)


def parse_value(text: str, where: str) -> list:
    if len(text) > MAX_VALUE_CHARS:
        raise LaunchFileError(f'{where}: a value of {len(text)} characters '
                              f'(limit {MAX_VALUE_CHARS})')
    return _TemplateParser(text, where).template() if text else ['']


class _Launch:
    """The state Jazzy's LaunchContext holds while it visits the entities of a launch:
    one dictionary of launch configurations for the whole launch (an include does not scope
    them: IncludeLaunchDescription.execute sets its arguments with SetLaunchConfiguration,
    and they, like the included file's argument defaults, stay set after the include), and
    the directory that $(dirname) returns (extend_locals at each include, not restored
    after it). The node processes come out in the order they are visited."""

    def __init__(self):
        self.configurations = {}
        self.directory = ''
        self.nodes = []
        self.namespace = ''         # launch_ros's 'ros_namespace' configuration
        self.remaps = ()            # and its 'ros_remaps', both scoped by a group as well

    def evaluate(self, pieces: list, where: str) -> str:
        out, size = [], 0
        for piece in pieces:
            text = piece if isinstance(piece, str) else self._perform(piece, where)
            out.append(text)
            size += len(text)
            if size > MAX_VALUE_CHARS:
                raise LaunchFileError(f'{where}: a substituted value grows past '
                                      f'{MAX_VALUE_CHARS} characters')
        return ''.join(out)

    def _perform(self, substitution: _Substitution, where: str) -> str:
        kind, arguments = substitution.kind, substitution.arguments
        if kind == 'dirname':               # ThisLaunchFileDir.perform
            return self.directory
        if kind == 'equals':                # EqualsSubstitution.perform
            return _equals(self.evaluate(arguments[0], where),
                           self.evaluate(arguments[1], where))
        if kind == 'find-pkg-share':        # launch_ros FindPackageShare
            return find_package_share(self.evaluate(arguments[0], where))
        if kind == 'env':                   # EnvironmentVariable.perform: default first
            default = self.evaluate(arguments[1], where) if len(arguments) > 1 else None
            name = self.evaluate(arguments[0], where)
            value = os.environ.get(name, default)
            if value is None:
                raise LaunchFileError(f"{where}: environment variable '{name}' does not exist")
            return value
        name = self.evaluate(arguments[0], where)         # LaunchConfiguration.perform
        if name in self.configurations:
            return self.configurations[name]
        if len(arguments) > 1:
            return self.evaluate(arguments[1], where)
        raise LaunchFileError(f"{where}: launch configuration '{name}' does not exist")

    def text(self, entry: dict, key: str, where: str, default=None) -> str:
        """A string attribute, substituted now. launch_yaml's Entity.get_attr refuses any
        other YAML type (a bare `true` or `8080`) where a string belongs."""
        if key not in entry:
            if default is None:
                raise LaunchFileError(f'{where} needs "{key}"')
            return default
        value = entry[key]
        if not isinstance(value, str):
            raise LaunchFileError(f'{where} {key}: expected a string, got {value!r:.80} '
                                  '(quote it)')
        return self.evaluate(parse_value(value, where), where)

    def condition(self, entry: dict, where: str) -> bool:
        """Action.parse + evaluate_condition_expression: `if` or `unless` (not both), true
        only for 'true'/'1' and false only for 'false'/'0' after strip() and lower()."""
        if 'if' in entry and 'unless' in entry:
            raise LaunchFileError(f"{where}: if and unless conditions can't be used "
                                  'simultaneously')
        for key, wanted in (('if', True), ('unless', False)):
            if key in entry:
                text = self.text(entry, key, where).strip().lower()
                if text not in CONDITION_TRUE + CONDITION_FALSE:
                    raise LaunchFileError(
                        f"{where}: {key}: unable to evaluate condition '{text}', expected "
                        f'one of {list(CONDITION_TRUE + CONDITION_FALSE)}')
                return (text in CONDITION_TRUE) == wanted
        return True


def _equals(left: str, right: str) -> str:
    """'true'/'false': booleans compared as booleans, numbers as numbers (math.isclose),
    anything else as text (so `if: $(equals $(var input) camera)` picks one input)."""
    def as_float(text):
        try:
            return float(text)
        except ValueError:
            return None
    booleans = CONDITION_TRUE + CONDITION_FALSE
    if left.lower() in booleans and right.lower() in booleans:
        same = (left.lower() in CONDITION_TRUE) == (right.lower() in CONDITION_TRUE)
    elif as_float(left) is not None and as_float(right) is not None:
        same = math.isclose(as_float(left), as_float(right))
    else:
        same = left == right
    return 'true' if same else 'false'


def _check_keys(where: str, entry, allowed: set) -> None:
    if not isinstance(entry, dict):
        raise LaunchFileError(f'{where} must be a mapping, got {entry!r:.80}')
    unknown = set(entry) - allowed
    if unknown:
        raise LaunchFileError(f'{where} attribute(s) {sorted(map(str, unknown))} '
                              'not supported by face-launch')


def _entries(entry: dict, key: str, where: str) -> list:
    """A list-valued attribute (param, remap, include args): each item a mapping."""
    items = entry.get(key) or []
    if not isinstance(items, list):
        raise LaunchFileError(f'{where} {key}: expected a list, got {items!r:.80}')
    return items


def _read_launch_file(path: str) -> list:
    try:
        document = yaml.load(Path(path).read_text(), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise LaunchFileError(f'cannot read {path}: {exc}') from None
    if not isinstance(document, dict) or not isinstance(document.get('launch'), list):
        raise LaunchFileError(f'{Path(path).name}: top level must be "launch:" with a list')
    return document['launch']


def load_launch_file(path, arguments: dict | None = None) -> list:
    """The NodeSpecs `ros2 launch FILE name:=value ...` would start, in its order.

    As ros2launch's launch_a_launch_file does, the file is included with the command-line
    arguments as the include's arguments: an argument no file declares is still set as a
    launch configuration (and so seen by any file that declares it later), never refused."""
    launch = _Launch()
    given = [(lambda n=name: n, lambda v=value: v) for name, value in (arguments or {}).items()]
    _include(launch, os.path.abspath(str(path)), given, ())
    return launch.nodes


def _include(launch: _Launch, path: str, given: list, chain: tuple) -> None:
    """IncludeLaunchDescription.execute: read the file, check that every argument it
    declares without a default is among the given names, set the given arguments as launch
    configurations, then visit the file's entities."""
    if path in chain or len(chain) >= MAX_INCLUDE_DEPTH:
        names = ' -> '.join(Path(p).name for p in (*chain, path))
        raise LaunchFileError(f'includes loop or nest deeper than {MAX_INCLUDE_DEPTH}: {names}')
    entities = _read_launch_file(path)
    name = Path(path).name
    _check_file_substitutions(name, entities)
    launch.directory = os.path.dirname(path)
    given_names = [argument_name() for argument_name, _ in given]
    for item in entities:
        entry = item.get('arg') if isinstance(item, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get('name'), str) \
                and 'default' not in entry and _unescape(entry['name']) not in given_names:
            raise LaunchFileError(f"{name}: included launch description missing required "
                                  f"argument '{_unescape(entry['name'])}', given: "
                                  f"[{', '.join(given_names)}]")
    for argument_name, (_, value) in zip(given_names, given, strict=True):
        launch.configurations[argument_name] = value()
    _visit(launch, entities, name, path, chain)


def _visit(launch: _Launch, entities: list, name: str, path: str, chain: tuple) -> None:
    """Visit a file's (or a group's) entities in order."""
    for item in entities:
        if not isinstance(item, dict) or len(item) != 1:
            raise LaunchFileError(f'{name}: each entry must be one tag, got {item!r:.80}')
        (tag, entry), = item.items()
        where = f'{name}: <{tag}>'
        if tag == 'arg':            # DeclareLaunchArgument.execute
            _check_keys(where, entry, {'name', 'default', 'description', 'choice'})
            if not isinstance(entry.get('name'), str):
                raise LaunchFileError(f'{where} needs "name" (a string)')
            argument = _unescape(entry['name'])
            choices = _choices(entry, where)
            if argument not in launch.configurations:
                if 'default' not in entry:
                    raise LaunchFileError(f'{name}: required launch argument "{argument}" '
                                          'was not provided')
                launch.configurations[argument] = launch.text(entry, 'default', where)
            value = launch.configurations[argument]
            if choices is not None and value not in choices:
                raise LaunchFileError(f'Argument "{argument}" provided value "{value}" is not '
                                      f'valid. Valid options are: {choices}')
        elif tag == 'let':          # SetLaunchConfiguration (its parse takes Action's if/unless)
            _check_keys(where, entry, {'name', 'value', 'if', 'unless'})
            if launch.condition(entry, where):
                value = launch.text(entry, 'value', where)
                launch.configurations[launch.text(entry, 'name', where)] = value
        elif tag == 'node':
            _check_keys(where, entry, {'pkg', 'exec', 'name', 'namespace', 'param', 'remap',
                                       'args', 'output', 'on_exit', 'if', 'unless'})
            if launch.condition(entry, where):
                launch.nodes.append(_node(launch, entry, where))
        elif tag == 'include':
            _check_keys(where, entry, {'file', 'arg', 'if', 'unless'})
            if launch.condition(entry, where):
                _include_entry(launch, entry, where, (*chain, path))
        elif tag == 'group':
            if not isinstance(entry, list):
                raise LaunchFileError(f'{where} must be a list of entries, got {entry!r:.80}')
            _group(launch, entry, name, path, chain)
        elif tag in ('push_ros_namespace', 'push-ros-namespace'):   # PushROSNamespace.execute
            _check_keys(where, entry, {'namespace'})
            namespace = launch.text(entry, 'namespace', where)
            launch.namespace = namespace.rstrip('/') if namespace.startswith('/') else \
                f'{launch.namespace}/{namespace.strip("/")}'
        elif tag == 'set_remap':              # launch_ros SetRemap.execute
            _check_keys(where, entry, {'from', 'to'})
            launch.remaps = (*launch.remaps, (launch.text(entry, 'from', where),
                                              launch.text(entry, 'to', where)))
        else:
            raise LaunchFileError(f'{name}: tag <{tag}> not supported by face-launch')


def _choices(entry: dict, where: str):
    """An argument's `choice: [{value: a}, ...]` as a list of values, or None (the
    DeclareLaunchArgument parse: literal values, a default outside them is an error)."""
    if 'choice' not in entry:
        return None
    choices = []
    for item in _entries(entry, 'choice', where):
        _check_keys(f'{where} choice', item, {'value'})
        if not isinstance(item.get('value'), str):
            raise LaunchFileError(f'{where} choice needs "value" (a string)')
        choices.append(item['value'])
    if not choices:
        raise LaunchFileError(f'{where}: an empty choice list')
    default = entry.get('default')
    if isinstance(default, str) and '$(' not in default and default not in choices:
        raise LaunchFileError(f'{where}: default "{default}" is not in its choices {choices}')
    return choices


def _group(launch: _Launch, entities: list, name: str, path: str, chain: tuple) -> None:
    """GroupAction(scoped=True, forwarding=True), the frontend's default: the group sees the
    launch configurations (ROS namespace and remaps among them) set before it, and whatever
    it sets is undone after it."""
    saved = dict(launch.configurations), launch.namespace, launch.remaps
    try:
        _visit(launch, entities, name, path, chain)
    finally:
        launch.configurations, launch.namespace, launch.remaps = saved


def _include_entry(launch: _Launch, entry: dict, where: str, chain: tuple) -> None:
    """An <include>: its file is found first; its argument values are substituted only once
    the include runs (SetLaunchConfiguration actions, one after the other), so a value sees
    $(dirname) as the included file's directory and the arguments set before it."""
    child = os.path.abspath(launch.text(entry, 'file', where))
    given = []
    for argument in _entries(entry, 'arg', where):
        _check_keys(f'{where} arg', argument, {'name', 'value'})
        for key in ('name', 'value'):
            if not isinstance(argument.get(key), str):
                raise LaunchFileError(f'{where} arg needs "{key}" (a string)')
        name, value = (parse_value(argument[key], where) for key in ('name', 'value'))
        given.append((lambda name=name: launch.evaluate(name, where),
                      lambda value=value: launch.evaluate(value, where)))
    _include(launch, child, given, chain)


def _command_arguments(launch: _Launch, pieces: list, where: str) -> list:
    """ExecuteProcess._parse_cmdline: text between substitutions is split like a shell
    line, while each substitution's result stays inside one argument (a take path with a
    space is one argument; an empty $(var take) is an empty argument)."""
    result, current = [], None
    for piece in pieces:
        if not isinstance(piece, str):
            current = (current or '') + launch.evaluate([piece], where)
            continue
        try:
            tokens = shlex.split(piece)
        except ValueError as exc:                   # an unclosed quote
            raise LaunchFileError(f'{where} args: {exc}') from None
        if not tokens:
            if current is not None:
                result.append(current)
            current = None
            continue
        if piece[0].isspace() and current is not None:
            result.append(current)
            current = None
        current = (current or '') + tokens[0]
        if len(tokens) > 1:
            result.append(current)
            result.extend(tokens[1:-1])
            current = tokens[-1]
        if piece[-1].isspace():
            result.append(current)
            current = None
    if current is not None:
        result.append(current)
    return result


def _node(launch: _Launch, entry: dict, where: str) -> NodeSpec:
    def text(key, default=None):
        return launch.text(entry, key, where, default)
    args = entry.get('args', '')
    if not isinstance(args, str):
        raise LaunchFileError(f'{where} args: expected a string, got {args!r:.80}')
    spec = NodeSpec(package=text('pkg'), executable=text('exec'),
                    name=text('name', text('exec')), namespace=_node_namespace(launch, text),
                    args=_command_arguments(launch, parse_value(args, where), where)
                    if args else [], output=text('output', 'screen'),
                    renamed='name' in entry)
    on_exit = entry.get('on_exit')
    if on_exit not in (None, 'shutdown'):
        raise LaunchFileError(f'{where} on_exit: {on_exit!r} (only "shutdown")')
    spec.shutdown_on_exit = on_exit == 'shutdown'
    for param in _entries(entry, 'param', where):
        if isinstance(param, dict) and 'from' in param:
            _check_keys(f'{where} param', param, {'from'})
            spec.param_files.append(launch.text(param, 'from', f'{where} param'))
            continue
        _check_keys(f'{where} param', param, {'name', 'value'})
        value = param.get('value')
        if value is None or isinstance(value, (list, dict)):
            raise LaunchFileError(f'{where} param value: expected a scalar, got {value!r:.80}')
        spec.params[launch.text(param, 'name', f'{where} param')] = \
            launch.evaluate(parse_value(value, where), where) if isinstance(value, str) \
            else _yaml_scalar(value)
    spec.remaps.extend(launch.remaps)
    for remap in _entries(entry, 'remap', where):
        _check_keys(f'{where} remap', remap, {'from', 'to'})
        spec.remaps.append((launch.text(remap, 'from', f'{where} remap'),
                            launch.text(remap, 'to', f'{where} remap')))
    return spec


def _node_namespace(launch: _Launch, text) -> str:
    """launch_ros Node: an absolute namespace stands; a relative one nests in the pushed
    ROS namespace."""
    namespace = text('namespace', '')
    if namespace.startswith('/'):
        return namespace
    if not namespace:
        return launch.namespace
    return f'{launch.namespace}/{namespace.strip("/")}'


def _yaml_scalar(value) -> str:
    """A typed YAML parameter value as the text launch_ros would hand the node."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


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
        commands = [spec.command(find_executable(spec.package, spec.executable))
                    for spec in self.specs]           # every one found before any starts
        for spec, cmd in zip(self.specs, commands, strict=True):
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
        """Block until Ctrl-C/SIGTERM, a shutdown-on-exit node ends, every process has
        exited (LaunchService shuts down when idle), or duration passes; then stop."""
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
            if len(reported) == len(self.specs):
                break
            if duration and time.monotonic() - start >= duration:
                break
            time.sleep(0.05)
        self.stop()
        return 0

    def stop(self, grace_s: float = 5.0) -> None:
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


def parse_arguments(items) -> dict:
    """ros2launch.api.parse_launch_arguments: name:=value, the last one of a name winning;
    `name:=` (what `name:=""` becomes in a shell) and `:=value` are malformed."""
    result = {}
    for item in items:
        count = item.count(':=')
        if count == 0 or item.startswith(':=') or (count == 1 and item.endswith(':=')):
            raise LaunchFileError(f"malformed launch argument '{item}', expected format "
                                  "'<name>:=<value>'")
        name, value = item.split(':=', 1)
        result[name] = value
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Start a ROS 2 YAML launch file without ros2cli (like `ros2 launch`).')
    parser.add_argument('launch_file', help='a YAML launch file (e.g. '
                                            'launch/shadow.launch.yaml)')
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
        return LAUNCH_ERROR_EXIT
    print(f'[face-launch] started {len(specs)} process(es): '
          + ', '.join(s.label for s in specs), flush=True)
    return group.wait(options.duration)


if __name__ == '__main__':
    sys.exit(main())
