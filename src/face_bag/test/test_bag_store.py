"""Bags written with rosbags: valid rosbag2 (metadata.yaml + mcap), round trip, the same
bytes rclpy sends, crash recovery and a full disk."""
import errno
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from face_bag import messages
from face_bag.store import BagError, BagWriter, bag_info, deserialize, read_messages, recover


def write_bag(path, count=200, period_ns=16_666_667, face_topic='/face/human/blendshapes'):
    writer = BagWriter(path)
    for i in range(count):
        stamp = 10**18 + i * period_ns
        writer.write_message(face_topic, messages.BLENDSHAPES, stamp,
                             messages.blendshapes(np.full(61, i / count), stamp, source='t',
                                                  frame_number=i))
        writer.write_message('/face/command', messages.CONTROL_VALUES, stamp + 1000,
                             messages.control_values([i / count, 0.5], ['a', 'b'], stamp,
                                                     robot='r', source='t'))
    writer.close()
    return path


def test_bag_is_rosbag2_mcap_and_round_trips(tmp_path):
    path = write_bag(tmp_path / 'bag')
    metadata = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert metadata['storage_identifier'] == 'mcap'
    assert metadata['version'] == 9
    assert metadata['message_count'] == 400
    assert (path / metadata['relative_file_paths'][0]).read_bytes()[:8] == b'\x89MCAP0\r\n'
    info = bag_info(path)
    assert info['topics']['/face/command'] == {'type': 'face_msgs/msg/ControlValues',
                                               'count': 200}
    read = list(read_messages(path, {'/face/human/blendshapes'}))
    assert len(read) == 200
    frame = read[57].decode()
    assert frame.frame_number == 57
    assert frame.names[0] == 'EyeBlinkLeft'
    assert np.allclose(frame.weights, 57 / 200)
    assert [m.timestamp_ns for m in read] == sorted(m.timestamp_ns for m in read)


def test_rclpy_bytes_are_the_bag_bytes():
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message

    from face_common.messages import control_values_msg
    msg = control_values_msg([0.25, 0.75], ['a', 'b'], Time(sec=3, nanosec=4), robot='r',
                             source='s')
    decoded = deserialize(serialize_message(msg), messages.CONTROL_VALUES)
    assert decoded.header.stamp.sec == 3 and list(decoded.motor_names) == ['a', 'b']
    assert np.allclose(decoded.values, [0.25, 0.75])


def test_a_bag_is_never_overwritten(tmp_path):
    write_bag(tmp_path / 'bag', 3)
    with pytest.raises(BagError, match='exists'):
        BagWriter(tmp_path / 'bag')


WRITER = textwrap.dedent('''
    import sys, time
    import numpy as np
    from face_bag import messages
    from face_bag.store import BagWriter
    writer = BagWriter(sys.argv[1], flush_period_s=0.2)
    i = 0
    while True:
        stamp = time.time_ns()
        writer.write_message('/face/human/blendshapes', messages.BLENDSHAPES, stamp,
                             messages.blendshapes(np.full(61, 0.5), stamp, source='t',
                                                  frame_number=i))
        i += 1
        if i % 100 == 0:
            print(i, flush=True)
        time.sleep(0.002)
''')


