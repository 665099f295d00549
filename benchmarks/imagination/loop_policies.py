"""Success in reality (40 episodes, seeds 5000+) of a demo run's clone, the loop's policies after each iteration
and the deployed one: which of them should the demo deploy?

    python benchmarks/imagination/loop_policies.py RUN...
"""

import sys

import numpy as np

from envs.reality import make_room_env
from training.policies import resolve_policy
from training.rollouts import true_episodes
from training.stats import wilson_interval

room = make_room_env(width=40, height=40, max_steps=50, goal=(-2.2, -0.8))
for run in sys.argv[1:]:
    for name in (
        "family/clone/policy",
        "loop/policy_iter_0",
        "loop/policy_iter_1",
        "loop/policy_iter_2",
        "loop/policy",
    ):
        pol = resolve_policy(f"{run}/{name}", room)
        er = true_episodes(room, pol, [5000 + i for i in range(40)], 50)
        s = sum(e["success"] for e in er)
        lo_hi = wilson_interval(s, 40)
        print(
            run,
            name,
            f"{s / 40:.0%} ({lo_hi[1]:.0%}-{lo_hi[2]:.0%})",
            round(float(np.mean([e["rewards"].sum() for e in er])), 2),
            flush=True,
        )
