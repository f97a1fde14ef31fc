"""Robot profiles: the bundled heads, validation errors that name the field, calibration
overrides that survive restarts, and the face-calibrate CLI."""
import copy

import numpy as np
import pytest
import yaml

from face_actuation.calibrate import main as calibrate
from face_actuation.emulators import MaestroEmulator
from face_actuation.profile import (
    ProfileError,
    load_profile,
    parse_profile,
    profiles_dir,
    save_calibration,
)

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