def test_sigkill_mid_recording_leaves_a_bag_that_opens(tmp_path):
    path = tmp_path / 'killed'
    proc = subprocess.Popen([sys.executable, '-c', WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    written = 0
    while written < 600:
        written = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (path / 'metadata.yaml').exists()     # killed: never closed
    with pytest.raises(BagError, match='face-bag-recover'):
        list(read_messages(path))
    result = recover(path)
    assert result['recovered'] and result['truncated_tail'] in (True, False)
    frames = [m.decode().frame_number for m in read_messages(path)]
    # Everything up to the last flush (0.2 s at ~400 frames/s) survives, in order.
    assert len(frames) >= written - 200
    assert frames == list(range(len(frames)))
    assert (tmp_path / 'killed.crashed').is_dir()          # the original is kept
    assert recover(path)['recovered'] is False              # idempotent


FULL_DISK = textwrap.dedent('''
    import resource, signal, sys
    import numpy as np
    from face_bag import messages
    from face_bag.store import BagError, BagWriter
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    writer = BagWriter(sys.argv[1], flush_period_s=0.0)
    try:
        for i in range(100_000):
            writer.write_message('/face/human/blendshapes', messages.BLENDSHAPES, i * 1000,
                                 messages.blendshapes(np.full(61, 0.5), i, source='t',
                                                      frame_number=i))
    except BagError as exc:
        print('STOPPED', writer.messages, exc, flush=True)
        writer.close()
        sys.exit(0)
    sys.exit(1)
''')


def test_a_full_disk_stops_cleanly_and_keeps_the_data(tmp_path):
    """The file-size limit makes writes fail like a full disk (EFBIG instead of ENOSPC)."""
    path = tmp_path / 'full'
    out = subprocess.run([sys.executable, '-c', FULL_DISK, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'STOPPED' in out.stdout and 'recording stopped' in out.stdout
    assert f'free some space, then run face-bag-recover {path}' in out.stdout
    kept = int(out.stdout.split()[1])
    result = recover(path)
    assert result['messages'] > 0
    assert result['messages'] <= kept
    frames = [m.decode().frame_number for m in read_messages(path)]
    assert frames == list(range(len(frames)))


def unclosed_bag(path, count=20):
    """A bag whose recorder died: chunks on disk, no footer, no metadata.yaml."""
    writer = BagWriter(path, flush_period_s=0.0)
    for i in range(count):
        writer.write_message('/face/human/blendshapes', messages.BLENDSHAPES, i * 1000,
                             messages.blendshapes(np.full(61, 0.5), i, source='t',
                                                  frame_number=i))
    writer._writer.storage.bio.close()
    return next(path.glob('*.mcap'))


def first_chunk_offset(data: bytes) -> int:
    """Walk the MCAP records (opcode u8, length u64) from after the magic to the first chunk."""
    offset = 8
    while data[offset] != 0x06:
        offset += 9 + int.from_bytes(data[offset + 1:offset + 9], 'little')
    return offset


def corrupt_length_field(data: bytes) -> bytes:
    """The first chunk's records length set to 2**64 - 1 (main: OverflowError)."""
    chunk = first_chunk_offset(data)
    compression = int.from_bytes(data[chunk + 37:chunk + 41], 'little')
    at = chunk + 41 + compression
    return data[:at] + b'\xff' * 8 + data[at + 8:]


@pytest.mark.parametrize('corrupt', [
    pytest.param(lambda data: data[:13], id='torn-length-field'),          # main: struct.error
    pytest.param(corrupt_length_field, id='huge-chunk-length'),            # main: OverflowError
])
def test_corrupt_bags_are_recovered_without_a_crash(tmp_path, corrupt):
    mcap = unclosed_bag(tmp_path / 'bag')
    mcap.write_bytes(corrupt(mcap.read_bytes()))
    result = recover(tmp_path / 'bag')
    assert result['recovered'] and result['truncated_tail']
    assert len(list(read_messages(tmp_path / 'bag'))) == result['messages']


def test_recovery_keeps_every_chunk_before_the_corruption(tmp_path):
    mcap = unclosed_bag(tmp_path / 'bag')
    data = mcap.read_bytes()
    mcap.write_bytes(data[:len(data) * 2 // 3] + b'\x06' + b'\xff' * 8)
    result = recover(tmp_path / 'bag')
    frames = [m.decode().frame_number for m in read_messages(tmp_path / 'bag')]
    assert 5 < len(frames) < 20 and frames == list(range(len(frames)))
    assert result['messages'] == len(frames) and result['corrupt_messages'] == 0


RECOVER_ON_A_FULL_DISK = textwrap.dedent('''
    import resource, signal, sys
    from face_bag.cli import recover_main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    sys.exit(recover_main([sys.argv[1]]))
''')


def test_recovery_on_a_full_disk_says_free_space_and_rerun_and_changes_nothing(tmp_path):
    """main said 'writing bag.recovering failed ... recording stopped ... (face-bag-recover
    bag.recovering)': not recording, and the folder it named was a half-written copy."""
    path = tmp_path / 'bag'
    mcap = unclosed_bag(path, count=200)
    before = mcap.read_bytes()
    out = subprocess.run([sys.executable, '-c', RECOVER_ON_A_FULL_DISK, str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count('\n') == 1, out.stderr
    assert 'Traceback' not in out.stderr and 'recording' not in out.stderr
    assert f'free some space, then run face-bag-recover {path} again' in out.stderr
    assert 'bag is unchanged' in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']      # no half-written copy
    assert mcap.read_bytes() == before
    assert recover(path)['messages'] > 0                                # the advice works


def corrupt_closed_bags(tmp_path):
    """A closed bag and three corruptions of its .mcap: torn in half, a footer whose summary
    offset claims 2**64 - 1, and a message whose string length field claims 4 GiB."""
    writer = BagWriter(tmp_path / 'closed')
    for i in range(30):
        writer.write_message('/face/command', messages.CONTROL_VALUES, i * 33_000_000,
                             messages.control_values([0.5, 0.25], ['a', 'b'], i, robot='r',
                                                     source='corruptme'))
    writer.close()
    mcap = next((tmp_path / 'closed').glob('*.mcap'))
    data = mcap.read_bytes()
    at = data.index(b'corruptme') - 4
    return mcap, {'torn': data[:len(data) // 2],
                  'footer': data[:-28] + b'\xff' * 8 + data[-20:],
                  'message': data[:at] + b'\xff' * 4 + data[at + 4:]}


def test_corrupt_closed_bags_are_one_error_line_in_every_cli(tmp_path, capsys):
    from face_bag.cli import export_main, info_main, session_main
    mcap, corruptions = corrupt_closed_bags(tmp_path)
    bag = str(mcap.parent)
    for name, data in corruptions.items():
        mcap.write_bytes(data)
        for cli, argv in ((info_main, [bag]), (export_main, [bag, '--out', str(tmp_path / 'o')]),
                          (session_main, [bag, '--out', str(tmp_path / 's'), '--no-video'])):
            if cli is info_main and name == 'message':
                continue                                 # the index is intact: info works
            assert cli(argv) == 2, (name, cli.__name__)
            err = capsys.readouterr().err
            assert err.count('\n') == 1 and 'Traceback' not in err, (name, err)
    with pytest.raises(BagError, match='does not decode'):
        list(m.decode() for m in read_messages(bag))


def test_a_recovery_that_fails_for_another_reason_than_space_says_so(tmp_path, monkeypatch):
    """Before: every write failure of face-bag-recover read 'it needs about N MB free ...
    free some space', an input/output error included."""
    from face_bag import store
    path = tmp_path / 'bag'
    mcap = unclosed_bag(path, count=50)
    before = mcap.read_bytes()

    def broken_medium(*_):
        raise OSError(errno.EIO, 'Input/output error')
    monkeypatch.setattr(store.Writer, 'write', broken_medium)
    with pytest.raises(BagError) as caught:
        recover(path)
    message = str(caught.value)
    assert 'Input/output error' in message and 'free' not in message
    assert f'fix the cause, then run face-bag-recover {path} again' in message
    assert mcap.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ['bag']
