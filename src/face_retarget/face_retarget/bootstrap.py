"""The ExFace bootstrap loop (paper, Section III-C), from no data to a working model, with
every piece of data in rosbag2 bags a robot owner can inspect and replay.

Stage 1, static: random safe poses, each held until the face settles; the settled readings
are averaged and the pairs expanded into training windows (600 poses -> 72,000 frames).
Stage 2..n, dynamic: the current model drives the robot from human takes, the response is
recorded, the new episodes join the training set, the model is fine-tuned. The paper's
control condition (random-pose interpolation at equal frame counts) runs beside it.

The robot is anything with `record(commands, bag, human=None, source='')` that executes one
command per frame at `rate` and writes the bag: TwinRobot here (as fast as it computes), and
face_retarget.live_robot.LiveRobot through the ROS graph for hardware. Every stage's bag,
model and score is kept under the output folder; a rerun resumes after the last finished
stage.
"""
from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
import shutil
import time
import zlib

import numpy as np

from face_actuation.simulate import rollout
from face_actuation.twin import FaceTwin
from face_bag import messages
from face_bag.export import estimate_delay, read_episodes, static_pairs, windows
from face_bag.store import BagWriter
from face_common.arkit import NUM_CHANNELS
from face_common.atomic import write_atomic
from face_common.metrics import blendshape_distance, jitter
from face_retarget.baselines import LinearRetarget
from face_retarget.data import exploration_noise, interpolation_commands
from face_retarget.evaluate import stream_commands
from face_retarget.models import Normaliser, TorchStream, new_model
from face_retarget.training import (
    TrainConfig,
    draw_curves,
    load_checkpoint,
    save_checkpoint,
    train,
)


@dataclass
class BootstrapConfig:
    robot: str
    rate: float = 30.0
    seed: int = 0
    # stage 1
    static_poses: int = 600
    static_hold_frames: int = 30           # 1 s per pose; the settled half is averaged
    static_frames: int = 72_000             # the paper's expansion of 600 poses
    symmetric: bool = False
    # stage 2 and on
    first_iteration_frames: int = 8000
    next_iteration_frames: int = 4000
    min_iterations: int = 3
    max_iterations: int = 3
    min_improvement: float = 0.01           # stop after min_iterations below this gain
    episode_frames: int = 500                # one drive from a human take
    speed_range: tuple = (0.8, 1.25)         # take playback speeds (more varied expressions)
    exploration_noise: float = 0.05          # smooth noise on the driving commands (DART):
                                             # without it iteration 1 trailed interpolation
    compare_interpolation: bool = True
    # model and training
    window: int = 60
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    static_steps: int = 2000
    finetune_steps: int = 3000              # 1000 left ExFace behind the MLP on Hobbs/Micheal
    finetune_lr: float = 5e-4
    condition_noise: float = 0.05           # ExFace training: noise std on its blendshape input
    baseline_steps: int = 3000              # MLP / Transformer on the final data
    stride: int = 2
    batch: int = 32
    probe_frames: int = 600                  # delay probe (20 s random interpolation)
    held_out_frames: int = 0                 # score on the first N held-out frames (0: all)
    extra: dict = field(default_factory=dict)


# Settings that only decide when the loop stops: a finished run can be continued with more
# iterations (the stages already done do not depend on them).
STOPPING_SETTINGS = ('max_iterations', 'min_iterations', 'min_improvement')


class SettingsMismatch(ValueError):
    """The working folder holds a run made with other settings."""


def _settings(config: BootstrapConfig) -> dict:
    """The config as state.json holds it (tuples as lists), for comparison."""
    return json.loads(json.dumps(asdict(config)))


def keyed_seed(seed: int, name: str) -> int:
    """A seed for one named part of the run (a bag, a training stage): the same whether the
    run went straight through or was resumed, whatever ran before it."""
    return (int(seed) << 32) | zlib.crc32(name.encode())


