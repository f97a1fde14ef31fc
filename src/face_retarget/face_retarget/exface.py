"""ExFace: a diffusion transformer from human blendshape sequences to robot motor values.

Paper: ExFace (Zhang et al.), III-B. A conditional DDPM over a window of T frames of motor
values, conditioned on the T-frame blendshape window; the network is a DiT (Peebles & Xie)
with adaLN-Zero timestep conditioning, trained with MSE between predicted and true motor values
(x0 prediction). For real time on a CPU (Diffusion Policy habits):
- the commands already sent are given to the network as a known prefix (value + mask), so each
  new frame only has to fill in the current command, continuous with the past;
- inference warm-starts the current frame from the previous command, noised to an intermediate
  level, and runs a few deterministic DDIM steps from there;
- deterministic mode uses one fixed noise vector, so streaming and batch inference agree.
"""
from dataclasses import asdict, dataclass
import math

import torch
from torch import nn
import torch.nn.functional as F

from face_retarget.network import FrozenGraphs, RetargetNetwork


@dataclass
class ExFaceConfig:
    input_channels: int = 55          # 52 blendshapes + head yaw/pitch/roll (paper: 55)
    motors: int = 33
    window: int = 120                 # T frames (paper: 120)
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    diffusion_steps: int = 100        # training noise levels
    schedule: str = 'cosine'          # 'cosine' | 'linear'
    inference_steps: int = 1          # DDIM steps per frame (1 from the warm start measured
                                      # as good as 2 at half the latency)
    warm_start: float = 0.3           # start level, as a fraction of diffusion_steps
    cold_prefix_p: float = 0.1        # training windows with no known prefix
    condition_noise: float = 0.0      # training: white noise std on the standardised
                                      # blendshapes (trades distance for smoothness)
    frame_rate: float = 30.0

    def to_dict(self) -> dict:
        return asdict(self)


