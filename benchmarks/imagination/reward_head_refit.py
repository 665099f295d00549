"""How well does a demo run's reward and termination head judge the family on reality's own frames, as the loop
trained it and refitted afresh on the loop's real and twin transitions (`worldmodel.reward_refit` with
imagined_fraction 0)? N true episodes per family policy in reality (seeds 7000+, the policies sampling as validate
does); each head reads them as `validate`'s reward-model judge does (the first L-1 true rewards, then its own
rewards up to its first predicted termination). Reported per head: Spearman ρ of the policies' mean returns
against reality's, and the share of episodes whose success it calls right.

    python benchmarks/imagination/reward_head_refit.py RUN N STEPS:BATCH,... SEEDS   # e.g. 500:64,1500:64 0,1
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from envs.dream_env import DreamCore
from envs.reality import make_room_env
from training.policies import resolve_policy
from training.rollouts import reward_model_returns, true_episodes
from training.train_world_model import termination_weight
from wmcore.tensors import load_tensors
from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel
from worldmodel.reward_refit import RewardRefitConfig, refit_reward_model


def judge(model: WorldModel, data: TrajectoryDataset, truths: dict[str, list], steps: int) -> dict[str, float]:
    pred, true, right = [], [], []
    for eps in truths.values():
        core = DreamCore(model, data, len(eps), steps, "cpu", None)  # what validate's judge reads with
        read = reward_model_returns(core, eps)
        pred.append(np.mean([r["rewards"].sum() for r in read]))
        true.append(np.mean([e["rewards"].sum() for e in eps]))
        right += [r["success"] == bool(e["success"]) for r, e in zip(read, eps)]
    return {"spearman_rho": float(spearmanr(pred, true)[0]), "success_called_right": float(np.mean(right))}


if __name__ == "__main__":
    run, n = Path(sys.argv[1]), int(sys.argv[2])
    variants = [tuple(int(x) for x in v.split(":")) for v in sys.argv[3].split(",")]
    seeds = [int(s) for s in sys.argv[4].split(",")]
    worlds = json.loads((run / "report.json").read_text())["worlds"]
    family = json.loads((run / "family" / "family.json").read_text())["policies"]
    env = make_room_env(**worlds["reality"])
    steps = worlds["reality"]["max_steps"]
    truths = {
        k: true_episodes(env, resolve_policy(s, env, seed=1), list(range(7000, 7000 + n)), steps)
        for k, s in family.items()
    }
    saved = run / "loop" / "world_model" / "model"
    data = TrajectoryDataset(run / "loop" / "data")
    ema = judge(WorldModel.from_pretrained(saved), data, truths, steps)
    print(json.dumps({"head": "the loop's (EMA, as saved)", **ema}))
    last = sorted((run / "loop" / "world_model" / "checkpoints").glob("step_*"))[-1]
    raw = WorldModel.from_pretrained(saved)
    weights = load_tensors(last / "model.safetensors")
    raw.reward_model.load_state_dict({k[13:]: v for k, v in weights.items() if k.startswith("reward_model.")})
    print(json.dumps({"head": f"the loop's, raw weights of {last.name}", **judge(raw, data, truths, steps)}))
    episodes = data.episodes
    for refit_steps, batch in variants:
        for seed in seeds:
            model = WorldModel.from_pretrained(saved)
            t0 = time.time()
            cfg = RewardRefitConfig(steps=refit_steps, batch_size=batch, imagined_fraction=0.0)
            refit_reward_model(model, episodes, cfg, termination_weight(episodes), seed=seed)
            row = {"head": f"refitted {refit_steps} steps x {batch}, seed {seed}", "seconds": round(time.time() - t0)}
            print(json.dumps({**row, **judge(model, data, truths, steps)}), flush=True)
