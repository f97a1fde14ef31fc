"""face-retarget-train and face-retarget-eval end to end on a tiny config."""
import json
import math

from face_retarget.cli import eval_main, train_main

TINY = ['--window', '16', '--d-model', '32', '--layers', '1', '--heads', '2', '--steps', '40',
        '--static-frames', '1600', '--interpolation-frames', '1000', '--no-progress']


def test_train_then_eval_writes_the_report(tmp_path, capsys):
    assert train_main(['--robot', 'ameca', '--out', str(tmp_path), *TINY]) == 0
    robot_dir = tmp_path / 'ameca'
    for name in ('exface.pt', 'mlp.pt', 'transformer.pt', 'linear.npz', 'dataset.json',
                 'training_curves.png'):
        assert (robot_dir / name).is_file(), name
    assert train_main(['--robot', 'ameca', '--out', str(tmp_path), '--resume', *TINY]) == 0
    out = tmp_path / 'report'
    assert eval_main(['--robot', 'ameca', '--out', str(out), '--checkpoints',
                      str(tmp_path)]) == 0
    results = json.loads((out / 'results.json').read_text())
    assert [r['model'] for r in results] == ['random', 'linear', 'mlp', 'transformer', 'exface']
    for entry in results:
        for key in ('motor_distance', 'blendshape_distance', 'jitter', 'latency_ms_p99'):
            assert math.isfinite(entry[key]) and entry[key] >= 0
    random_row = results[0]
    assert all(r['jitter'] < random_row['jitter'] for r in results[1:])
    assert '| exface |' in (out / 'results.md').read_text()
    assert (out / 'results.png').stat().st_size > 10_000


def test_eval_without_models_is_a_clear_error(tmp_path, capsys):
    assert eval_main(['--robot', 'hobbs', '--out', str(tmp_path / 'r'), '--checkpoints',
                      str(tmp_path)]) == 2
    assert 'face-retarget-train --robot hobbs' in capsys.readouterr().err
