"""The frames a world model was trained on, as a memory its imagined frames are projected onto.

A small diffusion world model on a CPU budget predicts the mean of the futures it cannot tell apart:
within about ten imagined steps its frames are a blur no policy trained on sharp views reads as it
reads a real one (validate's `decisions kept`). Snapping each imagined frame to the nearest frame of
the model's own training data keeps the rollout on the data: the policy, the reward head and the next
prediction all see a real view again. The model still decides where the rollout goes (which view comes
next under the action); the memory only decides what that view looks like. Where no stored frame is
near the prediction, the snap distance says so: it is a trust figure, not hidden.

Distances are RMS pixel differences (0-255) at the model's network resolution (frames area-averaged
by its `downsample`), where the prediction carries its information.
"""

from __future__ import annotations

import numpy as np
import torch

from worldmodel.dataset import TrajectoryDataset

CHUNK = 8192
"""Stored frames compared per matrix product (bounds the distance matrix to batch × CHUNK)."""


def pooled(frames: torch.Tensor, factor: int) -> torch.Tensor:
    """uint8 or float frames [N,H,W,C] area-averaged by `factor` and flattened: float32 [N, H/f * W/f * C]."""
    x = frames.float()
    n, h, w, c = x.shape
    if factor > 1:
        x = x.reshape(n, h // factor, factor, w // factor, factor, c).mean((2, 4))
    return x.reshape(n, -1)


class FrameMemory:
    """Every frame of a trajectory dataset, searchable by nearest neighbour.

    `nearest(frames)` returns the stored frame closest to each query and the RMS distance to it, by comparing
    every stored key (one matrix product per CHUNK keys; in the demo snapping adds about 14 s in all,
    BENCHMARKS.md). Memory: the frames (uint8) and their pooled keys (float32), e.g. 7,600 frames of 40×40 at
    factor 2 take 73 MB."""

    def __init__(self, frames: np.ndarray, factor: int = 1):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"FrameMemory needs uint8 frames [N,H,W,C] with N >= 1, got {frames.dtype} {frames.shape}")
        h, w = frames.shape[1:3]
        if factor < 1 or h % factor or w % factor:
            raise ValueError(f"FrameMemory factor {factor} must divide the frame size {h}x{w}")
        self.factor = int(factor)
        self.frames = torch.from_numpy(np.ascontiguousarray(frames))
        self.keys = torch.cat([pooled(self.frames[i : i + CHUNK], factor) for i in range(0, len(frames), CHUNK)])
        self.norms = self.keys.pow(2).sum(1)
        self.dims = self.keys.shape[1]

    @classmethod
    def from_dataset(cls, dataset: TrajectoryDataset, factor: int = 1) -> FrameMemory:
        """Every frame of every episode of `dataset`."""
        return cls(np.concatenate([ep.frames for ep in dataset.episodes]), factor)

    def __len__(self) -> int:
        return len(self.frames)

    def nearest(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(stored frames uint8 [B,H,W,C] nearest to `frames` [B,H,W,C], RMS distances float32 [B])."""
        q = pooled(frames.cpu(), self.factor)
        best = torch.full((len(q),), float("inf"))
        index = torch.zeros(len(q), dtype=torch.long)
        for i in range(0, len(self.keys), CHUNK):
            d = self.norms[None, i : i + CHUNK] - 2.0 * q @ self.keys[i : i + CHUNK].T
            value, arg = d.min(1)
            better = value < best
            best = torch.where(better, value, best)
            index = torch.where(better, arg + i, index)
        squared = (best + q.pow(2).sum(1)).clamp_min(0)
        return self.frames[index], squared.div(self.dims).sqrt()
