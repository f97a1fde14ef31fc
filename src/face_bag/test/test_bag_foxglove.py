"""The bags open in Foxglove: Foxglove reads a rosbag2 MCAP file by itself, decoding each
channel with the ros2msg schema embedded in the file (no ROS install, no .msg files). Checked
with the `mcap` reader and mcap-ros2-support's decoder, which work the same way: every channel
has its schema, and every message of every face topic decodes to what was recorded."""
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import serialize_message

from face_bag.store import FACE_TOPICS, BagWriter
from face_msgs.msg import Blendshapes, ControlValues, LatencyTrace, StageTiming


def recorded_messages():
    """One message per face topic, every field set, as the pipeline publishes them."""
    human = Blendshapes(subject='performer', source='livelink', device_id='iphone',
                        frame_number=42, face_tracked=True, names=['jawOpen', 'mouthSmileLeft'],
                        weights=[0.5, 0.25], raw_weights=[0.625, 0.375], calibrated=True,
                        calibration_profile='neutral', head_rotation=[0.1, 0.2, 0.3])
    human.header.stamp.sec, human.header.stamp.nanosec = 1_700_000_000, 123_456_789
    command = ControlValues(robot_id='hobbs', source='retarget', motor_names=['jaw', 'smile_l'],
                            values=[0.75, 0.5])
    trace = LatencyTrace(frame_number=42, end_to_end_ms=12.5,
                         stages=[StageTiming(stage='inference', node='retarget',
                                             duration_ms=3.25)])
    by_type = {'face_msgs/msg/Blendshapes': human, 'face_msgs/msg/ControlValues': command,
               'face_msgs/msg/LatencyTrace': trace}
    return {topic: by_type[msgtype] for topic, msgtype in FACE_TOPICS.items()}


def test_every_channel_has_its_schema_and_every_message_decodes(tmp_path):
    messages = recorded_messages()
    writer = BagWriter(tmp_path / 'bag')
    for index, (topic, message) in enumerate(messages.items()):
        writer.write(topic, FACE_TOPICS[topic], 10**9 + index, serialize_message(message))
    writer.close()
    (mcap_file,) = (tmp_path / 'bag').glob('*.mcap')

    with mcap_file.open('rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert {c.topic for c in summary.channels.values()} == set(FACE_TOPICS)
        for channel in summary.channels.values():
            schema = summary.schemas[channel.schema_id]
            assert channel.message_encoding == 'cdr'
            assert (schema.name, schema.encoding) == (FACE_TOPICS[channel.topic], 'ros2msg')
            # Self-contained: the Header and Time it uses are defined inside.
            assert b'MSG: builtin_interfaces/Time' in schema.data
        decoded = {channel.topic: message for _, channel, _, message
                   in reader.iter_decoded_messages()}

    assert set(decoded) == set(FACE_TOPICS)
    human = decoded['/face/human/blendshapes']
    assert (human.header.stamp.sec, human.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert (human.subject, human.frame_number, human.face_tracked) == ('performer', 42, True)
    assert human.names == ['jawOpen', 'mouthSmileLeft'] and human.weights == [0.5, 0.25]
    assert human.calibration_profile == 'neutral'
    assert decoded['/face/robot/blendshapes'].raw_weights == [0.625, 0.375]
    for topic in ('/face/command', '/face/robot/applied'):
        assert decoded[topic].motor_names == ['jaw', 'smile_l']
        assert decoded[topic].values == [0.75, 0.5]
    trace = decoded['/face/latency']
    assert trace.end_to_end_ms == 12.5
    assert [(s.stage, s.node, s.duration_ms) for s in trace.stages] == \
        [('inference', 'retarget', 3.25)]
