"""Training and checkpoints for the retargeting models (ExFace, MLP, Transformer).

A checkpoint carries everything needed to use it safely: the model kind and config, the
normaliser, the robot's name and profile digest (a checkpoint refuses a different head), the
training config and the loss history.

Checkpoints are loaded with torch.load(weights_only=True): a .pt file is a pickle, and a full
unpickle runs whatever callable the file names (a "checkpoint" from the internet could run a
shell command). The restricted unpickler only builds tensors and plain containers, numbers and
strings, which is all a checkpoint holds, and refuses anything else before it runs.
"""
from dataclasses import asdict, dataclass
import io
import math
from pathlib import Path
import pickle

import numpy as np
import torch
from tqdm import tqdm

from face_actuation.twin import FaceTwin
from face_common.atomic import write_atomic
from face_common.paths import share_path
from face_retarget.baselines import LinearRetarget, fit_linear_on_twin
from face_retarget.models import (
    LinearStream,
    NeutralStream,
    Normaliser,
    RandomStream,
    Retargeter,
    TorchStream,
    build_model,
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here (missing, corrupt, or for another robot)."""


@dataclass
class TrainConfig:
    steps: int = 3000
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    threads: int = 2


def _lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % (Diffusion Policy's schedule)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(model, observed: np.ndarray, commands: np.ndarray, normaliser: Normaliser,
          config: TrainConfig, progress: bool = True, label: str = '') -> list:
    """Train on aligned windows observed (W, T, 61) -> commands (W, T, M); returns the loss
    history [(step, loss)]. Every draw (batches, diffusion noise) comes from a generator
    seeded with config.seed, never from torch's global random state."""
    torch.set_num_threads(config.threads)
    generator = torch.Generator().manual_seed(config.seed)
    cond = torch.from_numpy(normaliser.inputs(observed))
    target = torch.from_numpy(Normaliser.motors(commands))
    cond, target = model.training_view(cond, target)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    history = []
    model.train()
    bar = tqdm(range(config.steps), desc=f'train {label or model.name}',
               disable=not progress, leave=False)
    running = None
    for step in bar:
        index = torch.randint(0, len(cond), (config.batch,), generator=generator)
        loss = model.loss(cond[index], target[index], generator)
        for group in optimizer.param_groups:
            group['lr'] = _lr_at(step, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        if step % 25 == 0 or step == config.steps - 1:
            history.append((step, running))
            bar.set_postfix(loss=f'{running:.4f}')
    model.eval()
    return history


def default_checkpoint_dir() -> Path:
    """The shipped checkpoints: the source tree in a development checkout (always current),
    else the installed share directory."""
    return share_path('face_retarget', 'checkpoints',
                      Path(__file__).resolve().parent.parent / 'checkpoints')


def save_checkpoint(path, model, normaliser: Normaliser, profile, config: TrainConfig,
                    history, info=None, half: bool = False) -> Path:
    """half: store weights as float16 (the shipped checkpoints; loaded back as float32)."""
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {'kind': model.name, 'config': model.settings(),
               'state_dict': state, 'normaliser': normaliser.to_dict(),
               'robot': profile.name, 'profile_digest': profile.digest(),
               'train_config': asdict(config), 'history': history, 'info': info or {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    _read_payload(path, io.BytesIO(data))    # never write one the safe loader would refuse
    return write_atomic(path, data)


_CHECKPOINT_KEYS = ('kind', 'config', 'state_dict', 'normaliser', 'robot', 'profile_digest')


def _read_payload(path: Path, content=None) -> dict:
    """The checkpoint's dict (from `content`, a file object, when given, else from `path`),
    unpickled with the weights-only unpickler: nothing in the file is called, so a malicious
    file is refused before any of it runs."""
    try:
        payload = torch.load(path if content is None else content, map_location='cpu',
                             weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text: a paragraph about the default, then what was refused, then a link.
        paragraphs = [p.strip() for p in str(exc).split('\n\n') if p.strip()]
        refused = paragraphs[1] if len(paragraphs) > 1 else paragraphs[0]
        raise CheckpointError(
            f'refused checkpoint {path}: it holds Python objects a checkpoint never needs, and '
            f'loading them could run code ({refused})') from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f'cannot load checkpoint {path}: {exc}') from None
    if not isinstance(payload, dict) or not all(k in payload for k in _CHECKPOINT_KEYS):
        raise CheckpointError(f'{path} is not a face_retarget checkpoint (needs the fields '
                              f'{", ".join(_CHECKPOINT_KEYS)})')
    return payload


def load_checkpoint(path, profile=None):
    """(model, normaliser, payload); refuses a checkpoint made for another robot head."""
    payload = _read_payload(Path(path))
    if profile is not None and payload['profile_digest'] != profile.digest():
        raise CheckpointError(
            f'{path} was trained for robot "{payload["robot"]}" (profile '
            f'{payload["profile_digest"]}), not "{profile.name}" ({profile.digest()})')
    try:
        model = build_model(payload['kind'], payload['config'])
        model.load_state_dict(payload['state_dict'])
        normaliser = Normaliser.from_dict(payload['normaliser'])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f'{path}: the weights do not fit the model it names: '
                              f'{str(exc).splitlines()[0]}') from None
    model.eval()
    return model, normaliser, payload


def stream_from_checkpoint(path, profile, deterministic: bool = True,
                           seed: int = 0) -> TorchStream:
    model, normaliser, _ = load_checkpoint(path, profile)
    model.freeze_for_inference()
    return TorchStream(model, normaliser, deterministic, seed)


# What a robot can be driven by (the retarget node, face-demo): open_retargeter's names but
# the random baseline.
MODELS = ('exface', 'mlp', 'transformer', 'linear')


def open_retargeter(name: str, profile, directory, checkpoint=None, deterministic: bool = True,
                    seed: int = 0) -> tuple[Retargeter, str]:
    """The model `name` for `profile` behind the streaming interface, and where it came from:
    `checkpoint`, else the checkpoint set in `directory` (a linear map missing there is
    fitted on 600 random poses of the robot's twin). Raises CheckpointError, OSError or
    ValueError for a model that cannot be used."""
    if name == 'random':
        return RandomStream(profile.num_motors, seed), 'uniform random commands'
    if name == 'neutral':
        return NeutralStream(profile.neutral), 'the neutral pose, held'
    if name == 'linear':
        path = checkpoint or Path(directory) / 'linear.npz'
        try:
            linear = LinearRetarget.load(path)
        except OSError:
            if checkpoint:
                raise
            linear = fit_linear_on_twin(FaceTwin(profile, seed=1))
            path = f'fitted on 600 random poses of the {profile.name} twin'
        if linear.weights.shape[1] != profile.num_motors:
            raise ValueError(f'linear model outputs {linear.weights.shape[1]} motors, '
                             f'{profile.name} has {profile.num_motors}')
        return LinearStream(linear), str(path)
    path = checkpoint or Path(directory) / f'{name}.pt'
    stream = stream_from_checkpoint(path, profile, deterministic, seed)
    if stream.name != name:
        raise ValueError(f'{path} holds a {stream.name} model, not {name}')
    return stream, str(path)


def draw_curves(ax, curves: dict, title: str, xlabel: str = 'step') -> None:
    """Loss histories [(step, loss)] as lines on a log scale, on a matplotlib axis."""
    for name, history in curves.items():
        if history:
            steps, losses = zip(*history, strict=True)
            ax.plot(steps, losses, label=name)
    ax.set_yscale('log')
    ax.set_xlabel(xlabel)
    ax.set_ylabel('training loss (MSE, smoothed)')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_curves(curves: dict, path, title: str) -> Path:
    """Training-loss curves (log scale), one line per model, as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    draw_curves(ax, curves, title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


__all__ = ['MODELS', 'CheckpointError', 'TrainConfig', 'default_checkpoint_dir', 'load_checkpoint',
           'open_retargeter', 'plot_curves', 'save_checkpoint', 'stream_from_checkpoint',
           'train']
