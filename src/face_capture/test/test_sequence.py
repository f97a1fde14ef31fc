"""Frame-number tracking: drops, stale frames, restarts."""
from face_capture.sequence import FrameSequence, FrameVerdict


def test_steady_stream_has_no_drops():
    seq = FrameSequence()
    for n in range(100, 200):
        assert seq.observe(n) is FrameVerdict.ACCEPT
    assert seq.counters.dropped == 0 and seq.counters.accepted == 100


def test_gaps_count_missing_frames_at_the_learned_step():
    seq = FrameSequence()
    for n in range(0, 40, 2):              # a 30 fps take numbered at 60 fps
        seq.observe(n)
    assert seq.counters.dropped == 0
    seq.observe(46)                         # 40, 42, 44 missing
    assert seq.counters.dropped == 3


def test_duplicates_and_reordered_frames_are_stale():
    seq = FrameSequence()
    for n in (1, 2, 3, 5):
        seq.observe(n)
    assert seq.observe(4) is FrameVerdict.STALE
    assert seq.observe(5) is FrameVerdict.STALE
    assert seq.counters.stale == 2
    assert seq.observe(6) is FrameVerdict.ACCEPT


def test_large_jump_back_is_a_restart():
    seq = FrameSequence(restart_jump=120)
    for n in range(5000, 5010):
        seq.observe(n)
    assert seq.observe(3) is FrameVerdict.RESTART
    assert seq.counters.restarts == 1
    assert seq.observe(4) is FrameVerdict.ACCEPT
