"""The launch files and the pip-world runner start the same nodes with the same parameters.

Both worlds read the same standard launch_ros YAML files. Here the runner's reading is checked
against the live ROS graph (the nodes that appear and the parameter values they report), each
of its semantics is pinned to the Jazzy function that defines it (named in the test), and a
static check keeps the launch files free of what `ros2 launch` would get wrong. With
FACE_REAL_LAUNCH_ENV pointing at the env.sh of a real Jazzy launch overlay
(../shared/tools/real-ros2-launch.sh), the same runs go through the real `ros2 launch` too.
"""
import json
import os
from pathlib import Path
import re
import shlex
import signal
import socket
import subprocess
import time

import pytest
from rcl_interfaces.srv import GetParameters
import yaml

from conftest import free_port, wait_until
from face_common.launch_runner import (
    LaunchFileError,
    find_executable,
    load_launch_file,
    parse_arguments,
)

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.yaml"))
REQUIRED_ARGS = {"replay.launch.yaml": {"bag": "bags/any"}}


def expected_parameters(spec):
    """What the node should report: param files first, then name:=value overrides."""
    values = {}
    for path in spec.param_files:
        document = yaml.safe_load(Path(path).read_text())
        for key in (spec.name, "/" + spec.name, "/**"):
            values.update(document.get(key, {}).get("ros__parameters", {}))
    for key, text in spec.params.items():
        values[key] = yaml.safe_load(text) if text != "" else ""    # NodeSpec passes ''
    return values


def parameter_value(param):
    from rcl_interfaces.msg import ParameterType
    kind = param.type
    return {ParameterType.PARAMETER_BOOL: param.bool_value,
            ParameterType.PARAMETER_INTEGER: param.integer_value,
            ParameterType.PARAMETER_DOUBLE: param.double_value,
            ParameterType.PARAMETER_STRING: param.string_value}.get(kind)


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_file_resolves_to_runnable_nodes(launch_file):
    specs = load_launch_file(launch_file, REQUIRED_ARGS.get(launch_file.name, {}))
    assert specs, f"{launch_file.name} starts nothing"
    for spec in specs:
        assert os.access(find_executable(spec.package, spec.executable), os.X_OK)
        for path in spec.param_files:
            assert Path(path).is_file(), path
            assert spec.name in yaml.safe_load(Path(path).read_text()), \
                f"{path} has no section for node {spec.name}"


def test_arguments_and_conditions():
    full = load_launch_file(ROOT / "launch/capture.launch.yaml", {"udp_port": "12000"})
    assert [s.name for s in full] == ["livelink_receiver", "standin_iphone"]
    assert full[0].params["port"] == "12000"
    assert "12000" in full[1].args
    alone = load_launch_file(ROOT / "launch/capture.launch.yaml", {"standin": "false"})
    assert [s.name for s in alone] == ["livelink_receiver"]


def test_input_tcp_starts_the_tcp_bridge_and_a_tcp_standin():
    tcp = load_launch_file(ROOT / "launch/capture.launch.yaml",
                           {"input": "tcp", "tcp_port": "12001", "tcp_framing": "binary"})
    assert [s.name for s in tcp] == ["tcp_bridge", "standin_tcp"]
    assert tcp[0].params["port"] == "12001"
    assert "--tcp binary" in " ".join(tcp[1].args) and "12001" in tcp[1].args
    alone = load_launch_file(ROOT / "launch/capture.launch.yaml",
                             {"input": "tcp", "standin": "false"})
    assert [s.name for s in alone] == ["tcp_bridge"]
    shadow = load_launch_file(ROOT / "launch/shadow.launch.yaml", {"input": "tcp"})
    assert {"tcp_bridge", "standin_tcp"} <= {s.name for s in shadow}
    assert "livelink_receiver" not in {s.name for s in shadow}


def launch_ros_value(text):
    """A name:=value parameter as launch_ros types it (evaluate_parameter_dict): an empty
    string stays '' (launch_ros loads "''"), anything else goes through yaml.safe_load, and a
    null or mapping is a TypeError there that stops the whole launch."""
    return "" if text == "" else yaml.safe_load(text)


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_parameters_on_their_defaults_type_as_launch_ros_would_pass_them(launch_file):
    for spec in load_launch_file(launch_file, REQUIRED_ARGS.get(launch_file.name, {})):
        for key, text in spec.params.items():
            value = launch_ros_value(text)
            assert isinstance(value, (bool, int, float, str, list)), \
                f"{launch_file.name}: {spec.name}.{key} := {text!r} reaches launch_ros as " \
                f"{value!r}, which it refuses"


@pytest.mark.parametrize("launch_file", ["capture.launch.yaml", "shadow.launch.yaml"])
def test_livelink_arguments_reach_the_receiver_as_strings(launch_file):
    """Checked against the real Jazzy `ros2 launch` too: the receiver reports these values."""
    def receiver(arguments):
        specs = load_launch_file(ROOT / "launch" / launch_file, arguments)
        [spec] = [s for s in specs if s.name == "livelink_receiver"]
        return {key: launch_ros_value(spec.params[key])
                for key in ("bind_address", "allow", "device_id")}

    assert receiver({}) == {"bind_address": "127.0.0.1", "allow": "", "device_id": ""}
    assert receiver({"livelink_bind_address": "0.0.0.0", "livelink_allow": "192.168.1.0/24",
                     "livelink_device_id": "4FC8F60B-2011-41CD-91A0-A387C6D92D3C"}) == {
        "bind_address": "0.0.0.0", "allow": "192.168.1.0/24",
        "device_id": "4FC8F60B-2011-41CD-91A0-A387C6D92D3C"}
    # An all-digit id is a YAML integer in both launchers (0123 even octal: 83); quoted, a string.
    assert receiver({"livelink_device_id": "'0123'"})["device_id"] == "0123"


