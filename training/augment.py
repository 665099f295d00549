"""Observation augmentation shared by the policies' training: behaviour cloning shows each batch augmented, and
the actor-critic's DrAC term (Raileanu et al. 2021) asks the policy and value to give an augmented view the answer
they give the view itself. Both make a policy fitted on one world's views act alike on another's (the twin's,
reality's, imagination's)."""

from __future__ import annotations

import torch


def augment(
    obs: torch.Tensor,
    gen: torch.Generator,
    contrast: float = 0.2,
    brightness: float = 20.0,
    sharpen: float = 0.0,
    gain: float = 0.0,
    noise: float = 0.0,
) -> torch.Tensor:
    """uint8 observations [B,H,W,C] (C = 3 per stacked frame) -> float [B,H,W,C] in 0..255: each shifted by up to
    2 pixels (edges repeated), mixed with its 3x3 box blur by a random weight in [-sharpen, 1] (below 0 it is
    sharpened), each channel scaled by 1 +- `gain`, its contrast scaled by 1 +- `contrast` and its brightness moved
    by +- `brightness`, and pixel noise of a random sigma up to `noise` added (DrQ's shift, plus what a
    reconstruction or a world model changes: sharpness and exposure). Stacked frames of one sample get the same
    change. `gen` is a CPU generator; the result is on the device of `obs`. The defaults are what cloning uses."""
    b, h, w, _ = obs.shape
    x = obs.float().permute(0, 3, 1, 2)
    pad = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    dy, dx = torch.randint(0, 5, (2, b), generator=gen).tolist()
    x = torch.stack([pad[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
    k = torch.rand(b, 1, 1, 1, generator=gen).to(x.device)
    if sharpen:
        k = k * (1 + sharpen) - sharpen
    x = k * blur + (1 - k) * x
    if gain:
        x = x * (1 - gain + 2 * gain * torch.rand(b, x.shape[1], 1, 1, generator=gen).to(x.device))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    scale = 1 - contrast + 2 * contrast * torch.rand(b, 1, 1, 1, generator=gen).to(x.device)
    shift = 2 * brightness * torch.rand(b, 1, 1, 1, generator=gen).to(x.device) - brightness
    x = (x - mean) * scale + mean + shift
    if noise:
        sigma = noise * torch.rand(b, 1, 1, 1, generator=gen).to(x.device)
        x = x + sigma * torch.randn(x.shape, generator=gen).to(x.device)
    return x.clamp(0, 255).permute(0, 2, 3, 1)
