"""Live Link Face CSV takes: the bundled real take and the export's quirks."""
import numpy as np
import pytest

from face_capture.bundled import bundled_take_path
from face_capture.takes import TakeFormatError, parse_timecode, read_take
from face_common.arkit import CHANNEL_NAMES, channel_index


def test_bundled_real_take():
    take = read_take(bundled_take_path())
    assert len(take) == 4030 and take.skipped_rows == 0
    assert 130 < take.duration < 140
    assert 29 < take.mean_rate < 31
    assert np.all(np.diff(take.times) >= 0)
    assert take.values.shape == (4030, 61)
    assert take.values[:, channel_index('JawOpen')].max() > 0.9
    assert take.values[:, channel_index('EyeBlinkLeft')].max() > 0.9
    assert np.all(take.values[:, channel_index('HeadYaw')] == 0)


def test_timecode_counts_frames_at_60fps():
    assert parse_timecode('00:00:01:30.000') == pytest.approx(1.5)
    assert parse_timecode('13:13:04:31.652') - parse_timecode('13:13:04:29.652') == \
        pytest.approx(2 / 60)
    with pytest.raises(ValueError):
        parse_timecode('12:00:01')


def write_csv(path, header, rows):
    path.write_text('\n'.join([','.join(header)] + [','.join(map(str, r)) for r in rows]) + '\n')


def test_columns_map_by_name_case_insensitively(tmp_path):
    names = list(CHANNEL_NAMES)
    order = names[::-1]                                    # any column order at all
    header = ['timecode', 'BlendshapeCount'] + [n.lower() for n in order]
    rows = [[f'00:00:00:{2 * i:02d}.000', 61] + [order.index(n) / 100 + i for n in order]
            for i in range(3)]
    # expected: value of channel n = order.index(n)/100 + i
    write_csv(tmp_path / 't.csv', header, rows)
    take = read_take(tmp_path / 't.csv')
    assert len(take) == 3
    for name in ('JawLeft', 'JawRight', 'MouthLeft', 'MouthRight', 'RightEyeRoll'):
        assert take.values[1, channel_index(name)] == pytest.approx(order.index(name) / 100 + 1)


def test_short_and_bad_rows_are_skipped_and_counted(tmp_path):
    header = ['Timecode', 'BlendShapeCount', *list(CHANNEL_NAMES)]
    good = ['00:00:00:00.000', 61] + [0.5] * 61
    rows = [good,
            good[:10],                                     # truncated
            ['00:00:00:02.000', 61] + ['x'] * 61,          # not numbers
            ['00:00:00:04.000', 61] + ['nan'] * 61,        # non-finite
            ['bad-timecode', 61] + [0.1] * 61,
            ['00:00:00:06.000', 61] + [0.25] * 61]
    write_csv(tmp_path / 't.csv', header, rows)
    take = read_take(tmp_path / 't.csv')
    assert len(take) == 2 and take.skipped_rows == 4
    assert take.times[-1] == pytest.approx(0.1)


def test_files_that_are_not_takes_raise(tmp_path):
    (tmp_path / 'empty.csv').write_text('')
    with pytest.raises(TakeFormatError):
        read_take(tmp_path / 'empty.csv')
    write_csv(tmp_path / 'other.csv', ['a', 'b'], [[1, 2]])
    with pytest.raises(TakeFormatError):
        read_take(tmp_path / 'other.csv')
    header = ['Timecode', 'BlendShapeCount', *list(CHANNEL_NAMES)]
    write_csv(tmp_path / 'rowless.csv', header, [['00:00:00:00.000', 61]])
    with pytest.raises(TakeFormatError):
        read_take(tmp_path / 'rowless.csv')


def take_header():
    return ['Timecode', 'BlendShapeCount', *list(CHANNEL_NAMES)]


def test_a_file_that_is_not_utf8_is_a_take_format_error(tmp_path):
    write_csv(tmp_path / 't.csv', take_header(), [['00:00:00:00.000', 61] + [0.5] * 61])
    (tmp_path / 'latin1.csv').write_bytes((tmp_path / 't.csv').read_bytes() + b'caf\xe9\n')
    with pytest.raises(TakeFormatError, match='not UTF-8'):
        read_take(tmp_path / 'latin1.csv')


def test_a_field_over_the_csv_limit_is_a_take_format_error(tmp_path):
    row = ['00:00:00:00.000', 61, 'x' * (128 * 1024 + 1)] + [0.5] * 60
    write_csv(tmp_path / 'huge.csv', take_header(), [row])
    with pytest.raises(TakeFormatError, match='line 2: field larger than field limit'):
        read_take(tmp_path / 'huge.csv')


@pytest.mark.parametrize('timecode', ['10000:00:00:00.000', '24:00:00:00.000',
                                      '00:60:00:00.000', '00:00:60:00.000', '00:00:00:60.000',
                                      '-1:00:00:00.000', '00:00:00:nan'])
def test_out_of_range_timecodes_are_skipped_rows(tmp_path, timecode):
    rows = [['00:00:00:00.000', 61] + [0.5] * 61, [timecode, 61] + [0.5] * 61]
    write_csv(tmp_path / 't.csv', take_header(), rows)
    take = read_take(tmp_path / 't.csv')
    assert len(take) == 1 and take.skipped_rows == 1


def test_send_take_refuses_bad_files_with_one_line_and_sends_big_timecodes(tmp_path, capsys):
    from face_capture.send_take import main
    (tmp_path / 'bad.csv').write_bytes(b'\xff\xfe\x00garbage')
    assert main([str(tmp_path / 'bad.csv'), '--frames', '1']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'send_take: cannot read' in err and 'Traceback' not in err
    # hours=10000 overflowed the packet's int32 frame number (struct.error): now a bad row
    write_csv(tmp_path / 'far.csv', take_header(), [['10000:00:00:00.000', 61] + [0.5] * 61])
    assert main([str(tmp_path / 'far.csv'), '--frames', '1', '--port', '9']) == 2
    assert 'holds no complete frame' in capsys.readouterr().err
    # the largest timecode a take can hold still packs into the int32 frame number
    rows = [['23:59:59:59.999', 61] + [0.5] * 61]
    write_csv(tmp_path / 'late.csv', take_header(), rows)
    assert main([str(tmp_path / 'late.csv'), '--frames', '1', '--port', '9']) == 0
