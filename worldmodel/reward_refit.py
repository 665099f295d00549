"""Refit the reward and termination model on the world model's own imagined frames.

Trained beside the diffusion model, the reward model only ever sees real next frames. In imagination it
reads the model's frames instead, and there it is wrong in the ways a policy trained or judged in
imagination exploits: a body pressed against a wall is imagined moving on, and a reward model that reads
progress from the change between frames pays for it. Refitting on imagined rollouts of the training data,
labelled with the rewards and terminations that truly followed, teaches it to read what the context shows
(how close the wall is) rather than trust the imagined change.

`imagined_transitions` rolls the model open loop from dataset segments under their recorded actions;
`refit_reward_model` trains a fresh reward model on a mix of real and imagined transitions. With
`imagined_fraction` 0 nothing is imagined: the refit is a fresh head fitted on every transition of the data,
uniformly, where the jointly trained head saw the diffusion model's batches (few, half of them from the real
episodes); where imagination shows real frames (`snap_to_data`) that is the head it reads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from worldmodel.action_space import ActionSpace
from worldmodel.reward_model import RewardTerminationModel
from worldmodel.segments import SegmentSampler

LOG = logging.getLogger("worldmodel.reward_refit")


@dataclass
class RewardRefitConfig:
    """How the reward model is refitted on imagined frames (see the module docstring)."""

    steps: int = 0
    """Optimiser steps of the refit (0: keep the reward model trained beside the diffusion model)."""
    rollouts: int = 1024
    """Open-loop imagined rollouts generated from random dataset segments."""
    horizon: int = 15
    """Imagined steps per rollout (the policy-training horizon); every step is one training transition."""
    imagined_fraction: float = 0.5
    """Share of each batch drawn from the imagined transitions; the rest are real ones."""
    batch_size: int = 32
    """Transitions per optimiser step."""
    lr: float = 1e-3
    """Peak AdamW learning rate (cosine decay to zero)."""

    def check(self) -> None:
        from wmcore.errors import UserInputError

        if self.steps < 0 or self.rollouts < 1 or self.horizon < 1 or self.batch_size < 1:
            raise UserInputError("reward refit: steps >= 0 and rollouts, horizon and batch size >= 1")
        if not 0.0 <= self.imagined_fraction <= 1.0 or not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserInputError("reward refit: imagined_fraction in [0, 1] and a positive finite lr")


@torch.no_grad()
def imagined_transitions(
    model: Any, episodes: Sequence[Any], rollouts: int, horizon: int, seed: int = 0, chunk: int = 256
) -> dict[str, torch.Tensor]:
    """Open-loop rollouts of `model` from `rollouts` random segments of `episodes` under their recorded
    actions: frames uint8 [N, L+1, H, W, 3] (context and imagined next frame, the context itself imagined
    after the first step), actions [N, L, ...], and the true rewards and terminations of those steps."""
    L = model.config.context
    sampler = SegmentSampler(episodes, L, horizon)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {"frames": [], "actions": [], "rewards": [], "terminated": []}
    for start in range(0, rollouts, chunk):
        b = sampler.batch(sampler.sample_indices(min(chunk, rollouts - start), rng))
        ctx = b["frames"][:, :L]
        for k in range(horizon):
            acts = b["actions"][:, k : k + L]
            nxt = model.sample_next(ctx, acts, generator=gen).cpu()
            out["frames"].append(torch.cat([ctx, nxt[:, None]], 1))
            out["actions"].append(acts)
            out["rewards"].append(b["rewards"][:, L - 1 + k])
            out["terminated"].append(b["terminated"][:, L - 1 + k])
            ctx = torch.cat([ctx[:, 1:], nxt[:, None]], 1)
    return {k: torch.cat(v) for k, v in out.items()}


def refit_reward_model(
    model: Any, episodes: Sequence[Any], cfg: RewardRefitConfig, termination_weight: float, seed: int = 0
) -> dict[str, float]:
    """Replace `model.reward_model` with a fresh one trained for `cfg.steps` on real transitions of
    `episodes` mixed with imagined ones (`imagined_transitions`); returns figures for the log."""
    from tqdm import tqdm

    cfg.check()
    was_training = model.training
    model.eval()
    n_img = round(cfg.imagined_fraction * cfg.batch_size)
    imagined = imagined_transitions(model, episodes, cfg.rollouts, cfg.horizon, seed) if n_img else None
    c, L = model.config, model.config.context
    torch.manual_seed(seed)
    rm = RewardTerminationModel(
        ActionSpace.from_dict(c.action_space), L, c.reward_channels, c.action_embed_dim, c.reward_pool
    ).to(model.device)
    opt = torch.optim.AdamW(rm.parameters(), lr=cfg.lr, weight_decay=1e-4)
    real = SegmentSampler(episodes, L, 1)
    rng = np.random.default_rng(seed)
    model.reward_model = rm  # trained through the model's own reward loss
    loss = torch.zeros(())
    for step in tqdm(range(cfg.steps), desc="reward refit", leave=False, disable=None):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        b = real.batch(real.sample_indices(cfg.batch_size - n_img, rng))
        frames, acts, rew, term = b["frames"], b["actions"], b["rewards"][:, -1], b["terminated"][:, -1]
        if imagined is not None:
            j = torch.from_numpy(rng.integers(0, len(imagined["frames"]), n_img))
            frames = torch.cat([frames, imagined["frames"][j]])
            acts = torch.cat([acts, imagined["actions"][j]])
            rew, term = torch.cat([rew, imagined["rewards"][j]]), torch.cat([term, imagined["terminated"][j]])
        dev = model.device
        loss = model.reward_loss(frames.to(dev), acts.to(dev), rew.to(dev), term.to(dev), termination_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    rm.eval()
    model.train(was_training)
    count = 0 if imagined is None else len(imagined["frames"])
    LOG.info("reward model refitted: %d steps, %d imagined transitions", cfg.steps, count)
    return {"reward_refit_loss": loss.item(), "reward_refit_imagined": count}