def test_unsupported_launch_features_are_errors_not_silently_skipped(tmp_path):
    for body in ("- timer: {period: 1}", '- node: {pkg: a, exec: b, respawn: "true"}',
                 "- node: {pkg: a, exec: b, name: $(command ls)}"):
        path = tmp_path / "x.launch.yaml"
        path.write_text("launch:\n" + body + "\n")
        with pytest.raises(LaunchFileError):
            load_launch_file(path)


def test_a_self_referencing_argument_ends_as_literal_text():
    """take:='$(var take)x' made face-launch loop forever (each pass re-expanded the result)."""
    out = subprocess.run(["face-launch", str(ROOT / "launch/capture.launch.yaml"),
                          "take:=$(var take)x", "udp_port:=$(var udp_port)", "--print"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "'$(var take)x'" in out.stdout and "'port:=$(var udp_port)'" in out.stdout


def test_nested_substitutions_resolve_inside_out(tmp_path):
    path = tmp_path / "x.launch.yaml"
    path.write_text('launch:\n- arg: {name: pkg, default: face_capture}\n'
                    '- node: {pkg: face_capture, exec: send_take,\n'
                    '         args: "$(find-pkg-share $(var pkg))/data '
                    '$(env NO_SUCH_VAR \'a b\')"}\n')
    spec, = load_launch_file(path)
    assert spec.args[0].endswith("face_capture/data") and spec.args[1:] == ["a b"]


BAD_LAUNCH_BODIES = [
    '- arg: {name: a, default: "$(var"}',                       # unclosed
    '- arg: {name: a, default: "$(var)"}',                      # no argument
    '- arg: {name: a, default: "$(VAR a)"}',                    # no such substitution
    "- let: {name: a, value: x}\n"                                # doubling to 2**30 chars
    + '- let: {name: a, value: "$(var a)$(var a)"}\n' * 30,
    '- arg: {name: a, default: "' + "$(env " * 20 + "X" + ")" * 20 + '"}',   # too deep
    '- arg: "just text"',                                       # not a mapping
    "- arg: {default: 1}",                                      # no name
    "- arg: {name: [1, 2]}",                                    # name not a scalar
    "- node: {pkg: a}",                                         # no exec
    '- node: {pkg: a, exec: b, args: "unclosed \\"quote"}',
    "- node: {pkg: a, exec: b, param: {name: x}}",              # not a list
    "- node: {pkg: a, exec: b, param: [5]}",
    "- node: {pkg: a, exec: b, remap: [{from: x}]}",
    '- include: {file: "$(dirname)/x.launch.yaml"}',            # includes itself
    "- include: {file: other.yaml, arg: [{name: a}]}",
    '- arg: {name: a, default: "$(find-pkg-share $(env HOME))"}',   # fuzz: ValueError
    '- node: {pkg: "a/b", exec: b}',                                # fuzz: ValueError
    '- arg: {name: a, default: x, description: d, choice: [{value: y}]}',   # default outside
    '- arg: {name: a, default: x, description: d, choice: []}',
    '- arg: {name: a, default: x, description: d, choice: [{value: x, label: y}]}',
    '- arg: {name: a, default: x, description: d, choice: x}',
]


@pytest.mark.parametrize("body", BAD_LAUNCH_BODIES)
def test_every_bad_launch_file_is_one_error_line(tmp_path, capsys, body):
    from face_common.launch_runner import main
    path = tmp_path / "x.launch.yaml"
    path.write_text("launch:\n" + body + "\n")
    assert main([str(path), "--print"]) == 1          # LaunchService.run: an exception -> 1
    err = capsys.readouterr().err
    assert err.startswith("face-launch: ") and err.count("\n") == 1, err


def test_a_launch_file_that_is_not_utf8_is_one_error_line(tmp_path, capsys):
    from face_common.launch_runner import main
    (tmp_path / "x.launch.yaml").write_bytes(b"launch:\n- arg: {name: caf\xe9}\n")
    assert main([str(tmp_path / "x.launch.yaml")]) == 1
    assert capsys.readouterr().err.startswith("face-launch: cannot read")


@pytest.mark.ros
def test_runner_starts_the_described_nodes_with_their_parameters(ros_node, tmp_path):
    port = free_port()
    arguments = [f"udp_port:={port}", "standin:=false"]
    launch_file = ROOT / "launch/capture.launch.yaml"
    specs = load_launch_file(launch_file, dict(a.split(":=") for a in arguments))
    runner = subprocess.Popen(["face-launch", str(launch_file), *arguments],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        names = {s.fqn for s in specs}

        def running():
            found = {("/" if ns == "/" else ns + "/") + n
                     for n, ns in ros_node.node.get_node_names_and_namespaces()}
            return names <= found
        assert wait_until(running, 20.0), "launched nodes did not appear in the graph"
        for spec in specs:
            expected = expected_parameters(spec)
            reply = ros_node.call(GetParameters, f"{spec.fqn}/get_parameters",
                                  GetParameters.Request(names=list(expected)))
            reported = dict(zip(expected, (parameter_value(v) for v in reply.values), strict=True))
            assert reported == expected
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output = runner.communicate(timeout=20)[0].decode()
    assert runner.returncode == 0, output
    assert "started 1 process(es): livelink_receiver" in output
    leftovers = subprocess.run(["pgrep", "-f", f"port:={port}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "a launched process outlived the runner"


@pytest.mark.ros
@pytest.mark.parametrize("robot", ["micheal", "hobbs", "ameca"])
def test_each_robot_twin_runs_from_the_launch_file(ros_node, robot):
    from face_msgs.msg import Blendshapes
    faces = ros_node.subscribe(Blendshapes, "/face/robot/blendshapes")
    runner = subprocess.Popen(["face-launch", str(ROOT / "launch/robot.launch.yaml"),
                               f"robot:={robot}"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_until(lambda: [m for m in faces.snapshot() if m.subject == robot], 20.0)
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output = runner.communicate(timeout=20)[0].decode()
    assert runner.returncode == 0, output
    assert f'robot "{robot}"' in output


# -- face-launch semantics, each pinned to the Jazzy function that defines it ----------------
def write_launch(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("launch:\n" + body)
    return path


def echo_node(name: str, args: str) -> str:
    """A node whose command-line arguments show the values the launch gave it."""
    return (f'- node: {{pkg: face_capture, exec: send_take, name: {name},\n'
            f'         args: "{args}"}}\n')


def node_args(path, arguments=None) -> dict:
    return {spec.name: spec.args for spec in load_launch_file(path, arguments or {})}


def test_an_include_does_not_scope_launch_configurations(tmp_path):
    """launch.actions.IncludeLaunchDescription.execute (jazzy): the include's arguments are
    SetLaunchConfiguration actions on the one context, and DeclareLaunchArgument.execute only
    sets its default where the name is not set yet: a parent's `port` reaches a child's
    `port` (the bug that killed the actuation node), and a child's defaults and arguments
    stay set in the parent after the include."""
    write_launch(tmp_path, "child.launch.yaml",
                 '- arg: {name: port, default: "child-default"}\n'
                 '- arg: {name: only_child, default: "from-child"}\n'
                 + echo_node("child", "$(var port)"))
    parent = write_launch(tmp_path, "parent.launch.yaml",
                          '- arg: {name: port, default: "11111"}\n'
                          '- include: {file: "$(dirname)/child.launch.yaml",\n'
                          '            arg: [{name: passed, value: "p"}]}\n'
                          + echo_node("parent", "$(var only_child) $(var passed)"))
    assert node_args(parent) == {"child": ["11111"], "parent": ["from-child", "p"]}
    assert node_args(parent, {"port": "typed"})["child"] == ["typed"]


def test_an_argument_no_file_declares_is_set_and_ignored(tmp_path):
    """ros2launch.api.launch_a_launch_file (jazzy) includes the file with every command-line
    name:=value as the include's arguments: an unknown one (robto:=hobbs) is no error, and
    one that only an included file declares reaches it."""
    write_launch(tmp_path, "child.launch.yaml",
                 '- arg: {name: depth, default: "1"}\n' + echo_node("child", "$(var depth)"))
    parent = write_launch(tmp_path, "parent.launch.yaml",
                          '- include: {file: "$(dirname)/child.launch.yaml"}\n')
    assert node_args(parent, {"robto": "hobbs", "depth": "7"}) == {"child": ["7"]}


def test_missing_required_arguments_are_errors(tmp_path):
    """DeclareLaunchArgument.execute: no value and no default is an error; and
    IncludeLaunchDescription.execute checks the names the include passes, so a value the
    parent holds but does not pass does not satisfy a required argument."""
    write_launch(tmp_path, "child.launch.yaml",
                 "- arg: {name: bag}\n" + echo_node("child", "$(var bag)"))
    with pytest.raises(LaunchFileError, match="missing required argument 'bag'"):
        load_launch_file(tmp_path / "child.launch.yaml")
    assert node_args(tmp_path / "child.launch.yaml", {"bag": "b"}) == {"child": ["b"]}
    parent = write_launch(tmp_path, "parent.launch.yaml",
                          '- arg: {name: bag, default: "x"}\n'
                          '- include: {file: "$(dirname)/child.launch.yaml"}\n')
    with pytest.raises(LaunchFileError, match="missing required argument 'bag'"):
        load_launch_file(parent)


@pytest.mark.parametrize("value, started", [("true", True), ("TRUE", True), (" 1 ", True),
                                            ("false", False), ("False", False), ("0", False)])
def test_conditions_take_true_false_1_0(tmp_path, value, started):
    """launch.conditions.evaluate_condition_expression (jazzy): stripped and lower-cased,
    'true'/'1' and 'false'/'0' only."""
    path = write_launch(tmp_path, "x.launch.yaml", '- arg: {name: go, default: "true"}\n'
                        '- node: {pkg: face_capture, exec: send_take, if: "$(var go)"}\n')
    assert bool(load_launch_file(path, {'go': value})) == started


@pytest.mark.parametrize("value", ["yes", "no", "on", "off", "", "2", "truee"])
def test_any_other_condition_value_is_an_error(tmp_path, value):
    """evaluate_condition_expression raises InvalidConditionExpressionError for anything
    else, the empty string included (`standin:=yes` fails under ros2 launch)."""
    path = write_launch(tmp_path, "x.launch.yaml", '- arg: {name: go, default: "true"}\n'
                        '- node: {pkg: face_capture, exec: send_take, unless: "$(var go)"}\n')
    with pytest.raises(LaunchFileError, match="unable to evaluate condition"):
        load_launch_file(path, {'go': value})


def test_if_and_unless_together_are_an_error(tmp_path):
    """launch.Action.parse: "if and unless conditions can't be used simultaneously"."""
    path = write_launch(tmp_path, "x.launch.yaml",
                        '- node: {pkg: a, exec: b, if: "true", unless: "false"}\n')
    with pytest.raises(LaunchFileError, match="simultaneously"):
        load_launch_file(path)


@pytest.mark.parametrize("item", ["driver:=", ":=sim", "driver", "driver=sim"])
def test_malformed_command_line_arguments(item):
    """ros2launch.api.parse_launch_arguments: no ':=', a leading ':=' or a single ':=' at the
    end is malformed; `driver:=""` reaches it as `driver:=`."""
    with pytest.raises(LaunchFileError, match=f"malformed launch argument '{item}'"):
        parse_arguments([item])


def test_command_line_arguments_split_once_and_the_last_wins():
    """parse_launch_arguments: split at the first ':=' (so a value may hold ':=' or end with
    it when it holds two), the last of a name winning."""
    assert parse_arguments(["a:=b:=", "x:=1", "x:=2", "url:=tcp://h:6666"]) == {
        "a": "b:=", "x": "2", "url": "tcp://h:6666"}


def test_dirname_is_the_last_included_files_directory(tmp_path):
    """launch.substitutions.ThisLaunchFileDir.perform reads current_launch_file_directory,
    which IncludeLaunchDescription.execute sets with extend_locals and nothing restores
    after the include; the include's argument values are substituted after that, so there
    $(dirname) is already the included file's directory."""
    write_launch(tmp_path / "sub", "child.launch.yaml",
                 '- arg: {name: where, default: "none"}\n' + echo_node("child", "$(var where)"))
    parent = write_launch(tmp_path, "parent.launch.yaml",
                          echo_node("before", "$(dirname)")
                          + '- include: {file: "$(dirname)/sub/child.launch.yaml",\n'
                          '            arg: [{name: where, value: "$(dirname)"}]}\n'
                          + echo_node("after", "$(dirname)"))
    assert node_args(parent) == {"before": [str(tmp_path)], "child": [str(tmp_path / "sub")],
                                 "after": [str(tmp_path / "sub")]}


def test_var_and_env_defaults(tmp_path, monkeypatch):
    """LaunchConfiguration.perform: the default (second argument) only where the name is
    unset; EnvironmentVariable.perform: likewise, and an unset variable without a default
    is an error."""
    monkeypatch.setenv("FACE_TEST_SET", "set")
    monkeypatch.delenv("FACE_TEST_UNSET", raising=False)
    path = write_launch(tmp_path, "x.launch.yaml", '- arg: {name: a, default: "A"}\n' + echo_node(
        "n", "$(var a d) $(var b 'd b') $(env FACE_TEST_SET x) $(env FACE_TEST_UNSET x)"))
    assert node_args(path) == {"n": ["A", "d b", "set", "x"]}
    bad = write_launch(tmp_path, "y.launch.yaml", echo_node("n", "$(env FACE_TEST_UNSET)"))
    with pytest.raises(LaunchFileError, match="environment variable 'FACE_TEST_UNSET'"):
        load_launch_file(bad)


def test_find_pkg_share_is_the_package_share_directory(tmp_path):
    """launch_ros FindPackageShare: ament's share directory of the one package named."""
    from ament_index_python.packages import get_package_share_directory
    path = write_launch(tmp_path, "x.launch.yaml", echo_node("n", "$(find-pkg-share face_bag)"))
    assert node_args(path) == {"n": [get_package_share_directory("face_bag")]}
    for body in ("$(find-pkg-share)", "$(find-pkg-share a b)", "$(find-pkg-share no_such_pkg)"):
        with pytest.raises(LaunchFileError):
            load_launch_file(write_launch(tmp_path, "y.launch.yaml", echo_node("n", body)))


@pytest.mark.parametrize("text, expected", [
    (r"a\$(var b)", "a$(var b)"),          # an escaped "$(" is text
    (r"C:\path", "C:path"),                 # replace_escaped_characters drops every "\"
    ("$(var 'x')", "X"),                    # a quoted argument
    ("(plain) $ text", "(plain) $ text"),
])
def test_substitution_text_as_the_frontend_grammar_reads_it(tmp_path, text, expected):
    """launch.frontend.parse_substitution (grammar.lark): escapes, quoting and plain text;
    these pairs were checked against the real Jazzy parser."""
    path = write_launch(tmp_path, "x.launch.yaml", '- arg: {name: x, default: "X"}\n'
                        '- let: {name: out, value: ' + yaml.safe_dump(text).split("\n")[0]
                        + "}\n" + echo_node("n", "$(var out)"))
    assert node_args(path) == {"n": [expected]}


@pytest.mark.parametrize("text", ["$(var  x)", "$(var x )", "$(var x", "$(var)", "$(nosuch x)",
                                  "$(env X 'a' 'b' 'c')"])
def test_malformed_substitutions_fail_even_where_not_evaluated(tmp_path, text):
    """The frontend parses a whole file when it is included (Parser.parse_description), so a
    bad substitution fails even in a node whose condition is false."""
    path = write_launch(tmp_path, "x.launch.yaml", '- node: {pkg: face_capture, exec: send_take,'
                        ' if: "false", args: ' + json.dumps(text) + "}\n")
    with pytest.raises(LaunchFileError):
        load_launch_file(path)


def test_a_substitution_result_stays_one_command_line_argument(tmp_path):
    """ExecuteProcess._parse_cmdline: only the text between substitutions is split; a value
    with a space is one argument, an empty value an empty argument."""
    path = write_launch(tmp_path, "x.launch.yaml", '- arg: {name: take, default: ""}\n'
                        + echo_node("n", "$(var take) --host 127.0.0.1 x$(var take)y"))
    assert node_args(path) == {"n": ["", "--host", "127.0.0.1", "xy"]}
    assert node_args(path, {"take": "/my takes/a.csv"}) == {
        "n": ["/my takes/a.csv", "--host", "127.0.0.1", "x/my takes/a.csvy"]}


@pytest.mark.parametrize("entry", ["- arg: {name: a, default: true}",
                                   "- arg: {name: a, default: 8080}",
                                   "- node: {pkg: a, exec: b, if: true}"])
def test_a_bare_yaml_boolean_or_number_where_a_string_belongs_is_an_error(tmp_path, entry):
    """launch_yaml.Entity.get_attr checks the type without coercion: a string attribute
    given an unquoted `true` or `8080` is a TypeError under ros2 launch."""
    with pytest.raises(LaunchFileError, match="expected a string"):
        load_launch_file(write_launch(tmp_path, "x.launch.yaml", entry + "\n"))


@pytest.mark.ros
def test_face_launch_exits_0_once_every_node_has_exited():
    """LaunchService.run_async (jazzy) shuts down when idle, every process gone, and returns
    0 whatever the processes' exit codes: `ros2 launch robot.launch.yaml robot:=nosuch`
    prints the node's error and exits 0. face-launch does the same (it used to wait forever
    with no process left); the node's exit code is in its output."""
    started = time.monotonic()
    out = subprocess.run(["face-launch", str(ROOT / "launch/robot.launch.yaml"),
                          "robot:=nosuch"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no robot profile named 'nosuch'" in out.stdout
    assert "[face-launch] actuation exited with code 1" in out.stdout
    assert time.monotonic() - started < 30


def test_a_launch_error_exits_1_before_anything_starts():
    """LaunchService.run_async returns 1 after 'Caught exception in launch'."""
    out = subprocess.run(["face-launch", str(ROOT / "launch/shadow.launch.yaml"),
                          "standin:=yes"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "condition 'yes'" in out.stderr
    assert "started" not in out.stdout


# -- every launch file as `ros2 launch` reads it: a static check -----------------------------
def _launch_entries(path: Path) -> list:
    """A file's entries, a group's among them (a group scopes what it sets, so this check,
    which reads them as the file's own, is the stricter one)."""
    def flat(items):
        for item in items:
            group = item.get('group')
            yield from flat(group) if isinstance(group, list) else (item,)
    return list(flat(yaml.safe_load(path.read_text())['launch']))


def _tagged(path: Path, tag: str) -> list:
    return [item[tag] for item in _launch_entries(path) if tag in item]


def _included(path: Path, include: dict) -> Path:
    return path.parent / include['file'].replace('$(dirname)/', '')


def _launch_tree(path: Path) -> list:
    """The file and every file it includes, directly or not (one launch context)."""
    tree = [path]
    for include in _tagged(path, 'include'):
        tree += [p for p in _launch_tree(_included(path, include)) if p not in tree]
    return tree


def launch_file_problems(folder: Path) -> list:
    """What would make `ros2 launch` read a launch file in `folder` wrongly: an argument name
    that means two things in one launch (includes share one set of launch configurations,
    so the parent's value reaches the child's argument of the same name: a meaning is an
    argument's description), an argument without a description, an include not passed an
    argument that both files declare or that the child requires, or a condition on an
    argument whose default is not true/false."""
    problems = []
    for path in sorted(folder.glob('*.launch.yaml')):
        meanings = {}
        for member in _launch_tree(path):
            for argument in _tagged(member, 'arg'):
                if 'description' not in argument:
                    problems.append(f'{member.name}: {argument["name"]} has no description')
                meanings.setdefault(argument['name'], {})[member.name] = \
                    argument.get('description')
        problems += [f'{path.name}: argument {name!r} means different things: {found}'
                     for name, found in meanings.items() if len(set(found.values())) > 1]
        declared = {a['name']: a for a in _tagged(path, 'arg')}
        for include in _tagged(path, 'include'):
            child = _included(path, include)
            passed = {a['name'] for a in include.get('arg', [])}
            for argument in _tagged(child, 'arg'):
                if argument['name'] not in passed and (
                        argument['name'] in declared or 'default' not in argument):
                    problems.append(f'{path.name}: the include of {child.name} does not pass '
                                    f'{argument["name"]!r}')
        for item in _launch_entries(path):
            (tag, entry), = item.items()
            for key in ('if', 'unless'):
                # a bare $(var x) is the condition itself; $(equals $(var x) y) makes its own
                for name in re.findall(r'^\s*\$\(var (\w+)\)\s*$', str(entry.get(key, ''))):
                    default = declared.get(name, {}).get('default')
                    if default not in ('true', 'false'):
                        problems.append(f'{path.name}: <{tag}> {key} $(var {name}): the '
                                        f'default {default!r} is not true/false')
    return problems


@pytest.mark.parametrize("left, right, expected", [
    ("camera", "camera", "true"), ("camera", "http", "false"), ("camera", "Camera", "false"),
    ("true", "1", "true"), ("TRUE", "false", "false"), ("1.0", "1", "true"),
    ("0", "false", "true"), ("", "", "true"), ("nan", "nan", "false"),
])
def test_equals_compares_as_equals_substitution_does(tmp_path, left, right, expected):
    """launch.substitutions.EqualsSubstitution.perform (jazzy): booleans as booleans, numbers
    with math.isclose, anything else as text."""
    path = write_launch(tmp_path, "eq.launch.yaml",
                        f'- node: {{pkg: face_capture, exec: camera, name: cam, '
                        f'if: "$(equals \'{left}\' \'{right}\')"}}\n')
    assert len(load_launch_file(path, {})) == (expected == "true")


@pytest.mark.parametrize('mode, started', [('video', True), ('camera', True), ('udp', False)])
def test_a_let_takes_if_and_unless_as_every_action_does(tmp_path, mode, started):
    """launch.actions.SetLaunchConfiguration.parse calls Action.parse, which reads `if` and
    `unless` (jazzy): a conditional let sets its configuration only when the condition holds."""
    path = write_launch(tmp_path, 'let.launch.yaml',
                        '- arg: {name: input, default: udp, description: input}\n'
                        '- let: {if: "$(equals $(var input) camera)", name: images, '
                        'value: "true"}\n'
                        '- let: {unless: "$(equals $(var input) video)", name: other, value: "1"}\n'
                        '- let: {if: "$(var other false)", name: images2, value: "false"}\n'
                        '- let: {unless: "$(var other false)", name: images2, value: "true"}\n'
                        '- node: {pkg: face_capture, exec: camera, name: cam, '
                        'if: "$(var images $(var images2))"}\n')
    assert len(load_launch_file(path, {'input': mode})) == started


def test_the_launch_files_mean_one_thing_per_argument_name():
    assert launch_file_problems(ROOT / 'launch') == []


@pytest.mark.parametrize('child, parent, problem', [
    ('- arg: {name: port, default: "", description: serial port}\n',
     '- arg: {name: port, default: "11111", description: UDP port}\n'
     '- include: {file: "$(dirname)/child.launch.yaml", arg: [{name: port, value: "1"}]}\n',
     "argument 'port' means different things"),
    ('- arg: {name: port, default: "", description: serial port}\n',
     '- arg: {name: port, default: "", description: serial port}\n'
     '- include: {file: "$(dirname)/child.launch.yaml"}\n',
     "does not pass 'port'"),
    ('- arg: {name: bag, description: bag folder}\n',
     '- include: {file: "$(dirname)/child.launch.yaml"}\n',
     "does not pass 'bag'"),
    ('- arg: {name: go, default: "true", description: start it}\n',
     '- arg: {name: standin, default: "yes", description: stand-in}\n'
     '- include: {if: "$(var standin)", file: "$(dirname)/child.launch.yaml"}\n',
     "$(var standin): the default 'yes' is not true/false"),
    ('- arg: {name: a, default: "x"}\n',
     '- include: {file: "$(dirname)/child.launch.yaml"}\n',
     'a has no description'),
])
def test_the_launch_file_check_finds_each_problem(tmp_path, child, parent, problem):
    write_launch(tmp_path, 'child.launch.yaml', child)
    write_launch(tmp_path, 'parent.launch.yaml', parent)
    problems = launch_file_problems(tmp_path)
    assert any(problem in p for p in problems), problems


# -- parameters as a user types them -----------------------------------------------------------
@pytest.mark.ros
def test_an_integer_for_a_double_parameter_is_that_double(ros_node):
    """launch_ros (and `-p rate:=2`) hand the node the integer 2; rclpy alone refuses it for
    a double parameter. At start and through SetParameters, it becomes 2.0."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    runner = subprocess.Popen(['face-launch', str(ROOT / 'launch/take.launch.yaml'), 'rate:=2'],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        def rate():
            reply = ros_node.call(GetParameters, '/take_player/get_parameters',
                                  GetParameters.Request(names=['rate']))
            return reply.values[0]
        value = rate()
        assert (value.type, value.double_value) == (ParameterType.PARAMETER_DOUBLE, 2.0)
        three = Parameter(name='rate', value=ParameterValue(
            type=ParameterType.PARAMETER_INTEGER, integer_value=3))
        reply = ros_node.call(SetParameters, '/take_player/set_parameters',
                              SetParameters.Request(parameters=[three]))
        assert reply.results[0].successful, reply.results[0].reason
        assert rate().double_value == 3.0
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output = runner.communicate(timeout=20)[0].decode()
    assert 'Traceback' not in output, output


@pytest.mark.ros
@pytest.mark.parametrize('argument, line', [
    ('rate:=fast', "take_player: parameter 'rate' takes a double, got 'fast'"),
    ('loop:=2', "take_player: parameter 'loop' takes a bool, got 2"),
    ('rate:=1000', "take_player: parameter 'rate': "),
])
def test_a_wrong_parameter_is_one_line_naming_it(argument, line):
    out = subprocess.run(['face-launch', str(ROOT / 'launch/take.launch.yaml'), argument],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0                  # as ros2 launch: the node's exit is reported
    assert f'[take_player] {line}' in out.stdout, out.stdout
    assert 'Traceback' not in out.stdout and '[face-launch] take_player exited with code 1' \
        in out.stdout


# -- the shadowing launch, run: every node (included ones too) and a robot that follows -------
REAL_LAUNCH_ENV = os.environ.get('FACE_REAL_LAUNCH_ENV', '')
LAUNCHERS = ['face-launch', pytest.param('ros2 launch', marks=pytest.mark.skipif(
    not REAL_LAUNCH_ENV, reason='FACE_REAL_LAUNCH_ENV is not set: the env.sh of a Jazzy '
    'launch overlay (../shared/tools/real-ros2-launch.sh) runs these through ros2 launch'))]
SHADOW_VARIANTS = [[], ['record:=true'], ['take_player:=true'], ['robot:=hobbs'],
                   ['robot:=ameca'], ['composed:=true']]
# The nodes shadow_composed holds (composed:=true with the UDP input).
COMPOSED_NODES = ['/livelink_receiver', '/retarget', '/actuation']


@pytest.mark.parametrize('launch_file, valid', [
    ('capture.launch.yaml', "['udp', 'tcp', 'camera', 'video', 'http']"),
    ('shadow.launch.yaml', "['udp', 'tcp', 'camera', 'video', 'http']"),
    ('shadow_pair.launch.yaml', "['udp', 'tcp', 'camera', 'video', 'http']"),
    ('camera.launch.yaml', "['camera', 'video', 'http']")])
@pytest.mark.parametrize('launcher', LAUNCHERS)
def test_an_unknown_input_fails_with_one_line_naming_the_valid_values(launcher, launch_file,
                                                                      valid):
    """input:=webcam used to start nothing (no use_webcam condition is true) and exit 0;
    the argument's choices make both launchers refuse it before anything starts."""
    out = subprocess.run(launch_command(launcher, ROOT / 'launch' / launch_file,
                                        ['input:=webcam']),
                         capture_output=True, text=True, timeout=120)
    output = out.stdout + out.stderr
    line = f'Argument "input" provided value "webcam" is not valid. Valid options are: {valid}'
    assert out.returncode == 1 and line in output, output
    assert 'process started' not in output and 'started' not in out.stdout, output
    if launcher == 'face-launch':
        assert out.stderr == f'face-launch: {line}\n'


def launch_command(launcher: str, launch_file: Path, arguments: list) -> list:
    if launcher == 'face-launch':
        return ['face-launch', str(launch_file), *arguments]
    return ['bash', '-c', f'. {shlex.quote(REAL_LAUNCH_ENV)} && exec ros2 launch "$0" "$@"',
            str(launch_file), *arguments]


@pytest.mark.ros
@pytest.mark.parametrize('variant', SHADOW_VARIANTS, ids=lambda v: ' '.join(v) or 'defaults')
@pytest.mark.parametrize('launcher', LAUNCHERS)
def test_shadowing_runs_every_node_and_the_robot_follows(ros_node, tmp_path, launcher,
                                                          variant):
    """Every node the launch describes, those of included files too, appears once in the
    graph (the dashboard's stream node under its own name), the actuation node reports
    `active` and applies commands, and no process fails."""
    from diagnostic_msgs.msg import DiagnosticArray

    from face_common import qos
    from face_msgs.msg import ControlValues
    launch_file = ROOT / 'launch/shadow.launch.yaml'
    arguments = [*variant, f'udp_port:={free_port()}',
                 f'dashboard_port:={free_port(socket.SOCK_STREAM)}', f'bag:={tmp_path / "bag"}',
                 f'performer_calibration_dir:={tmp_path / "calibration"}']
    specs = load_launch_file(launch_file, parse_arguments(arguments))
    expected = sorted([s.fqn for s in specs if s.executable not in ('send_take', 'shadow_composed')]
                      + [s.fqn + '_streams' for s in specs if s.executable == 'dashboard']
                      + [n for s in specs if s.executable == 'shadow_composed'
                         for n in COMPOSED_NODES])
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied', qos.LIVE_STREAM)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    runner = subprocess.Popen(launch_command(launcher, launch_file, arguments),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)

    def graph():
        return sorted(('' if ns == '/' else ns) + '/' + n
                      for n, ns in ros_node.node.get_node_names_and_namespaces()
                      if n != ros_node.node.get_name())

    def actuation_active():
        return any(s.name == 'face_actuation: actuation' and s.message == 'active'
                   for m in diagnostics.snapshot() for s in m.status)
    try:
        assert wait_until(lambda: set(expected) <= set(graph()), 60.0), (expected, graph())
        assert wait_until(lambda: len(applied.snapshot()) >= 30 and actuation_active(), 40.0)
        listed = graph()
        assert [name for name in expected if listed.count(name) != 1] == [], listed
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output = runner.communicate(timeout=30)[0].decode()
    assert runner.returncode == 0, output
    for failure in ('Traceback', 'exit code 1', 'already registered', '[ERROR]: process'):
        assert failure not in output, output
    if 'record:=true' in variant:
        assert (tmp_path / 'bag').is_dir()


# -- the documented commands ---------------------------------------------------------------------
DOCUMENTED = re.compile(r'(\w+\.launch\.yaml)((?: [\w-]+:=[^\s`]+)+)')
CONTINUED = re.compile(r'\.\.\. ((?:[\w-]+:=\S+ ?)+)')


def documented_commands() -> list:
    """(launch file, arguments) of every `FILE.launch.yaml name:=value ...` in the README and
    of every command in a launch file's header comment (`... name:=value` continues it)."""
    found = [(name, args) for name, args in DOCUMENTED.findall((ROOT / 'README.md').read_text())]
    for path in LAUNCH_FILES:
        header = ''.join(line for line in path.read_text().splitlines(keepends=True)
                         if line.startswith('#'))
        found += DOCUMENTED.findall(header)
        found += [(path.name, ' ' + args) for args in CONTINUED.findall(header)]
    return [(name, shlex.split(args)) for name, args in found]   # as a shell splits them


def test_the_documented_commands_exist():
    names = {name for name, _ in documented_commands()}
    assert {'robot.launch.yaml', 'shadow.launch.yaml', 'capture.launch.yaml'} <= names


@pytest.mark.parametrize('launch_file, arguments', documented_commands(),
                         ids=lambda x: x if isinstance(x, str) else ' '.join(x))
def test_every_documented_command_works_as_written(launch_file, arguments):
    """Each one loads, and names only arguments its launch declares: `ros2 launch` silently
    ignores any other, so a renamed argument left in the docs would do nothing."""
    path = ROOT / 'launch' / launch_file
    declared = {a['name'] for member in _launch_tree(path) for a in _tagged(member, 'arg')}
    given = parse_arguments(arguments)
    assert set(given) <= declared, set(given) - declared
    assert load_launch_file(path, given)


@pytest.mark.parametrize('launch_file', LAUNCH_FILES, ids=lambda p: p.name)
def test_every_argument_a_header_comment_names_is_declared(launch_file):
    header = ''.join(line for line in launch_file.read_text().splitlines(keepends=True)
                     if line.startswith('#'))
    named = set(re.findall(r'(?<!-p )(?<![-\w"])([a-z][\w]*):=', header))
    declared = {a['name'] for member in _launch_tree(launch_file) for a in _tagged(member, 'arg')}
    assert named <= declared, named - declared


SUBSTITUTION_CASES = ['$(var a)', 'x$(var a b)y', '$(var nope dflt)', '$(env NOPE "a b")',
                      r'a\$(var b)', r'C:\path\to', r'a\\$(var a)', "$(var 'a')",
                      '$(var "nope" "x $(var a)")', "'quoted' text", 'a (b) c', '$(var  a)',
                      '$(var a )', '$(VAR a)', '$(var)', '$(nosuch a)', r'x\(y\)',
                      r"$(env NOPE 'it\'s')", '$(var a', 'trailing \\']
REAL_SUBSTITUTIONS = '''
import json, sys
from launch import LaunchContext
from launch.frontend.parse_substitution import parse_substitution
from launch.utilities import perform_substitutions
context = LaunchContext()
context.launch_configurations.update(a='A', b='B')
out = []
for case in json.loads(sys.argv[1]):
    try:
        out.append(perform_substitutions(context, parse_substitution(case)))
    except Exception:
        out.append(None)
print(json.dumps(out))
'''


@pytest.mark.skipif(not REAL_LAUNCH_ENV, reason='FACE_REAL_LAUNCH_ENV is not set (the real '
                    'Jazzy launch to compare with)')
def test_substitutions_evaluate_as_the_real_jazzy_frontend():
    """launch.frontend.parse_substitution + perform_substitutions, run in the overlay, give
    the same text (or an error) as face-launch for each case."""
    from face_common.launch_runner import _check_substitutions, _Launch, parse_value
    real = subprocess.run(['bash', '-c', f'. {shlex.quote(REAL_LAUNCH_ENV)} && exec python -c '
                           f'{shlex.quote(REAL_SUBSTITUTIONS)} "$0"',
                           json.dumps(SUBSTITUTION_CASES)], capture_output=True, text=True,
                          timeout=60)
    assert real.returncode == 0, real.stderr
    launch = _Launch()
    launch.configurations.update(a='A', b='B')
    mine = []
    for case in SUBSTITUTION_CASES:
        try:
            pieces = parse_value(case, 'case')
            _check_substitutions(pieces, 'case')
            mine.append(launch.evaluate(pieces, 'case'))
        except LaunchFileError:
            mine.append(None)
    assert dict(zip(SUBSTITUTION_CASES, mine, strict=True)) == dict(
        zip(SUBSTITUTION_CASES, json.loads(real.stdout), strict=True))
