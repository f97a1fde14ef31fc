"""Bags to training data: the recorded topics aligned on one clock, the actuator delay
estimated and compensated, windowed into T-frame sequences, split by episode.

Alignment uses receive (log) times: on a grid at `rate`, each topic contributes its latest
message at or before the grid time. A silence longer than max_gap_s on any topic splits the
recording into separate episodes (windows never span a gap, nothing stale is filled in).
Commands are what the robot executed (/face/robot/applied) where recorded, else what was
asked (/face/command).
"""
from dataclasses import dataclass, field
import itertools
import json
from pathlib import Path

import numpy as np

from face_bag.store import read_messages
from face_common import topics
from face_common.arkit import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, NUM_CHANNELS
from face_common.frames import blendshapes_to_array

HUMAN, COMMAND, APPLIED, ROBOT = (topic.bag_name for topic in (
    topics.HUMAN_BLENDSHAPES, topics.COMMAND, topics.ROBOT_APPLIED, topics.ROBOT_BLENDSHAPES))


@dataclass
class Episode:
    """One continuous recording on a fixed-rate grid."""

    observed: np.ndarray                 # (N, 61) what the robot face showed
    commands: np.ndarray                 # (N, M) normalised commands executed
    source: str = ''
    human: np.ndarray | None = None      # (N, 61) the human frames driving it, if any
    requested: np.ndarray | None = None  # (N, M) what was asked (/face/command), if recorded
    motor_names: list = field(default_factory=list)
    robot: str = ''


class ExportError(ValueError):
    """A bag that cannot become training data (missing topics, inconsistent motors)."""


def _series(messages, decode):
    times, values = [], []
    for message in messages:
        value = decode(message.decode())
        if value is not None:
            times.append(message.timestamp_ns)
            values.append(value)
    return np.asarray(times, np.int64), (np.stack(values) if values else None)


def read_episodes(path, rate: float = 30.0, max_gap_s: float = 0.1, source: str = ''):
    """The episodes of one bag, aligned on a `rate` grid; a grid point whose latest message on
    any topic is older than max_gap_s (a few lost frames are bridged) ends an episode."""
    by_topic = {}
    for message in read_messages(path, {HUMAN, COMMAND, APPLIED, ROBOT}):
        by_topic.setdefault(message.topic, []).append(message)
    command_topic = APPLIED if by_topic.get(APPLIED) else COMMAND
    if not by_topic.get(command_topic) or not by_topic.get(ROBOT):
        raise ExportError(f'{path}: needs {COMMAND} (or {APPLIED}) and {ROBOT}; has '
                          f'{sorted(by_topic)}')
    first = by_topic[command_topic][0].decode()
    names, robot = list(first.motor_names), first.robot_id

    def command_values(msg):
        if list(msg.motor_names) != names or len(msg.values) != len(names):
            return None
        values = np.asarray(msg.values, np.float64)
        return values if np.isfinite(values).all() else None

    streams = {'commands': _series(by_topic[command_topic], command_values),
               'observed': _series(by_topic[ROBOT], blendshapes_to_array)}
    if command_topic == APPLIED and by_topic.get(COMMAND):
        streams['requested'] = _series(by_topic[COMMAND], command_values)
    if by_topic.get(HUMAN):
        streams['human'] = _series(by_topic[HUMAN], blendshapes_to_array)
    if any(values is None for _, values in streams.values()):
        raise ExportError(f'{path}: a topic holds no usable messages')
    start = max(times[0] for times, _ in streams.values())
    end = min(times[-1] for times, _ in streams.values())
    step = int(round(1e9 / rate))
    grid = np.arange(start, end + 1, step, dtype=np.int64)
    if len(grid) < 2:
        return []
    picked, gap = {}, np.zeros(len(grid), bool)
    for key, (times, values) in streams.items():
        index = np.searchsorted(times, grid, side='right') - 1
        picked[key] = values[index]
        gap |= (grid - times[index]) > max_gap_s * 1e9
    episodes, run_start = [], None
    for i in range(len(grid) + 1):
        if i < len(grid) and not gap[i]:
            run_start = i if run_start is None else run_start
            continue
        if run_start is not None and i - run_start >= 2:
            span = slice(run_start, i)
            episodes.append(Episode(picked['observed'][span], picked['commands'][span],
                                    source or Path(path).name,
                                    picked['human'][span] if 'human' in picked else None,
                                    picked['requested'][span] if 'requested' in picked
                                    else None, names, robot))
        run_start = None
    return episodes


