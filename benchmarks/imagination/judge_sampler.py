"""Does the sampler decide imagination's ranking? A demo run's family judged in its world model from the first L
frames of each of the loop's real episodes, at several denoising steps or samplers, for H imagined steps; Spearman
rho of the mean imagined returns against reality's mean returns (from the run's validate report).

    python benchmarks/imagination/judge_sampler.py RUN [STEPS [SAMPLER]]   # e.g. RUN 8 euler, RUN 3 heun
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from envs.dream_env import DreamCore, gym_action_space
from training.policies import act, resolve_policy
from training.stats import rank_agreement
from worldmodel.dataset import TrajectoryDataset

HORIZONS = (5, 15, 46)

run = Path(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else None
sampler = sys.argv[3] if len(sys.argv) > 3 else None
torch.set_num_threads(2)
report = json.loads((run / "validate" / "report.json").read_text())
family = {n: p for n, p in report["policies"].items() if not p["reference"]}
data = TrajectoryDataset(run / "loop" / "data")
real = [i for i, e in enumerate(data.episodes) if (e.meta or {}).get("world") == "reality"]
core = DreamCore(run / "loop" / "world_model" / "model", data, len(real), 10_000, "cpu", steps)
if sampler:
    core.model.config.sampler = sampler
L, space = core.L, gym_action_space(core.space)
imagined = {}
for p_idx, (name, entry) in enumerate(family.items()):
    policy = resolve_policy(entry["spec"], action_space=space, seed=p_idx)
    for k, e in enumerate(real):
        ep = data.episodes[e]
        core.set_context(k, ep.frames[:L], ep.actions[: L - 1])
    core.seed(0)
    core.steps[:] = 0
    alive, total, by_h = np.ones(len(real), bool), np.zeros(len(real)), {}
    for h in range(1, max(HORIZONS) + 1):
        actions = act(policy, core.observations(), False, episode_start=np.full(len(real), h == 1))
        _, reward, ended, _ = core.step(actions)
        total += np.where(alive, reward, 0.0)
        alive &= ~np.asarray(ended)
        if h in HORIZONS:
            by_h[h] = total.copy()
    imagined[name] = by_h
truth = [np.array(family[n]["worlds"]["reality"]["returns"]) for n in family]
for h in HORIZONS:
    r = rank_agreement([imagined[n][h] for n in family], truth, seed=0, paired=False)
    lo, hi = r["spearman_rho_ci95"]
    how = f"steps={steps or 'default'} sampler={sampler or 'default'}"
    print(f"{run.name} {how} H={h}: rho {r['spearman_rho']:.2f} ({lo:.2f}-{hi:.2f})")
