"""What does imagination pay for pushing into a wall? On forward steps of a SceneNav dataset that were blocked
(the first push after moving, and a repeated push) and that moved (256 of each at most), the world model's
imagined step from the same context under each action — its reward (mean of 4 samples) and how often it is
drawn still — beside the true reward of the forward step taken.

    python benchmarks/imagination/wall_rewards.py MODEL DATASET
"""

import sys

import numpy as np
import torch
from still_head import forward_steps, still  # beside this script, on sys.path when it runs

from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel

model, ds = WorldModel.from_pretrained(sys.argv[1]), TrajectoryDataset(sys.argv[2])
L, names = model.config.context, ("forward", "turn left", "turn right")
kinds = forward_steps(ds, L)
rng = np.random.default_rng(0)
gen = torch.Generator().manual_seed(0)
for kind, rows in kinds.items():
    pick = [rows[i] for i in rng.choice(len(rows), min(256, len(rows)), replace=False)]
    frames = torch.as_tensor(np.stack([ep.frames[t - L + 1 : t + 1] for ep, t in pick]))
    actions = torch.as_tensor(np.stack([ep.actions[t - L + 1 : t + 1] for ep, t in pick]))
    true = np.mean([ep.rewards[t] for ep, t in pick])
    parts = []
    for a, name in enumerate(names):
        acts = actions.clone()
        acts[:, -1] = a
        rewards, stills = [], []
        with torch.no_grad():
            for _ in range(4):
                nxt, r, _ = model.step(frames, acts, generator=gen)
                rewards.append(r.numpy())
                stills.append([still(f, n) for f, n in zip(frames[:, -1].numpy(), nxt.numpy())])
        parts.append(f"{name} {np.mean(rewards):+.3f} (still {np.mean(stills):.0%})")
    print(f"{kind} ({len(pick)} of {len(rows)}; true forward reward {true:+.3f}): imagined " + ", ".join(parts))
