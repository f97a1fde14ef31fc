"""The oracle bound: on a short real take it is at most every model's distance and holding
neutral's, its commands are what the robot can execute within its limits, the optimisation
gains over where it started, and it is deterministic."""
import json

import numpy as np
import pytest

from face_actuation.profile import load_profile, with_physics
from face_actuation.safety import SafetyLayer, measure_motion
from face_actuation.twin import FaceTwin
from face_capture.bundled import bundled_take_path
from face_capture.takes import read_take
from face_common.metrics import blendshape_distance
from face_retarget.baselines import fit_linear_on_twin
from face_retarget.cli import eval_main
from face_retarget.evaluate import shown_face
from face_retarget.oracle import OracleConfig, _Objective, executable, oracle
from face_retarget.recipe import split_take

RATE, DELAY = 30.0, 2


def _human(frames=150, start_s=100.0):
    return split_take(read_take(bundled_take_path()), start_s)[1][:frames]


def _run(robot: str, human, steps: int = 25, physics: str = 'shipped'):
    profile = with_physics(load_profile(robot), physics)
    starts = {'neutral': np.repeat(profile.neutral[None, :], len(human), axis=0),
              'linear': fit_linear_on_twin(FaceTwin(profile, seed=1)).predict(human)}

    def score(commands):
        return blendshape_distance(human, shown_face(profile, commands, RATE), DELAY)
    return profile, starts, score, oracle(profile, human, DELAY, RATE, starts, score,
                                          OracleConfig(steps=steps, score_every=5),
                                          progress=False)


@pytest.mark.parametrize('robot,physics', [('micheal', 'shipped'), ('hobbs', 'shipped'),
                                            ('ameca', 'shipped'), ('micheal', 'simple')])
def test_oracle_beats_its_start_within_the_limits(robot, physics):
    human = _human()
    profile, starts, score, found = _run(robot, human, physics=physics)
    started = min(score(c) for c in starts.values())
    assert found.distance < 0.98 * started            # the optimisation gains
    assert found.distance == pytest.approx(score(found.commands), rel=1e-12)
    assert found.commands.min() >= 0.0 and found.commands.max() <= 1.0
    executed = executable(profile, found.commands, RATE)
    safety = SafetyLayer(profile)
    velocity, acceleration = measure_motion(
        np.vstack([profile.neutral, executed]), np.full(len(executed), 1.0 / RATE),
        np.zeros(len(executed), bool), safety.max_tick_s)
    assert np.all(np.abs(velocity) <= profile.array('max_velocity') * (1 + 1e-9) + 1e-9)
    assert np.all(np.abs(acceleration) <= profile.array('max_acceleration') * (1 + 1e-9) + 1e-6)


def test_oracle_is_deterministic():
    human = _human(90)
    first = _run('hobbs', human, steps=10)[3]
    second = _run('hobbs', human, steps=10)[3]
    assert np.array_equal(first.commands, second.commands)
    assert first.history == second.history


@pytest.mark.parametrize('robot,physics', [('ameca', 'simple'), ('micheal', 'shipped'),
                                            ('hobbs', 'shipped'), ('ameca', 'shipped')])
def test_objective_gradient_matches_its_value(robot, physics):
    """The gradient (exact through the dynamics: first- and second-order actuators, backlash,
    skin lag, skin friction, tracker latency; central differences through the forward model)
    predicts the objective's change along a random direction."""
    profile = with_physics(load_profile(robot), physics)
    human = _human(60)
    objective = _Objective(profile, human, DELAY, RATE, 0.1, 1e-4)
    rng = np.random.default_rng(0)
    commands = np.clip(profile.neutral + 0.2 * rng.uniform(-1, 1, (60, profile.num_motors)),
                       0.05, 0.95)
    _, grad = objective(commands)
    direction = rng.normal(size=commands.shape) * 1e-4
    plus, _ = objective(commands + direction)
    minus, _ = objective(commands - direction)
    assert (plus - minus) / 2 == pytest.approx(float(np.sum(grad * direction)), rel=0.05)


def test_eval_writes_neutral_and_oracle_rows(tmp_path):
    take = tmp_path / 'short.csv'
    lines = bundled_take_path().read_text().splitlines()
    take.write_text('\n'.join(lines[:1 + 30 + 150]) + '\n')   # neutral second + 5 s
    out = tmp_path / 'eval'
    assert eval_main(['--robot', 'hobbs', '--take', str(take), '--start-s', '0', '--out',
                      str(out), '--models', 'neutral,linear,mlp', '--oracle-steps', '10',
                      '--no-progress']) == 0
    rows = {r['model']: r for r in json.loads((out / 'results.json').read_text())}
    assert set(rows) == {'neutral', 'linear', 'mlp', 'oracle'}
    oracle_distance = rows['oracle']['blendshape_distance']
    for name in ('neutral', 'linear', 'mlp'):
        assert rows[name]['blendshape_distance'] >= oracle_distance
        assert rows[name]['excess'] == pytest.approx(
            rows[name]['blendshape_distance'] - oracle_distance)
    assert rows['neutral']['jitter'] == 0.0
    assert '| oracle | - |' in (out / 'results.md').read_text()
    assert (out / 'oracle.png').stat().st_size > 10_000


def test_eval_family_reports_each_variant_and_the_spread(tmp_path):
    take = tmp_path / 'short.csv'
    lines = bundled_take_path().read_text().splitlines()
    take.write_text('\n'.join(lines[:1 + 30 + 60]) + '\n')
    out = tmp_path / 'family'
    assert eval_main(['--robot', 'ameca', '--take', str(take), '--start-s', '0', '--out',
                      str(out), '--models', 'neutral,linear', '--oracle-steps', '3',
                      '--family', '2', '--no-progress']) == 0
    report = json.loads((out / 'family.json').read_text())
    assert [v['variant'] for v in report['variants']] == ['variant 0', 'variant 1']
    assert report['variants'][0]['physics'] != report['variants'][1]['physics']
    for variant in report['variants']:
        rows = {r['model']: r for r in variant['rows']}
        for name in ('neutral', 'linear'):
            assert rows[name]['blendshape_distance'] >= rows['oracle']['blendshape_distance']
    linear = report['summary']['linear']['blendshape_distance']
    assert linear['mean'] == pytest.approx(np.mean(linear['values']))
    assert linear['spread'] == pytest.approx(np.std(linear['values']))
    assert linear['values'][0] != linear['values'][1]
    assert (out / 'variant-1' / 'results.json').is_file()
    assert '| linear |' in (out / 'family.md').read_text()