class TwinRobot:
    """A robot's digital twin behind its safety layer, recording each run into a bag stamped
    as if it had run in real time from `epoch_ns`. The twin is the profile's; `seed` only
    keys each run's tracker noise."""

    def __init__(self, profile, seed: int = 0, rate: float = 30.0, epoch_ns: int = 0):
        self.profile = profile
        self.twin = FaceTwin(profile)
        self.seed = seed
        self.rate = rate
        self.clock_ns = epoch_ns or time.time_ns()
        self.name = f'{profile.name} twin'

    def record(self, commands, bag, human=None, source: str = '') -> Path:
        commands = np.asarray(commands, np.float64)
        self.twin.reset()
        self.twin.reseed_noise(keyed_seed(self.seed, Path(bag).name))
        result = rollout(self.twin, commands, 1.0 / self.rate)
        step = int(1e9 / self.rate)
        writer = BagWriter(bag, flush_period_s=5.0)
        names, robot = self.profile.motor_names, self.profile.name
        for i in range(len(commands)):
            stamp = self.clock_ns + i * step
            if human is not None:
                writer.write_message('/face/human/blendshapes', messages.BLENDSHAPES, stamp,
                                     messages.blendshapes(human[i], stamp, source=source,
                                                          frame_number=i))
            writer.write_message('/face/command', messages.CONTROL_VALUES, stamp,
                                 messages.control_values(commands[i], names, stamp, robot=robot,
                                                         source=source))
            writer.write_message('/face/robot/applied', messages.CONTROL_VALUES, stamp + 1000,
                                 messages.control_values(result.applied[i], names, stamp,
                                                         robot=robot, source='safety'))
            writer.write_message('/face/robot/blendshapes', messages.BLENDSHAPES, stamp + 2000,
                                 messages.blendshapes(result.observed[i], stamp,
                                                      source='twin', subject=robot,
                                                      frame_number=i + 1))
        writer.close()
        # A second between runs; integer ns (a float here rounded later bags' stamps to
        # 256 ns, which moved some frames by one on the export grid).
        self.clock_ns += len(commands) * step + 1_000_000_000
        return Path(bag)


def static_commands(poses: np.ndarray, hold: int) -> np.ndarray:
    return np.repeat(poses, hold, axis=0)


