"""Robot profile and calibration files the fuzzer (fuzz/, target robot_profiles and
calibration) found crashing the loaders on main: each is now one ProfileError."""
import pytest
import yaml

from face_actuation.profile import ProfileError, apply_calibration, load_profile, profiles_dir

NONE = '/nonexistent'


def hobbs_document():
    return yaml.safe_load((profiles_dir() / 'hobbs.yaml').read_text())


def edited(**fields):
    document = hobbs_document()
    document.update(fields)
    return yaml.safe_dump(document).encode()


def first_motor(**fields):
    document = hobbs_document()
    document['motors'][0].update(fields)
    return yaml.safe_dump(document).encode()


@pytest.mark.parametrize('content', [
    pytest.param(b'name: caf\xe9\n', id='not-utf8'),                      # UnicodeDecodeError
    pytest.param(b'[' * 50_000, id='nested-too-deep'),                   # RecursionError
    pytest.param(edited(pairs=0.5), id='pairs-a-number'),                # TypeError
    pytest.param(edited(pairs=[[{'a': 1}, 'x']]), id='pair-of-mappings'),  # unhashable dict
    pytest.param(edited(driver=['x']), id='driver-a-list'),             # ValueError in dict()
    pytest.param(edited(safety=[1]), id='safety-a-list'),                # AttributeError
    pytest.param(first_motor(max=10**400), id='integer-beyond-float'),   # np.isfinite TypeError
])
def test_bad_profile_files_are_one_profile_error(tmp_path, content):
    path = tmp_path / 'robot.yaml'
    path.write_bytes(content)
    with pytest.raises(ProfileError):
        load_profile(path, NONE)


@pytest.mark.parametrize('content', [
    pytest.param(b'motors: {jaw_open: {max: 1}}\n\xff', id='not-utf8'),
    pytest.param(b'just text\n', id='not-a-mapping'),                    # AttributeError
    pytest.param(b'motors: {jaw_open: [1, 2]}\n', id='override-a-list'),
    pytest.param(b'motors: {jaw_open: {1: 2, x: 3}}\n', id='mixed-key-types'),  # sorted() crash
    pytest.param(b'motors: {1: {}, x: {}}\n', id='mixed-motor-names'),
])
def test_bad_calibration_files_are_one_profile_error(tmp_path, content):
    path = tmp_path / 'hobbs.yaml'
    path.write_bytes(content)
    with pytest.raises(ProfileError):
        apply_calibration(load_profile('hobbs', NONE), path)


def test_an_empty_override_leaves_the_motor_as_it_is(tmp_path):
    path = tmp_path / 'hobbs.yaml'
    path.write_text('motors: {jaw_open: null}\n')
    profile = load_profile('hobbs', NONE)
    assert apply_calibration(profile, path).motors == profile.motors
