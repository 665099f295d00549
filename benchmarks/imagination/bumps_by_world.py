"""How often a policy bumps into something in reality and in the twin: a demo run's deployed policy (or any
POLICY) on N episodes in each world (seeds 5000+, sampled actions, the run's own world options), its success and
the share of its steps that collided — where the twin's collision geometry differs from the room's, a price per
bump turns that difference into return.

    python benchmarks/imagination/bumps_by_world.py RUN N [POLICY [SCENE]]

SCENE replaces the run's own twin (a copy of RUN/scene rebuilt with `worldmodel rebuild-collision`, say).
"""

import json
import sys
from pathlib import Path

from envs.reality import make_room_env
from envs.scene_env import SceneEnv
from training.policies import resolve_policy
from training.rollouts import true_episodes

run, n = Path(sys.argv[1]), int(sys.argv[2])
spec = sys.argv[3] if len(sys.argv) > 3 else str(run / "loop" / "policy")
scene = Path(sys.argv[4]) if len(sys.argv) > 4 else run / "scene"
worlds = json.loads((run / "report.json").read_text())["worlds"]
for name, env in (("reality", make_room_env(**worlds["reality"])), ("twin", SceneEnv(scene, **worlds["twin"]))):
    eps = true_episodes(env, resolve_policy(spec, env, seed=1), [5000 + i for i in range(n)], worlds[name]["max_steps"])
    wins, bumps, steps = (
        sum(e["success"] for e in eps),
        sum(e["bumps"] for e in eps),
        sum(len(e["actions"]) for e in eps),
    )
    print(f"{name}: success {wins}/{n}, bumps on {bumps / steps:.0%} of {steps} steps")
