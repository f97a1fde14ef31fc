"""Session report pairing: the actuator delay is found from the session itself and each human
frame is scored against the face that many frames later."""
import numpy as np

from face_bag.session import lost_frames, session_delay, summarise
from face_common.latency import LatencySummary, TraceJoiner


def _session(delay: int, frames: int = 300, seed: int = 0) -> dict:
    """A perfect retargeter on a robot with `delay` frames of actuator delay: each frame's
    command makes the face show that frame's human expression, `delay` frames later (every
    reading carries the stamp of the frame it is shown at)."""
    rng = np.random.default_rng(seed)
    commands = np.cumsum(rng.normal(0, 0.05, (frames, 8)), axis=0)
    human_values = 0.5 + 0.1 * commands @ rng.normal(0, 1, (8, 61))
    stamps = [10**9 + i * 33_333_333 for i in range(frames)]
    return {'human': [(stamps[i], stamps[i] + 1000, human_values[i]) for i in range(frames)],
            'commands': list(zip(stamps, commands, strict=True)),
            'robot': {stamps[i]: human_values[max(i - delay, 0)] for i in range(frames)},
            'latency': LatencySummary(size=100), 'frame_gaps': 0, 'joiner': TraceJoiner()}


def test_session_delay_is_found_from_commands_and_faces():
    for delay in (0, 2, 4):
        assert session_delay(_session(delay)) == delay


def test_summary_scores_each_frame_against_the_delayed_face():
    session = _session(2)
    human = np.stack([v for _, _, v in session['human']])
    summary = summarise(session)
    assert summary['delay_frames'] == 2
    assert summary['robot_frames_paired'] == len(human) - 2
    assert summary['blendshape_distance'] < 1e-20
    # stamp by stamp, the same faces would be scored 2 frames stale
    assert np.mean((human[2:, :52] - human[:-2, :52]) ** 2) > 1e-4


def test_too_short_a_session_uses_no_delay():
    assert session_delay(_session(3, frames=20)) == 0


def test_lost_frames_counts_gaps_in_the_senders_step():
    assert lost_frames([0, 2, 4, 8, 10]) == 1
    assert lost_frames([5, 6, 7, 10]) == 2
    assert lost_frames([]) == 0
