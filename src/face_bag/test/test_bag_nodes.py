"""Recorder and player nodes in their own processes, through real rclpy topics."""
import os
import signal
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest

from conftest import wait_until
from face_bag.store import bag_info, read_messages, recover
from face_common import qos
from face_common.messages import blendshapes_msg, control_values_msg
from face_common.node import OK
from face_msgs.msg import Blendshapes, ControlValues

pytestmark = pytest.mark.ros


def status_of(collector, name):
    for array in reversed(collector.snapshot()):
        for status in array.status:
            if status.name == name:
                return status.level, {kv.key: kv.value for kv in status.values}
    return None, {}


def wait_status(collector, name, key):
    """The latest status of `name` once it reports a non-zero `key`."""
    def ready():
        level, values = status_of(collector, name)
        return (level, values) if values.get(key) not in (None, '0') else None
    return wait_until(ready, 10) or (None, {})


def publish_frames(ros_node, count, period=1 / 60, recorded=('human', 'command')):
    human = ros_node.node.create_publisher(Blendshapes, '/face/human/blendshapes',
                                           qos.LIVE_STREAM)
    command = ros_node.node.create_publisher(ControlValues, '/face/command', qos.LIVE_STREAM)
    # These publishers are new: the recorder's subscriptions may not be matched to them yet
    # even though the topics already had subscribers; frames sent before that are lost.
    publishers = {'human': human, 'command': command}
    assert wait_until(lambda: all(publishers[name].get_subscription_count() > 0
                                  for name in recorded), 15)
    for i in range(count):
        stamp = ros_node.node.get_clock().now().to_msg()
        human.publish(blendshapes_msg(np.full(61, (i % 100) / 100), stamp, source='test',
                                      frame_number=i))
        command.publish(control_values_msg([i / count, 0.5], ['a', 'b'], stamp, robot='r',
                                           source='test'))
        time.sleep(period)


def wait_subscribed(ros_node, topics=('/face/human/blendshapes', '/face/command')):
    return wait_until(lambda: all(ros_node.node.count_subscribers(t) > 0 for t in topics), 15)


def test_recorder_writes_a_bag_and_closes_it_on_shutdown(ros_node, node_process, tmp_path):
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    recorder = node_process('face_bag', 'recorder', params={
        'output': str(tmp_path / 'bag'), 'diagnostics_period_s': 0.2,
        'topics': "['/face/human/blendshapes','/face/command']"})
    assert wait_subscribed(ros_node), recorder.output()
    publish_frames(ros_node, 120)
    level, values = wait_status(diagnostics, 'face_bag: recorder', 'messages')
    assert level == OK and int(values['count /face/command']) > 0
    assert recorder.stop() == 0, recorder.output()
    info = bag_info(tmp_path / 'bag')
    # Best effort on one machine: essentially everything arrives.
    assert info['topics']['/face/human/blendshapes']['count'] >= 110
    assert info['topics']['/face/command']['count'] >= 110
    frames = [m.decode() for m in read_messages(tmp_path / 'bag', {'/face/human/blendshapes'})]
    numbers = [f.frame_number for f in frames]
    assert numbers == sorted(numbers) and frames[0].source == 'test'


def test_recorder_killed_with_sigkill_leaves_a_recoverable_bag(ros_node, node_process,
                                                               tmp_path):
    recorder = node_process('face_bag', 'recorder', params={
        'output': str(tmp_path / 'bag'), 'flush_period_s': 0.25,
        'topics': "['/face/human/blendshapes']"})
    assert wait_subscribed(ros_node, ('/face/human/blendshapes',)), recorder.output()
    publish_frames(ros_node, 180, recorded=('human',))
    time.sleep(0.6)                                   # > two flush periods
    os.killpg(recorder.proc.pid, signal.SIGKILL)
    recorder.proc.wait()
    assert not (tmp_path / 'bag' / 'metadata.yaml').exists()
    result = recover(tmp_path / 'bag')
    assert result['messages'] >= 170
    assert bag_info(tmp_path / 'bag')['topics']['/face/human/blendshapes']['count'] >= 170


def test_player_replays_with_original_timing_and_fresh_stamps(ros_node, node_process,
                                                              tmp_path):
    from test_bag_store import write_bag
    # A topic of its own: a recorder killed earlier may still be listed as a subscriber of
    # the face topics until its discovery lease ends.
    topic = '/test/player/blendshapes'
    write_bag(tmp_path / 'bag', count=60, period_ns=33_333_333, face_topic=topic)  # 2 s
    frames = ros_node.subscribe(Blendshapes, topic)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    player = node_process('face_bag', 'player', params={
        'bag': str(tmp_path / 'bag'), 'rate': 2.0, 'wait_for_subscribers_s': 10.0,
        'topics': f"['{topic}']"})
    assert wait_until(lambda: len(frames.snapshot()) >= 55, 15), player.output()
    received = frames.snapshot()
    now = ros_node.node.get_clock().now().nanoseconds
    stamps = np.array([m.header.stamp.sec * 1e9 + m.header.stamp.nanosec for m in received])
    assert abs(now - stamps[-1]) < 2e9                   # restamped to replay time
    spacing = np.median(np.diff(stamps)) / 1e6
    assert spacing == pytest.approx(33.3 / 2, abs=2)    # rate 2: half the recorded spacing
    numbers = [m.frame_number for m in received]
    assert numbers == sorted(numbers)
    level, values = wait_status(diagnostics, 'face_bag: player', 'published')
    assert level == OK
    assert int(values['messages_in_bag']) == 60
