"""The checkpoints shipped for each twin robot load for their robot and retarget a real take."""
import numpy as np
import pytest

from face_actuation.profile import load_profile
from face_capture.bundled import bundled_take_path
from face_capture.takes import read_take
from face_retarget.baselines import LinearRetarget
from face_retarget.recipe import calibrated_take
from face_retarget.training import default_checkpoint_dir, load_checkpoint, stream_from_checkpoint

FRAMES = calibrated_take(read_take(bundled_take_path()))[3000:3060]


@pytest.mark.parametrize('robot', ['micheal', 'hobbs', 'ameca'])
def test_shipped_models_load_and_infer(robot):
    profile = load_profile(robot, '/nonexistent')
    directory = default_checkpoint_dir() / robot
    assert LinearRetarget.load(directory / 'linear.npz').weights.shape[1] == profile.num_motors
    for name in ('exface', 'mlp', 'transformer'):
        path = directory / f'{name}.pt'
        assert path.stat().st_size < 4_000_000, f'{path} is too big to ship'
        _, _, payload = load_checkpoint(path, profile)
        assert payload['robot'] == robot and 'optimizer' not in payload
        stream = stream_from_checkpoint(path, profile)
        stream.reset(profile.neutral)
        commands = np.stack([stream.step(frame) for frame in FRAMES])
        assert commands.shape == (len(FRAMES), profile.num_motors)
        assert np.isfinite(commands).all() and commands.min() >= 0 and commands.max() <= 1
        assert commands.std(0).max() > 0.01, f'{name} does not react to the face'
    assert (directory / 'training_curves.png').is_file()
