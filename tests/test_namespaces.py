"""Names and namespaces: every topic and service of the table is relative (so a launch
namespace moves a whole pipeline), and face-launch runs groups the way launch_ros does
(push_ros_namespace nests or replaces, set_remap reaches the group's nodes and no others), so
shadow_pair starts one input at the root and two robots' pipelines apart."""
from pathlib import Path

import pytest

from face_common import topics
from face_common.launch_runner import LaunchFileError, load_launch_file

ROOT = Path(__file__).resolve().parent.parent


def test_every_name_in_the_table_is_relative_but_diagnostics():
    for topic in topics.TOPICS:
        assert topic.name.startswith('/') == (topic is topics.DIAGNOSTICS), topic
        assert topic.bag_name == '/' + topic.name.lstrip('/')
    services = [topics.CAPTURE_NEUTRAL, topics.SELECT_CALIBRATION, topics.RESET_CALIBRATION,
                *map(topics.actuation_service, topics.ACTUATION_SERVICES)]
    assert not any(service.name.startswith('/') for service in services)
    with pytest.raises(ValueError):
        topics.actuation_service('explode')
    assert topics.namespaced_status('/hobbs/', topics.STATUS_LATENCY) == \
        'hobbs/face_dashboard: latency'
    assert topics.namespaced_status('/', topics.STATUS_LATENCY) == topics.STATUS_LATENCY


def write(path, text):
    path.write_text(text)
    return path


def test_groups_push_namespaces_and_remaps_onto_their_nodes_only(tmp_path):
    write(tmp_path / 'child.launch.yaml', '''launch:
- node: {pkg: p, exec: e, name: inner}
- node: {pkg: p, exec: e, name: pinned, namespace: /fixed}
''')
    specs = load_launch_file(write(tmp_path / 'main.launch.yaml', '''launch:
- arg: {name: ns, default: left}
- group:
  - push_ros_namespace: {namespace: $(var ns)}
  - set_remap: {from: in, to: /shared/in}
  - node: {pkg: p, exec: e, name: a, remap: [{from: x, to: y}]}
  - group:
    - push_ros_namespace: {namespace: deeper}
    - include: {file: $(dirname)/child.launch.yaml}
  - group:
    - push_ros_namespace: {namespace: /elsewhere}
    - node: {pkg: p, exec: e, name: b}
- node: {pkg: p, exec: e, name: root}
'''))
    found = {spec.label: spec for spec in specs}
    assert list(found) == ['left/a', 'left/deeper/inner', 'fixed/pinned', 'elsewhere/b', 'root']
    assert found['left/a'].remaps == [('in', '/shared/in'), ('x', 'y')]   # scope's first
    assert found['left/deeper/inner'].remaps == [('in', '/shared/in')]
    assert found['root'].namespace == '' and found['root'].remaps == []
    assert '-r' in found['left/a'].command('e') and '__ns:=/left' in found['left/a'].command('e')


def test_a_group_is_a_list_of_entries(tmp_path):
    with pytest.raises(LaunchFileError, match='group'):
        load_launch_file(write(tmp_path / 'bad.launch.yaml', 'launch:\n- group: {a: 1}\n'))


def test_shadow_pair_runs_one_input_and_two_pipelines_apart():
    specs = load_launch_file(ROOT / 'launch' / 'shadow_pair.launch.yaml', {'record': 'true'})
    labels = [spec.label for spec in specs]
    assert len(set(labels)) == len(labels)
    assert {'livelink_receiver', 'standin_iphone'} < set(labels)      # the input, shared
    for robot in ('hobbs', 'ameca'):
        pipeline = {spec.name: spec for spec in specs if spec.namespace == f'/{robot}'}
        assert set(pipeline) == {'retarget', 'actuation', 'latency_monitor', 'dashboard',
                                 'recorder'}
        for spec in pipeline.values():
            assert ('face/human/blendshapes', '/face/human/blendshapes') in spec.remaps
        assert ('face/human/capture_neutral', '/face/human/capture_neutral') in \
            pipeline['dashboard'].remaps
        assert pipeline['actuation'].params['robot'] == robot
        assert '/face/latency' in pipeline['latency_monitor'].params['trace_topics']
        assert '/face/latency' in pipeline['recorder'].params['topics']
    ports = {spec.params['port'] for spec in specs if spec.name == 'dashboard'}
    assert len(ports) == 2


@pytest.mark.ros
def test_a_namespaced_recorder_and_player_keep_names_relative(ros_node, node_process, tmp_path):
    """Recorded under /left, the bag says /face/command (export reads it like any bag);
    played under /right, it comes back on /right/face/command."""
    import time

    import numpy as np

    from conftest import wait_until
    from face_bag.store import bag_info, read_messages
    from face_common import qos
    from face_common.messages import control_values_msg
    from face_msgs.msg import ControlValues

    recorder = node_process('face_bag', 'recorder', namespace='/left', params={
        'output': str(tmp_path / 'bag'), 'topics': "['face/command']"})
    command = ros_node.node.create_publisher(ControlValues, '/left/face/command',
                                             qos.LIVE_STREAM)
    root = ros_node.node.create_publisher(ControlValues, '/face/command', qos.LIVE_STREAM)
    assert wait_until(lambda: command.get_subscription_count() > 0, 15), recorder.output()
    time.sleep(0.3)
    for i in range(40):
        stamp = ros_node.node.get_clock().now().to_msg()
        command.publish(control_values_msg([i / 40], ['m'], stamp, robot='left', source='t'))
        root.publish(control_values_msg([0.0], ['other'], stamp, robot='root', source='t'))
        time.sleep(0.01)
    time.sleep(0.3)
    assert recorder.stop() == 0
    assert list(bag_info(tmp_path / 'bag')['topics']) == [topics.COMMAND.bag_name]
    # Best-effort QoS may lose the first few on a loaded machine while the recorder's side
    # of the match completes; what matters is that every recorded one is the left's.
    recorded = [m.decode() for m in read_messages(tmp_path / 'bag')]
    assert 10 <= len(recorded) <= 40
    assert {msg.robot_id for msg in recorded} == {'left'}

    replayed = ros_node.subscribe(ControlValues, '/right/face/command')
    player = node_process('face_bag', 'player', namespace='/right', params={
        'bag': str(tmp_path / 'bag'), 'wait_for_subscribers_s': 10.0, 'restamp': False})
    assert wait_until(lambda: len(replayed.snapshot()) >= len(recorded) * 3 // 4, 15), \
        player.output()
    assert {msg.robot_id for msg in replayed.snapshot()} == {'left'}
    assert np.all(np.diff([msg.values[0] for msg in replayed.snapshot()]) > 0)
