"""The Foxglove bridge node seen by a Foxglove WebSocket client: real rclpy publishers on the
face topics, the bridge in its own process, and a client speaking the Foxglove WebSocket
protocol's documented ops (serverInfo, advertise, subscribe, binary message data) over the
`websockets` library: no maintained Python client of the protocol exists on PyPI. The pinned
foxglove-sdk (0.30) negotiates the subprotocol `foxglove.sdk.v1`, the successor of
`foxglove.websocket.v1` (which it refuses with HTTP 400), as the current Foxglove app does.
The client decodes each message with the schema the server advertised, through
mcap-ros2-support's CDR decoder, as the Foxglove app would."""
import asyncio
import json
import socket
import struct

from diagnostic_msgs.msg import DiagnosticArray
from mcap.records import Schema
from mcap_ros2.decoder import DecoderFactory
import pytest
from websockets.asyncio.client import connect

from conftest import free_port, wait_until
from face_common import qos
from face_msgs.msg import Blendshapes, ControlValues

pytestmark = pytest.mark.ros
SUBPROTOCOL = 'foxglove.sdk.v1'
MESSAGE_DATA = 0x01          # binary opcode: subscription id, receive time, payload


async def receive_decoded(url, topics, wanted, timeout=30.0):
    """Connect, subscribe to `topics`, decode binary messages until `wanted` per topic."""
    async with connect(url, subprotocols=[SUBPROTOCOL]) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        channels, server_info = {}, None
        while set(topics) - {c['topic'] for c in channels.values()}:
            reply = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if reply['op'] == 'serverInfo':
                server_info = reply
            elif reply['op'] == 'advertise':
                channels.update({c['id']: c for c in reply['channels']})
        assert server_info is not None
        by_subscription, decoders = {}, {}
        for subscription_id, channel in enumerate(
                (c for c in channels.values() if c['topic'] in topics), start=1):
            assert channel['encoding'] == 'cdr' and channel['schemaEncoding'] == 'ros2msg'
            by_subscription[subscription_id] = channel['topic']
            schema = Schema(id=channel['id'], name=channel['schemaName'], encoding='ros2msg',
                            data=channel['schema'].encode())
            decoders[channel['topic']] = DecoderFactory().decoder_for('cdr', schema)
        await ws.send(json.dumps({'op': 'subscribe', 'subscriptions': [
            {'id': sid, 'channelId': next(c['id'] for c in channels.values()
                                          if c['topic'] == topic)}
            for sid, topic in by_subscription.items()]}))
        received = {topic: [] for topic in topics}
        while any(len(received[t]) < wanted for t in topics):
            frame = await asyncio.wait_for(ws.recv(), timeout)
            if isinstance(frame, str):
                continue                     # status, or a later advertise
            assert frame[0] == MESSAGE_DATA
            subscription_id, _receive_ns = struct.unpack_from('<IQ', frame, 1)
            topic = by_subscription[subscription_id]
            received[topic].append(decoders[topic](frame[13:]))
        return channels, received


def test_a_foxglove_client_receives_the_live_topics_decoded(ros_node, node_process):
    port = free_port(socket.SOCK_STREAM)
    bridge = node_process('face_dashboard', 'foxglove_bridge', params={'port': port})
    human = ros_node.node.create_publisher(Blendshapes, '/face/human/blendshapes',
                                           qos.LIVE_STREAM)
    command = ros_node.node.create_publisher(ControlValues, '/face/command', qos.LIVE_STREAM)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    assert wait_until(lambda: human.get_subscription_count() and
                      command.get_subscription_count(), 30), bridge.output()

    stop = asyncio.Event()

    async def publish():
        frame = 0
        while not stop.is_set():
            frame += 1
            human.publish(Blendshapes(subject='performer', frame_number=frame,
                                      names=['jawOpen', 'eyeBlinkLeft'],
                                      weights=[0.25, frame % 2 * 0.5]))
            command.publish(ControlValues(robot_id='hobbs', source='retarget',
                                          motor_names=['jaw'], values=[0.75]))
            await asyncio.sleep(0.02)

    async def scenario():
        publisher = asyncio.create_task(publish())
        try:
            return await receive_decoded(f'ws://127.0.0.1:{port}',
                                         ['/face/human/blendshapes', '/face/command'], 5)
        finally:
            stop.set()
            await publisher

    channels, received = asyncio.run(scenario())
    advertised = {c['topic']: c for c in channels.values()}
    assert advertised['/face/human/blendshapes']['schemaName'] == 'face_msgs/msg/Blendshapes'
    assert advertised['/face/command']['schemaName'] == 'face_msgs/msg/ControlValues'
    # Self-contained definitions, dependencies included, as Foxglove needs them.
    assert 'MSG: builtin_interfaces/Time' in advertised['/face/command']['schema']
    frames = [m.frame_number for m in received['/face/human/blendshapes']]
    assert frames == sorted(frames) and frames[0] >= 1
    for message in received['/face/human/blendshapes']:
        assert message.subject == 'performer' and message.names == ['jawOpen', 'eyeBlinkLeft']
        assert message.weights == [0.25, message.frame_number % 2 * 0.5]
    for message in received['/face/command']:
        assert (message.robot_id, message.motor_names, message.values) == \
            ('hobbs', ['jaw'], [0.75])
    # The bridge reports itself (and what it forwarded) like every node.
    assert wait_until(lambda: any(s.name == 'face_dashboard: foxglove'
                                  for a in diagnostics.snapshot() for s in a.status), 10)
    assert bridge.alive


def test_a_port_already_taken_is_one_clear_line(node_process):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        bridge = node_process('face_dashboard', 'foxglove_bridge',
                              params={'port': taken.getsockname()[1]})
        assert bridge.proc.wait(30) == 1
    output = bridge.output().strip()
    assert output.startswith('foxglove_bridge: cannot serve on 127.0.0.1:')
    assert 'Address already in use' in output and 'Traceback' not in output
