"""Image-fidelity metrics shared by reconstruction and world-model evaluation.

Images are float tensors in [0, 1], shape [..., H, W, C] (channels last, as renders are).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(pred: torch.Tensor, target: torch.Tensor, max_val: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB over the last three dims; returns shape pred.shape[:-3]."""
    mse = ((pred.float() - target.float()) ** 2).flatten(-3).mean(-1)
    return 10.0 * torch.log10(max_val**2 / mse.clamp_min(1e-10))


def _gaussian_window(size: int, sigma: float, channels: int, dtype, device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    w = g[:, None] * g[None, :]
    return w.expand(channels, 1, size, size).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Gaussian window 11, sigma 1.5, as in the 3DGS paper); differentiable.

    Input [..., H, W, C] in [0, 1]; returns shape pred.shape[:-3].
    """
    lead = pred.shape[:-3]
    h, w, c = pred.shape[-3:]
    x = pred.reshape(-1, h, w, c).permute(0, 3, 1, 2).float()
    y = target.reshape(-1, h, w, c).permute(0, 3, 1, 2).float()
    win = _gaussian_window(window, sigma, c, x.dtype, x.device)
    pad = window // 2

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (pad, pad, pad, pad), mode="reflect"), win, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(-1).reshape(lead)
