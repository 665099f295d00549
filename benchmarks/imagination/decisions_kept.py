"""Does imagination show a policy views it decides on as it does on real ones? For each policy: 30 true episodes
in reality (seeds 1000000+), their actions replayed open loop in the world model, and `decisions_kept`: the share
of steps where the policy's most likely action on the imagined frame is its action on the true frame (relative to
its own repeatability on the true frame).

    python benchmarks/imagination/decisions_kept.py RUN NAME...      # RUN: a demo output; NAME: family.json keys
"""

import json
import sys
from pathlib import Path

from envs.dream_env import DreamCore
from envs.reality import make_room_env
from training.policies import resolve_policy
from training.rollouts import decisions_kept, replayed_episodes, true_episodes

run = Path(sys.argv[1])
family = json.loads((run / "family" / "family.json").read_text())["policies"]
env = make_room_env(width=40, height=40, max_steps=50, goal=(-2.2, -0.8))
core = DreamCore(run / "loop" / "world_model" / "model", run / "loop" / "data", 30, 50, "cpu", None)
for name in sys.argv[2:]:
    policy = resolve_policy(family[name], env, seed=1)
    truths = true_episodes(env, policy, [1_000_000 + i for i in range(30)], 50)
    core.seed(0)
    replayed = replayed_episodes(core, truths, 50)
    print(f"{name}: decisions kept {decisions_kept(policy, truths, replayed, core.L):.2f}", flush=True)
