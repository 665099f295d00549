"""What the world model's reward head pays on CarRacing's own frames: its prediction on steps that crossed a
tile and on the others, against the true rewards, over every 4th episode of a loop run's data.

    python benchmarks/imagination/reward_head_carracing.py RUN/loop     # e.g. benchmarks/carracing_loop.py's OUT/loop
"""

import sys
from pathlib import Path

import numpy as np
import torch

from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel

run = Path(sys.argv[1])
model = WorldModel.from_pretrained(run / "world_model" / "model")
ds = TrajectoryDataset(run / "data")
L = model.config.context
true, pred = [], []
for ep in ds.episodes[::4]:
    steps = np.arange(L - 1, ep.steps)
    for s in range(0, len(steps), 128):
        ts = steps[s : s + 128]
        frames = torch.as_tensor(np.stack([ep.frames[t - L + 1 : t + 1] for t in ts]))
        nxt = torch.as_tensor(np.stack([ep.frames[t + 1] for t in ts]))
        actions = torch.as_tensor(np.stack([ep.actions[t - L + 1 : t + 1] for t in ts]))
        reward, _ = model.predict_reward_termination(frames, actions, nxt)
        true += [float(ep.rewards[t]) for t in ts]
        pred += reward.tolist()
true, pred = np.array(true), np.array(pred)
tile = true > 0
print(f"{len(true)} steps: true mean {true.mean():.3f}, predicted mean {pred.mean():.3f}")
print(
    f"steps that crossed a tile ({tile.mean():.1%}): predicted {pred[tile].mean():.3f} (true {true[tile].mean():.2f})"
)
print(f"the others (leaving the field excluded): predicted {pred[~tile & (true > -1)].mean():.3f}")
w = 20
sums = lambda x: [x[i : i + w].sum() for i in range(0, len(x) - w, w)]  # noqa: E731
print(f"{w}-step windows: correlation of true and predicted sums {np.corrcoef(sums(true), sums(pred))[0, 1]:.2f}")
