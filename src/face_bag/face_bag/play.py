"""Replay timing, ROS-free: when each recorded message is due, at a rate factor, from a start
offset, looping. Sleeps on the monotonic clock against an absolute schedule, so a slow
publish does not accumulate drift."""
import time

from face_bag.store import read_messages


def load(path, topics=None, start_s: float = 0.0):
    """The bag's messages from start_s (seconds after its first message) on; BagError if one
    does not decode (its bytes would go out to every subscriber as they are)."""
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
    sent = 0
    first = messages[0].timestamp_ns
    while running():
        t0 = clock()
        for message in messages:
            due = t0 + (message.timestamp_ns - first) / 1e9 / rate
            while running():
                wait = due - clock()
                if wait <= 0:
                    break
                sleep(min(wait, 0.05))
            if not running():
                return sent
            publish(message)
            sent += 1
        if not loop:
            break
    return sent
