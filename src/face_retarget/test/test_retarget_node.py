"""The retarget node between real topics: human frames in, commands with the same stamp out."""
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.duration import Duration

from conftest import wait_until
from face_actuation.profile import load_profile
from face_common import qos
from face_common.arkit import NUM_CHANNELS, channel_index
from face_common.messages import blendshapes_msg
from face_msgs.msg import Blendshapes, ControlValues

pytestmark = pytest.mark.ros


def test_commands_carry_the_human_stamp_and_bad_frames_are_dropped(ros_node, node_process):
    profile = load_profile('hobbs', '/nonexistent')
    commands = ros_node.subscribe(ControlValues, '/face/command')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    pub = ros_node.node.create_publisher(Blendshapes, '/face/human/blendshapes',
                                         qos.LIVE_STREAM)
    node = node_process('face_retarget', 'retarget',
                        params={'robot': 'hobbs', 'model': 'linear',
                                'diagnostics_period_s': 0.2})
    clock = ros_node.node.get_clock()
    frame = np.zeros(NUM_CHANNELS, np.float32)
    frame[channel_index('JawOpen')] = 0.8

    def fresh(values=frame):
        return blendshapes_msg(values, clock.now().to_msg(), source='test')
    assert wait_until(lambda: pub.publish(fresh()) or commands.snapshot(), 15.0), node.output()
    sent = fresh()
    pub.publish(sent)
    assert wait_until(lambda: any(c.header.stamp == sent.header.stamp
                                  for c in commands.snapshot()))
    command = next(c for c in commands.snapshot() if c.header.stamp == sent.header.stamp)
    assert list(command.motor_names) == profile.motor_names and command.robot_id == 'hobbs'
    jaw = profile.index('jaw_open')
    assert command.values[jaw] > profile.neutral[jaw] + 0.2          # an open jaw opens the jaw
    assert all(0.0 <= v <= 1.0 for v in command.values)

    def counted():
        for array in reversed(diagnostics.snapshot()):
            for status in array.status:
                if status.name == 'face_retarget: retarget':
                    values = {kv.key: kv.value for kv in status.values}
                    return values
        return {}

    # A frame that waited behind a loaded machine's start-up may already count as stale:
    # the counts below are relative to what the diagnostics say once the good frames
    # are through (diagnostics come every 0.2 s).
    time.sleep(0.6)
    before = counted()
    before_bad, before_stale = int(before['bad_frames']), int(before['stale_frames'])

    bad = fresh()
    bad.weights[3] = float('nan')
    pub.publish(bad)
    time.sleep(0.05)                      # live-stream QoS keeps the last 2: pace the frames
    mismatched = fresh()
    mismatched.names = mismatched.names[:10]
    pub.publish(mismatched)
    time.sleep(0.05)
    stale = blendshapes_msg(frame, (clock.now() - Duration(seconds=1.0)).to_msg(), source='t')
    pub.publish(stale)

    assert wait_until(lambda: int(counted()['bad_frames']) == before_bad + 2 and
                      int(counted()['stale_frames']) == before_stale + 1, 5.0), \
        (before, counted())
    assert node.alive


def test_exface_node_sustains_a_stream(ros_node, node_process, tmp_path):
    """The diffusion model in the node: every frame of a 60 Hz stream gets its command."""
    from face_retarget.cli import train_main
    assert train_main(['--robot', 'hobbs', '--out', str(tmp_path), '--window', '16',
                       '--d-model', '32', '--layers', '1', '--heads', '2', '--static-poses', '60',
                       '--static-frames', '1600', '--static-steps', '20',
                       '--first-iteration-frames', '200', '--episode-frames', '200',
                       '--finetune-steps', '10', '--baseline-steps', '10', '--probe-frames',
                       '200', '--held-out-frames', '200', '--no-progress']) == 0
    commands = ros_node.subscribe(ControlValues, '/face/command')
    pub = ros_node.node.create_publisher(Blendshapes, '/face/human/blendshapes',
                                         qos.LIVE_STREAM)
    node = node_process('face_retarget', 'retarget',
                        params={'robot': 'hobbs', 'model': 'exface',
                                'checkpoint': str(tmp_path / 'hobbs' / 'exface.pt')})
    clock = ros_node.node.get_clock()
    frame = np.zeros(NUM_CHANNELS, np.float32)
    assert wait_until(lambda: pub.publish(blendshapes_msg(frame, clock.now().to_msg(),
                                                          source='t')) or commands.snapshot(),
                      20.0), node.output()
    time.sleep(0.3)
    commands.clear()
    for i in range(120):
        frame[channel_index('JawOpen')] = 0.5 + 0.4 * np.sin(i / 10)
        pub.publish(blendshapes_msg(frame, clock.now().to_msg(), source='t', frame_number=i))
        time.sleep(1 / 60)
    time.sleep(0.3)
    received = [c for c in commands.snapshot() if c.source == 'exface']
    assert len(received) >= 114                       # best effort on a shared 2-core machine
    assert 'model "exface" for hobbs' in node.output()
