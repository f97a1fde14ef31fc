"""The launch files and the pip-world runner start the same nodes with the same parameters.

Both worlds read the same standard launch_ros YAML files. Here the runner's reading is checked
against the live ROS graph: the nodes that appear and the parameter values they report
through their own parameter services. On a ROS 2 install, the file is also parsed by the real
launch frontend and compared node for node.
"""
import os
from pathlib import Path
import signal
import subprocess

import pytest
from rcl_interfaces.srv import GetParameters
import yaml

from conftest import free_port, wait_until
from face_common.launch_runner import LaunchFileError, find_executable, load_launch_file

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.yaml'))
REQUIRED_ARGS = {'replay.launch.yaml': {'bag': 'bags/any'}}


def expected_parameters(spec):
    """What the node should report: param files first, then name:=value overrides."""
    values = {}
    for path in spec.param_files:
        document = yaml.safe_load(Path(path).read_text())
        for key in (spec.name, '/' + spec.name, '/**'):
            values.update(document.get(key, {}).get('ros__parameters', {}))
    for key, text in spec.params.items():
        values[key] = yaml.safe_load(text) if text != '' else ''    # NodeSpec passes ''
    return values


def parameter_value(param):
    from rcl_interfaces.msg import ParameterType
    kind = param.type
    return {ParameterType.PARAMETER_BOOL: param.bool_value,
            ParameterType.PARAMETER_INTEGER: param.integer_value,
            ParameterType.PARAMETER_DOUBLE: param.double_value,
            ParameterType.PARAMETER_STRING: param.string_value}.get(kind)


