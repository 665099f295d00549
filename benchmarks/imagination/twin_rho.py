"""A demo run's family judged again in one or more twins (the run's own, or copies with their collision rebuilt):
each policy's 30 twin episodes from validation's own starts and seeds, its twin return beside the report's and
reality's, its success and the share of its twin steps that bumped; for each twin the twin-reality Spearman rho
with its bootstrap interval against the run's reality returns, and the family's mean gap |twin - reality| of
mean returns. With several twins, each one's gap minus the first one's, with a bootstrap interval over episodes
(paired: episode i starts from the same state in every world). On the run's own twin it reproduces the report's
twin returns.

    python benchmarks/imagination/twin_rho.py RUN SCENE [SCENE ...]
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

run, scenes = Path(sys.argv[1]), [Path(s) for s in sys.argv[2:]]
cfg = json.loads((run / "validate" / "config.json").read_text())
rep = json.loads((run / "validate" / "report.json").read_text())
kw = {**cfg["env_kwargs"], "goal": tuple(cfg["env_kwargs"]["goal"])}
room = make_room_env("assets/example_room", **kw)
tw = json.loads((run / "report.json").read_text())["worlds"]["twin"]
seeds = [cfg["seed"] + i for i in range(cfg["episodes"])]
real = {n: p["worlds"]["reality"]["mean_return"] for n, p in rep["policies"].items()}
names = [n for n, spec in zip(cfg["names"], cfg["policies"]) if spec != "expert"]
truth = [np.array(rep["policies"][n]["worlds"]["reality"]["returns"]) for n in names]
judged = []  # per scene: per policy, its episode returns
for scene in scenes:
    fm = FloorMap.for_scene(scene, "assets/example_room")
    twin = SceneEnv(scene, **{**tw, "goal": tuple(tw["goal"])})
    starts = []
    for s in seeds:
        room.reset(seed=s)
        u = room.unwrapped
        starts.append(fm.start_in_twin(twin, np.array([*u.pos[:2], u.heading])))
    judge = []
    print(f"== {scene}")
    for p_idx, (spec, name) in enumerate(zip(cfg["policies"], cfg["names"])):
        if spec == "expert":
            continue
        policy = resolve_policy(spec, twin, seed=cfg["seed"] + p_idx)
        eps = true_episodes(twin, policy, seeds, cfg["max_steps"], False, starts)
        judge.append(np.array([e["rewards"].sum() for e in eps]))
        worlds = rep["policies"][name]["worlds"]
        bumped = sum(e["bumps"] for e in eps) / sum(len(e["actions"]) for e in eps)
        success = np.mean([e["success"] for e in eps])
        print(
            f"{name:32s} twin {judge[-1].mean():6.2f} (report {worlds['twin']['mean_return']:6.2f}) "
            f"reality {truth[len(judge) - 1].mean():6.2f} success {success:.2f} bumps {bumped:.1%}"
        )
    ranked = rank_agreement(judge, truth, real["expert (reads the map)"] - real["random"], seed=cfg["seed"])
    gap = np.mean([abs(j.mean() - t.mean()) for j, t in zip(judge, truth)])
    print(f"twin-reality rho {ranked['spearman_rho']:.3f}, 95 % {ranked['spearman_rho_ci95']}; mean |gap| {gap:.2f}")
    judged.append(judge)

rng = np.random.default_rng(cfg["seed"])
for k in range(1, len(scenes)):
    boot = []
    for _ in range(2000):
        g = np.zeros(2)
        for p, t in enumerate(truth):
            i = rng.integers(len(t), size=len(t))
            g += [abs(judged[m][p][i].mean() - t[i].mean()) for m in (0, k)]
        boot.append((g[1] - g[0]) / len(truth))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    d = np.mean(
        [abs(judged[k][p].mean() - t.mean()) - abs(judged[0][p].mean() - t.mean()) for p, t in enumerate(truth)]
    )
    print(f"mean |gap| of {scenes[k]} minus {scenes[0]}: {d:+.2f} ({lo:+.2f} to {hi:+.2f}), {len(truth)} policies")
