"""Observation augmentation shared by the policies' training: behaviour cloning shows each batch augmented, and
the actor-critic's DrAC term (Raileanu et al. 2021) asks the policy and value to give an augmented view the answer
they give the view itself. Both make a policy fitted on one world's views act alike on another's (the twin's,
reality's, imagination's)."""

from __future__ import annotations

import torch


def augment(obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """uint8 observations [B,H,W,C] (C = 3 per stacked frame) -> float [B,H,W,C] in 0..255: each shifted by up to
    2 pixels (edges repeated), mixed with its 3x3 box blur by a random weight, its contrast scaled by 0.8..1.2 and
    its brightness moved by -20..20 (DrQ's shift, plus what a reconstruction or a world model changes: sharpness
    and exposure). Stacked frames of one sample get the same change. `gen` is a CPU generator; the result is on
    the device of `obs`."""
    b, h, w, _ = obs.shape
    x = obs.float().permute(0, 3, 1, 2)
    pad = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    dy, dx = torch.randint(0, 5, (2, b), generator=gen).tolist()
    x = torch.stack([pad[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
    k = torch.rand(b, 1, 1, 1, generator=gen).to(x.device)
    x = k * blur + (1 - k) * x
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=gen).to(x.device)
    bright = 40 * torch.rand(b, 1, 1, 1, generator=gen).to(x.device) - 20
    x = (x - mean) * contrast + mean + bright
    return x.clamp(0, 255).permute(0, 2, 3, 1)
