"""Robot profiles: the bundled heads, validation errors that name the field, calibration
overrides that survive restarts, and the face-calibrate CLI."""
import copy

import numpy as np
import pytest
import yaml

from face_actuation.calibrate import main as calibrate
from face_actuation.drivers import DriverError, make_driver
from face_actuation.emulators import MaestroEmulator
from face_actuation.profile import (
    ProfileError,
    check_robot_name,
    load_profile,
    parse_profile,
    profiles_dir,
    save_calibration,
)
from face_actuation.twin import FaceTwin

NONE = '/nonexistent'


@pytest.mark.parametrize('robot,count,unit,kind', [('micheal', 33, 'us', 'cable'),
                                                   ('hobbs', 32, 'ticks', 'linkage'),
                                                   ('ameca', 32, 'control', 'servo_rig')])
def test_bundled_profiles(robot, count, unit, kind):
    profile = load_profile(robot, NONE)
    assert profile.num_motors == count and profile.kind == kind
    assert {m.unit for m in profile.motors} == {unit}
    assert len(set(profile.motor_names)) == count
    assert ((profile.neutral >= 0) & (profile.neutral <= 1)).all()
    assert profile.pairs and profile.safety.hold_rules
    np.testing.assert_allclose(profile.from_native(profile.to_native(profile.neutral)),
                               profile.neutral)


def test_ameca_has_the_x2c_controls_with_their_native_ranges():
    ameca = load_profile('ameca', NONE)
    motors = {m.name: m for m in ameca.motors}
    assert (motors['Gaze Target Phi'].min, motors['Gaze Target Phi'].max) == (-130, 130)
    assert (motors['Head Pitch'].min, motors['Head Pitch'].max) == (-30, 20)
    assert (motors['Eyelid Upper L'].min, motors['Eyelid Upper L'].max) == (-1, 2)
    assert motors['Jaw Pitch'].neutral == 1 and motors['Eyelid Upper L'].neutral == 1


def raw(robot='micheal'):
    return yaml.safe_load((profiles_dir() / f'{robot}.yaml').read_text())


@pytest.mark.parametrize('mutate,message', [
    (lambda d: d.pop('kind'), 'missing field "kind"'),
    (lambda d: d['motors'][0].update(unit='volts'), 'brow_inner_l).unit'),
    (lambda d: d['motors'][1].update(min=3000), 'must be below max'),
    (lambda d: d['motors'][2].update(neutral=99999), 'neutral'),
    (lambda d: d['motors'][3].update(max_velocity=0), 'must be positive'),
    (lambda d: d['motors'][4].update(colour='red'), 'unknown field'),
    (lambda d: d['motors'][5].update(min='low'), 'expected a finite number'),
    (lambda d: d['safety']['hold_rules'][0].update(motor='tail'), 'no motor named'),
    (lambda d: d['safety'].update(estop_mode='explode'), 'estop_mode'),
    (lambda d: d['pairs'].append(['smile_l', 'nope']), 'pairs[12]'),
    (lambda d: d['motors'].append(copy.deepcopy(d['motors'][0])), 'duplicate names'),
    (lambda d: d['driver'].update(type='telepathy'), 'driver.type'),
])
def test_invalid_profiles_name_the_field(mutate, message):
    data = raw()
    mutate(data)
    with pytest.raises(ProfileError, match=message.replace('(', r'\(').replace(')', r'\)')
                       .replace('[', r'\[').replace(']', r'\]')):
        parse_profile(data, 'micheal.yaml')


def test_calibration_overrides_survive_a_restart(tmp_path):
    base = load_profile('micheal', NONE)
    save_calibration(base, {'jaw_open': {'neutral': 1200, 'max': 1900}}, tmp_path)
    again = load_profile('micheal', tmp_path)                      # a new process would do this
    jaw = again.motors[again.index('jaw_open')]
    assert again.calibrated and (jaw.neutral, jaw.max) == (1200, 1900)
    assert again.digest() != base.digest()
    with pytest.raises(ProfileError, match='jaw_open'):
        save_calibration(base, {'jaw_open': {'neutral': 5000}}, tmp_path)
    assert load_profile('micheal', tmp_path).motors[again.index('jaw_open')].neutral == 1200
    with pytest.raises(ProfileError, match='unknown motor'):
        save_calibration(base, {'tail': {'neutral': 1}}, tmp_path)


