"""The shared helpers: playback pacing on an injected clock, atomic file replacement, and the
share-path lookup order."""
import os
from pathlib import Path

import pytest

from face_common.atomic import write_atomic
from face_common.pacing import MAX_SLEEP_S, paced
from face_common.paths import share_path, user_data_dir


def simulated_time(start: float = 50.0):
    """(clock, sleep, now): time that moves only when the scheduler sleeps on it or a test
    moves now[0] (a slow consumer)."""
    now = [start]

    def sleep(seconds):
        assert 0 < seconds <= MAX_SLEEP_S          # short sleeps: a stop request is seen soon
        now[0] += seconds
    return (lambda: now[0]), sleep, now


def test_items_come_out_at_their_offsets_divided_by_the_rate():
    clock, sleep, _ = simulated_time()
    out = [(i, clock() - 50.0) for i, _ in paced([10.0, 10.1, 10.4], 2.0, clock=clock,
                                                   sleep=sleep)]
    assert [(i, round(t, 9)) for i, t in out] == [(0, 0.0), (1, 0.05), (2, 0.2)]


def test_a_slow_consumer_does_not_push_the_schedule_back():
    clock, sleep, now = simulated_time()
    lateness = []
    for _, late in paced([0.0, 0.1, 0.2, 0.3], clock=clock, sleep=sleep):
        lateness.append(round(late, 9))
        now[0] += 0.15                       # each item takes longer than the spacing
    # absolute schedule: item k is due at 0.1 k; handed out at 0.15 k
    assert lateness == [0.0, 0.05, 0.1, 0.15]


def test_a_stop_request_ends_the_schedule_and_a_bad_rate_is_refused():
    clock, sleep, _ = simulated_time()
    seen = []
    for i, _ in paced([0.0, 1.0, 2.0], running=lambda: len(seen) < 2, clock=clock,
                      sleep=sleep):
        seen.append(i)
    assert seen == [0, 1]
    with pytest.raises(ValueError):
        list(paced([0.0], rate=0.0))


def test_an_atomic_write_replaces_the_whole_file_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / 'deep' / 'state.json'
    write_atomic(target, 'first')
    write_atomic(target, b'second')
    assert target.read_text() == 'second'
    assert os.listdir(target.parent) == ['state.json']
    (tmp_path / 'file').write_text('')
    with pytest.raises(OSError):                               # a file where a folder goes
        write_atomic(tmp_path / 'file' / 'x.json', 'never')


def test_an_atomic_write_that_fails_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / 'calibration.yaml'
    write_atomic(target, 'old')

    def refuse(*_):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'replace', refuse)
    with pytest.raises(OSError):
        write_atomic(target, 'new')
    assert target.read_text() == 'old'
    assert os.listdir(tmp_path) == ['calibration.yaml']


def test_the_source_tree_comes_first_then_the_installed_share(tmp_path):
    source = tmp_path / 'profiles'
    source.mkdir()
    assert share_path('face_actuation', 'profiles', source) == source
    missing = tmp_path / 'nowhere'
    installed = share_path('face_actuation', 'profiles', missing)
    assert installed != missing and (installed / 'hobbs.yaml').is_file()
    assert share_path('no_such_package', 'x', missing) == missing


def test_user_data_folders_follow_their_variable(monkeypatch, tmp_path):
    monkeypatch.setenv('FACE_TEST_DIR', str(tmp_path))
    assert user_data_dir('FACE_TEST_DIR', 'state') == tmp_path
    monkeypatch.delenv('FACE_TEST_DIR')
    assert user_data_dir('FACE_TEST_DIR', 'state') == \
        Path.home() / '.local' / 'share' / 'face_shadowing' / 'state'
