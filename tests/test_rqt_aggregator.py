"""rqt_robot_monitor's tree of the pipeline: the diagnostic_aggregator analyzers that
face_dashboard ships (config/diagnostic_aggregator.yaml, started by monitor.launch.yaml
aggregator:=true on a ROS 2 install).

diagnostic_aggregator has no wheel on PyPI (a C++ pluginlib node), so here the file is
checked against the parameters the Jazzy aggregator reads (ros/diagnostics, branch
ros2-jazzy: Aggregator's constructor, AnalyzerGroup::init, GenericAnalyzer::init) and its
matching rule (GenericAnalyzer::match) is applied to the status names that the nodes really
publish, heard on /diagnostics from every node of the project running: each must fall into
exactly one group, so nothing lands in "Other" and nothing shows twice."""
from pathlib import Path
import re

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import serialize_message
import yaml

from conftest import wait_until
from face_bag.store import BagWriter
from face_common import qos
from face_msgs.msg import Blendshapes

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / 'src/face_dashboard/config/diagnostic_aggregator.yaml'
ANALYZER_TYPES = {f'diagnostic_aggregator/{name}' for name in
                  ('GenericAnalyzer', 'AnalyzerGroup', 'DiscardAnalyzer', 'IgnoreAnalyzer')}
# Aggregator(): the node's own parameters; anything else is an analyzer's namespace.
AGGREGATOR_PARAMETERS = {'pub_rate': float, 'path': str, 'other_as_errors': bool,
                         'history_depth': int, 'critical': bool}
# GenericAnalyzer::init reads these, each with as_string_array/as_double/as_int/as_bool,
# which throw on another type (a YAML 5 where a double is read fails at start-up).
GENERIC_PARAMETERS = {'type': str, 'path': str, 'find_and_remove_prefix': list,
                      'remove_prefix': list, 'startswith': list, 'contains': list,
                      'expected': list, 'regex': list, 'timeout': float, 'num_items': int,
                      'discard_stale': bool}
MATCHERS = ('find_and_remove_prefix', 'startswith', 'contains', 'expected', 'regex')


def analyzers():
    document = yaml.safe_load(CONFIG.read_text())
    assert list(document) == ['analyzers'], 'the aggregator node is named "analyzers"'
    parameters = document['analyzers']['ros__parameters']
    return parameters, {key: value for key, value in parameters.items()
                        if key not in AGGREGATOR_PARAMETERS}


def test_the_analyzers_use_only_parameters_the_jazzy_aggregator_reads():
    parameters, groups = analyzers()
    for key, kind in AGGREGATOR_PARAMETERS.items():
        if key in parameters:
            assert type(parameters[key]) is kind, key
    assert {g['path'] for g in groups.values()} == \
        {'Capture', 'Retarget', 'Actuation', 'Monitoring'}
    for name, group in groups.items():
        assert group['type'] in ANALYZER_TYPES, name
        assert group['type'] == 'diagnostic_aggregator/GenericAnalyzer', name
        # AnalyzerGroup::init creates an analyzer only once it has both type and path.
        assert isinstance(group.get('path'), str) and group['path'], name
        assert set(group) <= set(GENERIC_PARAMETERS), (name, set(group) - set(GENERIC_PARAMETERS))
        for key, value in group.items():
            assert type(value) is GENERIC_PARAMETERS[key], (name, key, value)
            if isinstance(value, list):
                assert value and all(isinstance(item, str) for item in value), (name, key)
        # Without any matcher GenericAnalyzer::init fails and the group is never created.
        assert any(key in group for key in MATCHERS), name


def test_the_launch_file_names_the_node_as_the_parameter_file_does():
    launch = yaml.safe_load((ROOT / 'launch/monitor.launch.yaml').read_text())['launch']
    nodes = [entry['node'] for entry in launch if 'node' in entry]
    aggregator = next(n for n in nodes if n['pkg'] == 'diagnostic_aggregator')
    assert aggregator['exec'] == 'aggregator_node' and aggregator['name'] == 'analyzers'
    assert aggregator['if'] == '$(var aggregator)'
    argument = next(e['arg'] for e in launch if e.get('arg', {}).get('name') == 'aggregator')
    assert argument['default'] == 'false'           # no aggregator in the pip world


def matches(group: dict, name: str) -> bool:
    """GenericAnalyzer::match: regex (whole name), expected (exact), startswith (prefix,
    find_and_remove_prefix included), contains (substring)."""
    return (any(re.fullmatch(pattern, name) for pattern in group.get('regex', [])) or
            name in group.get('expected', []) or
            any(name.startswith(prefix) for prefix in
                group.get('startswith', []) + group.get('find_and_remove_prefix', [])) or
            any(part in name for part in group.get('contains', [])))


def test_every_status_the_nodes_publish_falls_into_exactly_one_group(ros_node, node_process,
                                                                      tmp_path):
    bag = tmp_path / 'bag'
    writer = BagWriter(bag)
    for frame in range(3):
        writer.write('/face/human/blendshapes', 'face_msgs/msg/Blendshapes', frame * 10**7,
                     serialize_message(Blendshapes(frame_number=frame)))
    writer.close()
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    fast = {'diagnostics_period_s': 0.25}
    nodes = [
        ('face_capture', 'livelink_receiver', {'port': 0, 'calibration_dir': str(tmp_path)}),
        ('face_capture', 'take_player', {'calibration_dir': str(tmp_path)}),
        ('face_retarget', 'retarget', {'robot': 'hobbs', 'model': 'linear'}),
        ('face_actuation', 'actuation', {'robot': 'hobbs', 'driver': 'sim',
                                         'calibration_dir': str(tmp_path)}),
        ('face_dashboard', 'latency_monitor', {}),
        ('face_dashboard', 'dashboard', {'robot': 'hobbs', 'port': 0}),
        ('face_dashboard', 'foxglove_bridge', {'port': 0}),
        ('face_bag', 'recorder', {'output': str(tmp_path / 'recorded')}),
        ('face_bag', 'player', {'bag': str(bag), 'loop': True}),
    ]
    for package, executable, params in nodes:
        node_process(package, executable, params={**params, **fast})

    def heard():
        return {s.name for array in diagnostics.snapshot() for s in array.status}
    # One status per node: wait until every node has spoken (each names itself once).
    assert wait_until(lambda: len(heard()) >= len(nodes), 60), sorted(heard())
    _, groups = analyzers()
    for name in heard():
        owners = [group['path'] for group in groups.values() if matches(group, name)]
        assert len(owners) == 1, f'{name!r} falls into {owners or "no group (Other)"}'
    populated = {group['path'] for group in groups.values()
                 for name in heard() if matches(group, name)}
    assert populated == {'Capture', 'Retarget', 'Actuation', 'Monitoring'}
