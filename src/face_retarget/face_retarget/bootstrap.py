"""The one training pipeline (the ExFace bootstrap, paper Section III-C), from no data to a
set of checkpoints, with every piece of data in rosbag2 bags a robot owner can inspect and
replay. Named stages, each a function from its inputs to a small dataclass result that
state.json keeps, so a rerun resumes after the last finished stage:

- probe: a short random-interpolation run measures the actuator delay;
- static: random safe poses, each held until the face settles; the settled readings are
  averaged and the pairs expanded into training windows (600 poses -> 72,000 frames);
- iteration_k: the current model drives the robot from human takes, the response is
  recorded, the new episodes join the training set, the model is fine-tuned; the paper's
  control condition (random-pose interpolation at equal frame counts) runs beside it;
- ship: the MLP and Transformer baselines trained on the final data, and the checkpoint set
  (final ExFace, baselines, linear map on the static pairs) written out.

Every random draw is keyed by (seed, stage, purpose) through keyed_seed, never by what ran
before it, so a resumed run ends with the same bags, models and report as a straight one.
`face-retarget-bootstrap` runs the paper's settings, `face-retarget-train` a quick preset.

The robot is anything with `record(commands, bag, human=None, source='')` that executes one
command per frame at `rate` and writes the bag: TwinRobot here (as fast as it computes), and
face_retarget.live_robot.LiveRobot through the ROS graph for hardware.
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
from face_bag.export import (
    APPLIED,
    COMMAND,
    HUMAN,
    ROBOT,
    estimate_delay,
    position_noise,
    read_episodes,
    static_pairs,
    windows,
)
from face_bag.store import BagWriter
from face_common.arkit import NUM_CHANNELS
from face_common.atomic import write_atomic
from face_common.cli_options import option
from face_common.metrics import blendshape_distance, jitter
from face_retarget.baselines import LinearRetarget
from face_retarget.data import exploration_noise, interpolation_commands
from face_retarget.evaluate import stream_commands
from face_retarget.models import Normaliser, TorchStream, build_model, network_config
from face_retarget.static_coverage import (
    TravelLimits,
    coverage,
    human_sample,
    poses_towards_humans,
    useful_travel,
)
from face_retarget.training import (
    TrainConfig,
    draw_curves,
    load_checkpoint,
    plot_curves,
    save_checkpoint,
    train,
)

# Bumped when a stage would draw or compute differently: a run folder made by another
# version is refused instead of being resumed into a mix of both.
PIPELINE_VERSION = 4
BASELINES = ('mlp', 'transformer')
# Human training frames the static stage's coverage is measured on.
COVERAGE_FRAMES = 1000
# A command within this of 0 or 1 counts as at the end of the motor's range in the report.
RANGE_END = 0.01


@dataclass
class BootstrapConfig:
    robot: str = option(help='robot profile: a shipped name (hobbs, micheal, ameca) or a '
                             'profile file')
    rate: float = option(30.0, 'frames per second of every recording')
    seed: int = option(0, 'keys every random draw of the run (with the stage and purpose)')
    probe_frames: int = option(600, 'frames of the delay probe (random interpolation)')
    # stage 1, static
    static_poses: int = option(600, 'static stage: random safe poses to hold and read')
    static_hold_frames: int = option(30, 'static stage: frames each pose is held (the '
                                         'settled half is averaged)')
    static_frames: int = option(72_000, 'static stage: training frames the pose pairs are '
                                        'expanded into (the paper: 72,000 from 600 poses)')
    symmetric: bool = option(False, 'static stage: mirror each random pose left/right')
    static_sampling: str = option('around_neutral', 'static stage poses: around_neutral (a '
                                  'few motors moved part way, as faces people make) or '
                                  'uniform (every motor anywhere in its range)')
    static_reach: float = option(0.7, 'static stage, around_neutral: most of its travel a '
                                      'motor moves from neutral (away from saturation)')
    static_towards_humans: float = option(0.0, 'static stage: share of the poses drawn, after '
                                          'the others are recorded, around the commands a '
                                          'linear map fitted on those pairs gives for human '
                                          'training frames (0: every pose as static-sampling '
                                          'says; 0.5 covered human faces better but left the '
                                          'final model worse on 2 of 3 foreign heads)')
    keep_to_useful_travel: bool = option(False, 'keep driven commands and the poses drawn '
                                                'towards humans within the travel the static '
                                                'poses reached and where the face still '
                                                'changes (see saturation-gain)')
    saturation_gain: float = option(0.25, 'with keep-to-useful-travel: a motor direction ends '
                                          'where its face gain per unit of travel stays below '
                                          'this fraction of the motor\'s largest (0: only '
                                          'the travel the static poses reached)')
    # stages 2 and on, dynamic
    first_iteration_frames: int = option(8000, 'frames the model drives the robot for at the '
                                               'first dynamic iteration')
    next_iteration_frames: int = option(4000, 'frames driven at each later iteration')
    min_iterations: int = option(3, 'dynamic iterations always run')
    max_iterations: int = option(3, 'dynamic iterations at most')
    min_improvement: float = option(0.01, 'stop after min-iterations once an iteration gains '
                                          'less than this fraction of held-out distance')
    episode_frames: int = option(500, 'frames of one drive from a human take')
    speed_range: tuple = option((0.8, 1.25), 'slowest and fastest take playback speed (more '
                                             'varied expressions)')
    exploration_noise: float = option(0.05, 'std of smooth noise on the driving commands '
                                            '(DART; without it iteration 1 trailed '
                                            'interpolation)')
    compare_interpolation: bool = option(True, 'run the paper\'s control arm: random-pose '
                                               'interpolation at equal frame counts')
    # the models and their training
    window: int = option(60, 'model input window in frames')
    d_model: int = option(128, 'transformer width (the MLP\'s hidden width is twice this)')
    layers: int = option(4, 'transformer layers')
    heads: int = option(4, 'attention heads')
    static_steps: int = option(2000, 'training steps of ExFace on the static data')
    finetune_steps: int = option(3000, 'fine-tuning steps per iteration (1000 left ExFace '
                                       'behind the MLP on Hobbs and Micheal)')
    finetune_lr: float = option(5e-4, 'fine-tuning learning rate')
    condition_noise: float = option(0.05, 'ExFace training: noise std on its standardised '
                                          'blendshape input')
    baseline_steps: int = option(3000, 'training steps of the shipped MLP and Transformer on '
                                       'the final data')
    stride: int = option(2, 'frames between the starts of training windows cut from episodes')
    batch: int = option(32, 'training batch (windows; frames for the MLP)')
    held_out_frames: int = option(0, 'score on the first N held-out frames (0: all)')


def quick_recipe(robot: str = '') -> BootstrapConfig:
    """face-retarget-train's preset of the pipeline: the static stage and one model-driven
    iteration on the twin, no control arm, shorter training; minutes where the paper's loop
    takes half an hour."""
    return BootstrapConfig(robot=robot, min_iterations=1, max_iterations=1,
                           compare_interpolation=False, finetune_steps=1000,
                           baseline_steps=2000)


# Settings that only decide when the loop stops: a finished run can be continued with more
# iterations (the stages already done do not depend on them).
STOPPING_SETTINGS = ('max_iterations', 'min_iterations', 'min_improvement')


class SettingsMismatch(ValueError):
    """The working folder holds a run made with other settings."""


class BootstrapError(RuntimeError):
    """A stage cannot go on with what the robot gave it (the message says what to check)."""


def _settings(config: BootstrapConfig) -> dict:
    """The config as state.json holds it (tuples as lists), for comparison."""
    return json.loads(json.dumps(asdict(config)))


def keyed_seed(seed: int, stage: str, purpose: str) -> int:
    """The seed of one random draw of the run: the same whether the run went straight
    through or was resumed, whatever ran before it. Every draw of the pipeline comes from
    here (numpy via keyed_rng, torch via the model and training seeds)."""
    return (int(seed) << 32) | zlib.crc32(f'{stage}/{purpose}'.encode())


def keyed_rng(seed: int, stage: str, purpose: str) -> np.random.Generator:
    return np.random.default_rng(keyed_seed(seed, stage, purpose))


@dataclass
class ProbeResult:
    bags: list
    delay: int


@dataclass
class StaticResult:
    bags: list
    poses: int
    coverage: dict = field(default_factory=dict)


@dataclass
class RecordResult:
    facial: list
    interpolation: list


@dataclass
class TrainResult:
    path: str
    loss: float


@dataclass
class ScoreResult:
    blendshape_distance: float
    jitter: float
    frames: int
    bags: list
    at_range_ends: float = 0.0


@dataclass
class ShipResult:
    models: dict                 # kind -> model file, relative to the run folder


@dataclass
class StaticData:
    """The static stage's bags as training data (decoded again on a resume, not stored)."""
    poses: np.ndarray
    readings: np.ndarray
    observed: np.ndarray
    commands: np.ndarray
    limits: TravelLimits


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

    def respond(self, commands, bag) -> tuple:
        """(positions reported on face/robot/applied, face readings), one row per command."""
        self.twin.reset()
        self.twin.reseed_noise(keyed_seed(self.seed, Path(bag).name, 'tracker noise'))
        result = rollout(self.twin, commands, 1.0 / self.rate)
        return result.applied, result.observed

    def record(self, commands, bag, human=None, source: str = '') -> Path:
        commands = np.asarray(commands, np.float64)
        applied, observed = self.respond(commands, bag)
        step = int(1e9 / self.rate)
        writer = BagWriter(bag, flush_period_s=5.0)
        names, robot = self.profile.motor_names, self.profile.name
        for i in range(len(commands)):
            stamp = self.clock_ns + i * step
            if human is not None:
                writer.write_message(HUMAN, messages.BLENDSHAPES, stamp,
                                     messages.blendshapes(human[i], stamp, source=source,
                                                          frame_number=i))
            writer.write_message(COMMAND, messages.CONTROL_VALUES, stamp,
                                 messages.control_values(commands[i], names, stamp, robot=robot,
                                                         source=source))
            writer.write_message(APPLIED, messages.CONTROL_VALUES, stamp + 1000,
                                 messages.control_values(applied[i], names, stamp,
                                                         robot=robot, source='safety'))
            writer.write_message(ROBOT, messages.BLENDSHAPES, stamp + 2000,
                                 messages.blendshapes(observed[i], stamp,
                                                      source='twin', subject=robot,
                                                      frame_number=i + 1))
        writer.close()
        # A second between runs; integer ns (a float here rounded later bags' stamps to
        # 256 ns, which moved some frames by one on the export grid).
        self.clock_ns += len(commands) * step + 1_000_000_000
        return Path(bag)


