"""Every retargeting model behind one streaming interface, plus the normaliser saved with them.

A Retargeter turns a stream of human frames (61 wire-order channels) into normalised motor
commands (0..1), one per frame: reset() at the start of a take, step(frame) per frame, and
predict(frames) for a batch of whole sequences (the same algorithm, vectorised over sequences).
The networks (ExFace, MLP, Transformer) share one contract (RetargetNetwork), so the node,
evaluation and training never ask which network they hold; build_model is their one factory.
"""
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from face_common.arkit import RETARGET_INPUT
from face_retarget.baselines import LinearRetarget
from face_retarget.exface import ExFaceConfig, ExFaceDiffusion
from face_retarget.network import FrozenGraphs, RetargetNetwork

MIN_ACTIVE_STD = 0.02        # a channel the robot face never moves more than this is ignored
INPUT_LIMIT = 5.0            # standardised inputs are bounded (human faces exceed robot ones)


@dataclass
class Normaliser:
    """Blendshape inputs standardised per channel; motor values 0..1 mapped to [-1, 1].

    Models are trained on what the robot's face shows and applied to a human's: channels the
    robot cannot produce (its training data hold only noise there) are zeroed rather than
    standardised by a tiny spread, and every input is bounded, so a human expression the robot
    never made cannot push the network far outside what it learned."""

    input_mean: np.ndarray
    input_std: np.ndarray
    active: np.ndarray

    @classmethod
    def fit(cls, frames: np.ndarray) -> 'Normaliser':
        x = np.asarray(frames, np.float64)[..., RETARGET_INPUT].reshape(-1, len(RETARGET_INPUT))
        std = x.std(0)
        return cls(x.mean(0).astype(np.float32), np.maximum(std, MIN_ACTIVE_STD).astype(
            np.float32), (std >= MIN_ACTIVE_STD).astype(np.float32))

    def inputs(self, frames) -> np.ndarray:
        x = np.asarray(frames, np.float32)[..., RETARGET_INPUT]
        z = np.clip((x - self.input_mean) / self.input_std, -INPUT_LIMIT, INPUT_LIMIT)
        return z * self.active

    @staticmethod
    def motors(values):
        return np.asarray(values, np.float32) * 2.0 - 1.0

    @staticmethod
    def commands(motors):
        return np.clip((np.asarray(motors, np.float32) + 1.0) * 0.5, 0.0, 1.0)

    def to_dict(self) -> dict:
        return {k: v.tolist() for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> 'Normaliser':
        return cls(*(np.asarray(data[k], np.float32) for k in ('input_mean', 'input_std',
                                                                'active')))


class MLPRegressor(RetargetNetwork):
    """Per-frame baseline: 55 channels -> motors, no memory."""

    name = 'mlp'

    def __init__(self, inputs: int, motors: int, hidden: int = 256):
        super().__init__()
        self.config = {'inputs': inputs, 'motors': motors, 'hidden': hidden}
        self.motors, self.window = motors, 1
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, motors))

    def forward(self, x):
        return self.net(x)

    def loss(self, cond, motors, generator=None):
        return ((self.net(cond) - motors) ** 2).mean()

    def training_view(self, cond, motors):
        """Frames, not windows: the MLP learns each frame on its own."""
        return cond.reshape(-1, cond.shape[-1]), motors.reshape(-1, motors.shape[-1])

    def respond(self, cond, sent, noise):
        return self.net(cond[:, -1])


class TransformerRegressor(RetargetNetwork):
    """Sequence baseline of the DiT's size without diffusion: blendshape window -> motor
    window, regressed directly (the paper's 'Transformer' row)."""

    name = 'transformer'

    def __init__(self, inputs: int, motors: int, window: int, d_model: int = 128,
                 layers: int = 4, heads: int = 4):
        super().__init__()
        self.config = {'inputs': inputs, 'motors': motors, 'window': window,
                       'd_model': d_model, 'layers': layers, 'heads': heads}
        self.motors, self.window = motors, window
        self.embed = nn.Linear(inputs, d_model)
        self.position = nn.Parameter(torch.zeros(1, window, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0,
                                           activation='gelu', batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, motors))
        self._frozen = None               # FrozenGraphs of forward, once frozen

    def freeze_for_inference(self) -> None:
        """Weights fixed from now on: respond runs a frozen TorchScript graph."""
        self.eval()
        self._frozen = FrozenGraphs(self)

    def forward(self, cond):
        x = self.embed(cond) + self.position[:, -cond.shape[1]:]
        return self.out(self.encoder(x))

    def loss(self, cond, motors, generator=None):
        return ((self.forward(cond) - motors) ** 2).mean()

    def respond(self, cond, sent, noise):
        return (self._frozen or self.forward)(cond)[:, -1]


