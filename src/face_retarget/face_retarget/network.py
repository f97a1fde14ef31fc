"""The contract every retargeting network keeps, so streaming, training and checkpoints work
the same for all of them (ExFace, MLP, Transformer) without asking which one they hold."""
from torch import nn


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
