"""Action conditioning: the last L actions become one vector added to the noise-level embedding.

The UNet is built with `class_embed_type="identity"` and `resnet_time_scale_shift="scale_shift"`,
so this vector drives the adaptive group norms of every ResNet block (as DIAMOND does).
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.action_space import ActionSpace


class ActionEncoder(nn.Module):
    """Discrete actions: a learned embedding per step; continuous: normalised, then an MLP."""

    def __init__(self, space: ActionSpace, context: int, embed_dim: int, out_dim: int):
        super().__init__()
        self.space = space
        if space.is_discrete:
            self.embed = nn.Embedding(space.n, embed_dim)
            flat = context * embed_dim
        else:
            self.embed = nn.Sequential(nn.Linear(space.dim, embed_dim), nn.SiLU())
            flat = context * embed_dim
        self.proj = nn.Sequential(nn.Linear(flat, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        """actions [B, L] (int) or [B, L, D] (float) -> [B, out_dim]."""
        if self.space.is_discrete:
            e = self.embed(actions.long())
        else:
            e = self.embed(self.space.normalise(actions))
        return self.proj(e.flatten(1))
