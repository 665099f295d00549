"""How much of a demo run's result is its clone: clones trained as the demo trains them (behaviour cloning on the
run's twin episodes, DAgger in its twin; `training.demo_family.clone_policy`) with several training seeds, on the
scenes and twin data of several runs, each measured in reality over N episodes (seeds 1,000,000+, sampled
actions, as validate does; Wilson 95 %). Separates the reconstruction's share of the run-to-run spread from the
clone's own training.

    python benchmarks/imagination/clone_variance.py OUT N SEEDS RUN [RUN ...]     # SEEDS: e.g. 0,1,2

TWIN_OPTIONS='{"supersample": 2}' adds SceneEnv options to the twin the clones are corrected in; RECORD_TWIN=S
first records each RUN's twin episodes again as the demo does, with collection seed S and those options, into
OUT/RUN/data, and clones from them instead of RUN/data.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from envs.reality import make_room_env
from training.demo import DemoConfig, _collect_twin, twin_goal, world_options
from training.demo_family import clone_policy
from training.policies import resolve_policy
from training.rollouts import true_episodes
from training.stats import wilson_interval

out, n = Path(sys.argv[1]), int(sys.argv[2])
seeds = [int(s) for s in sys.argv[3].split(",")]
runs = [Path(r) for r in sys.argv[4:]]
rows = []
record = os.environ.get("RECORD_TWIN")
for run in runs:
    data = run / "data"
    for seed in seeds:
        cfg = DemoConfig(seed=seed)
        common = world_options(cfg)
        twin = {**common, "goal": twin_goal(run / "scene", cfg.goal_in_room, common)}
        twin.update(json.loads(os.environ.get("TWIN_OPTIONS", "{}")))
        if record is not None and data == run / "data":
            data = _collect_twin(DemoConfig(seed=int(record)), [run / "scene"], [twin], out / run.name / "data")
        policy = clone_policy(cfg, [run / "scene"], [twin], data, out / run.name / f"seed{seed}")
        env = make_room_env(**common, goal=list(cfg.goal_in_room))
        eps = true_episodes(env, resolve_policy(str(policy), env, seed=1), list(range(1_000_000, 1_000_000 + n)), 50)
        k = int(sum(e["success"] for e in eps))
        _, lo, hi = wilson_interval(k, n)
        rows.append({"run": run.name, "seed": seed, "success": k / n, "ci95": [lo, hi], "episodes": n})
        print(f"{run.name} clone seed {seed}: {k / n:.0%} ({lo:.0%}–{hi:.0%}) of {n} real episodes", flush=True)
(out / "clone_variance.json").write_text(json.dumps(rows, indent=1))
by_run = {r.name: [x["success"] for x in rows if x["run"] == r.name] for r in runs}
print({k: f"mean {np.mean(v):.0%}, range {min(v):.0%}–{max(v):.0%}" for k, v in by_run.items()})
