"""Does the world model know when the body is blocked? Over forward steps of a SceneNav dataset, the mean
absolute frame change (0-255) the model predicts one step ahead, against the true change, separately for
steps that collided (reward below -0.04: the collision penalty) and steps that moved.

    python benchmarks/imagination/collision_hallucination.py MODEL DATASET
"""

import sys

import numpy as np
import torch

from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel

torch.set_num_threads(2)
model, data = WorldModel.from_pretrained(sys.argv[1]), TrajectoryDataset(sys.argv[2])
L = model.config.context
blocked, moved = [], []
for ep in data.episodes:
    for t in range(L - 1, ep.steps):
        if ep.actions[t] == 0:  # forward
            (blocked if ep.rewards[t] < -0.04 else moved).append((ep, t))
print(f"forward steps: {len(blocked)} collided, {len(moved)} moved")
rng = np.random.default_rng(0)
for name, steps in (("collided", blocked), ("moved", moved)):
    pick = [steps[i] for i in rng.choice(len(steps), min(128, len(steps)), replace=False)]
    ctx = torch.stack([torch.from_numpy(np.array(ep.frames[t - L + 1 : t + 1])) for ep, t in pick])
    acts = torch.stack([torch.as_tensor(ep.actions[t - L + 1 : t + 1]) for ep, t in pick])
    true_next = torch.stack([torch.from_numpy(np.array(ep.frames[t + 1])) for ep, t in pick]).float()
    pred = model.sample_next(ctx, acts, generator=torch.Generator().manual_seed(0)).float()
    cur = ctx[:, -1].float()
    print(
        f"{name} (n={len(pick)}): true change {(true_next - cur).abs().mean():.2f}, "
        f"predicted change {(pred - cur).abs().mean():.2f}"
    )