def expand_static(poses, readings, window: int, frames: int, rng, noise_std: np.ndarray):
    """The paper's expansion of static pairs into windows: each window holds one pose, its
    settled reading repeated with fresh measurement noise of the size seen while holding."""
    count = max(1, frames // window)
    pick = rng.integers(0, len(poses), count)
    motors = np.repeat(poses[pick][:, None, :], window, axis=1)
    observed = readings[pick][:, None, :] + rng.normal(
        0.0, 1.0, (count, window, readings.shape[1])) * noise_std
    return observed.astype(np.float32), motors.astype(np.float32)


def human_drives(takes, frames: int, episode_frames: int, speed_range, rng):
    """(E, episode_frames, 61) human frames cut from the takes at random offsets and played at
    random speeds (linear resampling)."""
    episodes = []
    for _ in range(max(1, int(np.ceil(frames / episode_frames)))):
        take = takes[rng.integers(len(takes))]
        speed = rng.uniform(*speed_range)
        span = int(episode_frames * speed) + 2
        start = rng.integers(0, max(1, len(take) - span))
        source = take[start:start + span]
        positions = np.arange(episode_frames) * speed
        positions = np.clip(positions, 0, len(source) - 1)
        low = np.floor(positions).astype(int)
        high = np.minimum(low + 1, len(source) - 1)
        frac = (positions - low)[:, None]
        episodes.append(source[low] * (1 - frac) + source[high] * frac)
    return np.stack(episodes).astype(np.float32)


class Bootstrap:
    """Runs the loop into `out`; resumable: a finished stage is read back, not redone."""

    def __init__(self, config: BootstrapConfig, profile, robot, human_train, human_held_out,
                 out, progress: bool = True, log=print):
        self.config = config
        self.profile = profile
        self.robot = robot
        self.human_train = human_train
        self.held_out = human_held_out[:config.held_out_frames or None]
        self.out = Path(out)
        self.progress = progress
        self.log = log
        self.rng = np.random.default_rng(config.seed)
        self.state_path = self.out / 'state.json'
        wanted = _settings(config)
        self.state = json.loads(self.state_path.read_text()) if self.state_path.is_file() \
            else {'config': wanted, 'stages': {}}
        stored = {**_settings(BootstrapConfig(robot=config.robot)),
                  **self.state['config']}                # a setting added since: its default
        changed = sorted(k for k in wanted
                         if stored.get(k) != wanted[k] and k not in STOPPING_SETTINGS)
        if changed:
            raise SettingsMismatch(
                f'{self.out} holds a run with other settings ({", ".join(changed)}: '
                f'{[stored.get(k) for k in changed]} there, '
                f'{[wanted[k] for k in changed]} now); resuming would mix them: '
                'pass the same settings or another --out')
        self.state['config'] = wanted        # only the stopping rule may have changed

    # -- bookkeeping ------------------------------------------------------------------
    def _done(self, stage: str):
        return self.state['stages'].get(stage)

    def _finish(self, stage: str, result: dict) -> None:
        self.state['stages'][stage] = result
        write_atomic(self.state_path, json.dumps(self.state, indent=1))

    def _record(self, stage: str, commands, human=None, source: str = '') -> list:
        """Bags for one stage (one per episode), recorded afresh if the stage was cut off."""
        directory = self.out / 'bags' / stage
        if directory.exists():
            shutil.rmtree(directory)
        bags = []
        for i, episode in enumerate(commands):
            bag = self.robot.record(episode, directory / f'{stage}_{i:03d}',
                                    None if human is None else human[i], source)
            bags.append(str(Path(bag).relative_to(self.out)))
        return bags

    def _episodes(self, bags):
        """Episodes of bags named relative to the working folder (state.json holds them so,
        so a run folder can be moved or resumed from another directory)."""
        return [e for bag in bags for e in read_episodes(self.out / bag, self.config.rate)]

    # -- models -----------------------------------------------------------------------
    def _train(self, stage: str, kind: str, start_from, observed, commands, steps: int,
               lr: float, label: str):
        path = self.out / 'models' / f'{stage}_{kind}.pt'
        if self._done(f'train:{stage}:{kind}') and path.is_file():
            model, _, payload = load_checkpoint(path, self.profile)
            return model, payload['history']
        seed = keyed_seed(self.config.seed, f'{stage}:{kind}')
        c = self.config
        model = new_model(kind, self.profile.num_motors, c.window, c.d_model, c.layers, c.heads,
                          seed, frame_rate=c.rate, condition_noise=c.condition_noise)
        if start_from is not None:
            model.load_state_dict(start_from.state_dict())
        config = TrainConfig(steps=steps, batch=self.config.batch, lr=lr, seed=seed,
                             warmup=min(100, steps // 10))
        history, _ = train(model, observed, commands, self.normaliser, config,
                           progress=self.progress, label=label)
        save_checkpoint(path, model, self.normaliser, self.profile, config, history,
                        info={'stage': stage, 'delay': self.delay})
        self._finish(f'train:{stage}:{kind}', {'path': str(path.relative_to(self.out)),
                                                'loss': history[-1][1]})
        return model, history

    def score(self, model, stage: str) -> dict:
        """Held-out blendshape distance: the model (deterministic sampling) drives the robot
        under bootstrap from the held-out human frames, the run is recorded like any other
        stage, and the face it showed is compared with the human's. On a live target this is
        the real head, not the twin."""
        stream = TorchStream(model, self.normaliser, self.profile.num_motors,
                             self.config.window, deterministic=True, seed=self.config.seed)
        commands, _ = stream_commands(stream, self.held_out, self.profile.neutral)
        bags = self._record(stage.replace(':', '_'), [commands], [self.held_out],
                            source='held_out')
        squared, frames = 0.0, 0
        for episode in self._episodes(bags):
            count = len(episode.human) - self.delay
            if count > 0:
                squared += count * blendshape_distance(episode.human, episode.observed,
                                                       self.delay)
                frames += count
        if not frames:
            raise RuntimeError(f'{stage}: the held-out run recorded no aligned frames')
        return {'blendshape_distance': squared / frames, 'jitter': jitter(commands),
                'frames': frames, 'bags': bags}

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> dict:
        c = self.config
        started = time.monotonic()
        # Actuator delay, measured once on a short random-interpolation probe: the metric
        # compares the human frame with the face `delay` frames later for every model.
        if not self._done('probe'):
            probe = interpolation_commands(FaceTwin(self.profile), c.probe_frames,
                                           np.random.default_rng(c.seed + 7), c.rate)
            bags = self._record('probe', [probe], source='probe')
            delay = estimate_delay(self._episodes(bags))
            self._finish('probe', {'bags': bags, 'delay': int(delay)})
        self.delay = self._done('probe')['delay']
        self.log(f'{self.profile.name}: actuator delay {self.delay} frames '
                 f'({1e3 * self.delay / c.rate:.0f} ms)')

        # Stage 1: static poses.
        if not self._done('static'):
            poses = FaceTwin(self.profile).random_poses(
                c.static_poses, np.random.default_rng(c.seed + 1), symmetric=c.symmetric)
            chunks = np.array_split(poses, max(1, c.static_poses // 100))
            bags = self._record('static', [static_commands(p, c.static_hold_frames)
                                           for p in chunks], source='static')
            self._finish('static', {'bags': bags, 'poses': c.static_poses})
        static_eps = self._episodes(self._done('static')['bags'])
        pairs = [static_pairs(e, min_hold=c.static_hold_frames // 2) for e in static_eps]
        poses = np.concatenate([p for p, _ in pairs])
        readings = np.concatenate([r for _, r in pairs])
        static_obs, static_cmd = expand_static(
            poses, readings, c.window, c.static_frames, np.random.default_rng(c.seed + 2),
            _hold_noise(static_eps, c.static_hold_frames))
        self.normaliser = Normaliser.fit(static_obs)
        self.linear = LinearRetarget.fit(readings, poses, robot=self.profile.name)
        self.log(f'{self.profile.name}: static stage {len(poses)} of {c.static_poses} poses '
                 f'settled -> '
                 f'{static_obs.shape[0] * static_obs.shape[1]} frames')
        model, history = self._train('static', 'exface', None, static_obs, static_cmd,
                                     c.static_steps, 1e-3, 'static exface')
        curves = {'static': history}
        report = {'robot': self.profile.name, 'delay_frames': self.delay,
                  'static': {'poses': len(poses), 'frames': int(static_obs.shape[0] *
                                                                 static_obs.shape[1]),
                             **self._scored('score:static', model)},
                  'iterations': []}
        self.log(f'{self.profile.name}: static-only blendshape distance '
                 f'{report["static"]["blendshape_distance"]:.5f}')

        facial_bags, interp_bags = [], []
        facial_model = control_model = model
        previous = report['static']['blendshape_distance']
        for k in range(1, c.max_iterations + 1):
            frames = c.first_iteration_frames if k == 1 else c.next_iteration_frames
            stage = f'iteration_{k}'
            if not self._done(f'record:{stage}'):
                rng = np.random.default_rng(c.seed + 100 * k)
                human = human_drives(self.human_train, frames, c.episode_frames,
                                     c.speed_range, rng)
                stream = TorchStream(facial_model, self.normaliser, self.profile.num_motors,
                                     c.window, deterministic=False, seed=c.seed + k)
                stream.reset(self.profile.neutral)
                commands = stream.run(human)
                if c.exploration_noise > 0:
                    noise_rng = np.random.default_rng(c.seed + 100 * k + 1)
                    noise = np.stack([exploration_noise(commands.shape[1], commands.shape[2],
                                                        c.exploration_noise, noise_rng, c.rate)
                                      for _ in range(len(commands))])
                    commands = np.clip(commands + noise, 0.0, 1.0)
                bags = self._record(f'{stage}_facial', commands, human, source='facial')
                interp = []
                if c.compare_interpolation:
                    twin = FaceTwin(self.profile)
                    interp = self._record(
                        f'{stage}_interpolation',
                        [interpolation_commands(twin, c.episode_frames, rng, c.rate)
                         for _ in range(len(commands))], source='interpolation')
                self._finish(f'record:{stage}', {'facial': bags, 'interpolation': interp})
            recorded = self._done(f'record:{stage}')
            facial_bags += recorded['facial']
            interp_bags += recorded['interpolation']
            entry = {'iteration': k}
            for arm, arm_bags, start in (('facial', facial_bags, facial_model),
                                         ('interpolation', interp_bags, control_model)):
                if not arm_bags:
                    continue
                episodes = self._episodes(arm_bags)        # decoding bags is the slow part
                obs, cmd = windows(episodes, c.window, c.stride, self.delay)
                dynamic_frames = int(sum(len(e.commands) for e in episodes))
                trained, history = self._train(
                    f'{stage}_{arm}', 'exface', start,
                    np.concatenate([static_obs, obs]), np.concatenate([static_cmd, cmd]),
                    c.finetune_steps, c.finetune_lr, f'{stage} {arm}')
                entry[arm] = {'dynamic_frames': dynamic_frames, 'windows': len(obs),
                              **self._scored(f'score:{stage}:{arm}', trained)}
                if arm == 'facial':
                    facial_model = trained
                    curves[f'iteration {k}'] = history
                else:
                    control_model = trained
            report['iterations'].append(entry)
            distance = entry['facial']['blendshape_distance']
            self.log(f'{self.profile.name}: iteration {k}: facial {distance:.5f}' + (
                f', interpolation {entry["interpolation"]["blendshape_distance"]:.5f}'
                if 'interpolation' in entry else '') + f' (dynamic frames '
                f'{entry["facial"]["dynamic_frames"]})')
            gain = (previous - distance) / previous
            previous = distance
            if k >= c.min_iterations and gain < c.min_improvement:
                self.log(f'{self.profile.name}: stopping: gain {gain:.1%} below '
                         f'{c.min_improvement:.0%}')
                break
        self.final_model = facial_model
        facial_episodes = self._episodes(facial_bags)
        obs, cmd = windows(facial_episodes, c.window, c.stride, self.delay)
        self.final_data = (np.concatenate([static_obs, obs]), np.concatenate([static_cmd, cmd]))
        self.counts = {'static_poses': len(poses), 'static_frames': int(static_obs.shape[0] *
                                                                        static_obs.shape[1]),
                       'dynamic_frames': int(sum(len(e.commands)
                                                 for e in facial_episodes)),
                       'windows': len(self.final_data[0]), 'delay': int(self.delay)}
        report['elapsed_s'] = time.monotonic() - started
        report['curves'] = curves
        return report

    def _scored(self, stage: str, model) -> dict:
        if not self._done(stage):
            self._finish(stage, self.score(model, stage))
        done = self._done(stage)
        return {key: done[key] for key in ('blendshape_distance', 'jitter')}


def _hold_noise(episodes, hold: int) -> np.ndarray:
    """Per-channel spread of the face reading around its settled value while a pose is held
    (the tracker's noise), from the settled halves of the holds."""
    residuals = []
    for e in episodes:
        for start in range(0, len(e.observed) - hold + 1, hold):
            settled = e.observed[start + hold // 2:start + hold]
            residuals.append(settled - settled.mean(0))
    return np.concatenate(residuals).std(0) if residuals else np.zeros(NUM_CHANNELS)


def write_report(report: dict, out: Path) -> dict:
    """report.json, report.md and bootstrap.png (the paper's Fig. 4: held-out blendshape
    distance against dynamic frames, facial-driven vs random interpolation)."""
    out.mkdir(parents=True, exist_ok=True)
    curves = report.pop('curves', {})
    (out / 'report.json').write_text(json.dumps(report, indent=1))
    static = report['static']['blendshape_distance']
    lines = [f'# Bootstrap: {report["robot"]}', '',
             f'Actuator delay {report["delay_frames"]} frames. Held-out blendshape distance '
             '(MSE, lower is better) of the ExFace model after each stage.', '',
             '| stage | dynamic frames | facial-driven | random interpolation | '
             'vs static-only |', '|---|---|---|---|---|',
             f'| static only ({report["static"]["poses"]} poses, '
             f'{report["static"]["frames"]} frames) | 0 | {static:.5f} | {static:.5f} | - |']
    for entry in report['iterations']:
        facial = entry['facial']['blendshape_distance']
        interp = entry.get('interpolation', {}).get('blendshape_distance', float('nan'))
        lines.append(f'| iteration {entry["iteration"]} | {entry["facial"]["dynamic_frames"]} '
                     f'| {facial:.5f} | {interp:.5f} | {100 * (facial - static) / static:+.1f} % |')
    (out / 'report.md').write_text('\n'.join(lines) + '\n')
    _plot(report, curves, out / 'bootstrap.png')
    return {'json': out / 'report.json', 'markdown': out / 'report.md',
            'figure': out / 'bootstrap.png'}


def _plot(report: dict, curves: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    static = report['static']['blendshape_distance']
    frames = [0] + [e['facial']['dynamic_frames'] for e in report['iterations']]
    left.plot(frames, [static] + [e['facial']['blendshape_distance']
                                  for e in report['iterations']], 'o-', label='facial-driven')
    interp = [e for e in report['iterations'] if 'interpolation' in e]
    if interp:
        left.plot([0] + [e['interpolation']['dynamic_frames'] for e in interp],
                  [static] + [e['interpolation']['blendshape_distance'] for e in interp],
                  's--', label='random interpolation')
    left.axhline(static, color='gray', linewidth=0.8, linestyle=':', label='static only')
    left.set_xlabel('dynamic training frames')
    left.set_ylabel('held-out blendshape distance (MSE)')
    left.set_title(f'{report["robot"]}: bootstrap (ExFace Fig. 4)')
    left.grid(alpha=0.3)
    left.legend()
    draw_curves(right, curves, 'training curves per stage', 'step (within stage)')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
