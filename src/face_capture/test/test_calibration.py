"""Neutral calibration: the maths, the capture and the on-disk profiles."""
import json

import numpy as np
import pytest

from face_capture.calibration import (
    CalibrationError,
    NeutralCapture,
    NeutralProfile,
    ProfileStore,
    check_name,
)
from face_common.arkit import NUM_BLENDSHAPES, NUM_CHANNELS, channel_index


def profile_with(neutral_value=0.2, rotation=0.1):
    neutral = np.full(NUM_CHANNELS, neutral_value, np.float32)
    neutral[NUM_BLENDSHAPES:] = rotation
    return NeutralProfile('alex', neutral, 60, '2026-01-01T00:00:00+00:00')


def test_apply_removes_neutral_and_keeps_full_range():
    profile = profile_with(0.2, 0.1)
    raw = np.full(NUM_CHANNELS, 0.2, np.float32)
    out = profile.apply(raw)
    np.testing.assert_allclose(out[:NUM_BLENDSHAPES], 0.0, atol=1e-7)   # rest reads 0
    raw[:NUM_BLENDSHAPES] = 1.0
    np.testing.assert_allclose(profile.apply(raw)[:NUM_BLENDSHAPES], 1.0)  # extreme reads 1
    raw[:NUM_BLENDSHAPES] = 0.6
    np.testing.assert_allclose(profile.apply(raw)[:NUM_BLENDSHAPES], 0.5, rtol=1e-6)
    raw[:NUM_BLENDSHAPES] = 0.0                                            # below neutral
    np.testing.assert_allclose(profile.apply(raw)[:NUM_BLENDSHAPES], 0.0)


def test_rotations_are_offset_not_clipped():
    profile = profile_with(0.0, 0.1)
    raw = np.zeros(NUM_CHANNELS, np.float32)
    raw[channel_index('HeadYaw')] = -0.5
    assert profile.apply(raw)[channel_index('HeadYaw')] == pytest.approx(-0.6)


def test_apply_batches_and_saturated_neutral():
    profile = profile_with(1.0, 0.0)
    batch = np.random.default_rng(0).random((5, NUM_CHANNELS), dtype=np.float32)
    out = profile.apply(batch)
    assert out.shape == (5, NUM_CHANNELS) and np.isfinite(out).all()


def test_capture_takes_the_median_of_tracked_frames():
    capture = NeutralCapture('alex', 5)
    for value in (0.1, 0.1, 0.9, 0.1, 0.1, 0.5):         # one blink; the 6th is ignored
        capture.add(np.full(NUM_CHANNELS, value, np.float32))
    assert capture.done and capture.collected == 5
    np.testing.assert_allclose(capture.profile().neutral, 0.1)
    with pytest.raises(CalibrationError):
        capture.add(np.full(10, 0.1))
    with pytest.raises(CalibrationError):
        NeutralCapture('../etc/passwd', 5)


def test_store_round_trip_and_active_profile(tmp_path):
    store = ProfileStore(tmp_path / 'profiles')
    assert store.load_active() is None and store.names() == []
    profile = profile_with()
    path = store.save(profile)
    assert path.is_file()
    store.set_active('alex')
    again = ProfileStore(tmp_path / 'profiles')              # a restart
    loaded = again.load_active()
    assert loaded.name == 'alex' and loaded.frames == 60
    np.testing.assert_array_equal(loaded.neutral, profile.neutral)
    again.set_active('')
    assert ProfileStore(tmp_path / 'profiles').load_active() is None
    with pytest.raises(CalibrationError):
        again.set_active('nobody')


def test_corrupt_profile_file_is_a_clear_error(tmp_path):
    store = ProfileStore(tmp_path)
    (tmp_path / 'broken.json').write_text('{"name": "broken", "neutral": {}')
    with pytest.raises(CalibrationError):
        store.load('broken')
    (tmp_path / 'partial.json').write_text('{"name": "partial", "frames": 1, "created": "x", '
                                           '"neutral": {"EyeBlinkLeft": 0.1}}')
    with pytest.raises(CalibrationError, match='bad field'):
        store.load('partial')


@pytest.mark.parametrize('name', ['../x', 'a/b', 'alice\n', '', '.', '..', '.hidden', '/abs',
                                  'a' * 65, 'al ice', 'alice\x00', None, 5])
def test_unsafe_profile_names_are_refused_and_nothing_is_written(tmp_path, name):
    store = ProfileStore(tmp_path / 'profiles')
    with pytest.raises(CalibrationError, match='profile name'):
        check_name(name)
    profile = profile_with()
    profile.name = name
    with pytest.raises(CalibrationError):
        store.save(profile)
    with pytest.raises(CalibrationError):
        store.set_active(name or 'x/')
    written = [p for p in tmp_path.rglob('*') if p.is_file()]
    assert written == []


def test_safe_names_pass_unchanged():
    for name in ('alice', 'Alex_2', 'bob.smith-3', 'a' * 64):
        assert check_name(name) == name


def test_an_active_profile_file_naming_a_path_is_a_clear_error(tmp_path):
    (tmp_path / 'active_profile').write_text('../../etc/passwd\n')
    with pytest.raises(CalibrationError, match='profile name'):
        ProfileStore(tmp_path).load_active()
    (tmp_path / 'active_profile').write_bytes(b'\xff\xfe')
    with pytest.raises(CalibrationError, match='active profile name'):
        ProfileStore(tmp_path).load_active()


def test_a_profile_file_that_is_not_utf8_or_too_deep_is_a_clear_error(tmp_path):
    (tmp_path / 'latin.json').write_bytes(b'{"name": "caf\xe9"}')
    (tmp_path / 'deep.json').write_text('[' * 100_000)
    for name in ('latin', 'deep'):
        with pytest.raises(CalibrationError, match='cannot read'):
            ProfileStore(tmp_path).load(name)


def test_offline_neutral_from_a_take_is_saved_active_and_matches_the_take_calibration(tmp_path):
    from face_capture.bundled import bundled_take_path
    from face_capture.capture_neutral import main
    from face_capture.takes import read_take
    from face_retarget.recipe import calibrated_take
    assert main(['--take', '--profile', 'alex', '--dir', str(tmp_path)]) == 0
    store = ProfileStore(tmp_path)
    assert store.active_name() == 'alex'
    profile = store.load_active()
    assert profile.frames == 30
    take = read_take(bundled_take_path())
    # The same neutral the offline evaluation calibrates the take with.
    np.testing.assert_allclose(profile.apply(take.values), calibrated_take(take), atol=1e-6)


def test_offline_neutral_from_a_missing_take_is_a_clear_error(tmp_path, capsys):
    from face_capture.capture_neutral import main
    assert main(['--take', str(tmp_path / 'nope.csv'), '--dir', str(tmp_path)]) == 2
    assert 'nope.csv' in capsys.readouterr().err


def test_profile_files_with_out_of_range_numbers_are_a_clear_error(tmp_path):
    """Found by the fuzzer: an infinite frame count raised OverflowError, a neutral of 1e308
    overflowed float32 on the way in."""
    good = profile_with().to_json()
    for name, field, value in (('frames', 'frames', float('inf')),
                               ('huge', 'neutral', {**good['neutral'], 'JawOpen': 1e308})):
        (tmp_path / f'{name}.json').write_text(json.dumps({**good, field: value}))
        with pytest.raises(CalibrationError):
            ProfileStore(tmp_path).load(name)
