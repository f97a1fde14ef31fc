"""The bootstrap loop end to end on a tiny config: every stage recorded as a rosbag2 bag, a
report and plot per iteration, resumable, checkpoints the eval CLI can use; and the live
(ROS) robot path against a running actuation node."""
import json
import math
import os
import signal
import threading

import numpy as np
import pytest
import torch

from face_bag.export import read_episodes
from face_bag.store import bag_info, read_messages
from face_retarget.cli import bootstrap_main, eval_main
from face_retarget.training import load_checkpoint

TINY = ['--static-poses', '60', '--static-frames', '2000', '--first-iteration-frames', '400',
        '--next-iteration-frames', '200', '--episode-frames', '200', '--static-steps', '40',
        '--finetune-steps', '20', '--baseline-steps', '20', '--window', '16', '--d-model', '32',
        '--layers', '1', '--heads', '2', '--probe-frames', '200', '--held-out-frames', '300',
        '--no-progress']


def test_bootstrap_runs_resumes_and_ships(tmp_path, capsys, monkeypatch):
    out, ship = tmp_path / 'run', tmp_path / 'ckpt'
    assert bootstrap_main(['--robot', 'hobbs', '--out', str(out), '--ship', str(ship),
                           *TINY]) == 0
    robot = out / 'hobbs'
    report = json.loads((robot / 'report.json').read_text())
    assert len(report['iterations']) == 3
    frames = [e['facial']['dynamic_frames'] for e in report['iterations']]
    assert frames == [pytest.approx(400, abs=6), pytest.approx(600, abs=9),
                      pytest.approx(800, abs=12)]
    for entry in report['iterations']:
        for arm in ('facial', 'interpolation'):
            assert math.isfinite(entry[arm]['blendshape_distance'])
        assert entry['interpolation']['dynamic_frames'] == pytest.approx(
            entry['facial']['dynamic_frames'], abs=12)           # equal frame counts
    assert (robot / 'bootstrap.png').stat().st_size > 10_000
    assert '| iteration 3 |' in (robot / 'report.md').read_text()

    bags = sorted((robot / 'bags').glob('*/*/metadata.yaml'))
    # probe, static, then per arm two 200-frame episodes and one at each next iteration; and
    # each model's held-out run (static, then both arms at every iteration), and neutral's
    assert len(bags) == 1 + 1 + 2 * (2 + 1 + 1) + 1 + 2 * 3 + 1
    assert '| neutral (hold the neutral pose) |' in (robot / 'report.md').read_text()
    assert report['neutral']['blendshape_distance'] > 0
    held_out = read_episodes(robot / 'bags' / 'score_static' / 'score_static_000')
    assert sum(len(e.human) for e in held_out) == pytest.approx(300, abs=3)
    facial = bag_info(next((robot / 'bags' / 'iteration_1_facial').iterdir()))
    assert set(facial['topics']) == {'/face/human/blendshapes', '/face/command',
                                     '/face/robot/applied', '/face/robot/blendshapes'}
    episode = read_episodes(next((robot / 'bags' / 'iteration_1_facial').iterdir()))[0]
    assert episode.human is not None and episode.commands.shape[1] == 32

    # A second run finds every stage done: no bag is recorded again, same report.
    stamps = {p: p.stat().st_mtime_ns for p in bags}
    assert bootstrap_main(['--robot', 'hobbs', '--out', str(out), *TINY]) == 0
    assert {p: p.stat().st_mtime_ns for p in bags} == stamps
    again = json.loads((robot / 'report.json').read_text())
    assert again['iterations'] == report['iterations']
    # Resuming with other settings would mix two runs: refused, nothing touched.
    changed = list(TINY)
    changed[TINY.index('--finetune-steps') + 1] = '21'
    capsys.readouterr()
    assert bootstrap_main(['--robot', 'hobbs', '--out', str(out), *changed]) == 2
    assert 'finetune_steps' in capsys.readouterr().err
    # More iterations continue the finished run: the first three are read back, not redone.
    assert bootstrap_main(['--robot', 'hobbs', '--out', str(out), *TINY,
                           '--max-iterations', '4', '--min-improvement', '-1']) == 0
    longer = json.loads((robot / 'report.json').read_text())
    assert longer['iterations'][:3] == report['iterations']
    assert len(longer['iterations']) == 4
    assert {p: p.stat().st_mtime_ns for p in bags} == stamps
    # Resumed is the same as straight through: a fresh four-iteration run records the same
    # bags, trains bit-identical models and reaches the same figures (every random draw is
    # keyed by seed, stage and purpose, not by what ran before).
    straight = tmp_path / 'straight'
    assert bootstrap_main(['--robot', 'hobbs', '--out', str(straight), *TINY,
                           '--max-iterations', '4', '--min-improvement', '-1']) == 0
    assert json.loads((straight / 'hobbs' / 'report.json').read_text())['iterations'] == \
        longer['iterations']
    fourth = read_episodes(next((robot / 'bags' / 'iteration_4_facial').iterdir()))[0]
    again = read_episodes(next((straight / 'hobbs' / 'bags' / 'iteration_4_facial').iterdir()))[0]
    assert np.array_equal(fourth.observed, again.observed)
    resumed_models = {p.name for p in (robot / 'models').glob('*.pt')}
    straight_models = {p.name for p in (straight / 'hobbs' / 'models').glob('*.pt')}
    assert {'iteration_4_facial_exface.pt', 'ship_after_4_mlp.pt'} <= straight_models
    assert straight_models <= resumed_models       # plus the baselines shipped after three
    for name in sorted(straight_models):
        ours = load_checkpoint(robot / 'models' / name)[0].state_dict()
        theirs = load_checkpoint(straight / 'hobbs' / 'models' / name)[0].state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name
    stamps_ns = [m.timestamp_ns for m in read_messages(
        next((robot / 'bags' / 'iteration_4_facial').iterdir()), ['/face/command'])]
    assert set(np.diff(stamps_ns)) == {33_333_333}      # exact integer stamps, 30 Hz
    # A run folder moved elsewhere resumes from any working directory: nothing redone.
    moved, elsewhere = tmp_path / 'moved', tmp_path / 'elsewhere'
    out.rename(moved)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    stamps = {p: p.stat().st_mtime_ns for p in sorted(moved.glob('hobbs/bags/*/*/*.yaml'))}
    assert bootstrap_main(['--robot', 'hobbs', '--out', '../moved', *TINY,
                           '--max-iterations', '4', '--min-improvement', '-1']) == 0
    assert json.loads((moved / 'hobbs' / 'report.json').read_text())['iterations'] == \
        longer['iterations']
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # Without --ship the checkpoint set goes into the run folder: the same from both runs.
    for name in ('exface.pt', 'mlp.pt', 'transformer.pt'):
        ours = load_checkpoint(moved / 'hobbs' / name)[0].state_dict()
        theirs = load_checkpoint(straight / 'hobbs' / name)[0].state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name

    for name in ('exface.pt', 'mlp.pt', 'transformer.pt', 'linear.npz', 'dataset.json',
                 'bootstrap.md', 'bootstrap.png'):
        assert (ship / 'hobbs' / name).is_file(), name
    # 10 s and a 5-step oracle: the full 80-step oracle through the shipped twin's physics
    # took about 160 s of CPU on the 40 s tail (test_oracle.py tests the oracle itself)
    assert eval_main(['--robot', 'hobbs', '--out', str(tmp_path / 'eval'), '--checkpoints',
                      str(ship), '--models', 'linear,exface', '--duration-s', '10',
                      '--oracle-steps', '5']) == 0


