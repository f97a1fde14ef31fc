"""Command-line tools: face-retarget-bootstrap, face-retarget-train and face-retarget-eval."""
import argparse
from dataclasses import asdict
import json
from pathlib import Path
import sys
import time

import numpy as np

from face_actuation.profile import ProfileError, load_profile
from face_actuation.twin import FaceTwin
from face_bag.export import ExportError
from face_bag.store import BagError
from face_capture.bundled import bundled_take_path
from face_capture.takes import TakeFormatError, read_take
from face_retarget.baselines import LinearRetarget
from face_retarget.evaluate import evaluate, write_report
from face_retarget.models import (
    LinearStream,
    Normaliser,
    RandomStream,
    TorchStream,
    new_model,
)
from face_retarget.recipe import (
    TRAIN_END_S,
    build_dataset,
    split_take,
    validation_episodes,
)
from face_retarget.training import (
    CheckpointError,
    TrainConfig,
    default_checkpoint_dir,
    load_checkpoint,
    plot_curves,
    save_checkpoint,
    train,
)

LEARNED = ('exface', 'mlp', 'transformer')


def _robot_and_take(args, tool: str):
    """The robot profile and human take both CLIs start from; None (after a clear error
    line) when either cannot be read."""
    try:
        return load_profile(args.robot), read_take(args.take or bundled_take_path())
    except (ProfileError, TakeFormatError, OSError) as exc:
        print(f'{tool}: {exc}', file=sys.stderr)
        return None