def poses_around_neutral(neutral: np.ndarray, count: int, rng, reach: float = 0.7,
                         pairs=None, symmetric: bool = False) -> np.ndarray:
    """Static poses that look like the faces people make: each moves 1-8 motors (a left/right
    partner along with it half the time) up or down part of their travel (at most `reach` of
    it, so the skin is seldom driven into saturation), the rest stay near neutral. Uniform
    poses over the whole range show faces far more extreme than a human's (on a head with
    saturating skin: 0.41 per blendshape against the human's 0.07), so a model trained on them
    drives such heads too far. Only the motor list is used: neutral and the pairs."""
    n = len(neutral)
    partner = np.arange(n)
    for left, right in (pairs if pairs is not None else np.zeros((0, 2), int)):
        partner[left], partner[right] = right, left
    poses = np.repeat(neutral[None, :], count, axis=0)
    poses += rng.uniform(-0.05, 0.05, poses.shape) * np.where(rng.random(poses.shape) < 0.5,
                                                               neutral, 1.0 - neutral)
    for pose in poses:
        moved = rng.choice(n, size=rng.integers(1, min(8, n) + 1), replace=False)
        for motor in moved:
            amount = rng.uniform(0.0, reach)
            up = rng.random() < 0.5
            targets = [motor, partner[motor]] if symmetric or rng.random() < 0.5 else [motor]
            for m in targets:
                pose[m] = neutral[m] + amount * ((1.0 - neutral[m]) if up else -neutral[m])
    return np.clip(poses, 0.0, 1.0)


