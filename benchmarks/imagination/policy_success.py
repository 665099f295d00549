"""Success of policies in reality or a twin over N episodes (seeds FIRST_SEED+, default 1000000), sampling and
most-likely actions.

python benchmarks/imagination/policy_success.py N reality POLICY...        # the example room, goal (-2.2, -0.8)
python benchmarks/imagination/policy_success.py N SCENE POLICY...          # d4's twin (goal 1.821, 1.462)
"""

import os
import sys

import numpy as np

from envs.reality import make_room_env
from envs.scene_env import SceneEnv
from training.policies import resolve_policy
from training.rollouts import true_episodes
from training.stats import wilson_interval

n = int(sys.argv[1])
first = int(os.environ.get("FIRST_SEED", 1_000_000))
world = sys.argv[2]
specs = sys.argv[3:]
kw = dict(width=40, height=40, max_steps=50)
if world == "reality":
    env = make_room_env(goal=[-2.2, -0.8], **kw)
else:
    env = SceneEnv(world, goal=[1.821, 1.462], **kw)
for spec in specs:
    for det in (False, True):
        pol = resolve_policy(spec, env, seed=1)
        eps = true_episodes(env, pol, list(range(first, first + n)), 50, det)
        s = np.array([e["success"] for e in eps])
        r = np.array([e["rewards"].sum() for e in eps])
        _, lo, hi = wilson_interval(int(s.sum()), n)
        print(f"{spec} det={det}: success {s.mean():.0%} ({lo:.0%}-{hi:.0%}) return {r.mean():.2f}", flush=True)