@pytest.mark.ros
def test_live_robot_records_the_actuation_node_response(node_process, tmp_path):
    from face_actuation.profile import load_profile
    from face_actuation.twin import FaceTwin
    from face_retarget.data import interpolation_commands
    from face_retarget.live_robot import LiveRobot
    node_process('face_actuation', 'actuation', params={
        'robot': 'hobbs', 'driver': 'sim', 'robot_calibration_dir': str(tmp_path)})
    profile = load_profile('hobbs')
    robot = LiveRobot(profile, rate=30.0)
    try:
        commands = interpolation_commands(FaceTwin(profile), 90, np.random.default_rng(0), 30)
        bag = robot.record(commands, tmp_path / 'live', human=np.zeros((90, 61)),
                           source='test')
    finally:
        robot.close()
    info = bag_info(bag)
    assert info['topics']['/face/command']['count'] == 90
    assert info['topics']['/face/robot/applied']['count'] >= 80
    assert info['topics']['/face/robot/blendshapes']['count'] >= 80
    episodes = read_episodes(bag)
    # Aligned frames run from the first response to the last command: ~88 of 90 on an idle
    # machine, a few fewer where a loaded machine delays the first response.
    assert sum(len(e.commands) for e in episodes) >= 75
    # The executed commands follow the requested ones (safety layer in between).
    e = max(episodes, key=lambda e: len(e.commands))
    assert np.abs(e.commands[-20:] - e.requested[-20:]).mean() < 0.1


@pytest.mark.ros
def test_live_robot_refuses_a_recording_the_robot_stopped_answering(node_process, tmp_path):
    """The robot process dying during a recording left a bag whose responses stop part way,
    and the stage went on with it (the static stage kept 14 of 40 poses from a foreign head
    killed mid-chunk, stored as finished, reused on resume); the recording now fails."""
    from face_actuation.profile import load_profile
    from face_retarget.live_robot import LiveRobot
    actuation = node_process('face_actuation', 'actuation', params={
        'robot': 'hobbs', 'driver': 'sim', 'robot_calibration_dir': str(tmp_path)})
    profile = load_profile('hobbs')
    robot = LiveRobot(profile, rate=30.0, settle_s=0.2)
    try:
        robot.wait_for_robot()
        threading.Timer(1.0, os.killpg, (actuation.proc.pid, signal.SIGKILL)).start()
        with pytest.raises(RuntimeError, match='stopped answering'):
            robot.record(np.repeat(profile.neutral[None], 150, axis=0), tmp_path / 'cut')
    finally:
        robot.close()


@pytest.mark.ros
def test_live_robot_without_an_actuation_node_fails_clearly():
    from face_actuation.profile import load_profile
    from face_retarget.live_robot import LiveRobot
    robot = LiveRobot(load_profile('hobbs'), rate=30.0)
    try:
        with pytest.raises(RuntimeError, match='no actuation node'):
            robot.wait_for_robot(timeout_s=0.5)
    finally:
        robot.close()


@pytest.mark.ros
def test_bootstrap_without_a_live_robot_stops_with_a_clear_error(tmp_path, capsys):
    """--target live with no actuation node running: one line saying what is missing and how
    to resume, no traceback, exit status 1."""
    assert bootstrap_main(['--robot', 'hobbs', '--target', 'live', '--out', str(tmp_path),
                           *TINY]) == 1
    err = capsys.readouterr().err
    assert 'no actuation node' in err and 'rerun the same command to resume' in err
    assert 'Traceback' not in err

