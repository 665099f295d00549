"""How well could any judge rank a family? Reality's split-half agreement (training.stats.split_half_agreement)
for a family of policies, each run EPISODES times in the example room's reality (seeds 1000000+).

    python benchmarks/imagination/family_ceiling.py EPISODES SPEC [SPEC ...]
"""

import sys

import numpy as np

from envs.reality import make_room_env
from training.policies import resolve_policy
from training.rollouts import true_episodes
from training.stats import split_half_agreement, summarise

n, specs = int(sys.argv[1]), sys.argv[2:]
room = make_room_env(width=40, height=40, max_steps=50, goal=(-2.2, -0.8))
returns = []
for i, spec in enumerate(specs):
    eps = true_episodes(room, resolve_policy(spec, room, seed=i), [1000000 + k for k in range(n)], 50)
    r = np.array([e["rewards"].sum() for e in eps])
    s = summarise(r, np.array([e["success"] for e in eps]))
    returns.append(r)
    ci = np.round(s["return_ci95"], 2).tolist()
    print(f"{spec}: return {s['mean_return']:.2f} {ci}, success {s['success']:.2f}", flush=True)
print("split-half agreement:", split_half_agreement(returns))
