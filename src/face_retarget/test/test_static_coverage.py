"""The static stage learning where a robot's useful faces are (issue 16, item 5), on synthetic
robots whose faces are plain functions of the motors: travel past a saturating skin is found
and kept out of, static poses drawn towards the human takes cover human faces better than
more poses around neutral, and the bootstrap keeps its driven commands within the limits."""
import json

import numpy as np

from face_actuation.profile import load_profile
from face_capture.bundled import bundled_take_path
from face_capture.takes import read_take
from face_common.arkit import NUM_CHANNELS
from face_retarget.bootstrap import (
    Bootstrap,
    BootstrapConfig,
    StaticResult,
    TwinRobot,
    poses_around_neutral,
)
from face_retarget.recipe import split_take
from face_retarget.static_coverage import (
    TravelLimits,
    coverage,
    poses_towards_humans,
    useful_travel,
)

NEUTRAL = np.full(6, 0.3)


def up_travel(poses, neutral):
    return np.clip((poses - neutral) / (1.0 - neutral), 0.0, 1.0)


def saturating_face(poses, neutral=NEUTRAL, knee: float = 0.2):
    """Motor 0 up: a face that stops changing past `knee` of its travel (saturated skin);
    motors 1-5 up: each its own channel, linear over the whole travel."""
    travel = up_travel(poses, neutral)
    face = np.zeros((len(poses), NUM_CHANNELS))
    face[:, 0] = 2.0 * np.minimum(travel[:, 0], knee)
    face[:, 1:6] = 0.6 * travel[:, 1:6]
    return face


def test_a_saturating_motor_direction_ends_where_the_face_stops_changing():
    rng = np.random.default_rng(0)
    poses = poses_around_neutral(NEUTRAL, 300, rng, reach=0.7)
    readings = saturating_face(poses) + rng.normal(0.0, 0.005, (300, NUM_CHANNELS))
    limits = useful_travel(poses, readings, NEUTRAL, min_gain=0.25)
    high = up_travel(limits.high, NEUTRAL)
    assert high[0] <= 0.3 + 1e-9                      # past the knee: kept out
    assert np.all(high[1:] >= 0.6)                     # linear motors keep their travel
    reached = up_travel(poses, NEUTRAL).max(0)
    assert np.all(high <= reached + 1e-9)              # never beyond what was reached
    whole = up_travel(useful_travel(poses, readings, NEUTRAL, min_gain=0.0).high, NEUTRAL)
    np.testing.assert_allclose(whole, reached)


def dead_zone_face(poses, neutral=NEUTRAL, dead: float = 0.35):
    """A head that shows nothing near neutral: a motor's channel moves only past `dead` of its
    way up (its useful region is away from neutral)."""
    face = np.zeros((len(poses), NUM_CHANNELS))
    face[:, :6] = 2.0 * np.maximum(up_travel(poses, neutral) - dead, 0.0)
    return face


def test_poses_drawn_towards_humans_cover_their_faces_better_than_more_around_neutral():
    rng = np.random.default_rng(1)
    first = poses_around_neutral(NEUTRAL, 150, rng, reach=0.7)
    readings = dead_zone_face(first) + rng.normal(0.0, 0.005, (150, NUM_CHANNELS))
    wanted = NEUTRAL + rng.uniform(0.45, 0.65, (400, 6)) * (1.0 - NEUTRAL) * (
        rng.random((400, 6)) < 0.5)
    human = dead_zone_face(wanted)
    limits = TravelLimits.whole_range(6)
    towards = poses_towards_humans(first, readings, human[:150], limits, rng)
    more = poses_around_neutral(NEUTRAL, 150, rng, reach=0.7)
    before = coverage(human[150:], readings)
    adapted = coverage(human[150:], np.vstack([readings, dead_zone_face(towards)]))
    unadapted = coverage(human[150:], np.vstack([readings, dead_zone_face(more)]))
    assert adapted < 0.9 * unadapted and unadapted <= before, (before, unadapted, adapted)


def test_poses_towards_humans_stay_within_the_travel_limits():
    rng = np.random.default_rng(2)
    first = poses_around_neutral(NEUTRAL, 150, rng, reach=0.7)
    readings = saturating_face(first)
    limits = TravelLimits(NEUTRAL - 0.1, NEUTRAL + 0.2, np.zeros((6, 2, 5)))
    human = saturating_face(NEUTRAL + rng.uniform(0.0, 0.7, (200, 6)))
    drawn = poses_towards_humans(first, readings, human, limits, rng)
    assert np.all(drawn >= NEUTRAL - 0.1 - 1e-12) and np.all(drawn <= NEUTRAL + 0.2 + 1e-12)
    assert np.ptp(drawn, axis=0).min() > 0.05         # spread, not one pose repeated


class SaturatingRobot(TwinRobot):
    """The hobbs motor list with a synthetic face: every motor up moves its own channel, the
    first motor's skin saturates a fifth of the way up. Reports the commanded positions."""

    def respond(self, commands, bag):
        commands = np.asarray(commands, np.float64)
        neutral = self.profile.neutral
        travel = np.clip((commands - neutral) / (1.0 - neutral), 0.0, 1.0)
        face = np.zeros((len(commands), NUM_CHANNELS))
        count = min(commands.shape[1], 50)
        face[:, :count] = 0.5 * travel[:, :count]
        face[:, 0] = 2.0 * np.minimum(travel[:, 0], 0.2)
        return commands, face


def test_bootstrap_reports_coverage_and_keeps_driven_commands_within_the_limits(tmp_path):
    profile = load_profile('hobbs')
    config = BootstrapConfig(robot='hobbs', static_poses=400, static_hold_frames=10,
                             static_frames=1000, probe_frames=150,
                             first_iteration_frames=300, episode_frames=150,
                             min_iterations=1, max_iterations=1, compare_interpolation=False,
                             static_steps=20, finetune_steps=10, baseline_steps=5, window=16,
                             d_model=32, layers=1, heads=2, held_out_frames=150,
                             exploration_noise=0.3, static_towards_humans=0.5,
                             keep_to_useful_travel=True)
    train, held_out = split_take(read_take(bundled_take_path()), 94.0)
    pipeline = Bootstrap(config, profile, SaturatingRobot(profile, seed=1), [train], held_out,
                         tmp_path, progress=False, log=lambda line: None)
    report = pipeline.run()
    measured = report['static']['coverage']
    assert measured['first_poses'] == 200 and measured['all_poses'] == 400
    assert measured['after'] < measured['before']
    assert 0.0 <= report['iterations'][0]['facial']['at_range_ends'] <= 1.0
    assert 'Coverage' in (tmp_path / 'report.md').read_text()
    assert json.loads((tmp_path / 'report.json').read_text())['static']['travel_limits']

    static = pipeline.static_data(pipeline._stage('static', StaticResult, pipeline.static))
    saturated_end = static.limits.high[0]
    assert saturated_end < profile.neutral[0] + 0.35 * (1.0 - profile.neutral[0])
    driven = np.concatenate([e.commands for e in pipeline._episodes(
        pipeline.state['stages']['record:iteration_1']['facial'])])
    # Strong exploration noise pushes the commands around; none go past the saturated end.
    assert driven[:, 0].max() <= saturated_end + 1e-6
    assert np.all(driven >= static.limits.low - 1e-6)
    assert np.all(driven <= static.limits.high + 1e-6)
