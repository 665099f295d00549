"""Does the world model's next frame follow the action? For 15 held-out segments, the one-step prediction under
each of the three actions (one denoising step, the same noise): how much they differ, how far each is from the
last frame, and which is closest to the true next frame (against the action truly taken).

    python benchmarks/imagination/action_effect.py MODEL HELDOUT_DATA
"""

import sys

import numpy as np
import torch

from envs.dream_env import _load_model
from worldmodel.dataset import TrajectoryDataset

m = _load_model(sys.argv[1], "cpu")
ds = TrajectoryDataset(sys.argv[2])
L = m.config.context
eps = [e for e in ds.episodes if e.steps > 16][-16:]
t0 = 3
fr = torch.from_numpy(np.stack([ep.frames[t0 : t0 + L] for ep in eps]))
ac = torch.from_numpy(np.stack([ep.actions[t0 : t0 + L] for ep in eps])).long()
truth = np.stack([ep.frames[t0 + L] for ep in eps]).astype(float)
true_a = ac[:, -1].clone()
outs = {}
for a in range(3):
    ac[:, -1] = a
    g = torch.Generator().manual_seed(0)
    outs[a] = m.sample_next(fr, ac, generator=g, num_steps=1).numpy().astype(float)
last = fr[:, -1].numpy().astype(float)
for a in range(3):
    for b in range(a + 1, 3):
        print(f"action {a} vs {b}: mean abs diff of predictions {np.abs(outs[a] - outs[b]).mean():.2f}")
print("pred vs last frame:", [round(np.abs(outs[a] - last).mean(), 2) for a in range(3)])
# which action's prediction is closest to truth, compared with the true action
best = np.argmin(np.stack([((outs[a] - truth) ** 2).mean((1, 2, 3)) for a in range(3)]), 0)
print("true actions", true_a.tolist())
print("closest   ", best.tolist())
