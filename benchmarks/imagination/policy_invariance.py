"""How much saved pixel policies change their answer under the cloning's augmentation
(`training.augment.augment`): on up to 2,000 frames of DATASET (e.g. a demo run's held-out real episodes), the
mean KL divergence between each policy's action distribution on a frame and on its augmented copy (4 draws), the
share of frames whose most likely action is kept, and the policy's mean entropy.

    python benchmarks/imagination/policy_invariance.py DATASET POLICY [POLICY ...]
"""

import sys

import numpy as np
import torch

from training.actor_critic import ActorCritic
from training.augment import augment
from worldmodel.dataset import TrajectoryDataset

dataset = TrajectoryDataset(sys.argv[1])
frames = np.concatenate([np.asarray(e.frames) for e in dataset.episodes])[:2000]
obs = torch.as_tensor(frames)
for path in sys.argv[2:]:
    agent = ActorCritic.load(path)
    kls, kept = [], []
    with torch.no_grad():
        dist, _ = agent.distribution(agent.stack(None, obs, None))
        for draw in range(4):
            aug, _ = agent.distribution(agent.stack(None, augment(obs, torch.Generator().manual_seed(draw)), None))
            kls.append(torch.distributions.kl_divergence(dist, aug).mean().item())
            kept.append((dist.probs.argmax(-1) == aug.probs.argmax(-1)).float().mean().item())
    print(
        f"{path}: KL {np.mean(kls):.4f}, most likely action kept {np.mean(kept):.3f}, "
        f"entropy {dist.entropy().mean().item():.3f}"
    )
