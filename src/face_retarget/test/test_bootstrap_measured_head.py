"""The bootstrap on a head that reports measured positions, as real servos do: they lag the
command and carry sensor noise, so a held pose never reads exactly still. The static stage
must keep most poses; a head whose positions never stop must end in one clear line."""
import json

import numpy as np

from face_actuation.profile import load_profile
from face_bag.export import static_pairs
from face_capture.bundled import bundled_take_path
from face_capture.takes import read_take
from face_retarget.bootstrap import (
    Bootstrap,
    BootstrapConfig,
    StaticResult,
    TwinRobot,
    keyed_rng,
    static_poses,
)
from face_retarget.cli import bootstrap_main
from face_retarget.recipe import split_take


class MeasuredTwinRobot(TwinRobot):
    """The twin, reporting on face/robot/applied what an encoder would measure: the executed
    positions through a first-order lag (time constant `lag_s`) plus Gaussian noise."""

    def __init__(self, profile, lag_s: float = 0.05, noise_std: float = 0.004, **kwargs):
        super().__init__(profile, **kwargs)
        self.lag_s, self.noise_std = lag_s, noise_std

    def respond(self, commands, bag):
        applied, observed = super().respond(commands, bag)
        alpha = 1.0 - np.exp(-1.0 / (self.rate * self.lag_s))
        measured = np.empty_like(applied)
        position = self.profile.neutral.astype(np.float64)
        for t, row in enumerate(applied):
            position = position + alpha * (row - position)
            measured[t] = position
        rng = keyed_rng(self.seed, str(bag), 'encoder noise')
        return measured + rng.normal(0.0, self.noise_std, measured.shape), observed


class DriftingTwinRobot(TwinRobot):
    """A head whose reported positions creep on and never stop (a slipping encoder)."""

    def respond(self, commands, bag):
        applied, observed = super().respond(commands, bag)
        return applied + 1e-3 * np.arange(len(applied))[:, None], observed


TINY = BootstrapConfig(robot='hobbs', static_poses=60, static_frames=2000, probe_frames=200,
                       first_iteration_frames=200, episode_frames=200, min_iterations=1,
                       max_iterations=1, compare_interpolation=False, static_steps=40,
                       finetune_steps=20, baseline_steps=20, window=16, d_model=32, layers=1,
                       heads=2, held_out_frames=200)


def _bootstrap(robot, out):
    train, held_out = split_take(read_take(bundled_take_path()), 94.0)
    return Bootstrap(TINY, robot.profile, robot, [train], held_out, out, progress=False,
                     log=lambda line: None)


def test_measured_noisy_positions_keep_most_static_poses(tmp_path):
    profile = load_profile('hobbs')
    pipeline = _bootstrap(MeasuredTwinRobot(profile, seed=3), tmp_path)
    report = pipeline.run()
    assert report['static']['poses'] >= 0.9 * TINY.static_poses
    assert len(report['iterations']) == 1
    assert np.isfinite(report['iterations'][0]['facial']['blendshape_distance'])
    assert report['neutral']['blendshape_distance'] > 0
    assert json.loads((tmp_path / 'report.json').read_text())['neutral'] == report['neutral']
    # The poses kept are what the head reached (the median of the noisy settled readings),
    # not noise: within a few noise stds of the commanded poses.
    static = pipeline.static_data(pipeline._stage('static', StaticResult, pipeline.static))
    commanded = static_poses(profile, TINY)
    nearest = np.abs(static.poses[:, None, :] - commanded[None, :, :]).max(2).min(1)
    assert np.median(nearest) < 0.02

def test_exact_still_check_rejects_what_noise_tolerance_keeps(tmp_path):
    """The check is decided from the data: the same noisy head without its noise estimate
    (positions required to be still to 1e-6) keeps no pose."""
    profile = load_profile('hobbs')
    pipeline = _bootstrap(MeasuredTwinRobot(profile, seed=3), tmp_path)
    pipeline.delay = 0
    result = pipeline._stage('static', StaticResult, pipeline.static)
    episodes = pipeline._episodes(result.bags)
    assert sum(len(static_pairs(e, min_hold=15)[0]) for e in episodes) == 0
    assert len(pipeline.static_data(result).poses) >= 54


def test_no_settled_pose_ends_in_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr('face_retarget.cli.TwinRobot', DriftingTwinRobot)
    args = ['--robot', 'hobbs', '--out', str(tmp_path), '--static-poses', '60',
            '--probe-frames', '200', '--no-progress']
    assert bootstrap_main(args) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1
    assert 'kept 0 of 60 poses' in err and 'face/robot/applied' in err
