"""Does a policy's behaviour stay inside the data a world model was trained on?

A world model is only trustworthy where it has seen data: policies that reach views the data never
held get imagined returns the model invents (WorldGym reports that world models overrate such
policies). `DataCoverage` keeps small thumbnails of every training frame; a frame's distance to
its nearest training thumbnail, compared with the same distance for held-out frames of the data's
own distribution, says whether a frame is out of distribution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def thumbnails(frames: np.ndarray, size: int = 8) -> torch.Tensor:
    """uint8 [N,H,W,3] -> float [N, size*size*3] (area-averaged, 0-1), the space distances live in."""
    x = torch.as_tensor(np.asarray(frames)).float().div(255.0).permute(0, 3, 1, 2)
    return torch.nn.functional.adaptive_avg_pool2d(x, size).flatten(1)


class DataCoverage:
    """Nearest-neighbour distance of frames to a dataset's training frames, in thumbnail space."""

    def __init__(
        self, train_frames: list[np.ndarray], held_out_frames: list[np.ndarray], size: int = 8, quantile: float = 0.95
    ):
        self.size = size
        self.bank = torch.cat([thumbnails(f, size) for f in train_frames])
        ref = self.distances(np.concatenate(held_out_frames))
        self.threshold = float(np.quantile(ref, quantile))
        """A frame farther than this from every training frame is outside the data: the `quantile`
        of held-out frames' distances (so `1 - quantile` of in-distribution frames exceed it)."""
        self.expected_outside = 1.0 - quantile

    @classmethod
    def from_dataset(cls, dataset: Any, holdout: int, size: int = 8) -> DataCoverage:
        """Training frames: all but the last `holdout` episodes; the reference: those episodes."""
        train, held = dataset.split(holdout)
        return cls([np.asarray(e.frames) for e in train], [np.asarray(e.frames) for e in held], size)

    def distances(self, frames: np.ndarray, chunk: int = 512) -> np.ndarray:
        """Distance of each frame [N,H,W,3] to its nearest training thumbnail."""
        q = thumbnails(frames, self.size)
        out = [torch.cdist(q[i : i + chunk], self.bank).min(1).values for i in range(0, len(q), chunk)]
        return torch.cat(out).numpy()

    def outside_fraction(self, frames: np.ndarray) -> float:
        """Fraction of `frames` farther from the data than the threshold (about `expected_outside`
        for behaviour like the data's)."""
        return float((self.distances(frames) > self.threshold).mean())