def _settled_holds(episode: Episode, min_hold: int, settled_fraction: float):
    """(start, end) of the settled last part of each hold: a run of one unchanged requested
    command lasting at least min_hold frames."""
    requested = episode.requested if episode.requested is not None else episode.commands
    changed = np.any(np.abs(np.diff(requested, axis=0)) > 1e-6, axis=1)
    bounds = np.concatenate([[0], np.flatnonzero(changed) + 1, [len(requested)]])
    for a, b in itertools.pairwise(bounds):
        if b - a >= min_hold:
            yield a + int((b - a) * (1 - settled_fraction)), b


def position_noise(episodes, min_hold: int = 6, settled_fraction: float = 0.5) -> np.ndarray:
    """Per-motor noise of the executed positions while a pose is held, from the data: the
    spread of frame-to-frame changes over the settled parts of the holds (a slow drift barely
    changes them), divided by sqrt(2), the median over holds. 0 for a robot that reports
    its commanded positions (a safety layer's output); a few thousandths for servos that
    report measured ones."""
    spreads = [np.diff(e.commands[start:end], axis=0).std(axis=0) / np.sqrt(2.0)
               for e in episodes
               for start, end in _settled_holds(e, min_hold, settled_fraction)
               if end - start >= 3]
    if not spreads:
        return np.zeros(episodes[0].commands.shape[1]) if episodes else np.zeros(0)
    return np.median(np.stack(spreads), axis=0)


def static_pairs(episode: Episode, min_hold: int = 6, settled_fraction: float = 0.5,
                 noise=0.0):
    """(poses, readings) from a recording of held poses (the bootstrap's static stage).

    The pose is what the robot executed over the settled last part of each hold (median), and
    it counts only if the executed positions stopped there: the mean of the part's second
    half differs from the first half's by at most 4 standard errors of the positions'
    `noise` (per motor, e.g. position_noise; 0 for exact positions, which must then not move
    at all). The safety layer or a lagging servo may still have been moving it. The reading
    is the face averaged over that settled part."""
    noise = np.asarray(noise, np.float64)
    poses, readings = [], []
    for settled, b in _settled_holds(episode, min_hold, settled_fraction):
        executed = episode.commands[settled:b]
        half = len(executed) // 2
        if half:
            drift = np.abs(executed[half:].mean(0) - executed[:half].mean(0))
            allowed = 4.0 * noise * np.sqrt(2.0 / half) + 1e-6
            if np.any(drift > allowed):
                continue
        poses.append(np.median(executed, axis=0))
        readings.append(episode.observed[settled:b].mean(axis=0))
    if not poses:
        return np.zeros((0, episode.commands.shape[1])), np.zeros((0, NUM_CHANNELS))
    return np.stack(poses), np.stack(readings)


def estimate_delay(episodes, max_lag: int = 10) -> int:
    """Frames between a command and the face reading that best reflects it: the lag at which
    a linear map from commands to readings explains the readings best."""
    best, best_error = 0, np.inf
    for lag in range(max_lag + 1):
        x = np.concatenate([e.commands[:len(e.commands) - lag] for e in episodes])
        y = np.concatenate([e.observed[lag:] for e in episodes])
        x1 = np.hstack([x, np.ones((len(x), 1))])
        coef, *_ = np.linalg.lstsq(x1, y, rcond=None)
        error = np.mean((x1 @ coef - y) ** 2)
        if error < best_error:
            best, best_error = lag, error
    return best


def windows(episodes, window: int, stride: int, delay: int):
    """Aligned (observed, commands) windows: command t with the reading at t + delay."""
    obs, cmd = [], []
    for episode in episodes:
        observed = episode.observed[delay:]
        commands = episode.commands[:len(episode.commands) - delay]
        for start in range(0, len(commands) - window + 1, stride):
            obs.append(observed[start:start + window])
            cmd.append(commands[start:start + window])
    if not obs:
        motors = episodes[0].commands.shape[1] if episodes else 0
        return np.zeros((0, window, NUM_CHANNELS)), np.zeros((0, window, motors))
    return np.stack(obs), np.stack(cmd)


def split_episodes(episodes, validation_fraction: float, seed: int = 0):
    """(train, validation) by whole episodes, never by windows of one episode."""
    order = np.random.default_rng(seed).permutation(len(episodes))
    count = int(round(len(episodes) * validation_fraction))
    if validation_fraction > 0 and len(episodes) > 1:
        count = max(1, count)
    held = set(order[:count].tolist())
    return ([e for i, e in enumerate(episodes) if i not in held],
            [e for i, e in enumerate(episodes) if i in held])


