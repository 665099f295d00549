"""How well a world model's still head knows a blocked step: its predicted chance that the next frame equals the
last, on forward steps of a SceneNav dataset that moved, that were the first blocked one after moving, and that
repeated a push into a wall (256 of each at most).

    python benchmarks/imagination/still_head.py MODEL DATASET
"""

import sys

import numpy as np
import torch

from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel, still_steps


def still(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether `after` equals `before` as the still head's training label counts it (`still_steps`)."""
    return bool(still_steps(torch.as_tensor(np.stack([before, after]))[None]))


def forward_steps(ds: TrajectoryDataset, context: int) -> dict[str, list]:
    """A SceneNav dataset's forward steps (episode, t) by kind: moved, the first blocked one after moving, and a
    repeated push into a wall."""
    kinds: dict[str, list] = {"moved": [], "first blocked": [], "repeated push": []}
    for ep in ds.episodes:
        for t in range(context, ep.steps):
            if ep.actions[t] == 0:  # forward
                blocked = still(ep.frames[t], ep.frames[t + 1])
                kind = (
                    "moved"
                    if not blocked
                    else "repeated push"
                    if still(ep.frames[t], ep.frames[t - 1])
                    else "first blocked"
                )
                kinds[kind].append((ep, t))
    return kinds


if __name__ == "__main__":
    model, ds = WorldModel.from_pretrained(sys.argv[1]), TrajectoryDataset(sys.argv[2])
    L = model.config.context
    kinds = forward_steps(ds, L)
    rng = np.random.default_rng(0)
    for kind, rows in kinds.items():
        pick = [rows[i] for i in rng.choice(len(rows), min(256, len(rows)), replace=False)]
        frames = torch.as_tensor(np.stack([ep.frames[t - L + 1 : t + 1] for ep, t in pick]))
        actions = torch.as_tensor(np.stack([ep.actions[t - L + 1 : t + 1] for ep, t in pick]))
        with torch.no_grad():
            p = torch.sigmoid(model.still_logits(frames, actions)).numpy()
        above = ", ".join(f"above {q} in {np.mean(p > q):.0%}" for q in (0.1, 0.3, 0.5))
        print(f"{kind}: {len(rows)} steps; mean P(still) {p.mean():.2f}, {above}")
