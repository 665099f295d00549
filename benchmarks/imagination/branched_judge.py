"""Another imagination judge, measured against a demo run's validation: each family policy acts for H imagined
steps from M states drawn from the loop's data (the same states for every policy: MBPO's branched rollouts, where
the model has seen the views), scored by its mean imagined return; Spearman rho of that against reality's mean
returns, beside the closed-loop judge's (full episodes from reality's starts) from the run's validate report.

    python benchmarks/imagination/branched_judge.py RUN M H
"""

import json
import sys

import numpy as np
from scipy.stats import spearmanr

from envs.dream_env import DreamCore, gym_action_space
from training.policies import act, resolve_policy
from worldmodel.dataset import TrajectoryDataset

run, M, H = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg = json.load(open(f"{run}/validate/config.json"))
rep = json.load(open(f"{run}/validate/report.json"))
ds = TrajectoryDataset(cfg["dataset"])
core = DreamCore(cfg["model"], ds, M, H + 10, "cpu", None)
L = core.L
starts = [(e, t) for e, ep in enumerate(ds.episodes) for t in range(L - 1, ep.steps)]
pick = [starts[i] for i in np.random.default_rng(0).choice(len(starts), M, replace=False)]
space = gym_action_space(core.space)
branched, real, closed = [], [], []
for spec, name in zip(cfg["policies"], cfg["names"]):
    if spec == "expert":
        continue
    policy = resolve_policy(spec, action_space=space, seed=0)
    core.seed(0)
    for i, (e, t) in enumerate(pick):
        ep = ds.episodes[e]
        core.set_context(i, ep.frames[t - L + 1 : t + 1], ep.actions[t - L + 1 : t])
    rets, done = np.zeros(M), np.zeros(M, bool)
    for k in range(H):
        _, r, term, _ = core.step(act(policy, core.observations(), False, episode_start=np.full(M, k == 0)))
        rets += np.where(done, 0, r)
        done |= term
    worlds = rep["policies"][name]["worlds"]
    branched.append(rets.mean())
    real.append(worlds["reality"]["mean_return"])
    closed.append(worlds["imagination"]["mean_return"])
    print(f"{name[:32]:32s} branched {branched[-1]:6.2f} | reality {real[-1]:6.2f} | closed loop {closed[-1]:6.2f}")
print(f"rho against reality: branched {spearmanr(branched, real)[0]:.2f}, closed loop {spearmanr(closed, real)[0]:.2f}")
