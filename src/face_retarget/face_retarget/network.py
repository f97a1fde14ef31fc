"""The contract every retargeting network keeps, so streaming, training and checkpoints work
the same for all of them (ExFace, MLP, Transformer) without asking which one they hold."""
import warnings

import torch
from torch import nn


class FrozenGraphs:
    """A module whose weights no longer change, run as frozen TorchScript graphs (traced on
    first use, one per input shapes): fewer Python ops per call than eager PyTorch, the same
    answer within float rounding. A plain object, so the module is not registered twice in
    its owner's state dict."""

    def __init__(self, module: nn.Module):
        self.module = module.eval()
        self.graphs = {}

    def __call__(self, *inputs):
        key = tuple(tuple(x.shape) for x in inputs)
        graph = self.graphs.get(key)
        if graph is None:
            with torch.no_grad(), warnings.catch_warnings():
                # TorchScript is deprecated in favour of torch.compile, which needs a C++
                # toolchain at run time; the traced graph is what runs everywhere today.
                warnings.simplefilter('ignore', DeprecationWarning)
                graph = torch.jit.freeze(torch.jit.trace(self.module, inputs))
            self.graphs[key] = graph
        return graph(*inputs)


class RetargetNetwork(nn.Module):
    """A network from standardised blendshape windows to motor values in [-1, 1].

    Subclasses set `name`, `config` (their constructor settings), `motors` and `window` (the
    frames of input each answer needs, 1 for a per-frame network) and implement `loss` and
    `respond`."""

    name = ''

    def loss(self, cond, motors, generator=None):
        """Training loss on a batch of aligned windows cond (B, T, 55) -> motors (B, T, M)."""
        raise NotImplementedError

    def respond(self, cond, sent, noise):
        """Motors (B, M) for the newest frame: cond (B, window, 55) the inputs so far, sent
        (B, window, M) the commands already sent (in [-1, 1]), noise (B, M) or (M,) for a
        sampling network."""
        raise NotImplementedError

    def freeze_for_inference(self) -> None:
        """Promise that the weights no longer change (a loaded checkpoint), so a network may
        run a faster, frozen form of itself; eval mode in any case."""
        self.eval()

    def training_view(self, cond, motors):
        """The training samples drawn from windows (a per-frame network draws frames)."""
        return cond, motors

    def settings(self) -> dict:
        """The constructor settings, as a checkpoint stores them."""
        return dict(self.config)
