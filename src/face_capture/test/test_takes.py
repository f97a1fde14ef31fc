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
