"""Command-line tools: face-retarget-bootstrap and face-retarget-train (the one training
pipeline, with the paper's settings and a quick preset) and face-retarget-eval."""
import argparse
import json
from pathlib import Path
import sys

import numpy as np

from face_actuation.family import family_variant, physics_summary, sample_family
from face_actuation.profile import ProfileError, load_profile, with_physics
from face_actuation.twin import FaceTwin
from face_bag.export import ExportError
from face_bag.store import BagError
from face_capture.bundled import bundled_take_path
from face_capture.takes import TakeFormatError, read_take
from face_common.cli_options import add_options, from_options
from face_common.metrics import blendshape_distance, jitter
from face_retarget.baselines import LinearRetarget
from face_retarget.bootstrap import (
    Bootstrap,
    BootstrapConfig,
    SettingsMismatch,
    TwinRobot,
    quick_recipe,
)
from face_retarget.evaluate import evaluate, shown_face, write_report
from face_retarget.oracle import OracleConfig, oracle
from face_retarget.recipe import TRAIN_END_S, split_take, validation_episodes
from face_retarget.training import CheckpointError, default_checkpoint_dir, open_retargeter

EVAL_MODELS = 'random,neutral,linear,mlp,transformer,exface'
EVAL_RATE = 30.0          # frames per second of the calibrated takes


def _read_take(path: str, tool: str):
    """The take at `path` (the bundled one for ''); None after a clear error line."""
    try:
        return read_take(path or bundled_take_path())
    except (TakeFormatError, OSError) as exc:
        print(f'{tool}: {exc}', file=sys.stderr)
        return None


def count(text: str) -> int:
    """An option that counts or seeds (numpy's seeding refuses negative numbers)."""
    number = int(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f'{number} is negative: it must be 0 or more')
    return number


def _read_profile(robot: str, tool: str, physics: str = 'shipped'):
    try:
        return with_physics(load_profile(robot), physics)
    except ProfileError as exc:
        print(f'{tool}: {exc}', file=sys.stderr)
        return None


