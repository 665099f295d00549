"""Does the world model know when the body is blocked? Over forward steps of a SceneNav dataset, the mean
absolute frame change (0-255) the model predicts one step ahead, against the true change, separately for
steps that collided (reward below -0.04: the collision penalty) and steps that moved (128 of each at most).

    python benchmarks/imagination/collision_hallucination.py MODEL DATASET
"""

import sys
from pathlib import Path

import numpy as np
import torch

from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel


def blocked_vs_free(model_dir: Path, data: Path) -> str:
    """The figure, one line: per kind of forward step, its count and the true and imagined mean change."""
    model, ds = WorldModel.from_pretrained(model_dir), TrajectoryDataset(data)
    L, rows = model.config.context, {"collided": [], "moved": []}
    for ep in ds.episodes:
        for t in range(L - 1, ep.steps):
            if ep.actions[t] == 0:  # forward
                rows["collided" if ep.rewards[t] < -0.04 else "moved"].append((ep, t))
    rng, parts = np.random.default_rng(0), []
    for name, picks in rows.items():
        picks = [picks[i] for i in rng.choice(len(picks), min(128, len(picks)), replace=False)]
        ctx = torch.stack([torch.from_numpy(np.array(ep.frames[t - L + 1 : t + 1])) for ep, t in picks])
        acts = torch.stack([torch.as_tensor(ep.actions[t - L + 1 : t + 1]) for ep, t in picks])
        true = torch.stack([torch.from_numpy(np.array(ep.frames[t + 1])) for ep, t in picks]).float()
        pred = model.sample_next(ctx, acts, generator=torch.Generator().manual_seed(0)).float()
        cur = ctx[:, -1].float()
        parts.append(
            f"{name} (n={len(picks)}): true change {(true - cur).abs().mean():.2f}, "
            f"predicted change {(pred - cur).abs().mean():.2f}"
        )
    return "; ".join(parts)


if __name__ == "__main__":
    torch.set_num_threads(2)
    print(blocked_vs_free(Path(sys.argv[1]), Path(sys.argv[2])))
