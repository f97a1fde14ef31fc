"""What a recorded shadowing session shows, from its bag alone (ROS-free): the side-by-side
video (human face | robot face), blendshape distance, jitter, per-stage latency percentiles
and every drop along the chain. `make demo` writes it at the end of each run.

Pairing: each robot face reading carries the stamp of the human frame whose command it
follows; the last reading for a stamp is the face one frame period after that command. The
robot's actuator delay (frames from a command to the face that reflects it) is estimated from
the session's own commands and faces, as the bootstrap's probe does, and each human frame is
compared with the face `delay` frames later: the offline evaluation's alignment.
"""
from collections import defaultdict
import json
from pathlib import Path

import numpy as np

from face_bag.export import Episode, estimate_delay
from face_bag.store import read_messages
from face_common import topics
from face_common.arkit import NUM_BLENDSHAPES, NUM_CHANNELS
from face_common.frames import blendshapes_to_array
from face_common.latency import LatencySummary, Stage, TraceJoiner
from face_common.metrics import blendshape_distance, jitter

HUMAN, COMMAND, ROBOT, LATENCY = (topic.bag_name for topic in (
    topics.HUMAN_BLENDSHAPES, topics.COMMAND, topics.ROBOT_BLENDSHAPES, topics.LATENCY))


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def read_session(bag) -> dict:
    """The session's streams: human frames, commands, robot readings and joined traces."""
    human, commands, robot = [], [], {}
    joiner, latency = TraceJoiner(), LatencySummary(size=10**6)
    cache = {}
    numbers = defaultdict(list)
    for message in read_messages(bag, {HUMAN, COMMAND, ROBOT, LATENCY}):
        msg = message.decode()
        if message.topic == HUMAN:
            values = blendshapes_to_array(msg, cache)
            if values is None:
                continue
            numbers[msg.device_id].append(msg.frame_number)
            human.append((_stamp(msg), message.timestamp_ns, values))
        elif message.topic == COMMAND:
            commands.append((_stamp(msg), np.asarray(msg.values, np.float64)))
        elif message.topic == ROBOT:
            values = blendshapes_to_array(msg, cache)
            if values is not None and msg.frame_number > 0:
                robot[_stamp(msg)] = values           # the last reading for each stamp
        else:
            stages = [Stage(s.stage, s.node, s.start.sec * 10**9 + s.start.nanosec,
                            s.duration_ms) for s in msg.stages]
            trace = joiner.add(_stamp(msg), stages)
            if trace is not None:
                latency.add(trace)
    return {'human': human, 'commands': commands, 'robot': robot, 'latency': latency,
            'frame_gaps': sum(lost_frames(n) for n in numbers.values()), 'joiner': joiner}


