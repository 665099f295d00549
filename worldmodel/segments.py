"""Segment sampling: L context frames plus `horizon` future frames, with the actions between.

A segment starting at step s holds frames o_s .. o_{s+L+h-1} and actions, rewards and flags
a_s .. a_{s+L+h-2}; the training target is horizon 1 (L context frames and the next frame),
evaluation uses long horizons for autoregressive rollouts. Draws depend only on the generator
passed in, so a training run that seeds it from (seed, step, rank) resumes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from wmcore.errors import UserInputError
from worldmodel.dataset import Episode


class SegmentSampler:
    """Uniform over every (episode, start) whose segment fits inside the episode."""

    def __init__(self, episodes: Sequence[Episode], context: int, horizon: int = 1):
        self.episodes = list(episodes)
        self.context, self.horizon = int(context), int(horizon)
        span = self.context + self.horizon
        counts = np.array([max(0, e.steps + 2 - span) for e in self.episodes], dtype=np.int64)
        if counts.sum() == 0:
            longest = max((e.steps for e in self.episodes), default=0)
            raise UserInputError(
                f"no episode is long enough for {self.context} context frames plus horizon "
                f"{self.horizon} (needs {span - 1} steps, longest has {longest}); record "
                "longer episodes or lower --context / the horizon"
            )
        self.cum = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self.cum[-1])

    def locate(self, index: int) -> tuple[int, int]:
        ep = int(np.searchsorted(self.cum, index, side="right") - 1)
        return ep, int(index - self.cum[ep])

    def sample_indices(
        self, batch_size: int, rng: np.random.Generator, recent_fraction: float = 0.0, recent_episodes: int = 0
    ) -> np.ndarray:
        """Uniform segment indices; with `recent_fraction` > 0, that fraction of the batch comes from the
        last `recent_episodes` episodes (DIAMOND draws 70% from the newest quarter), so data the current
        policy collected weighs more than the old bulk while the rest keeps the model from forgetting it."""
        if recent_fraction <= 0 or recent_episodes <= 0 or recent_episodes >= len(self.episodes):
            return rng.integers(0, len(self), size=batch_size)
        first = int(self.cum[len(self.episodes) - recent_episodes])
        if first >= len(self):  # the recent episodes hold no segment
            return rng.integers(0, len(self), size=batch_size)
        recent = rng.random(batch_size) < recent_fraction
        return np.where(
            recent, rng.integers(first, len(self), size=batch_size), rng.integers(0, len(self), size=batch_size)
        )

    def evenly_spaced(self, count: int) -> np.ndarray:
        """`count` segment indices spread over the whole set (deterministic, for evaluation)."""
        count = min(count, len(self))
        return np.linspace(0, len(self) - 1, count).round().astype(np.int64)

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """frames uint8 [B,L+h,H,W,3]; actions [B,L+h-1,...]; rewards, terminated [B,L+h-1]; ep index [B]."""
        span = self.context + self.horizon
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("frames", "actions", "rewards", "terminated", "episode")}
        for i in indices:
            e, s = self.locate(int(i))
            ep = self.episodes[e]
            out["frames"].append(np.asarray(ep.frames[s : s + span]))
            out["actions"].append(ep.actions[s : s + span - 1])
            out["rewards"].append(ep.rewards[s : s + span - 1])
            out["terminated"].append(ep.terminated[s : s + span - 1])
            out["episode"].append(np.asarray(e))
        return {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}

    def texts(self, episode_indices: torch.Tensor) -> list[str]:
        return [self.episodes[int(e)].text or "" for e in episode_indices]
