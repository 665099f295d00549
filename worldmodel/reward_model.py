"""Small CNN heads on frames and actions: the reward/termination model and the still-step model.

Separate from the diffusion UNet (as in DIAMOND) because the denoiser only ever sees noisy
targets and noise-level-dependent features, while rewards need clean frames; a separate model is
cheap at inference and can be retrained alone. Reward and termination share the head because
both are read from the same evidence (the transition o_t -> o_{t+1} under a_t, e.g. a brick
breaking or the ball leaving the screen).
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.action_space import ActionSpace
from worldmodel.conditioning import ActionEncoder


class FrameActionCNN(nn.Module):
    """(`frames` frames stacked on channels, L actions) -> `outputs` numbers: stride-2 convolutions, features
    average-pooled to a pool x pool grid (where things are in the frame matters), the actions' embedding, an MLP."""

    def __init__(
        self,
        space: ActionSpace,
        context: int,
        frames: int,
        channels: tuple[int, ...],
        action_embed_dim: int,
        outputs: int,
        pool: int = 4,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3 * frames
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GroupNorm(min(8, c), c), nn.SiLU()]
            c_in = c
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pool), nn.Flatten())
        hidden = channels[-1]
        self.actions = ActionEncoder(space, context, action_embed_dim, hidden)
        self.head = nn.Sequential(
            nn.Linear(hidden * pool * pool + hidden, hidden), nn.SiLU(), nn.Linear(hidden, outputs)
        )

    def features(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """frames [B, 3·frames, H, W] in [-1, 1], actions [B, L] or [B, L, D] -> [B, outputs]."""
        return self.head(torch.cat([self.trunk(frames), self.actions(actions)], dim=1))


class RewardTerminationModel(FrameActionCNN):
    """(L context frames + next frame, L actions) -> (reward, termination logit)."""

    def __init__(
        self, space: ActionSpace, context: int, channels: tuple[int, ...], action_embed_dim: int, pool: int = 4
    ):
        super().__init__(space, context, context + 1, channels, action_embed_dim, 2, pool)

    def forward(self, frames: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames [B, 3(L+1), H, W] in [-1, 1]; returns reward [B] and termination logit [B]."""
        out = self.features(frames, actions)
        return out[:, 0], out[:, 1]


class StillModel(FrameActionCNN):
    """(L context frames, L actions) -> logit that the next frame equals the last one: a still step (a body
    pressed against a wall, a car at rest, a paused game). It reads the frames at full resolution, where how
    near a wall is shows best, and a context in which the body just failed to move."""

    def __init__(
        self, space: ActionSpace, context: int, channels: tuple[int, ...], action_embed_dim: int, pool: int = 4
    ):
        super().__init__(space, context, context, channels, action_embed_dim, 1, pool)

    def forward(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """frames [B, 3L, H, W] in [-1, 1]; returns the still logit [B]."""
        return self.features(frames, actions)[:, 0]
