"""Replay timing, ROS-free: the bag's messages from a start offset, each published at its
recorded spacing divided by a rate factor, looping (the schedule is face_common.pacing's)."""
import time

from face_bag.store import read_messages
from face_common.pacing import paced


def load(path, topics=None, start_s: float = 0.0):
    """The bag's messages from start_s (seconds after its first message) on, each decoded
    once here (kept for the player): BagError if one does not decode (its bytes would go out
    to every subscriber as they are)."""
    messages = list(read_messages(path, topics))
    for message in messages:
        message.decode()
    if not messages:
        return []
    first = messages[0].timestamp_ns
    start = first + int(start_s * 1e9)
    return [m for m in messages if m.timestamp_ns >= start]


def play(messages, publish, rate: float = 1.0, loop: bool = False, running=lambda: True,
         clock=time.monotonic, sleep=time.sleep) -> int:
    """Call publish(message) for each message at its recorded spacing divided by rate;
    returns how many went out. Stops when running() turns false."""
    if not messages or rate <= 0:
        return 0
    first = messages[0].timestamp_ns
    times = [(m.timestamp_ns - first) / 1e9 for m in messages]
    sent = 0
    while running():
        for index, _ in paced(times, rate, running, clock, sleep):
            publish(messages[index])
            sent += 1
        if not loop:
            break
    return sent