def test_calibrate_cli_set_show_capture_reset(tmp_path, capsys):
    args = ['micheal', '--calibration-dir', str(tmp_path)]
    assert calibrate([*args, 'set', 'smile_l', '--max', '1950']) == 0
    assert calibrate([*args, 'show']) == 0
    assert '* smile_l' in capsys.readouterr().out
    assert calibrate([*args, 'set', 'smile_l', '--min', '5000']) == 2         # refused

    device = MaestroEmulator((12, 13))
    try:
        profile = load_profile('micheal', NONE)
        for motor in profile.motors:                    # the face as posed by hand
            key = (12 if motor.channel < 24 else 13, motor.channel % 24)
            device.targets[key] = device.positions[key] = 6000
        assert calibrate([*args, 'capture-neutral', '--driver', 'maestro', '--port',
                          device.path]) == 0
    finally:
        device.close()
    calibrated = load_profile('micheal', tmp_path)
    assert all(m.neutral == 1500 for m in calibrated.motors)
    assert calibrated.motors[calibrated.index('smile_l')].max == 1950
    assert calibrate([*args, 'reset']) == 0
    assert not load_profile('micheal', tmp_path).calibrated


def test_calibration_may_only_narrow_the_profile_limits(tmp_path, capsys):
    """Before: `face-calibrate micheal set jaw_open --max 4200` (and --min -50) was saved, and
    the Maestro driver then failed on a target beyond 14 bits."""
    args = ['micheal', '--calibration-dir', str(tmp_path)]
    assert calibrate([*args, 'set', 'jaw_open', '--max', '4200']) == 2
    assert 'max 4200 is outside the hard limit max 2150 us' in capsys.readouterr().err
    assert calibrate([*args, 'set', 'jaw_open', '--min', '-50']) == 2
    error = capsys.readouterr().err
    assert 'min -50 is outside the hard limit min 1000 us' in error and '\n' == error[-1]
    assert error.count('\n') == 1                                       # one line
    assert not (tmp_path / 'micheal.yaml').exists()
    assert calibrate([*args, 'set', 'jaw_open', '--min', '1050', '--max', '2100']) == 0
    jaw = load_profile('micheal', tmp_path).motors[load_profile('micheal', NONE)
                                                   .index('jaw_open')]
    assert (jaw.min, jaw.max) == (1050, 2100)
    # a file written by hand (or by an older version) is refused on load, naming the limit
    (tmp_path / 'micheal.yaml').write_text(yaml.safe_dump(
        {'robot': 'micheal', 'motors': {'smile_l': {'max': 9999}}}))
    with pytest.raises(ProfileError, match='smile_l: max 9999 is outside the hard limit max'):
        load_profile('micheal', tmp_path)


def test_robot_names_cannot_leave_their_folder(tmp_path, capsys):
    """Before: a profile named `../../escaped` made face-calibrate write outside its folder."""
    data = raw()
    data['name'] = '../../escaped'
    profile_path = tmp_path / 'profiles' / 'escaped.yaml'
    profile_path.parent.mkdir()
    profile_path.write_text(yaml.safe_dump(data))
    calibration_dir = tmp_path / 'a' / 'b' / 'robots'
    assert calibrate([str(profile_path), '--calibration-dir', str(calibration_dir), 'set',
                      'jaw_open', '--max', '2000']) == 2
    assert "'../../escaped' is not a valid robot name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob('*') if p.is_file()) == ['escaped.yaml']
    for name in ('../../escaped', 'alice\n', 'a/b', '.hidden', '', 'x' * 65):
        with pytest.raises(ProfileError, match='not a valid robot name'):
            load_profile(name, NONE)
    assert check_robot_name('micheal_2-b') == 'micheal_2-b'