def pipeline_parser(prog: str, description: str, defaults: BootstrapConfig,
                    default_out: str) -> argparse.ArgumentParser:
    """The training pipeline's options: every BootstrapConfig field (starting from
    `defaults`), plus where the data come from and where the results go."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(parser, BootstrapConfig, defaults)
    parser.add_argument('--out', type=Path, default=Path(default_out),
                        help='working folder: <out>/<robot>/ holds bags/, models/, '
                             'state.json, the report and (without --ship) the checkpoints')
    parser.add_argument('--target', choices=('twin', 'live'), default='twin',
                        help='twin: the digital twin offline; live: the running actuation '
                             'node through ROS (real hardware or a twin in real time)')
    parser.add_argument('--take', action='append', default=[],
                        help='human take that drives the dynamic stages; repeat for more '
                             '(none: the bundled take)')
    parser.add_argument('--train-end-s', type=float, default=TRAIN_END_S,
                        help='the first take is used up to here; the rest is the held-out '
                             'set every model is scored on')
    parser.add_argument('--ship', nargs='?', const='', default=None, metavar='DIR',
                        help='write the checkpoint set into DIR/<robot> instead of the '
                             'working folder (no DIR: the shipped checkpoints, '
                             'src/face_retarget/checkpoints)')
    add_physics_options(parser, 'run the twin target with')
    parser.add_argument('--family-variant', type=count, default=None, metavar='K',
                        help='run the twin target as variant K of the robot\'s family (see '
                             'face-retarget-eval --family); the loop itself never sees its '
                             'physics')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bars (logs, CI)')
    return parser


def train_parser() -> argparse.ArgumentParser:
    return pipeline_parser(
        'face-retarget-train',
        'Train the retargeting models for a robot on its digital twin: the quick preset of '
        'the training pipeline (delay probe, static poses, one model-driven iteration, then '
        'the ExFace diffusion transformer with MLP, Transformer and linear baselines). '
        'Resumes in --out after an interruption.', quick_recipe(), 'out/train')


def bootstrap_parser() -> argparse.ArgumentParser:
    return pipeline_parser(
        'face-retarget-bootstrap',
        'The ExFace bootstrap loop on a robot: static poses, then model-driven iterations '
        'from human takes, every stage recorded as rosbag2 bags; report and plot of held-out '
        'blendshape distance per iteration against random interpolation, and the checkpoint '
        'set. Resumes in --out after an interruption.', BootstrapConfig(robot=''),
        'out/bootstrap')


def train_main(argv=None) -> int:
    return _pipeline_main(train_parser(), argv)


def bootstrap_main(argv=None) -> int:
    return _pipeline_main(bootstrap_parser(), argv)


def _pipeline_main(parser: argparse.ArgumentParser, argv) -> int:
    args = parser.parse_args(argv)
    tool = parser.prog
    profile = _read_profile(args.robot, tool)
    head = _read_profile(args.robot, tool, args.physics) if profile else None
    takes = [_read_take(path, tool) for path in args.take or ['']]
    if head is None or None in takes:
        return 2
    args.robot = profile.name
    config = from_options(BootstrapConfig, args)
    human_train, held_out = split_take(takes[0], args.train_end_s)
    trains = [human_train] + [split_take(t, 1e9)[0] for t in takes[1:]]
    if args.target == 'live':
        from face_retarget.live_robot import LiveRobot
        robot = LiveRobot(profile, config.rate)
    else:
        robot = twin_target(head, args, config)
    out = args.out / profile.name
    checkpoints = None if args.ship is None else (
        Path(args.ship) if args.ship else default_checkpoint_dir()) / profile.name
    print(f'{profile.name}: {tool} on {robot.name} into {out}', flush=True)
    try:
        try:
            pipeline = Bootstrap(config, profile, robot, trains, held_out, out, checkpoints,
                                 {'takes': [t.name for t in takes],
                                  'train_end_s': args.train_end_s},
                                 progress=not args.no_progress,
                                 log=lambda line: print(line, flush=True))
        except SettingsMismatch as error:
            print(f'{tool}: {error}', file=sys.stderr)
            return 2
        try:
            pipeline.run()
        except (RuntimeError, BagError, ExportError) as error:
            # The robot went away, a disk filled, a recording came back empty: the finished
            # stages are kept in the run folder and a rerun resumes after them.
            print(f'{tool}: {error}; finished stages are kept in {out}: '
                  'rerun the same command to resume', file=sys.stderr)
            return 1
        except Exception as error:
            # Anything else (data a stage cannot use, a bug): say where it stopped and what
            # to check, keep the finished stages.
            print(f'{tool}: stopped in stage {pipeline.current_stage or "setup"}: '
                  f'{type(error).__name__}: {error}; check the robot\'s recordings under '
                  f'{out / "bags"} and the settings; finished stages are kept in {out}',
                  file=sys.stderr)
            return 1
    finally:
        if hasattr(robot, 'close'):
            robot.close()
    print(f'report: {out / "report.md"}, {out / "bootstrap.png"}', flush=True)
    return 0


def twin_target(head, args, config: BootstrapConfig) -> TwinRobot:
    """The twin the pipeline drives: `head` (the profile with --physics applied), or a
    variant of its family (the pipeline itself gets the plain profile: motors and limits
    only)."""
    if args.family_variant is not None:
        head = family_variant(head, args.family_variant, args.family_seed)
    return TwinRobot(head, seed=config.seed, rate=config.rate)


def eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='face-retarget-eval', formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Evaluate retargeting models on a human take through a robot twin.')
    parser.add_argument('--robot', required=True,
                        help='robot profile: a shipped name (hobbs, micheal, ameca) or a '
                             'profile file')
    parser.add_argument('--take', default='',
                        help='Live Link Face CSV (default: the bundled take)')
    parser.add_argument('--out', type=Path, required=True,
                        help='report folder: results.json, results.md, results.png')
    parser.add_argument('--checkpoints', type=Path, default=None,
                        help='folder of checkpoint sets, one per robot (default: the shipped '
                             'checkpoints; out/train after face-retarget-train)')
    parser.add_argument('--models', default=EVAL_MODELS,
                        help='comma-separated models to evaluate')
    parser.add_argument('--start-s', type=float, default=None,
                        help='evaluate from here (default: the held-out part of the bundled '
                             f'take, from {TRAIN_END_S:.0f} s; 0 for another take)')
    parser.add_argument('--duration-s', type=float, default=None,
                        help='evaluate only this many seconds from --start-s (default: to '
                             'the end of the take)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random baseline, the sampling noise and the '
                             'validation recordings')
    parser.add_argument('--oracle-steps', type=int, default=OracleConfig.steps,
                        help='optimisation steps of the oracle bound (0: no oracle row)')
    add_physics_options(parser, 'evaluate on')
    parser.add_argument('--family', type=count, default=0, metavar='N',
                        help='evaluate on N physics variants of the robot (same motors and '
                             'limits, physics drawn from the documented ranges with '
                             '--family-seed): a report per variant in <out>/variant-K and '
                             'the mean and spread per model in <out>/family.md')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def add_physics_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """Which twin physics to use: the profile's, one of its presets, or a family variant."""
    parser.add_argument('--physics', default='shipped',
                        help=f'twin physics to {verb}: shipped (the profile as it is) or one of '
                             'its twin presets (simple: the twin before issue 16\'s physics, '
                             'nearly piecewise linear)')
    parser.add_argument('--family-seed', type=count, default=0,
                        help='seed of the family variants\' physics')