def noise_schedule(steps: int, kind: str) -> torch.Tensor:
    """Cumulative alpha-bar for t = 0..steps-1 (t = steps-1 is almost pure noise)."""
    if kind == 'linear':                                   # Ho et al., scaled to `steps`
        scale = 1000.0 / steps
        betas = torch.linspace(1e-4 * scale, min(0.02 * scale, 0.999), steps,
                               dtype=torch.float64)
        return torch.cumprod(1.0 - betas, 0).float()
    if kind == 'cosine':                                   # Nichol & Dhariwal
        s = 0.008
        x = torch.linspace(0, steps, steps + 1, dtype=torch.float64)
        f = torch.cos(((x / steps) + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = torch.clip(1 - alpha_bar[1:] / alpha_bar[:-1], 0, 0.999)
        return torch.cumprod(1.0 - betas, 0).float()
    raise ValueError(f'unknown noise schedule {kind!r}')


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention on PyTorch's fused kernel (less per-call overhead than
    nn.MultiheadAttention, which matters at batch 1 in real time)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x, last_only: bool = False):
        """Attention over the whole window; with last_only, only the last frame's row is
        computed (its keys and values still come from every frame)."""
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if last_only:
            q, t = q[:, :, -1:], 1
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class DiTBlock(nn.Module):
    """Transformer block whose norms are modulated by the timestep (adaLN-Zero)."""

    def __init__(self, d: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d, heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate='tanh'),
                                 nn.Linear(hidden, d))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x, c, last_only: bool = False):
        """(B, T, d) -> (B, T, d), or (B, 1, d) for the last frame alone with last_only."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1)
        if last_only:
            x = x[:, -1:]
        x = x + gate1[:, None, :] * self.attn(h, last_only)
        h = modulate(self.norm2(x), shift2, scale2)
        return x + gate2[:, None, :] * self.mlp(h)


class ExFaceDiT(nn.Module):
    """Denoiser: (noisy motors, blendshapes, known motors + mask, t) -> clean motors."""

    def __init__(self, config: ExFaceConfig):
        super().__init__()
        self.config = config
        c, m, d = config.input_channels, config.motors, config.d_model
        self.embed = nn.Linear(m + c + m + 1, d)
        self.position = nn.Parameter(torch.zeros(1, config.window, d))
        nn.init.normal_(self.position, std=0.02)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(DiTBlock(d, config.heads, config.mlp_ratio)
                                    for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        nn.init.zeros_(self.final_ada[1].weight)
        nn.init.zeros_(self.final_ada[1].bias)
        self.out = nn.Linear(d, m)

    def forward(self, noisy, cond, known, mask, t, last_only: bool = False):
        """Clean motors (B, T, M); with last_only (B, 1, M), the last frame alone: the last
        block then skips the rows no later layer reads (a quarter of the work at 4 layers)."""
        x = self.embed(torch.cat([noisy, cond, known * mask, mask], dim=-1))
        x = x + self.position[:, -x.shape[1]:]
        c = self.time(timestep_embedding(t, self.config.d_model))
        for i, block in enumerate(self.blocks):
            x = block(x, c, last_only and i == len(self.blocks) - 1)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        return self.out(modulate(self.final_norm(x), shift, scale))


class LastFrameDenoiser(nn.Module):
    """The denoiser's last-frame answer (B, M) as a module of tensors only, so it can be
    traced into a frozen TorchScript graph (fewer Python ops per denoising step)."""

    def __init__(self, net: ExFaceDiT):
        super().__init__()
        self.net = net

    def forward(self, noisy, cond, known, mask, t):
        return self.net(noisy, cond, known, mask, t, last_only=True)[:, -1]


class ExFaceDiffusion(RetargetNetwork):
    """Training loss and samplers around the denoiser. Motors are in [-1, 1] here (the
    normaliser maps 0..1 commands to it), blendshapes standardised."""

    name = 'exface'

    def __init__(self, config: ExFaceConfig):
        super().__init__()
        self.config = config
        self.motors, self.window = config.motors, config.window
        self.net = ExFaceDiT(config)
        self.register_buffer('alpha_bar', noise_schedule(config.diffusion_steps,
                                                         config.schedule))
        self._frozen_denoiser = None      # FrozenGraphs, once frozen

    def freeze_for_inference(self) -> None:
        """Weights fixed from now on (a loaded checkpoint): each denoising step runs as a
        frozen TorchScript graph. Measured 0.75x the eager step's time at one thread
        (bench/retarget.py); equal to eager within float rounding."""
        self.eval()
        self._frozen_denoiser = FrozenGraphs(LastFrameDenoiser(self.net))

    def _denoise_last(self, noisy, cond, known, mask, t):
        if self._frozen_denoiser is None:
            return self.net(noisy, cond, known, mask, t, last_only=True)[:, -1]
        return self._frozen_denoiser(noisy, cond, known, mask, t)

    # ---- training --------------------------------------------------------------------------
    def loss(self, cond, motors, generator=None):
        """MSE between predicted and true motor values on the frames to fill in.

        cond (B, T, C), motors (B, T, M). Each window gets a random known prefix (the commands
        'already sent'); some get none, so the model can also start cold."""
        b, t_len, _ = motors.shape
        device = motors.device
        if self.config.condition_noise > 0:
            cond = cond + self.config.condition_noise * torch.randn(
                cond.shape, device=device, generator=generator)
        t = torch.randint(0, self.config.diffusion_steps, (b,), device=device,
                          generator=generator)
        noise = torch.randn(motors.shape, device=device, generator=generator)
        ab = self.alpha_bar[t][:, None, None]
        noisy = ab.sqrt() * motors + (1 - ab).sqrt() * noise
        prefix = torch.randint(0, t_len, (b,), device=device, generator=generator)
        cold = torch.rand(b, device=device, generator=generator) < self.config.cold_prefix_p
        prefix = torch.where(cold, torch.zeros_like(prefix), prefix)
        frames = torch.arange(t_len, device=device)[None, :]
        mask = (frames < prefix[:, None]).float()[..., None]
        predicted = self.net(noisy, cond, motors, mask, t)
        weight = 1.0 - mask                                   # learn what is not given
        return ((predicted - motors) ** 2 * weight).sum() / (weight.sum() * motors.shape[-1])

    def settings(self) -> dict:
        return self.config.to_dict()

    # ---- sampling -----------------------------------------------------------------------------
    def respond(self, cond, sent, noise):
        """The newest frame's motors, continuous with the commands sent: the last row of
        the history is a placeholder, the previous command is the warm start."""
        history = torch.cat([sent[:, 1:], sent[:, -1:]], dim=1)
        return self.fill_last(cond, history, history[:, -2], noise)

    def _levels(self, start_fraction: float, steps: int):
        top = max(1, min(self.config.diffusion_steps - 1,
                         round(start_fraction * (self.config.diffusion_steps - 1))))
        if steps <= 1:
            return torch.tensor([top])
        return torch.linspace(top, 0, steps).round().long().unique_consecutive()

    @torch.inference_mode()
    def fill_last(self, cond, history, warm, noise, steps=None, start=None):
        """Predict the last frame's motors of each window.

        cond (B, T, C); history (B, T, M): the commands already sent for frames 0..T-2 (the
        last row is ignored); warm (B, M): where to start the last frame (the previous
        command); noise (B, M) or (M,): the noise the warm start is mixed with."""
        steps = steps or self.config.inference_steps
        start = self.config.warm_start if start is None else start
        b, t_len, m = history.shape
        mask = torch.ones(b, t_len, 1)
        mask[:, -1] = 0.0
        levels = self._levels(start, steps)
        ab = self.alpha_bar[levels[0]]
        x_last = ab.sqrt() * warm + (1 - ab).sqrt() * noise
        estimate = warm
        for i, level in enumerate(levels):
            ab = self.alpha_bar[level]
            noisy = ab.sqrt() * history + (1 - ab).sqrt() * noise.expand(b, m)[:, None, :]
            noisy = torch.cat([noisy[:, :-1], x_last[:, None, :]], dim=1)
            t = torch.full((b,), int(level))
            estimate = self._denoise_last(noisy, cond, history, mask, t)
            if i + 1 < len(levels):                         # DDIM (eta = 0) to the next level
                eps = (x_last - ab.sqrt() * estimate) / (1 - ab).sqrt().clamp_min(1e-8)
                ab_next = self.alpha_bar[levels[i + 1]]
                x_last = ab_next.sqrt() * estimate + (1 - ab_next).sqrt() * eps
        return estimate.clamp(-1.0, 1.0)