def export_dataset(dynamic_bags, out, static_bags=(), window: int = 60, stride: int = 2,
                   rate: float = 30.0, validation_fraction: float = 0.2, seed: int = 0) -> dict:
    """Write dataset.npz (train/validation windows, static pairs) and its card (card.json,
    card.md) into out; returns the card."""
    out = Path(out)
    dynamic = [e for bag in dynamic_bags for e in read_episodes(bag, rate)]
    static = [e for bag in static_bags for e in read_episodes(bag, rate)]
    if not dynamic and not static:
        raise ExportError('no episodes in the given bags')
    robots = {e.robot for e in dynamic + static}
    if len(robots) > 1:
        raise ExportError(f'bags from several robots: {sorted(robots)}')
    delay = estimate_delay(dynamic) if dynamic else 0
    train, validation = split_episodes(dynamic, validation_fraction, seed)
    train_obs, train_cmd = windows(train, window, stride, delay)
    val_obs, val_cmd = windows(validation, window, stride, delay)
    noise = position_noise(static)
    pairs = [static_pairs(e, noise=noise) for e in static]
    poses = np.concatenate([p for p, _ in pairs]) if pairs else np.zeros((0, 0))
    readings = np.concatenate([r for _, r in pairs]) if pairs else np.zeros((0, NUM_CHANNELS))
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / 'dataset.npz', train_observed=train_obs.astype(np.float32),
                        train_commands=train_cmd.astype(np.float32),
                        validation_observed=val_obs.astype(np.float32),
                        validation_commands=val_cmd.astype(np.float32),
                        static_poses=poses.astype(np.float32),
                        static_readings=readings.astype(np.float32))
    card = dataset_card(dynamic, static, train, validation, poses, delay, window, stride, rate,
                        [str(b) for b in dynamic_bags], [str(b) for b in static_bags])
    card['windows'] = {'train': len(train_obs), 'validation': len(val_obs)}
    (out / 'card.json').write_text(json.dumps(card, indent=1))
    (out / 'card.md').write_text(card_markdown(card))
    return card


def dataset_card(dynamic, static, train, validation, poses, delay, window, stride, rate,
                 dynamic_bags, static_bags) -> dict:
    episodes = dynamic + static
    commands = np.concatenate([e.commands for e in episodes])
    observed = np.concatenate([e.observed for e in episodes])[:, :NUM_BLENDSHAPES]
    return {
        'robot': episodes[0].robot, 'motors': episodes[0].motor_names, 'rate_hz': rate,
        'window': window, 'stride': stride, 'delay_frames': int(delay),
        'delay_ms': 1e3 * delay / rate,
        'episodes': {'dynamic': len(dynamic), 'static': len(static), 'train': len(train),
                     'validation': len(validation)},
        'frames': {'dynamic': int(sum(len(e.commands) for e in dynamic)),
                   'static': int(sum(len(e.commands) for e in static))},
        'duration_s': {'dynamic': sum(len(e.commands) for e in dynamic) / rate,
                       'static': sum(len(e.commands) for e in static) / rate},
        'static_poses': int(len(poses)),
        'statistics': {
            'command_mean': float(commands.mean()), 'command_std': float(commands.std()),
            'command_min': float(commands.min()), 'command_max': float(commands.max()),
            'blendshape_mean': float(observed.mean()), 'blendshape_std': float(observed.std()),
            'most_active_blendshapes': _most_active(observed)},
        'bags': {'dynamic': dynamic_bags, 'static': static_bags},
    }


def _most_active(observed: np.ndarray, count: int = 5) -> dict:
    std = observed.std(axis=0)
    return {BLENDSHAPE_NAMES[i]: round(float(std[i]), 4) for i in np.argsort(std)[::-1][:count]}


def card_markdown(card: dict) -> str:
    lines = [f'# Dataset card: {card["robot"]}', '',
             f'- motors: {len(card["motors"])}; rate {card["rate_hz"]:.0f} Hz; window '
             f'{card["window"]} frames, stride {card["stride"]}',
             f'- actuator delay: {card["delay_frames"]} frames ({card["delay_ms"]:.0f} ms), '
             'estimated from the dynamic episodes and compensated',
             f'- episodes: {card["episodes"]}',
             f'- frames: {card["frames"]}; duration (s): '
             f'{ {k: round(v, 1) for k, v in card["duration_s"].items()} }',
             f'- static poses: {card["static_poses"]}',
             f'- windows: {card.get("windows", {})}',
             f'- statistics: {card["statistics"]}',
             f'- bags: {card["bags"]}', '']
    return '\n'.join(lines)
