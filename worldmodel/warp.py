"""The last frame moved by a predicted flow: what a camera's own motion does to a view, carried at full detail.

For a body that turns or steps forward most of the next frame is the last frame shifted or enlarged. A small
diffusion network at 20x20 regenerates that texture badly (benchmarks/log/2026-12-06-pretrained-and-dagger.md:
the room's structure is lost from the first imagined step). With `WorldModelConfig.warp` a small convolutional
`FlowNet` reads the context and the actions and predicts, per pixel, where its content was in the last frame;
`warp` resamples the last frame there, and the diffusion model denoises only what the warp leaves wrong
(disoccluded borders, lighting), seeing the warped frame as an extra input. The flow net is fitted by the
photometric error of its warp alone, so it learns the camera's motion and nothing else.

`warp_reference` is the per-pixel loop that `warp` (one `grid_sample` call) must equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.action_space import ActionSpace
from worldmodel.conditioning import ActionEncoder


def warp(frame: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """frame [B,C,H,W], flow [B,2,H,W] in pixels (x right, y down) -> [B,C,H,W]: output pixel (i, j) takes
    the bilinear sample of `frame` at (j + flow_x, i + flow_y), clamped to the frame's border."""
    b, _, h, w = frame.shape
    ys = torch.arange(h, device=frame.device, dtype=flow.dtype)
    xs = torch.arange(w, device=frame.device, dtype=flow.dtype)
    gx = (2 * (xs[None, None, :] + flow[:, 0]) + 1) / w - 1  # pixel centres -> [-1, 1], align_corners=False
    gy = (2 * (ys[None, :, None] + flow[:, 1]) + 1) / h - 1
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(frame, grid.to(frame.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def warp_reference(frame: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """`warp` written out pixel by pixel (slow; for tests)."""
    b, c, h, w = frame.shape
    out = torch.zeros_like(frame)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                x = min(max(j + float(flow[n, 0, i, j]), 0.0), w - 1.0)
                y = min(max(i + float(flow[n, 1, i, j]), 0.0), h - 1.0)
                x0, y0 = int(x), int(y)
                x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
                fx, fy = x - x0, y - y0
                out[n, :, i, j] = (
                    frame[n, :, y0, x0] * (1 - fx) * (1 - fy)
                    + frame[n, :, y0, x1] * fx * (1 - fy)
                    + frame[n, :, y1, x0] * (1 - fx) * fy
                    + frame[n, :, y1, x1] * fx * fy
                )
    return out


class FlowNet(nn.Module):
    """(L context frames, L actions) -> flow [B,2,H,W] in pixels: a two-level convolutional encoder-decoder
    whose features are shifted by the actions' embedding. The output layer starts at zero, so an untrained
    flow net warps nothing and a model grown from one without a warp starts where that model was."""

    def __init__(self, space: ActionSpace, context: int, action_embed_dim: int, width: int = 32):
        super().__init__()
        c = width
        self.inp = nn.Conv2d(3 * context, c, 3, padding=1)
        self.actions = ActionEncoder(space, context, action_embed_dim, c)
        self.down1 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.up2 = nn.Conv2d(4 * c, 2 * c, 3, padding=1)
        self.up1 = nn.Conv2d(3 * c, c, 3, padding=1)
        self.out = nn.Conv2d(c, 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """context [B, 3L, H, W] in [-1, 1], actions [B, L] or [B, L, D] -> flow [B, 2, H, W]."""
        act = F.silu
        h0 = act(self.inp(context) + self.actions(actions)[:, :, None, None])
        h1 = act(self.down1(h0))
        h2 = act(self.down2(h1))
        h2 = act(self.mid(h2))
        u = F.interpolate(h2, size=h1.shape[-2:], mode="bilinear", align_corners=False)
        u = act(self.up2(torch.cat([u, h1], 1)))
        u = F.interpolate(u, size=h0.shape[-2:], mode="bilinear", align_corners=False)
        u = act(self.up1(torch.cat([u, h0], 1)))
        return self.out(u)
