"""A demo run's family judged again in a twin (the run's own, or a copy with its collision rebuilt): each policy's
30 twin episodes from validation's own starts and seeds, its twin return beside the report's and reality's, its
success and the share of its twin steps that bumped; and the twin-reality Spearman rho with its bootstrap interval
against the run's reality returns (on the run's own twin it reproduces the report's twin returns).

    python benchmarks/imagination/twin_rho.py RUN SCENE
"""

import json
import sys
from pathlib import Path

import numpy as np

from envs.reality import FloorMap, make_room_env
from envs.scene_env import SceneEnv
from training.policies import resolve_policy
from training.rollouts import true_episodes
from training.stats import rank_agreement

run, scene = Path(sys.argv[1]), Path(sys.argv[2])
cfg = json.loads((run / "validate" / "config.json").read_text())
rep = json.loads((run / "validate" / "report.json").read_text())
kw = {**cfg["env_kwargs"], "goal": tuple(cfg["env_kwargs"]["goal"])}
room = make_room_env("assets/example_room", **kw)
fm = FloorMap.for_scene(scene, "assets/example_room")
tw = json.loads((run / "report.json").read_text())["worlds"]["twin"]
twin = SceneEnv(scene, **{**tw, "goal": tuple(tw["goal"])})
seeds = [cfg["seed"] + i for i in range(cfg["episodes"])]
starts = []
for s in seeds:
    room.reset(seed=s)
    u = room.unwrapped
    starts.append(fm.start_in_twin(twin, np.array([*u.pos[:2], u.heading])))
judge, truth = [], []
for p_idx, (spec, name) in enumerate(zip(cfg["policies"], cfg["names"])):
    if spec == "expert":
        continue
    policy = resolve_policy(spec, twin, seed=cfg["seed"] + p_idx)
    eps = true_episodes(twin, policy, seeds, cfg["max_steps"], False, starts)
    judge.append(np.array([e["rewards"].sum() for e in eps]))
    worlds = rep["policies"][name]["worlds"]
    truth.append(np.array(worlds["reality"]["returns"]))
    bumped = sum(e["bumps"] for e in eps) / sum(len(e["actions"]) for e in eps)
    success = np.mean([e["success"] for e in eps])
    print(
        f"{name:32s} twin {judge[-1].mean():6.2f} (report {worlds['twin']['mean_return']:6.2f}) "
        f"reality {truth[-1].mean():6.2f} success {success:.2f} bumps {bumped:.1%}"
    )
real = {n: p["worlds"]["reality"]["mean_return"] for n, p in rep["policies"].items()}
ranked = rank_agreement(judge, truth, real["expert (reads the map)"] - real["random"], seed=cfg["seed"])
print(f"twin-reality rho {ranked['spearman_rho']:.3f}, 95 % {ranked['spearman_rho_ci95']}")
