"""Evaluation of retargeting models on a human take through a robot's twin (ROS-free).

Metrics (the ExFace paper's Table I plus smoothness and speed):
- motor distance: MSE between predicted and true commands on held-out twin recordings (the
  only place true commands exist);
- blendshape distance: MSE between the human's calibrated blendshapes and those the twin shows
  when driven by the predicted commands (through the safety layer), compared `delay` frames
  later, when the robot has had time to respond;
- jitter: mean absolute second difference of the commands;
- per-frame latency of the model (mean, p99).
"""
import json
from pathlib import Path
import time

import numpy as np

from face_actuation.simulate import rollout
from face_actuation.twin import FaceTwin
from face_common.metrics import blendshape_distance, jitter
from face_common.stats import summarize


def stream_commands(stream, frames: np.ndarray, neutral):
    """Commands for every frame, one step at a time as in the node, with per-step timing."""
    stream.reset(neutral)
    commands = np.empty((len(frames), stream.motors), np.float32)
    latency = np.empty(len(frames))
    for i, frame in enumerate(frames):
        started = time.perf_counter()
        commands[i] = stream.step(frame)
        latency[i] = (time.perf_counter() - started) * 1e3
    return commands, latency


def motor_distance(stream, episodes, delay: int, neutral) -> float:
    errors = []
    for episode in episodes:
        frames = episode.observed[delay:]
        truth = episode.commands[:len(episode.commands) - delay]
        predicted, _ = stream_commands(stream, frames, neutral)
        errors.append(np.mean((predicted - truth) ** 2))
    return float(np.mean(errors))


def shown_face(profile, commands: np.ndarray, rate: float, twin_seed=None) -> np.ndarray:
    """What the tracker reads off the twin driven by `commands` through the safety layer;
    the same tracker noise for every model (the twin's seed)."""
    return rollout(FaceTwin(profile, seed=twin_seed), commands, 1.0 / rate).observed


def evaluate(stream, profile, human: np.ndarray, validation, delay: int, rate: float,
             twin_seed=None) -> dict:
    neutral = profile.neutral
    commands, latency = stream_commands(stream, human, neutral)
    observed = shown_face(profile, commands, rate, twin_seed)
    lat = summarize(latency)
    return {'model': stream.name,
            'motor_distance': motor_distance(stream, validation, delay, neutral),
            'blendshape_distance': blendshape_distance(human, observed, delay),
            'jitter': jitter(commands),
            'latency_ms_mean': lat.mean, 'latency_ms_p99': lat.p99,
            '_commands': commands, '_observed': observed}


def write_report(results, human: np.ndarray, delay: int, out: Path, title: str) -> dict:
    """results.json (one entry per row: the models, holding neutral, and the oracle bound
    when computed), results.md (table), results.png and, with an oracle row, oracle.png."""
    out.mkdir(parents=True, exist_ok=True)
    public = [{k: v for k, v in r.items() if not k.startswith('_')} for r in results]
    (out / 'results.json').write_text(json.dumps(public, indent=1))
    lines = [f'# {title}', '', '| model | motor distance | blendshape distance | excess over '
             'oracle | jitter | latency mean (ms) | latency p99 (ms) |',
             '|---|---|---|---|---|---|---|']
    for r in public:
        cells = [_cell(r.get(key), digits) for key, digits in (
            ('motor_distance', 4), ('blendshape_distance', 4), ('excess', 4), ('jitter', 4),
            ('latency_ms_mean', 3), ('latency_ms_p99', 3))]
        lines.append(f'| {r["model"]} | ' + ' | '.join(cells) + ' |')
    oracle = next((r for r in public if r['model'] == 'oracle'), None)
    if oracle:
        lines += ['', f'Oracle: the best commands this head can execute on this take, '
                  f'optimised through the twin ({oracle["oracle_steps"]} steps from the '
                  f'{oracle["oracle_start"]} commands, smoothness weight '
                  f'{oracle["oracle_smoothness_weight"]}, {oracle["oracle_seconds"]:.0f} s).']
    (out / 'results.md').write_text('\n'.join(lines) + '\n')
    _figure(results, human, delay, out / 'results.png', title)
    paths = {'json': out / 'results.json', 'markdown': out / 'results.md',
             'figure': out / 'results.png'}
    if oracle:
        paths['oracle_figure'] = out / 'oracle.png'
        _oracle_figure(results, human, delay, paths['oracle_figure'], title)
    return paths


def _cell(value, digits: int) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


ORACLE_CHANNELS = ('JawOpen', 'MouthSmileLeft', 'BrowInnerUp', 'EyeBlinkLeft')


def _oracle_figure(results, human, delay, path, title) -> None:
    """Human, oracle and each model for a few channels: where a model falls short of what
    the head can show, and where the head itself cannot follow."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from face_common.arkit import channel_index
    span = slice(0, min(len(human), 600))
    fig, axes = plt.subplots(len(ORACLE_CHANNELS), 1, figsize=(12, 9), dpi=100, sharex=True)
    for ax, channel in zip(axes, ORACLE_CHANNELS, strict=True):
        index = channel_index(channel)
        ax.plot(human[span, index], color='black', linewidth=2, label='human')
        for r in results:
            if r['model'] in ('random', 'neutral'):
                continue
            oracle = r['model'] == 'oracle'
            ax.plot(r['_observed'][span.start + delay:span.stop + delay, index],
                    label=r['model'], linewidth=2 if oracle else 1,
                    color='tab:red' if oracle else None, alpha=1.0 if oracle else 0.7)
        ax.set_ylabel(channel)
        ax.grid(alpha=0.3)
    axes[0].legend(ncol=7, fontsize=8)
    axes[-1].set_xlabel('frame (30 fps)')
    fig.suptitle(f'{title}\nhuman / oracle / models')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _figure(results, human, delay, path, title) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from face_common.arkit import channel_index
    names = [r['model'] for r in results]
    fig = plt.figure(figsize=(12, 7), dpi=100)
    grid = fig.add_gridspec(2, 3)
    for col, (key, label) in enumerate((('blendshape_distance', 'blendshape distance'),
                                        ('jitter', 'jitter'), ('latency_ms_p99',
                                                               'latency p99 (ms)'))):
        ax = fig.add_subplot(grid[0, col])
        ax.bar(names, [r[key] or 0.0 for r in results], color='tab:blue')
        ax.set_title(label)
        ax.tick_params(axis='x', rotation=30)
        if key != 'latency_ms_p99':
            ax.set_yscale('log')
    ax = fig.add_subplot(grid[1, :])
    jaw = channel_index('JawOpen')
    span = slice(0, min(len(human), 600))
    ax.plot(human[span, jaw], color='black', linewidth=2, label='human (calibrated)')
    for r in results:
        if r['model'] != 'random':
            ax.plot(r['_observed'][span.start + delay:span.stop + delay, jaw], label=r['model'],
                    alpha=0.8)
    ax.set_title('JawOpen: human vs robot twin (first 20 s of the held-out take)')
    ax.set_xlabel('frame (30 fps)')
    ax.legend(ncol=6, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