def eval_main(argv=None) -> int:
    args = eval_parser().parse_args(argv)
    tool = 'face-retarget-eval'
    profile = _read_profile(args.robot, tool, args.physics)
    take = _read_take(args.take, tool)
    if profile is None or take is None:
        return 2
    start = args.start_s if args.start_s is not None else (0.0 if args.take else TRAIN_END_S)
    _, human = split_take(take, start)
    if args.duration_s is not None:
        human = human[:max(1, int(args.duration_s * EVAL_RATE))]
    directory = (args.checkpoints or default_checkpoint_dir()) / profile.name
    info_path = directory / 'dataset.json'
    if not info_path.is_file():
        print(f'{tool}: no trained models in {directory} (run '
              f'face-retarget-train --robot {profile.name}, then pass --checkpoints '
              'out/train)', file=sys.stderr)
        return 2
    delay = int(json.loads(info_path.read_text())['delay'])
    heads = ([(f'variant {k}', args.out / f'variant-{k}', variant) for k, variant in
              enumerate(sample_family(profile, args.family, args.family_seed))]
             if args.family else [(args.physics, args.out, profile)])
    family = []
    for label, out, head in heads:
        title = (f'{profile.name} ({label} physics): {take.name} from {start:.0f} s '
                 f'({len(human)} frames, held out), twin delay {delay} frames')
        results = _evaluate_head(head, human, directory, delay, args, label)
        if results is None:
            return 2
        paths = write_report(results, human, delay, out, title)
        print(f'report: {paths["markdown"]}, {paths["json"]}, {paths["figure"]}')
        family.append((label, head, results))
    if args.family:
        paths = write_family_report(family, args.out, f'{profile.name}: {args.family} family '
                                    f'variants (seed {args.family_seed}), {take.name} from '
                                    f'{start:.0f} s ({len(human)} frames)')
        print(f'family report: {paths["markdown"]}, {paths["json"]}')
    return 0