def _paths(value, path=()):
    """Every key path in a nested YAML structure."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):            # the first few of each list
            yield from _paths(item, (*path, index))


WRONG_VALUES = (None, 7, -1, 'text', [], [1, 'a'], {}, {'k': 'v'}, True, 1.5, float('nan'),
                10 ** 400)


@pytest.mark.parametrize('robot', ['micheal', 'hobbs', 'ameca'])
def test_any_wrong_value_anywhere_in_a_profile_is_one_profile_error(robot, tmp_path):
    """Before: a wrong type in several fields (safety not a mapping, driver a list, a pair of
    lists, a hold rule as a string, twin numbers as text...) raised TypeError,
    AttributeError or ValueError tracebacks."""
    base = raw(robot)
    checked = 0
    for path in _paths(base):
        if not path:
            continue
        for wrong in WRONG_VALUES:
            data = copy.deepcopy(base)
            holder = data
            for key in path[:-1]:
                holder = holder[key]
            holder[path[-1]] = wrong
            try:
                profile = parse_profile(data, f'{robot}.yaml')
                FaceTwin(profile)
                if profile.driver.type != 'ameca_zmq':    # ameca.py's options: issue 15, h5
                    make_driver(profile)
            except (ProfileError, DriverError) as exc:
                assert '\n' not in str(exc)
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize('text', ['[1, 2]', 'motors: [1]', 'motors: {jaw_open: 5}',
                                  'motors: {jaw_open: {max: high}}', 'robot: x\nwheels: 4',
                                  'motors: {jaw_open: {max: .nan}}', '{{{', '\udcff',
                                  'motors: {7: {max: 1}}'])
def test_a_bad_calibration_file_is_one_profile_error(text, tmp_path, capsys):
    path = tmp_path / 'micheal.yaml'
    path.write_bytes(text.encode('utf-8', 'surrogateescape'))
    with pytest.raises(ProfileError) as caught:
        load_profile('micheal', tmp_path)
    assert '\n' not in str(caught.value)
    assert calibrate(['micheal', '--calibration-dir', str(tmp_path), 'show']) == 2
    assert capsys.readouterr().err.count('\n') == 1


@pytest.mark.parametrize('robot,section,typo,field', [
    ('micheal', 'twin', 'hysterisis', 'twin'),
    ('hobbs', 'driver', 'baudrte', 'driver'),
    ('ameca', 'driver', 'parts', 'driver'),                   # the old alias of x2c_controls
    ('hobbs', 'safety', 'watchdog_timeout', 'safety'),
])
def test_a_misspelt_option_fails_loudly_naming_file_and_field(robot, section, typo, field,
                                                              tmp_path):
    """Before: twin.hysterisis and driver.baudrte loaded silently (the defaults ran)."""
    data = raw(robot)
    data[section][typo] = 1
    path = tmp_path / f'{robot}.yaml'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError) as caught:
        load_profile(path, NONE)
    assert f'{robot}.yaml.{field}: unknown field(s) [\'{typo}\']' in str(caught.value)


def test_a_misspelt_hold_rule_or_twin_channel_fails_at_load():
    data = raw('hobbs')
    data['safety']['hold_rules'][0]['max_hold'] = 5
    with pytest.raises(ProfileError, match=r'hold_rules\[0\]: unknown field'):
        parse_profile(data, 'hobbs.yaml')
    data = raw('hobbs')
    data['twin']['rest'] = {'JawOpn': 0.1}
    with pytest.raises(ProfileError, match=r"hobbs.yaml.twin.rest: 'JawOpn' is not an ARKit"):
        parse_profile(data, 'hobbs.yaml')


def test_sections_are_typed_and_overrides_are_checked_like_the_profile():
    hobbs = load_profile('hobbs', NONE)
    assert (hobbs.driver.type, hobbs.driver.baudrate) == ('dynamixel', 1_000_000)
    assert hobbs.twin.linkage_angle == 1.25 and hobbs.twin.hysteresis == 0.0
    with pytest.raises(ProfileError, match=r'hobbs: driver.baudrate: expected an integer'):
        make_driver(hobbs, {'baudrate': 'fast'})
    with pytest.raises(ProfileError, match=r'hobbs: driver: unknown field\(s\) \[\'baud\'\]'):
        make_driver(hobbs, {'baud': 9600})
    sim = make_driver(hobbs, {'type': 'sim'})             # another driver: from its defaults
    assert sim.name == 'sim' and sim.config.seed is None