def lost_frames(frame_numbers) -> int:
    """Frames missing from a sender's numbering; its step (Live Link Face counts timecode
    frames, often 2 per 30 fps frame) is the most common advance."""
    steps = np.diff(np.asarray(frame_numbers, np.int64))
    forward = steps[steps > 0]
    if not len(forward):
        return 0
    values, counts = np.unique(forward, return_counts=True)
    step = values[np.argmax(counts)]
    return int(sum(s // step - 1 for s in forward if s > step))


def session_delay(session: dict, max_lag: int = 10) -> int:
    """Frames from a command to the face that best reflects it, over the human frames that
    have both a command and a robot reading (0 when too few)."""
    commands = dict(session['commands'])
    robot = session['robot']
    rows = [(commands[stamp], robot[stamp]) for stamp, _, _ in session['human']
            if stamp in commands and stamp in robot]
    if len(rows) < 4 * max_lag or len({len(c) for c, _ in rows}) != 1:
        return 0
    episode = Episode(np.stack([r for _, r in rows]), np.stack([c for c, _ in rows]))
    return int(estimate_delay([episode], max_lag))


def summarise(session: dict) -> dict:
    human, commands, robot = session['human'], session['commands'], session['robot']
    command_stamps = {stamp for stamp, _ in commands}
    first_command = min(command_stamps, default=None)
    delay = session_delay(session)
    stamps = [stamp for stamp, _, _ in human]
    paired = [(values, robot[stamps[i + delay]]) for i, (_, _, values) in
              enumerate(human[:len(human) - delay]) if stamps[i + delay] in robot]
    distance = blendshape_distance(np.stack([h for h, _ in paired]),
                                   np.stack([r for _, r in paired])) if paired else float('nan')
    values = np.stack([v for _, v in commands]) if commands else np.zeros((0, 0))
    duration = (human[-1][1] - human[0][1]) / 1e9 if len(human) > 1 else 0.0
    latency = {name: {k: round(v, 3) for k, v in s.as_dict().items()}
               for name, s in session['latency'].summaries().items()}
    return {
        'duration_s': round(duration, 2),
        'human_frames': len(human),
        'human_rate_hz': round((len(human) - 1) / duration, 2) if duration > 0 else 0.0,
        'commands': len(commands),
        'robot_frames_paired': len(paired),
        'delay_frames': delay,
        'blendshape_distance': distance,
        'jitter': jitter(values) if len(values) else float('nan'),
        'latency_ms': latency,
        'drops': {
            # frame-number gaps in the bag: lost by UDP, the receiver or the recorder's own
            # best-effort subscription (the bundled take itself skips 3 numbers)
            'human_frames_missing': session['frame_gaps'],
            'frames_before_first_command': sum(
                1 for stamp, _, _ in human if first_command is None or stamp < first_command),
            'human_frames_without_command': sum(
                1 for stamp, _, _ in human
                if first_command is not None and stamp > first_command
                and stamp not in command_stamps),
            'commands_never_shown': sum(1 for stamp in command_stamps
                                        if stamp not in robot),
            'traces_incomplete': session['joiner'].incomplete,
        },
    }


def write_video(session: dict, path: Path, fps: float = 30.0, size: int = 320) -> int:
    """human | robot, one video frame per human frame; the robot face is the last reading
    that follows this frame (or the previous one shown). Returns the frame count."""
    import cv2

    from face_common.render import draw_face, side_by_side
    writer = None
    robot_values = np.zeros(NUM_CHANNELS)
    count = 0
    t0 = session['human'][0][1] if session['human'] else 0
    try:
        for stamp, received, values in session['human']:
            robot_values = session['robot'].get(stamp, robot_values)
            image = side_by_side(draw_face(values, size, 'human', 'human'),
                                 draw_face(robot_values, size, 'robot', 'robot'))
            cv2.putText(image, f'{(received - t0) / 1e9:6.2f} s', (8, 20),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (60, 60, 60), 1, cv2.LINE_AA)
            if writer is None:
                height, width = image.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                         (width, height))
                if not writer.isOpened():
                    raise OSError(f'cannot write {path}')
            writer.write(image)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    return count


def session_report(bag, out, video: bool = True) -> dict:
    """summary.json, summary.md and (video) side_by_side.mp4 in out."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    session = read_session(bag)
    summary = {'bag': str(bag), **summarise(session)}
    if video and session['human']:
        summary['video'] = str(out / 'side_by_side.mp4')
        summary['video_frames'] = write_video(session, out / 'side_by_side.mp4')
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))
    (out / 'summary.md').write_text(markdown(summary))
    return summary


def markdown(summary: dict) -> str:
    lines = ['# Shadowing session', '',
             f'- bag: `{summary["bag"]}`; {summary["duration_s"]} s, {summary["human_frames"]} '
             f'human frames at {summary["human_rate_hz"]} Hz, {summary["commands"]} commands',
             f'- blendshape distance (human vs robot face, MSE over {NUM_BLENDSHAPES}): '
             f'{summary["blendshape_distance"]:.5f} over {summary["robot_frames_paired"]} frames '
             f'(robot face {summary["delay_frames"]} frames later: the actuator delay)',
             f'- jitter (mean |second difference| of commands): {summary["jitter"]:.5f}',
             f'- drops: {summary["drops"]}', '',
             '| stage | mean | p50 | p95 | p99 | max | frames |', '|---|---|---|---|---|---|---|']
    order = defaultdict(lambda: 1, {'end-to-end': 2})
    for name, s in sorted(summary['latency_ms'].items(), key=lambda kv: order[kv[0]]):
        lines.append(f'| {name} | {s["mean"]:.2f} | {s["p50"]:.2f} | {s["p95"]:.2f} | '
                     f'{s["p99"]:.2f} | {s["max"]:.2f} | {s["count"]} |')
    if 'video' in summary:
        lines += ['', f'Video: `{summary["video"]}` ({summary["video_frames"]} frames).']
    return '\n'.join(lines) + '\n'