def _evaluate_head(profile, human, directory, delay: int, args, label: str):
    """Every model's row (and the oracle's) on one head; None after a clear error line."""
    linear = LinearRetarget.load(directory / 'linear.npz')
    validation = validation_episodes(FaceTwin(profile, seed=1000 + args.seed), linear, human,
                                     np.random.default_rng(1000 + args.seed))
    results = []
    for name in [m for m in args.models.split(',') if m]:
        try:
            stream, _ = open_retargeter(name, profile, directory, seed=args.seed)
        except (CheckpointError, OSError, ValueError) as exc:
            print(f'face-retarget-eval: {name}: {exc}', file=sys.stderr)
            return None
        result = evaluate(stream, profile, human, validation, delay, EVAL_RATE)
        print(f'{profile.name} [{label}] {name:<12} motor {result["motor_distance"]:.4f}  '
              f'blendshape {result["blendshape_distance"]:.4f}  jitter '
              f'{result["jitter"]:.4f}  latency p99 {result["latency_ms_p99"]:.2f} ms',
              flush=True)
        results.append(result)
    if args.oracle_steps > 0:
        results.append(_oracle_row(profile, human, delay, results, args))
    return results


def write_family_report(family: list, out: Path, title: str) -> dict:
    """family.json (per variant: its physics and every row) and family.md (per model and
    metric: each variant's value, then the mean and the spread, a standard deviation)."""
    out.mkdir(parents=True, exist_ok=True)
    variants = [{'variant': label, 'physics': physics_summary(head),
                 'rows': [{k: v for k, v in r.items() if not k.startswith('_')}
                          for r in results]} for label, head, results in family]
    metrics = ('blendshape_distance', 'excess', 'jitter')
    summary = {}
    for model in [r['model'] for r in variants[0]['rows']]:
        summary[model] = {}
        for metric in metrics:
            values = [next(r for r in v['rows'] if r['model'] == model).get(metric)
                      for v in variants]
            if None not in values:
                summary[model][metric] = {'values': values, 'mean': float(np.mean(values)),
                                          'spread': float(np.std(values))}
    (out / 'family.json').write_text(json.dumps({'title': title, 'variants': variants,
                                                 'summary': summary}, indent=1))
    lines = [f'# {title}', '', 'Per model: each variant\'s value, then mean ± spread '
             '(standard deviation over the variants).', '']
    for metric in metrics:
        lines += [f'## {metric.replace("_", " ")}', '',
                  '| model | ' + ' | '.join(v['variant'] for v in variants) + ' | mean ± spread |',
                  '|---|' + '---|' * (len(variants) + 1)]
        for model, entry in summary.items():
            if metric in entry:
                cells = [f'{value:.5f}' for value in entry[metric]['values']]
                lines.append(f'| {model} | ' + ' | '.join(cells) + f' | '
                             f'{entry[metric]["mean"]:.5f} ± {entry[metric]["spread"]:.5f} |')
        lines.append('')
    (out / 'family.md').write_text('\n'.join(lines))
    return {'json': out / 'family.json', 'markdown': out / 'family.md'}


def _oracle_row(profile, human, delay: int, results: list, args) -> dict:
    """The oracle bound's result row, and every model row's excess over it."""
    rate = EVAL_RATE
    starts = {r['model']: r['_commands'] for r in results}
    starts.setdefault('neutral', np.repeat(profile.neutral[None, :], len(human), axis=0))
    config = OracleConfig(steps=args.oracle_steps)
    found = oracle(profile, human, delay, rate, starts,
                   lambda c: blendshape_distance(human, shown_face(profile, c, rate), delay),
                   config, progress=not args.no_progress)
    for r in results:
        r['excess'] = r['blendshape_distance'] - found.distance
    print(f'{profile.name} oracle       blendshape {found.distance:.4f}  (from {found.start}, '
          f'{config.steps} steps, {found.seconds:.0f} s)', flush=True)
    return {'model': 'oracle', 'motor_distance': None, 'blendshape_distance': found.distance,
            'excess': 0.0, 'jitter': jitter(found.commands), 'latency_ms_mean': None,
            'latency_ms_p99': None, 'oracle_start': found.start, 'oracle_steps': config.steps,
            'oracle_smoothness_weight': config.smoothness, 'oracle_seconds': found.seconds,
            '_commands': found.commands,
            '_observed': shown_face(profile, found.commands, rate)}


if __name__ == '__main__':
    sys.exit(train_main())
