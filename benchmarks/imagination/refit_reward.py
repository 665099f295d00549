"""Refit a saved world model's reward model on its own imagined rollouts (worldmodel.reward_refit) and save
the result as a new model directory, leaving the original untouched.

    python benchmarks/imagination/refit_reward.py MODEL DATASET OUT [STEPS]
"""

import sys

import torch

from training.train_world_model import termination_weight
from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel
from worldmodel.reward_refit import RewardRefitConfig, refit_reward_model

torch.set_num_threads(2)
src, data, out = sys.argv[1:4]
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 2500
model = WorldModel.from_pretrained(src)
episodes = TrajectoryDataset(data).episodes
print(refit_reward_model(model, episodes, RewardRefitConfig(steps=steps), termination_weight(episodes)))
model.save_pretrained(out)