def static_commands(poses: np.ndarray, hold: int) -> np.ndarray:
    return np.repeat(poses, hold, axis=0)


def expand_static(poses, readings, window: int, frames: int, rng, noise_std: np.ndarray):
    """The paper's expansion of static pairs into windows: each window holds one pose, its
    settled reading repeated with fresh measurement noise of the size seen while holding."""
    if not len(poses):
        raise BootstrapError('no static poses to expand into training windows')
    count = max(1, frames // window)
    pick = rng.integers(0, len(poses), count)
    motors = np.repeat(poses[pick][:, None, :], window, axis=1)
    observed = readings[pick][:, None, :] + rng.normal(
        0.0, 1.0, (count, window, readings.shape[1])) * noise_std
    return observed.astype(np.float32), motors.astype(np.float32)


def static_pose_counts(config: BootstrapConfig) -> tuple:
    """(poses drawn as `static_sampling` says, poses drawn towards the human takes after
    them)."""
    if not 0.0 <= config.static_towards_humans < 1.0:
        raise BootstrapError(f'--static-towards-humans {config.static_towards_humans} is not '
                             'a share from 0 up to (not including) 1')
    towards = int(round(config.static_towards_humans * config.static_poses))
    return config.static_poses - towards, towards


def static_poses(profile, config: BootstrapConfig) -> np.ndarray:
    """The static stage's first poses, drawn as `config.static_sampling` says."""
    rng = keyed_rng(config.seed, 'static', 'poses')
    count = static_pose_counts(config)[0]
    if config.static_sampling == 'uniform':
        return FaceTwin(profile).random_poses(count, rng, symmetric=config.symmetric)
    if config.static_sampling != 'around_neutral':
        raise BootstrapError(f'static sampling {config.static_sampling!r} is not one of '
                             'around_neutral, uniform')
    return poses_around_neutral(profile.neutral, count, rng, config.static_reach,
                                profile.pair_indices(), config.symmetric)


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
    """Runs the pipeline into `out`; resumable: a finished stage is read back, not redone.
    The checkpoint set goes to `checkpoints` (default: `out` itself); `data_note` is added to
    its dataset.json (which take, where it was split)."""

    def __init__(self, config: BootstrapConfig, profile, robot, human_train, human_held_out,
                 out, checkpoints=None, data_note=None, progress: bool = True, log=print):
        self.config = config
        self.profile = profile
        self.robot = robot
        self.human_train = human_train
        self.held_out = human_held_out[:config.held_out_frames or None]
        self.out = Path(out)
        self.checkpoints = Path(checkpoints) if checkpoints else self.out
        self.data_note = dict(data_note or {})
        self.progress = progress
        self.log = log
        self.state_path = self.out / 'state.json'
        self.current_stage = ''
        wanted = _settings(config)
        self.state = json.loads(self.state_path.read_text()) if self.state_path.is_file() \
            else {'pipeline': PIPELINE_VERSION, 'config': wanted, 'stages': {}}
        if self.state.get('pipeline') != PIPELINE_VERSION:
            raise SettingsMismatch(
                f'{self.out} holds a run of another version of the training pipeline '
                f'({self.state.get("pipeline", 1)}, this is {PIPELINE_VERSION}); its stages '
                'drew other random numbers: use another --out')
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
    def _stage(self, name: str, result_type, compute):
        """The stage's result: read back if it finished before, else computed and kept."""
        done = self.state['stages'].get(name)
        if done is not None:
            return result_type(**done)
        self.current_stage = name
        result = compute()
        self.state['stages'][name] = asdict(result)
        write_atomic(self.state_path, json.dumps(self.state, indent=1))
        return result

    def _seed(self, stage: str, purpose: str) -> int:
        return keyed_seed(self.config.seed, stage, purpose)

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
        """(model, loss history) of `kind` trained at `stage`, from `start_from`'s weights or
        fresh ones; read back from models/ when the stage finished before."""
        c = self.config
        seed = self._seed(stage, kind)
        path = self.out / 'models' / f'{stage}_{kind}.pt'

        def fit() -> TrainResult:
            model = build_model(kind, network_config(
                kind, self.profile.num_motors, c.window, c.d_model, c.layers, c.heads,
                frame_rate=c.rate, condition_noise=c.condition_noise), seed)
            if start_from is not None:
                model.load_state_dict(start_from.state_dict())
            config = TrainConfig(steps=steps, batch=c.batch, lr=lr, seed=seed,
                                 warmup=min(100, steps // 10))
            history = train(model, observed, commands, self.normaliser, config,
                            progress=self.progress, label=label)
            save_checkpoint(path, model, self.normaliser, self.profile, config, history,
                            info={'stage': stage, 'delay': self.delay})
            return TrainResult(str(path.relative_to(self.out)), history[-1][1])
        self._stage(f'train:{stage}:{kind}', TrainResult, fit)
        model, _, payload = load_checkpoint(path, self.profile)
        return model, payload['history']

    def score(self, model, stage: str) -> ScoreResult:
        """Held-out blendshape distance: the model (deterministic sampling) drives the robot
        under bootstrap from the held-out human frames, the run is recorded like any other
        stage, and the face it showed is compared with the human's. On a live target this is
        the real head, not the twin."""
        stream = TorchStream(model, self.normaliser, deterministic=True,
                             seed=self._seed(stage, 'sampling'))
        commands, _ = stream_commands(stream, self.held_out, self.profile.neutral)
        return self.score_commands(commands, stage)

    def score_commands(self, commands, stage: str) -> ScoreResult:
        """Held-out blendshape distance of a command sequence (one per held-out frame) run
        on the robot and recorded like any other stage."""
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
        commands = np.asarray(commands)
        ends = np.mean((commands <= RANGE_END) | (commands >= 1.0 - RANGE_END))
        return ScoreResult(squared / frames, jitter(commands), frames, bags, float(ends))

    def _scored(self, stage: str, model) -> dict:
        done = self._stage(stage, ScoreResult, lambda: self.score(model, stage))
        return {'blendshape_distance': done.blendshape_distance, 'jitter': done.jitter,
                'at_range_ends': done.at_range_ends}

    def _neutral_scored(self) -> dict:
        """The floor any model must beat: the robot holding its neutral pose through the
        held-out take."""
        commands = np.repeat(self.profile.neutral[None, :], len(self.held_out), axis=0)
        done = self._stage('score:neutral', ScoreResult,
                           lambda: self.score_commands(commands, 'score:neutral'))
        return {'blendshape_distance': done.blendshape_distance, 'jitter': done.jitter}

    # -- the stages -------------------------------------------------------------------
    def probe(self) -> ProbeResult:
        """Actuator delay, measured once on a short random-interpolation run: the metric
        compares the human frame with the face `delay` frames later for every model."""
        c = self.config
        commands = interpolation_commands(FaceTwin(self.profile), c.probe_frames,
                                          keyed_rng(c.seed, 'probe', 'commands'), c.rate)
        bags = self._record('probe', [commands], source='probe')
        return ProbeResult(bags, int(estimate_delay(self._episodes(bags))))

    def static(self) -> StaticResult:
        """Safe poses, each held `static_hold_frames`, recorded in chunks of 100: first those
        drawn as `static_sampling` says; then, from their pairs, the travel worth using and
        the rest of the poses drawn around the commands the faces in the human training
        takes need (static_towards_humans). The coverage of the human faces before and after
        the second part is kept for the report."""
        c = self.config
        first, towards = static_pose_counts(c)
        bags = self._record('static', self._holds(static_poses(self.profile, c)),
                            source='static')
        if not towards:
            return StaticResult(bags, c.static_poses)
        poses, readings, _ = self._settled_pairs(bags, first, log=False)
        limits = self._limits(poses, readings)
        human = human_sample(self.human_train, towards,
                             keyed_rng(c.seed, 'static', 'human frames'))
        drawn = poses_towards_humans(poses, readings, human, limits,
                                     keyed_rng(c.seed, 'static', 'towards humans'))
        more = self._record('static_towards_humans', self._holds(drawn), source='static')
        _, all_readings, _ = self._settled_pairs(bags + more, c.static_poses, log=False)
        probe = human_sample(self.human_train, COVERAGE_FRAMES,
                             keyed_rng(c.seed, 'static', 'coverage frames'))
        measured = {'before': coverage(probe, readings), 'after': coverage(probe, all_readings),
                    'first_poses': len(poses), 'all_poses': len(all_readings)}
        self.log(f'{self.profile.name}: static stage: human faces to the nearest static face '
                 f'{measured["before"]:.5f} after {first} poses, {measured["after"]:.5f} with '
                 f'{towards} more drawn towards the human takes')
        return StaticResult(bags + more, c.static_poses, measured)

    def _holds(self, poses) -> list:
        """One command sequence per chunk of up to 100 poses, each held."""
        chunks = np.array_split(poses, max(1, len(poses) // 100))
        return [static_commands(p, self.config.static_hold_frames) for p in chunks]

    def _settled_pairs(self, bags, asked: int, log: bool = True) -> tuple:
        """(poses, readings, episodes) of the holds in `bags` that settled within the
        positions' own noise; none at all ends the run with one line saying what to check."""
        c = self.config
        episodes = self._episodes(bags)
        min_hold = c.static_hold_frames // 2
        noise = position_noise(episodes, min_hold)
        pairs = [static_pairs(e, min_hold=min_hold, noise=noise) for e in episodes]
        poses = np.concatenate([p for p, _ in pairs])
        readings = np.concatenate([r for _, r in pairs])
        if log:
            self.log(f'{self.profile.name}: static stage: reported positions vary by '
                     f'{np.median(noise):.2g} (median motor, std) while a pose is held; a pose '
                     'counts once it stopped within that noise')
        if not len(poses):
            raise BootstrapError(
                f'the static stage kept 0 of {asked} poses: the positions on '
                'face/robot/applied never stopped within their noise in the second half of '
                'a hold; check that the robot follows face/command and reaches each pose '
                f'within {c.static_hold_frames // 2} frames (raise --static-hold-frames for a '
                'slow head)')
        return poses, readings, episodes

    def static_data(self, result: StaticResult) -> StaticData:
        """The settled pose pairs of the static bags, expanded into training windows, and the
        travel limits they show."""
        c = self.config
        self.current_stage = 'static data'
        poses, readings, episodes = self._settled_pairs(result.bags, c.static_poses)
        observed, commands = expand_static(
            poses, readings, c.window, c.static_frames, keyed_rng(c.seed, 'static', 'expansion'),
            _hold_noise(episodes, c.static_hold_frames))
        return StaticData(poses, readings, observed, commands, self._limits(poses, readings))

    def _limits(self, poses, readings) -> TravelLimits:
        """The travel commands are kept within: decided from the static pairs, or the whole
        range when keep_to_useful_travel is off."""
        if not self.config.keep_to_useful_travel:
            return TravelLimits.whole_range(self.profile.num_motors)
        return useful_travel(poses, readings, self.profile.neutral, self.config.saturation_gain)

    def iteration(self, k: int, model, limits: TravelLimits) -> RecordResult:
        """Dynamic iteration k's recordings: `model` (stochastic sampling plus smooth
        exploration noise, kept within the travel `limits`) drives the robot from the human
        takes; beside it the control arm."""
        c = self.config
        stage = f'iteration_{k}'
        frames = c.first_iteration_frames if k == 1 else c.next_iteration_frames
        human = human_drives(self.human_train, frames, c.episode_frames, c.speed_range,
                             keyed_rng(c.seed, stage, 'human drives'))
        stream = TorchStream(model, self.normaliser, deterministic=False,
                             seed=self._seed(stage, 'sampling'))
        stream.reset(self.profile.neutral)
        commands = stream.predict(human)
        if c.exploration_noise > 0:
            rng = keyed_rng(c.seed, stage, 'exploration')
            noise = np.stack([exploration_noise(commands.shape[1], commands.shape[2],
                                                c.exploration_noise, rng, c.rate)
                              for _ in range(len(commands))])
            commands = commands + noise
        commands = limits.clip(commands)
        facial = self._record(f'{stage}_facial', commands, human, source='facial')
        interpolation = []
        if c.compare_interpolation:
            rng, twin = keyed_rng(c.seed, stage, 'interpolation'), FaceTwin(self.profile)
            interpolation = self._record(
                f'{stage}_interpolation',
                [interpolation_commands(twin, c.episode_frames, rng, c.rate)
                 for _ in range(len(commands))], source='interpolation')
        return RecordResult(facial, interpolation)

    def ship(self, stage: str, observed, commands) -> ShipResult:
        """The baselines trained on the final data, so the shipped set is one comparable
        family."""
        for kind in BASELINES:
            self._train(stage, kind, None, observed, commands, self.config.baseline_steps,
                        1e-3, kind)
        return ShipResult({kind: f'models/{stage}_{kind}.pt' for kind in BASELINES})

    def _fine_tune(self, stage: str, arm: str, bags: list, model, static: StaticData):
        """(model, its report entry, loss history): `model` fine-tuned on the static data and
        every episode of the arm's `bags`, then scored on the held-out take."""
        c = self.config
        episodes = self._episodes(bags)                    # decoding bags is the slow part
        observed, commands = windows(episodes, c.window, c.stride, self.delay)
        model, history = self._train(f'{stage}_{arm}', 'exface', model,
                                     np.concatenate([static.observed, observed]),
                                     np.concatenate([static.commands, commands]),
                                     c.finetune_steps, c.finetune_lr, f'{stage} {arm}')
        entry = {'dynamic_frames': int(sum(len(e.commands) for e in episodes)),
                 'windows': len(observed), **self._scored(f'score:{stage}:{arm}', model)}
        return model, entry, history

    # -- the pipeline -----------------------------------------------------------------
    def run(self) -> dict:
        """Every stage in order (finished ones read back), then the report and the checkpoint
        set; returns the report."""
        c = self.config
        started = time.monotonic()
        self.delay = self._stage('probe', ProbeResult, self.probe).delay
        self.log(f'{self.profile.name}: actuator delay {self.delay} frames '
                 f'({1e3 * self.delay / c.rate:.0f} ms)')

        static_result = self._stage('static', StaticResult, self.static)
        static = self.static_data(static_result)
        self.normaliser = Normaliser.fit(static.observed)
        frames = int(static.observed.shape[0] * static.observed.shape[1])
        self.log(f'{self.profile.name}: static stage {len(static.poses)} of {c.static_poses} '
                 f'poses settled -> {frames} frames')
        model, history = self._train('static', 'exface', None, static.observed,
                                     static.commands, c.static_steps, 1e-3, 'static exface')
        curves = {'static': history}
        report = {'robot': self.profile.name, 'delay_frames': self.delay,
                  'neutral': self._neutral_scored(),
                  'static': {'poses': len(static.poses), 'frames': frames,
                             'coverage': static_result.coverage,
                             'travel_limits': _limits_summary(static.limits,
                                                              self.profile.neutral),
                             **self._scored('score:static', model)},
                  'iterations': []}
        self.log(f'{self.profile.name}: static-only blendshape distance '
                 f'{report["static"]["blendshape_distance"]:.5f} (holding neutral: '
                 f'{report["neutral"]["blendshape_distance"]:.5f})')

        arms = {'facial': [[], model], 'interpolation': [[], model]}     # bags, model
        previous = report['static']['blendshape_distance']
        for k in range(1, c.max_iterations + 1):
            stage = f'iteration_{k}'
            recorded = self._stage(f'record:{stage}', RecordResult,
                                   lambda k=k: self.iteration(k, arms['facial'][1],
                                                              static.limits))
            entry = {'iteration': k}
            for arm, new_bags in (('facial', recorded.facial),
                                  ('interpolation', recorded.interpolation)):
                arms[arm][0] += new_bags
                if arms[arm][0]:
                    arms[arm][1], entry[arm], history = self._fine_tune(
                        stage, arm, arms[arm][0], arms[arm][1], static)
                    if arm == 'facial':
                        curves[f'iteration {k}'] = history
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

        facial_episodes = self._episodes(arms['facial'][0])
        obs, cmd = windows(facial_episodes, c.window, c.stride, self.delay)
        observed = np.concatenate([static.observed, obs])
        commands = np.concatenate([static.commands, cmd])
        # Named by the iterations behind it: a run continued with more iterations ships
        # baselines trained on its new final data, not the earlier ones.
        stage = f'ship_after_{len(report["iterations"])}'
        shipped = self._stage(stage, ShipResult, lambda: self.ship(stage, observed, commands))
        counts = {'iterations': len(report['iterations']),
                  'static_poses': len(static.poses), 'static_frames': frames,
                  'dynamic_frames': int(sum(len(e.commands) for e in facial_episodes)),
                  'windows': len(observed), 'delay': int(self.delay)}
        report['elapsed_s'] = time.monotonic() - started
        write_report({**report, 'curves': curves}, self.out)
        self.write_checkpoints(arms['facial'][1], shipped, static, counts,
                               {**curves, **self._baseline_curves(shipped)})
        return report

    def _baseline_curves(self, shipped: ShipResult) -> dict:
        return {kind: load_checkpoint(self.out / path, self.profile)[2]['history']
                for kind, path in shipped.models.items()}

    def write_checkpoints(self, final_model, shipped: ShipResult, static: StaticData,
                          counts: dict, curves: dict) -> Path:
        """The checkpoint set (float16 weights, no optimiser state) in `self.checkpoints`:
        the final ExFace, the baselines, the linear map on the static pairs, dataset.json,
        the training curves, and (when it is another folder) the run's report beside them."""
        c = self.config
        directory = self.checkpoints
        directory.mkdir(parents=True, exist_ok=True)
        info = {'delay': int(self.delay), 'counts': counts, 'take': 'bootstrap',
                'frame_rate': c.rate, 'bootstrap_report': 'bootstrap.md', **self.data_note}
        save_checkpoint(directory / 'exface.pt', final_model, self.normaliser, self.profile,
                        TrainConfig(steps=c.static_steps + c.finetune_steps * counts['iterations']),
                        [], {**info, 'steps_done': c.static_steps}, half=True)
        for kind, path in shipped.models.items():
            model, _, payload = load_checkpoint(self.out / path, self.profile)
            config = TrainConfig(**payload['train_config'])
            save_checkpoint(directory / f'{kind}.pt', model, self.normaliser, self.profile,
                            config, payload['history'], {**info, 'steps_done': config.steps},
                            half=True)
        LinearRetarget.fit(static.readings, static.poses, robot=self.profile.name).save(
            directory / 'linear.npz')
        (directory / 'dataset.json').write_text(json.dumps(info, indent=1))
        plot_curves(curves, directory / 'training_curves.png',
                    f'{self.profile.name}: training loss')
        if directory.resolve() != self.out.resolve():
            for name, target in (('report.md', 'bootstrap.md'), ('report.json', 'bootstrap.json'),
                                 ('bootstrap.png', 'bootstrap.png')):
                (directory / target).write_bytes((self.out / name).read_bytes())
        self.log(f'{self.profile.name}: checkpoints written to {directory}')
        return directory


def _limits_summary(limits: TravelLimits, neutral) -> dict:
    """The travel limits as the report shows them: the share of each direction's way from
    neutral that commands may use, mean and least over the motors."""
    neutral = np.asarray(neutral, np.float64)
    up = (limits.high - neutral) / np.maximum(1.0 - neutral, 1e-6)
    down = (neutral - limits.low) / np.maximum(neutral, 1e-6)
    return {'low': limits.low.round(4).tolist(), 'high': limits.high.round(4).tolist(),
            'mean_up': float(up.mean()), 'mean_down': float(down.mean()),
            'least': float(min(up.min(), down.min()))}


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
    neutral = report['neutral']['blendshape_distance']
    lines = [f'# Bootstrap: {report["robot"]}', '',
             f'Actuator delay {report["delay_frames"]} frames. Held-out blendshape distance '
             '(MSE, lower is better) of the ExFace model after each stage.', '',
             '| stage | dynamic frames | facial-driven | random interpolation | '
             'vs static-only |', '|---|---|---|---|---|',
             f'| neutral (hold the neutral pose) | 0 | {neutral:.5f} | {neutral:.5f} | '
             f'{100 * (neutral - static) / static:+.1f} % |',
             f'| static only ({report["static"]["poses"]} poses, '
             f'{report["static"]["frames"]} frames) | 0 | {static:.5f} | {static:.5f} | - |']
    for entry in report['iterations']:
        facial = entry['facial']['blendshape_distance']
        interp = entry.get('interpolation', {}).get('blendshape_distance')
        shown = '- (not run)' if interp is None else f'{interp:.5f}'
        lines.append(f'| iteration {entry["iteration"]} | {entry["facial"]["dynamic_frames"]} '
                     f'| {facial:.5f} | {shown} | {100 * (facial - static) / static:+.1f} % |')
    lines += _static_notes(report)
    (out / 'report.md').write_text('\n'.join(lines) + '\n')
    _plot(report, curves, out / 'bootstrap.png')
    return {'json': out / 'report.json', 'markdown': out / 'report.md',
            'figure': out / 'bootstrap.png'}


def _static_notes(report: dict) -> list:
    """The report's lines on the static stage's coverage of human faces and on how often
    the final model's commands sat at the ends of the motors' ranges."""
    static, lines = report['static'], ['']
    measured = static.get('coverage') or {}
    if measured:
        lines.append(f'Coverage (mean blendshape distance from a human training frame to the '
                     f'nearest static face, lower is better): {measured["before"]:.5f} with the '
                     f'first {measured["first_poses"]} poses, {measured["after"]:.5f} with all '
                     f'{measured["all_poses"]} (the rest drawn towards the human takes).')
    limits = static.get('travel_limits')
    if limits:
        lines.append(f'Travel used (share of the way from neutral to an end, where the face '
                     f'still changes): up {limits["mean_up"]:.2f}, down {limits["mean_down"]:.2f} '
                     f'on average, {limits["least"]:.2f} at least.')
    final = (report['iterations'][-1]['facial'] if report['iterations'] else static)
    if 'at_range_ends' in final:
        lines.append(f'Final model: {100 * final["at_range_ends"]:.1f} % of its held-out '
                     f'commands within {RANGE_END} of a range end (0 or 1).')
    return lines if len(lines) > 1 else []


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
    left.axhline(report['neutral']['blendshape_distance'], color='black', linewidth=0.8,
                 linestyle='--', label='holding neutral')
    left.set_xlabel('dynamic training frames')
    left.set_ylabel('held-out blendshape distance (MSE)')
    left.set_title(f'{report["robot"]}: bootstrap (ExFace Fig. 4)')
    left.grid(alpha=0.3)
    left.legend()
    draw_curves(right, curves, 'training curves per stage', 'step (within stage)')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
