"""Bags to training windows: alignment on one clock, gaps split episodes, the delay is found
and compensated, static holds become pairs, the split is by episode."""
import json

import numpy as np
import pytest

from face_bag import messages
from face_bag.export import (
    Episode,
    ExportError,
    estimate_delay,
    export_dataset,
    position_noise,
    read_episodes,
    split_episodes,
    static_pairs,
    windows,
)
from face_bag.store import BagWriter

STEP = 33_333_333        # 30 Hz


def synthetic_bag(path, commands, delay, gap_at=None, hold_noise=0.0, seed=0):
    """Commands (N, 2) and a robot face that shows command[t - delay] on two channels."""
    rng = np.random.default_rng(seed)
    writer = BagWriter(path)
    t = 10**18
    for i, command in enumerate(commands):
        if gap_at is not None and i == gap_at:
            t += 2 * 10**9                       # 2 s of silence
        face = np.zeros(61)
        face[:2] = commands[max(0, i - delay)] + rng.normal(0, hold_noise, 2)
        writer.write_message('/face/command', messages.CONTROL_VALUES, t,
                             messages.control_values(command, ['a', 'b'], t, robot='r',
                                                     source='s'))
        writer.write_message('/face/robot/blendshapes', messages.BLENDSHAPES, t + 1000,
                             messages.blendshapes(face, t, source='twin'))
        t += STEP
    writer.close()
    return path


def smooth_commands(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(0.5 + np.cumsum(rng.normal(0, 0.03, (n, 2)), axis=0), 0, 1)


def test_alignment_delay_and_windows(tmp_path):
    commands = smooth_commands(300)
    episodes = read_episodes(synthetic_bag(tmp_path / 'b', commands, delay=3), rate=30)
    assert len(episodes) == 1
    e = episodes[0]
    assert e.robot == 'r' and e.motor_names == ['a', 'b']
    assert len(e.commands) == pytest.approx(300, abs=1)
    assert estimate_delay(episodes) == 3
    obs, cmd = windows(episodes, window=20, stride=5, delay=3)
    assert obs.shape[1:] == (20, 61) and cmd.shape[1:] == (20, 2)
    assert np.allclose(obs[:, :, :2], cmd, atol=1e-5)      # compensated: they line up


def test_a_silence_splits_episodes(tmp_path):
    episodes = read_episodes(synthetic_bag(tmp_path / 'b', smooth_commands(200), 0,
                                           gap_at=120), rate=30)
    assert [len(e.commands) for e in episodes] == [pytest.approx(120, abs=4),
                                                   pytest.approx(80, abs=4)]


def test_static_holds_become_pairs(tmp_path):
    poses = np.random.default_rng(1).uniform(0, 1, (12, 2))
    held = np.repeat(poses, 20, axis=0)
    episode = read_episodes(synthetic_bag(tmp_path / 'b', held, delay=2, hold_noise=0.01),
                            rate=30)[0]
    got_poses, readings = static_pairs(episode, min_hold=10)
    assert np.allclose(got_poses, poses[:len(got_poses)], atol=1e-6)
    assert len(got_poses) >= 11                     # the last hold may be cut by alignment
    assert np.allclose(readings[:, :2], got_poses, atol=0.02)


def test_measured_positions_settle_within_their_noise():
    """Servos reporting measured positions: a held pose reads noisy, never still to 1e-6.
    The noise is estimated from the holds; a pose counts once it stopped within it; one that
    still creeps toward its pose does not."""
    rng = np.random.default_rng(2)
    poses = rng.uniform(0.2, 0.8, (20, 3))
    requested = np.repeat(poses, 30, axis=0)
    executed = requested + rng.normal(0.0, 0.004, requested.shape)
    creeping = np.arange(5) * 30                  # five holds still moving 3e-3 per frame
    for start in creeping:
        executed[start:start + 30] += 3e-3 * np.arange(30)[:, None]
    episode = Episode(np.zeros((len(requested), 61)), executed, requested=requested)
    noise = position_noise([episode], min_hold=15)
    assert np.allclose(noise, 0.004, rtol=0.3)
    assert len(static_pairs(episode, min_hold=15)[0]) == 0         # still to 1e-6: none
    kept, _ = static_pairs(episode, min_hold=15, noise=noise)
    assert len(kept) == 15
    assert np.abs(kept - poses[5:]).max() < 0.01


def test_split_is_by_episode():
    episodes = list(range(10))
    train, validation = split_episodes(episodes, 0.2, seed=3)
    assert len(validation) == 2 and sorted(train + validation) == episodes


def test_export_writes_dataset_and_card(tmp_path):
    bags = [synthetic_bag(tmp_path / f'd{i}', smooth_commands(200, i), 2, seed=i)
            for i in range(4)]
    static = [synthetic_bag(tmp_path / 's', np.repeat(np.random.default_rng(5).uniform(
        0, 1, (10, 2)), 20, axis=0), 2)]
    card = export_dataset(bags, tmp_path / 'out', static, window=30, stride=5,
                          validation_fraction=0.25)
    data = np.load(tmp_path / 'out' / 'dataset.npz')
    assert data['train_observed'].shape[1:] == (30, 61)
    assert len(data['validation_observed']) > 0 and card['episodes']['validation'] == 1
    assert card['delay_frames'] == 2 and card['robot'] == 'r'
    assert card['static_poses'] >= 9
    assert json.loads((tmp_path / 'out' / 'card.json').read_text())['windows']['train'] == \
        len(data['train_observed'])
    assert 'delay: 2 frames' in (tmp_path / 'out' / 'card.md').read_text()


def test_a_bag_without_the_robot_topic_is_a_clear_error(tmp_path):
    writer = BagWriter(tmp_path / 'b')
    writer.write_message('/face/command', messages.CONTROL_VALUES, 1,
                         messages.control_values([0.5], ['a'], 1, robot='r', source='s'))
    writer.close()
    with pytest.raises(ExportError, match='/face/robot/blendshapes'):
        read_episodes(tmp_path / 'b')
