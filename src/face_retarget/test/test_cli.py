"""face-retarget-train (the training pipeline's quick preset) and face-retarget-eval end to end
on a tiny config, and the help text of every option of the CLIs built from dataclasses."""
import json
import math
from pathlib import Path

import pytest

from face_actuation.family import family_variant
from face_actuation.profile import load_profile, with_physics
from face_common.cli_options import from_options
from face_retarget.bootstrap import BootstrapConfig
from face_retarget.cli import (
    bootstrap_main,
    bootstrap_parser,
    eval_main,
    eval_parser,
    train_main,
    train_parser,
    twin_target,
)
from face_retarget.training import default_checkpoint_dir

TINY = ['--window', '16', '--d-model', '32', '--layers', '1', '--heads', '2',
        '--static-poses', '60', '--static-frames', '1600', '--static-steps', '40',
        '--first-iteration-frames', '400', '--episode-frames', '200', '--finetune-steps', '20',
        '--baseline-steps', '40', '--probe-frames', '200', '--held-out-frames', '300',
        '--no-progress']


def test_train_writes_to_out_by_default_then_eval_writes_the_report(tmp_path, monkeypatch):
    shipped = {p: p.stat().st_mtime_ns for p in default_checkpoint_dir().glob('*/*')}
    monkeypatch.chdir(tmp_path)
    assert train_main(['--robot', 'ameca', *TINY]) == 0
    robot_dir = tmp_path / 'out' / 'train' / 'ameca'
    for name in ('exface.pt', 'mlp.pt', 'transformer.pt', 'linear.npz', 'dataset.json',
                 'training_curves.png', 'report.md', 'state.json'):
        assert (robot_dir / name).is_file(), name
    report = json.loads((robot_dir / 'report.json').read_text())
    assert len(report['iterations']) == 1 and 'interpolation' not in report['iterations'][0]
    assert {p: p.stat().st_mtime_ns for p in default_checkpoint_dir().glob('*/*')} == shipped
    # A rerun resumes: every stage is read back, the checkpoints come out the same.
    weights = (robot_dir / 'exface.pt').read_bytes()
    bags = {p: p.stat().st_mtime_ns for p in robot_dir.glob('bags/*/*/metadata.yaml')}
    assert train_main(['--robot', 'ameca', *TINY]) == 0
    assert {p: p.stat().st_mtime_ns for p in bags} == bags
    assert (robot_dir / 'exface.pt').read_bytes() == weights
    out = tmp_path / 'report'
    assert eval_main(['--robot', 'ameca', '--out', str(out), '--checkpoints',
                      str(tmp_path / 'out' / 'train'), '--start-s', '124', '--oracle-steps',
                      '5', '--no-progress']) == 0
    results = json.loads((out / 'results.json').read_text())
    assert [r['model'] for r in results] == ['random', 'neutral', 'linear', 'mlp', 'transformer',
                                             'exface', 'oracle']
    for entry in results[:-1]:
        for key in ('motor_distance', 'blendshape_distance', 'jitter', 'latency_ms_p99',
                    'excess'):
            assert math.isfinite(entry[key]) and entry[key] >= 0
    random_row = results[0]
    assert all(r['jitter'] < random_row['jitter'] for r in results[1:])
    assert '| exface |' in (out / 'results.md').read_text()
    assert (out / 'results.png').stat().st_size > 10_000


def test_only_an_explicit_ship_flag_targets_the_shipped_checkpoints():
    assert train_parser().parse_args(['--robot', 'hobbs']).ship is None
    assert train_parser().parse_args(['--robot', 'hobbs']).out == Path('out/train')
    assert train_parser().parse_args(['--robot', 'hobbs', '--ship']).ship == ''
    assert bootstrap_parser().parse_args(['--robot', 'hobbs']).out == Path('out/bootstrap')
    # The quick preset and the paper's loop are the same options with other defaults.
    quick, paper = (p.parse_args(['--robot', 'hobbs']) for p in (train_parser(),
                                                                   bootstrap_parser()))
    assert (quick.max_iterations, paper.max_iterations) == (1, 3)
    assert vars(quick).keys() == vars(paper).keys()


@pytest.mark.parametrize('parser', [train_parser, bootstrap_parser, eval_parser])
def test_every_option_has_help_text(parser, capsys):
    built = parser()
    for action in built._actions:
        assert action.help and action.help.strip(), action.option_strings
    with pytest.raises(SystemExit):
        built.parse_args(['--help'])
    shown = ' '.join(capsys.readouterr().out.split())
    expected = ('--checkpoints CHECKPOINTS folder of checkpoint sets' if parser is eval_parser
                else '--static-poses STATIC_POSES static stage: random safe poses')
    assert expected in shown


def test_eval_without_models_is_a_clear_error(tmp_path, capsys):
    assert eval_main(['--robot', 'hobbs', '--out', str(tmp_path / 'r'), '--checkpoints',
                      str(tmp_path)]) == 2
    assert 'face-retarget-train --robot hobbs' in capsys.readouterr().err


def test_bootstrap_twin_target_takes_the_physics_and_the_family_variant():
    """--physics and --family-variant change only the twin the loop drives."""
    profile = load_profile('micheal')
    args = bootstrap_parser().parse_args(['--robot', 'micheal', '--physics', 'simple',
                                          '--family-variant', '2', '--family-seed', '7'])
    config = from_options(BootstrapConfig, args)
    robot = twin_target(with_physics(profile, 'simple'), args, config)
    assert robot.twin.params == family_variant(with_physics(profile, 'simple'), 2, 7).twin
    assert robot.profile.motors == profile.motors
    plain = bootstrap_parser().parse_args(['--robot', 'micheal'])
    assert twin_target(profile, plain, config).twin.params == profile.twin
    assert bootstrap_main(['--robot', 'micheal', '--physics', 'wild']) == 2


@pytest.mark.parametrize('main, options', [
    (bootstrap_main, ['--robot', 'hobbs', '--family-variant', '-1']),
    (bootstrap_main, ['--robot', 'hobbs', '--family-variant', '0', '--family-seed', '-3']),
    (eval_main, ['--robot', 'hobbs', '--family', '1', '--family-seed', '-3']),
    (eval_main, ['--robot', 'hobbs', '--family', '-2'])])
def test_a_negative_family_option_is_one_clear_error(main, options, tmp_path, capsys):
    """--family-variant -1 or --family-seed -3 reached numpy's seeding and ended in a
    traceback (ValueError: expected non-negative integer); refused as a usage error."""
    with pytest.raises(SystemExit) as stopped:
        main([*options, '--out', str(tmp_path / 'out'), '--no-progress'])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert 'must be 0 or more' in error and 'Traceback' not in error
