"""Acceptance for the robots: on each twin, the real human take played through a clearly
labelled baseline (a linear map fitted on random twin poses) visibly moves the rendered robot
face. Contact sheets (human | robot) are saved as PNG in artifacts/."""
import itertools

import cv2
import numpy as np
import pytest

from face_actuation.profile import load_profile
from face_actuation.simulate import rollout
from face_actuation.twin import FaceTwin
from face_capture.bundled import bundled_take_path
from face_capture.takes import read_take
from face_common.arkit import channel_index
from face_common.render import draw_face, side_by_side
from face_retarget.baselines import fit_linear_on_twin

TAKE = read_take(bundled_take_path())


@pytest.mark.parametrize('robot', ['micheal', 'hobbs', 'ameca'])
def test_human_take_moves_the_twin_face_through_the_linear_baseline(robot, artifacts_dir):
    profile = load_profile(robot, '/nonexistent')
    twin = FaceTwin(profile)
    # poses within half of each motor's range around neutral, sides together: on the shipped
    # twins' saturating skin, a map fitted on full-range random poses squashes the human's
    # small expressions (hobbs JawOpen correlation 0.17, micheal smile std 0.037)
    baseline = fit_linear_on_twin(FaceTwin(profile, seed=1), count=600, seed=0, spread=0.5,
                                  symmetric=True)
    frames = TAKE.values[:1800]                                   # the first minute
    result = rollout(twin, baseline.predict(frames), dt=1 / 30)
    assert twin.profile.num_motors == result.applied.shape[1]

    # the robot's face follows the human's: jaw and smile move together (measured: JawOpen
    # std 0.15-0.25, correlation 0.94-0.98; MouthSmileLeft std 0.024-0.039, correlation
    # 0.79-0.84, the linear map undershooting the smile where the skin engages late)
    for channel, least_std in (('JawOpen', 0.1), ('MouthSmileLeft', 0.02)):
        i = channel_index(channel)
        human, robot_face = frames[:, i], result.observed[:, i]
        correlation = np.corrcoef(human, robot_face)[0, 1]
        print(f'{robot} {channel}: human std {human.std():.3f}, robot std '
              f'{robot_face.std():.3f}, correlation {correlation:.2f}')
        assert robot_face.std() > least_std, f'{channel} barely moves on {robot}'
        assert correlation > 0.7, channel

    rows, shown = [], []
    for t in range(60, 1800, 290):
        human = draw_face(frames[t], 200, 'human', f'human t={t / 30:.0f}s')
        face = draw_face(result.observed[t], 200, 'robot', f'{robot} (linear baseline)')
        rows.append(side_by_side(human, face))
        shown.append(face)
    sheet = np.vstack(rows)
    path = artifacts_dir / f'twin_{robot}_linear_baseline.png'
    cv2.imwrite(str(path), sheet)
    assert path.stat().st_size > 10_000
    # the rendered robot face really changes between frames
    differences = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in
                   itertools.pairwise(shown)]
    assert max(differences) > 2.0