class Retargeter:
    """The streaming interface of every model: reset() at the start of a take, step(frame)
    -> command per frame, predict(frames) for a batch of sequences. Keeps the input window
    and the commands sent."""

    def __init__(self, name: str, motors: int, window: int = 1):
        self.name = name
        self.motors = motors
        self.window = window

    def reset(self, neutral_command=None) -> None:
        self._inputs = None
        self._sent = None
        self._neutral = (np.full(self.motors, 0.5, np.float32) if neutral_command is None
                         else np.asarray(neutral_command, np.float32))

    def step(self, frame) -> np.ndarray:
        return self.predict(np.asarray(frame, np.float32)[None, None, :])[0, 0]

    def predict(self, frames: np.ndarray) -> np.ndarray:
        """(B, N, 61) frames -> (B, N, M) commands, continuing the streaming state when B is
        the batch the state was built with."""
        frames = np.asarray(frames, np.float32)
        out = np.empty((*frames.shape[:2], self.motors), np.float32)
        for n in range(frames.shape[1]):
            out[:, n] = self._next(frames[:, n])
        return out

    def _push(self, frames) -> None:
        b = frames.shape[0]
        if self._inputs is None or self._inputs.shape[0] != b:
            self._inputs = np.repeat(frames[:, None, :], self.window, axis=1)
            self._sent = np.repeat(self._neutral[None, None, :], self.window, axis=0) \
                .reshape(1, self.window, self.motors).repeat(b, axis=0)
        else:
            self._inputs = np.concatenate([self._inputs[:, 1:], frames[:, None]], axis=1)

    def _remember(self, commands) -> None:
        self._sent = np.concatenate([self._sent[:, 1:], commands[:, None]], axis=1)

    def _next(self, frames) -> np.ndarray:
        raise NotImplementedError


class LinearStream(Retargeter):
    def __init__(self, model: LinearRetarget):
        super().__init__('linear', model.weights.shape[1])
        self.model = model

    def _next(self, frames):
        return self.model.predict(frames).astype(np.float32)


class RandomStream(Retargeter):
    """The paper's 'Random' row: uniformly random commands, each frame."""

    def __init__(self, motors: int, seed: int = 0):
        super().__init__('random', motors)
        self.rng = np.random.default_rng(seed)

    def _next(self, frames):
        return self.rng.uniform(0, 1, (frames.shape[0], self.motors)).astype(np.float32)


class NeutralStream(Retargeter):
    """The robot holding its neutral pose whatever the human does: the floor any model has
    to beat."""

    def __init__(self, neutral):
        super().__init__('neutral', len(neutral))
        self.neutral = np.asarray(neutral, np.float32)

    def _next(self, frames):
        return np.repeat(self.neutral[None, :], frames.shape[0], axis=0)


class TorchStream(Retargeter):
    """Any RetargetNetwork behind the streaming interface: the normaliser, the input window
    and the commands sent are kept here, the network only answers for the newest frame."""

    def __init__(self, model: RetargetNetwork, normaliser: Normaliser,
                 deterministic: bool = True, seed: int = 0):
        super().__init__(model.name, model.motors, model.window)
        self.model = model.eval()
        self.normaliser = normaliser
        self.deterministic = deterministic
        self.generator = torch.Generator().manual_seed(seed)
        self.fixed_noise = torch.randn(self.motors, generator=self.generator)

    @torch.inference_mode()
    def _next(self, frames):
        self._push(self.normaliser.inputs(frames))
        noise = (self.fixed_noise if self.deterministic
                 else torch.randn((len(frames), self.motors), generator=self.generator))
        motors = self.model.respond(torch.from_numpy(self._inputs),
                                    torch.from_numpy(Normaliser.motors(self._sent)), noise)
        commands = Normaliser.commands(motors.numpy())
        self._remember(commands)
        return commands


NETWORKS = {'exface': lambda config: ExFaceDiffusion(ExFaceConfig(**config)),
            'mlp': lambda config: MLPRegressor(**config),
            'transformer': lambda config: TransformerRegressor(**config)}


def network_config(kind: str, motors: int, window: int, d_model: int, layers: int,
                   heads: int, **exface) -> dict:
    """The constructor settings of a `kind` network of the given size, as checkpoints store
    them (`exface`: extra ExFaceConfig fields such as frame_rate and condition_noise; the MLP
    is per frame, with a hidden width of 2 x d_model)."""
    if kind == 'exface':
        return ExFaceConfig(motors=motors, window=window, d_model=d_model, layers=layers,
                            heads=heads, **exface).to_dict()
    inputs = len(RETARGET_INPUT)
    if kind == 'mlp':
        return {'inputs': inputs, 'motors': motors, 'hidden': 2 * d_model}
    if kind == 'transformer':
        return {'inputs': inputs, 'motors': motors, 'window': window, 'd_model': d_model,
                'layers': layers, 'heads': heads}
    raise ValueError(f'unknown model kind {kind!r}; choose from {", ".join(NETWORKS)}')


def build_model(kind: str, config: dict, seed: int | None = None) -> RetargetNetwork:
    """The one factory: a `kind` network from its settings; with `seed`, fresh weights that
    follow from the seed alone, not from whatever drew random numbers before in this process,
    and torch's global random state is left as it was (nothing after depends on the build)."""
    if kind not in NETWORKS:
        raise ValueError(f'unknown model kind {kind!r}; choose from {", ".join(NETWORKS)}')
    if seed is None:
        return NETWORKS[kind](config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NETWORKS[kind](config)
