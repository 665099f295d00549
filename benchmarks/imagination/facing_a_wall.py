"""Does a policy know it faces a wall? Its chance of stepping forward, and its critic's value, on a dataset's real
frames where the next forward step was blocked against those where it moved (256 of each) — and on the world
model's one-step prediction of the same frames, to tell a perception gap from a learned habit. A policy that
sees several views gets the real ones before each frame.

    python benchmarks/imagination/facing_a_wall.py POLICY DATASET MODEL
"""

import sys

import numpy as np
import torch

from training.actor_critic import ActorCritic
from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel, still_steps

policy, ds, model = (
    ActorCritic.load(sys.argv[1]),
    TrajectoryDataset(sys.argv[2]),
    WorldModel.from_pretrained(sys.argv[3]),
)
L = model.config.context
rows: dict[str, list] = {"facing a wall (the forward step was blocked)": [], "free ahead": []}
for ep in ds.episodes:
    for t in range(L, ep.steps):
        if ep.actions[t] == 0:  # forward
            blocked = bool(still_steps(torch.from_numpy(np.array(ep.frames[t : t + 2]))[None]))
            rows[list(rows)[0 if blocked else 1]].append((ep, t))
rng = np.random.default_rng(0)
for kind, found in rows.items():
    pick = [found[i] for i in rng.choice(len(found), min(256, len(found)), replace=False)]
    frames = policy.config.frames  # a policy that stacks views sees the real ones before frame t
    real = torch.as_tensor(
        np.stack([np.concatenate([ep.frames[t - k] for k in reversed(range(frames))], -1) for ep, t in pick])
    )
    context = torch.as_tensor(np.stack([ep.frames[t - L : t] for ep, t in pick]))
    actions = torch.as_tensor(np.stack([ep.actions[t - L : t] for ep, t in pick]))
    imagined = model.sample_next(context, actions, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        imagined = torch.cat([real[..., :-3], imagined], -1)
        (d_real, v_real), (d_img, v_img) = policy.distribution(real), policy.distribution(imagined)
    print(
        f"{kind}: P(forward) {d_real.probs[:, 0].mean():.2f} on real frames, {d_img.probs[:, 0].mean():.2f} on "
        f"imagined ones; value {v_real.mean():.2f} / {v_img.mean():.2f}"
    )