@pytest.mark.parametrize('launch_file', LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_file_resolves_to_runnable_nodes(launch_file):
    specs = load_launch_file(launch_file, REQUIRED_ARGS.get(launch_file.name, {}))
    assert specs, f'{launch_file.name} starts nothing'
    for spec in specs:
        assert os.access(find_executable(spec.package, spec.executable), os.X_OK)
        for path in spec.param_files:
            assert Path(path).is_file(), path
            assert spec.name in yaml.safe_load(Path(path).read_text()), \
                f'{path} has no section for node {spec.name}'


def test_arguments_and_conditions():
    full = load_launch_file(ROOT / 'launch/capture.launch.yaml', {'port': '12000'})
    assert [s.name for s in full] == ['livelink_receiver', 'standin_iphone']
    assert full[0].params['port'] == '12000'
    assert '12000' in full[1].args
    alone = load_launch_file(ROOT / 'launch/capture.launch.yaml', {'standin': 'false'})
    assert [s.name for s in alone] == ['livelink_receiver']
    with pytest.raises(LaunchFileError, match='unknown launch argument'):
        load_launch_file(ROOT / 'launch/capture.launch.yaml', {'prot': '1'})


def launch_ros_value(text):
    """A name:=value parameter as launch_ros types it (evaluate_parameter_dict): an empty
    string stays '' (launch_ros loads "''"), anything else goes through yaml.safe_load, and a
    null or mapping is a TypeError there that stops the whole launch."""
    return '' if text == '' else yaml.safe_load(text)


@pytest.mark.parametrize('launch_file', LAUNCH_FILES, ids=lambda p: p.name)
def test_parameters_on_their_defaults_type_as_launch_ros_would_pass_them(launch_file):
    for spec in load_launch_file(launch_file, REQUIRED_ARGS.get(launch_file.name, {})):
        for key, text in spec.params.items():
            value = launch_ros_value(text)
            assert isinstance(value, (bool, int, float, str, list)), \
                f'{launch_file.name}: {spec.name}.{key} := {text!r} reaches launch_ros as ' \
                f'{value!r}, which it refuses'


@pytest.mark.parametrize('launch_file', ['capture.launch.yaml', 'shadow.launch.yaml'])
def test_livelink_arguments_reach_the_receiver_as_strings(launch_file):
    """Checked against the real Jazzy `ros2 launch` too: the receiver reports these values."""
    def receiver(arguments):
        specs = load_launch_file(ROOT / 'launch' / launch_file, arguments)
        [spec] = [s for s in specs if s.name == 'livelink_receiver']
        return {key: launch_ros_value(spec.params[key])
                for key in ('bind_address', 'allow', 'device_id')}

    assert receiver({}) == {'bind_address': '127.0.0.1', 'allow': '', 'device_id': ''}
    assert receiver({'livelink_bind_address': '0.0.0.0', 'livelink_allow': '192.168.1.0/24',
                     'livelink_device_id': '4FC8F60B-2011-41CD-91A0-A387C6D92D3C'}) == {
        'bind_address': '0.0.0.0', 'allow': '192.168.1.0/24',
        'device_id': '4FC8F60B-2011-41CD-91A0-A387C6D92D3C'}
    # An all-digit id is a YAML integer in both launchers (0123 even octal: 83); quoted, a string.
    assert receiver({'livelink_device_id': "'0123'"})['device_id'] == '0123'


def test_unsupported_launch_features_are_errors_not_silently_skipped(tmp_path):
    for body in ('- timer: {period: 1}', '- node: {pkg: a, exec: b, respawn: "true"}',
                 '- node: {pkg: a, exec: b, name: $(command ls)}'):
        path = tmp_path / 'x.launch.yaml'
        path.write_text('launch:\n' + body + '\n')
        with pytest.raises(LaunchFileError):
            load_launch_file(path)


def test_a_self_referencing_argument_ends_as_literal_text():
    """take:='$(var take)x' made face-launch loop forever (each pass re-expanded the result)."""
    out = subprocess.run(['face-launch', str(ROOT / 'launch/capture.launch.yaml'),
                          'take:=$(var take)x', 'port:=$(var port)', '--print'],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "'$(var' 'take)x'" in out.stdout and "'port:=$(var port)'" in out.stdout


def test_nested_substitutions_resolve_inside_out(tmp_path):
    path = tmp_path / 'x.launch.yaml'
    path.write_text('launch:\n- arg: {name: pkg, default: face_capture}\n'
                    '- node: {pkg: face_capture, exec: send_take,\n'
                    '         args: "$(find-pkg-share $(var pkg))/data $(env NO_SUCH_VAR a b)"}\n')
    spec, = load_launch_file(path)
    assert spec.args[0].endswith('face_capture/data') and spec.args[1:] == ['a', 'b']


BAD_LAUNCH_BODIES = [
    '- arg: {name: a, default: "$(var"}',                       # unclosed
    '- arg: {name: a, default: "$(var)"}',                      # no argument
    '- arg: {name: a, default: "$(VAR a)"}',                    # no such substitution
    '- let: {name: a, value: x}\n'                                # doubling to 2**30 chars
    + '- let: {name: a, value: "$(var a)$(var a)"}\n' * 30,
    '- arg: {name: a, default: "' + '$(env ' * 20 + 'X' + ')' * 20 + '"}',   # too deep
    '- arg: "just text"',                                       # not a mapping
    '- arg: {default: 1}',                                      # no name
    '- arg: {name: [1, 2]}',                                    # name not a scalar
    '- node: {pkg: a}',                                         # no exec
    '- node: {pkg: a, exec: b, args: "unclosed \\"quote"}',
    '- node: {pkg: a, exec: b, param: {name: x}}',              # not a list
    '- node: {pkg: a, exec: b, param: [5]}',
    '- node: {pkg: a, exec: b, remap: [{from: x}]}',
    '- include: {file: "$(dirname)/x.launch.yaml"}',            # includes itself
    '- include: {file: other.yaml, arg: [{name: a}]}',
    '- arg: {name: a, default: "$(find-pkg-share $(env HOME))"}',   # fuzz: ValueError
    '- node: {pkg: "a/b", exec: b}',                                # fuzz: ValueError
]


@pytest.mark.parametrize('body', BAD_LAUNCH_BODIES)
def test_every_bad_launch_file_is_one_error_line(tmp_path, capsys, body):
    from face_common.launch_runner import main
    path = tmp_path / 'x.launch.yaml'
    path.write_text('launch:\n' + body + '\n')
    assert main([str(path), '--print']) == 2
    err = capsys.readouterr().err
    assert err.startswith('face-launch: ') and err.count('\n') == 1, err


def test_a_launch_file_that_is_not_utf8_is_one_error_line(tmp_path, capsys):
    from face_common.launch_runner import main
    (tmp_path / 'x.launch.yaml').write_bytes(b'launch:\n- arg: {name: caf\xe9}\n')
    assert main([str(tmp_path / 'x.launch.yaml')]) == 2
    assert capsys.readouterr().err.startswith('face-launch: cannot read')


@pytest.mark.ros
def test_runner_starts_the_described_nodes_with_their_parameters(ros_node, tmp_path):
    port = free_port()
    arguments = [f'port:={port}', 'standin:=false']
    launch_file = ROOT / 'launch/capture.launch.yaml'
    specs = load_launch_file(launch_file, dict(a.split(':=') for a in arguments))
    runner = subprocess.Popen(['face-launch', str(launch_file), *arguments],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        names = {s.fqn for s in specs}

        def running():
            found = {('/' if ns == '/' else ns + '/') + n
                     for n, ns in ros_node.node.get_node_names_and_namespaces()}
            return names <= found
        assert wait_until(running, 20.0), 'launched nodes did not appear in the graph'
        for spec in specs:
            expected = expected_parameters(spec)
            reply = ros_node.call(GetParameters, f'{spec.fqn}/get_parameters',
                                  GetParameters.Request(names=list(expected)))
            reported = dict(zip(expected, (parameter_value(v) for v in reply.values), strict=True))
            assert reported == expected
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output = runner.communicate(timeout=20)[0].decode()
    assert runner.returncode == 0, output
    assert 'started 1 process(es): livelink_receiver' in output
    leftovers = subprocess.run(['pgrep', '-f', f'port:={port}'], capture_output=True, text=True)
    assert leftovers.stdout.strip() == '', 'a launched process outlived the runner'


def test_ros2_launch_frontend_reads_the_same_nodes():
    """On a ROS 2 install, the real launch frontend must see the runner's node set."""
    frontend = pytest.importorskip('launch.frontend', reason='launch_ros is not on PyPI: '
                                   'this check runs on a ROS 2 install')
    pytest.importorskip('launch_ros')
    for launch_file in LAUNCH_FILES:
        root_entity, parser = frontend.Parser.load(str(launch_file))
        description = parser.parse_description(root_entity)
        kinds = [type(e).__name__ for e in description.entities]
        assert kinds.count('Node') == sum(1 for item in yaml.safe_load(
            launch_file.read_text())['launch'] if 'node' in item)


@pytest.mark.ros
@pytest.mark.parametrize('robot', ['micheal', 'hobbs', 'ameca'])
def test_each_robot_twin_runs_from_the_launch_file(ros_node, robot):
    from face_msgs.msg import Blendshapes
    faces = ros_node.subscribe(Blendshapes, '/face/robot/blendshapes')
    runner = subprocess.Popen(['face-launch', str(ROOT / 'launch/robot.launch.yaml'),
                               f'robot:={robot}'], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_until(lambda: [m for m in faces.snapshot() if m.subject == robot], 20.0)
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output = runner.communicate(timeout=20)[0].decode()
    assert runner.returncode == 0, output
    assert f'robot "{robot}"' in output
