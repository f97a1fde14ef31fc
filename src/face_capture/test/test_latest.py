"""The one-frame slot between a producer and the publishing thread: newest wins, drops
counted, a waiting taker is woken by a frame or by close."""
import threading
import time

from face_capture.latest import LatestSlot


def test_the_newest_frame_replaces_an_untaken_one_and_counts_a_drop():
    slot = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.take(0.1) == 3
    assert slot.dropped == 2
    assert slot.take(0.01) is None            # nothing new: a timeout, not an old frame


def test_a_waiting_taker_is_woken_by_a_frame_and_by_close():
    slot = LatestSlot()
    got = []
    taker = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    taker.start()
    time.sleep(0.05)
    slot.put('frame')
    taker.join(2.0)
    assert got == ['frame']
    taker = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    start = time.monotonic()
    taker.start()
    slot.close()
    taker.join(2.0)
    assert got == ['frame', None] and time.monotonic() - start < 1.0


def test_a_slow_taker_never_sees_a_backlog():
    slot = LatestSlot()
    for frame in range(1000):
        slot.put(frame)
    assert slot.take(0.1) == 999 and slot.take(0.01) is None
    assert slot.dropped == 999
