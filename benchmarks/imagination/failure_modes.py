"""How policies fail in the example room's reality: success within 50 / 100 / 150 steps (does a failing policy
only need longer, or is it stuck?), its action mix, and the share of its steps that push forward into something
without moving. N episodes per policy from seeds 7000+, sampled actions, the demo's goal.

    python benchmarks/imagination/failure_modes.py N POLICY [POLICY ...]
"""

import sys

import numpy as np

from envs.reality import make_room_env
from training.policies import resolve_policy
from training.rollouts import true_episodes

n, specs = int(sys.argv[1]), sys.argv[2:]
env = make_room_env(width=40, height=40, max_steps=150, goal=(-2.2, -0.8))
for spec in specs:
    eps = true_episodes(env, resolve_policy(spec, env, seed=1), [7000 + i for i in range(n)], 150)
    steps = np.array([len(e["rewards"]) if e["success"] else np.inf for e in eps])
    actions = np.concatenate([e["actions"] for e in eps]).astype(int)
    pushes = [
        np.mean((np.linalg.norm(np.diff(e["poses"][:, :2], axis=0), axis=1) < 1e-6) & (e["actions"] == 0)) for e in eps
    ]
    within = ", ".join(f"{np.mean(steps <= k):.0%} within {k}" for k in (50, 100, 150))
    mix = " / ".join(f"{v:.0%}" for v in np.bincount(actions, minlength=3) / len(actions))
    print(f"{spec}: success {within}; forward / left / right {mix}; blocked pushes {np.mean(pushes):.0%} of steps")