def train_main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Train the retargeting models for a robot on its digital twin '
                    '(ExFace diffusion transformer, MLP and Transformer baselines, linear).')
    parser.add_argument('--robot', required=True)
    parser.add_argument('--out', type=Path, default=None,
                        help='checkpoint directory (default: the shipped checkpoints)')
    parser.add_argument('--models', default=','.join(LEARNED))
    parser.add_argument('--take', default='', help='human take (default: the bundled one)')
    parser.add_argument('--train-end-s', type=float, default=TRAIN_END_S,
                        help='use the take up to here; the rest stays held out')
    parser.add_argument('--window', type=int, default=60)
    parser.add_argument('--d-model', type=int, default=128)
    parser.add_argument('--layers', type=int, default=4)
    parser.add_argument('--heads', type=int, default=4)
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--static-frames', type=int, default=72_000)
    parser.add_argument('--interpolation-frames', type=int, default=12_000)
    parser.add_argument('--resume', action='store_true', help='continue unfinished training')
    parser.add_argument('--ship', action='store_true',
                        help='write shipping checkpoints: float16 weights, no optimiser state '
                             '(implied when --out is left at the shipped directory)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    loaded = _robot_and_take(args, 'face-retarget-train')
    if loaded is None:
        return 2
    profile, take = loaded
    out = (args.out or default_checkpoint_dir()) / profile.name
    out.mkdir(parents=True, exist_ok=True)
    human_train, _ = split_take(take, args.train_end_s)
    started = time.monotonic()
    print(f'{profile.name}: building the dataset on the twin ...', flush=True)
    data = build_dataset(FaceTwin(profile), human_train, args.window, seed=args.seed,
                         static_frames=args.static_frames,
                         interpolation_frames=args.interpolation_frames)
    print(f'{profile.name}: {len(data.observed)} windows of {args.window} frames '
          f'({data.counts}), actuator delay {data.delay} frames', flush=True)
    normaliser = Normaliser.fit(data.observed)
    data.linear.save(out / 'linear.npz')
    info = {'delay': data.delay, 'counts': data.counts, 'take': take.name,
            'train_end_s': args.train_end_s, 'frame_rate': 30.0}
    (out / 'dataset.json').write_text(json.dumps(info, indent=1))
    config = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    curves = {}
    for kind in [m for m in args.models.split(',') if m]:
        if kind not in LEARNED:
            parser.error(f'unknown model {kind!r}; choose from {LEARNED}')
        path = out / f'{kind}.pt'
        model = new_model(kind, profile.num_motors, args.window, args.d_model, args.layers,
                          args.heads, args.seed, frame_rate=30.0)
        history, optimizer_state, start = [], None, 0
        if args.resume and path.exists():
            try:
                model, normaliser_saved, payload = load_checkpoint(path, profile)
            except CheckpointError as exc:
                print(f'cannot resume {path}: {exc}', file=sys.stderr)
                return 2
            history = payload.get('history', [])
            optimizer_state = payload.get('optimizer')
            start = payload['info'].get('steps_done', config.steps)
            normaliser = normaliser_saved
        if start < config.steps:
            history, optimizer_state = train(model, data.observed, data.commands, normaliser,
                                             config, history, optimizer_state, start,
                                             progress=not args.no_progress, label=kind)
        curves[kind] = history
        ship = args.ship or args.out is None
        save_checkpoint(path, model, normaliser, profile, config, history,
                        None if ship else optimizer_state, {**info, 'steps_done': config.steps},
                        half=ship)
        first, last = history[0][1], history[-1][1]
        print(f'{profile.name}/{kind}: loss {first:.4f} -> {last:.4f} ({path})', flush=True)
    plot_curves(curves, out / 'training_curves.png', f'{profile.name}: training loss')
    print(f'{profile.name}: done in {time.monotonic() - started:.0f} s', flush=True)
    return 0


def eval_main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Evaluate retargeting models on a human take through a robot twin.')
    parser.add_argument('--robot', required=True)
    parser.add_argument('--take', default='', help='Live Link Face CSV (default: bundled)')
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--checkpoints', type=Path, default=None)
    parser.add_argument('--models', default='random,linear,mlp,transformer,exface')
    parser.add_argument('--start-s', type=float, default=None,
                        help='evaluate from here (default: the held-out part of the bundled '
                             f'take, from {TRAIN_END_S:.0f} s; 0 for another take)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    loaded = _robot_and_take(args, 'face-retarget-eval')
    if loaded is None:
        return 2
    profile, take = loaded
    start = args.start_s if args.start_s is not None else (0.0 if args.take else TRAIN_END_S)
    _, human = split_take(take, start)
    directory = (args.checkpoints or default_checkpoint_dir()) / profile.name
    info_path = directory / 'dataset.json'
    if not info_path.is_file():
        print(f'face-retarget-eval: no trained models in {directory} (run '
              f'face-retarget-train --robot {profile.name})', file=sys.stderr)
        return 2
    info = json.loads(info_path.read_text())
    delay = int(info['delay'])
    linear = LinearRetarget.load(directory / 'linear.npz')
    validation = validation_episodes(FaceTwin(profile, seed=1000 + args.seed), linear, human,
                                     np.random.default_rng(1000 + args.seed))
    results = []
    for name in [m for m in args.models.split(',') if m]:
        try:
            if name == 'random':
                stream = RandomStream(profile.num_motors, args.seed)
            elif name == 'linear':
                stream = LinearStream(linear)
            else:
                model, normaliser, payload = load_checkpoint(directory / f'{name}.pt', profile)
                stream = TorchStream(model, normaliser, profile.num_motors,
                                     payload['config'].get('window', 1), deterministic=True,
                                     seed=args.seed)
        except (CheckpointError, OSError) as exc:
            print(f'face-retarget-eval: {name}: {exc}', file=sys.stderr)
            return 2
        result = evaluate(stream, profile, human, validation, delay, 30.0)
        print(f'{profile.name} {name:<12} motor {result["motor_distance"]:.4f}  blendshape '
              f'{result["blendshape_distance"]:.4f}  jitter {result["jitter"]:.4f}  '
              f'latency p99 {result["latency_ms_p99"]:.2f} ms', flush=True)
        results.append(result)
    title = (f'{profile.name}: {take.name} from {start:.0f} s ({len(human)} frames, held out), '
             f'twin delay {delay} frames')
    paths = write_report(results, human, delay, args.out, title)
    print(f'report: {paths["markdown"]}, {paths["json"]}, {paths["figure"]}')
    return 0


def bootstrap_main(argv=None) -> int:
    from face_retarget.bootstrap import Bootstrap, BootstrapConfig, SettingsMismatch, TwinRobot
    from face_retarget.bootstrap import write_report as write_bootstrap_report
    defaults = BootstrapConfig(robot='')
    parser = argparse.ArgumentParser(
        description='The ExFace bootstrap loop on a robot: static poses, then model-driven '
                    'iterations from human takes, every stage recorded as rosbag2 bags; '
                    'report and plot of held-out blendshape distance per iteration against '
                    'random interpolation. Resumes in --out after an interruption.')
    parser.add_argument('--robot', required=True)
    parser.add_argument('--out', type=Path, required=True,
                        help='working folder: bags/, models/, state.json, report.*')
    parser.add_argument('--target', choices=('twin', 'live'), default='twin',
                        help='twin: the digital twin offline; live: the running actuation '
                             'node through ROS (real hardware or a twin in real time)')
    parser.add_argument('--take', action='append', default=[],
                        help='human takes that drive the dynamic stages (default: bundled)')
    parser.add_argument('--train-end-s', type=float, default=TRAIN_END_S,
                        help='the bundled take is used up to here; the rest is the held-out '
                             'set every iteration is scored on')
    parser.add_argument('--ship', nargs='?', const='', default=None, metavar='DIR',
                        help='write the final models as checkpoints into DIR/<robot> '
                             '(no DIR: the shipped checkpoints)')
    parser.add_argument('--no-progress', action='store_true')
    for name, value in asdict(defaults).items():
        if name in ('robot', 'extra', 'speed_range'):
            continue
        flag = '--' + name.replace('_', '-')
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    args = parser.parse_args(argv)
    args.take = args.take or ['']
    takes = []
    for take_path in args.take:
        args_one = argparse.Namespace(robot=args.robot, take=take_path)
        loaded = _robot_and_take(args_one, 'face-retarget-bootstrap')
        if loaded is None:
            return 2
        profile, take = loaded
        takes.append(take)
    config = BootstrapConfig(robot=profile.name, **{
        k: getattr(args, k) for k in asdict(defaults) if k not in ('robot', 'extra',
                                                                  'speed_range')})
    human_train, held_out = split_take(takes[0], args.train_end_s)
    trains = [human_train] + [split_take(t, 1e9)[0] for t in takes[1:]]
    if args.target == 'live':
        from face_retarget.live_robot import LiveRobot
        robot = LiveRobot(profile, config.rate)
    else:
        robot = TwinRobot(profile, seed=config.seed, rate=config.rate)
    out = args.out / profile.name
    print(f'{profile.name}: bootstrap on {robot.name} into {out}', flush=True)
    try:
        try:
            loop = Bootstrap(config, profile, robot, trains, held_out, out,
                             progress=not args.no_progress,
                             log=lambda line: print(line, flush=True))
        except SettingsMismatch as error:
            print(f'face-retarget-bootstrap: {error}', file=sys.stderr)
            return 2
        try:
            report = loop.run()
        except (RuntimeError, BagError, ExportError) as error:
            # The robot went away, a disk filled, a recording came back empty: the finished
            # stages are kept in the run folder and a rerun resumes after them.
            print(f'face-retarget-bootstrap: {error}; finished stages are kept in {out}: '
                  'rerun the same command to resume', file=sys.stderr)
            return 1
    finally:
        if hasattr(robot, 'close'):
            robot.close()
    curves = dict(report['curves'])
    paths = write_bootstrap_report(report, out)
    print(f'report: {paths["markdown"]}, {paths["figure"]}', flush=True)
    if args.ship is not None:
        _ship(loop, profile, curves, out, args)
    return 0


def _ship(loop, profile, curves, out: Path, args) -> None:
    """The final bootstrap model as the shipped ExFace checkpoint, with the MLP and
    Transformer baselines trained on the same final data and the linear map on the static
    pairs, so the shipped set is one comparable family."""
    c = loop.config
    directory = (Path(args.ship) if args.ship else default_checkpoint_dir()) / profile.name
    directory.mkdir(parents=True, exist_ok=True)
    observed, commands = loop.final_data
    info = {'delay': loop.delay, 'counts': loop.counts, 'take': 'bootstrap',
            'train_end_s': args.train_end_s, 'frame_rate': c.rate,
            'bootstrap_report': 'bootstrap.md'}
    save_checkpoint(directory / 'exface.pt', loop.final_model, loop.normaliser, profile,
                    TrainConfig(steps=c.static_steps + c.finetune_steps * c.max_iterations),
                    [], None, {**info, 'steps_done': c.static_steps}, half=True)
    config = TrainConfig(steps=c.baseline_steps, batch=c.batch, seed=c.seed)
    for kind in ('mlp', 'transformer'):
        model = new_model(kind, profile.num_motors, c.window, c.d_model, c.layers, c.heads,
                          c.seed)
        history, _ = train(model, observed, commands, loop.normaliser, config,
                           progress=not args.no_progress, label=kind)
        curves[kind] = history
        save_checkpoint(directory / f'{kind}.pt', model, loop.normaliser, profile, config,
                        history, None, {**info, 'steps_done': config.steps}, half=True)
        print(f'{profile.name}/{kind}: loss {history[0][1]:.4f} -> {history[-1][1]:.4f}',
              flush=True)
    loop.linear.save(directory / 'linear.npz')
    (directory / 'dataset.json').write_text(json.dumps(info, indent=1))
    plot_curves(curves, directory / 'training_curves.png', f'{profile.name}: training loss')
    for name in ('report.md', 'bootstrap.png', 'report.json'):
        target = {'report.md': 'bootstrap.md', 'report.json': 'bootstrap.json'}.get(name, name)
        (directory / target).write_bytes((out / name).read_bytes())
    print(f'{profile.name}: shipped checkpoints written to {directory}', flush=True)


if __name__ == '__main__':
    sys.exit(train_main())
