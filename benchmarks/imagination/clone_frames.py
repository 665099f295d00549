"""Does a clone that sees its last two views push into walls less? For each demo RUN, the clone refitted as the
demo fits it (the run's twin data, DAgger in its twin, its config) with 1 and 2 frames, alternately, for each
SEED; each judged on N real episodes in the example room (seeds 5000+, sampled actions): success with its Wilson
interval and the share of steps that push forward without moving.

    python benchmarks/imagination/clone_frames.py N OUT RUN [RUN ...] --seeds 0 1
"""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from envs.reality import make_room_env
from envs.scene_config import SceneEnvConfig
from training.behaviour_cloning import BehaviourCloningConfig, behaviour_cloning
from training.policies import load_policy
from training.rollouts import true_episodes
from training.stats import wilson_interval

p = argparse.ArgumentParser()
p.add_argument("n", type=int)
p.add_argument("out", type=Path)
p.add_argument("runs", nargs="+")
p.add_argument("--seeds", type=int, nargs="+", default=[0])
a = p.parse_args()
torch.set_num_threads(2)
room = make_room_env(width=40, height=40, max_steps=50, goal=(-2.2, -0.8))
for run in a.runs:
    saved = json.loads((Path(run) / "family" / "clone" / "config.json").read_text())
    base = BehaviourCloningConfig(
        Path(saved["dataset"]),
        steps=saved["steps"],
        input_size=saved["input_size"],
        dagger_scene=saved["dagger_scene"],
        env=SceneEnvConfig(**saved["env"]),
        dagger_rounds=saved["dagger_rounds"],
        dagger_episodes=saved["dagger_episodes"],
        dagger_steps=saved["dagger_steps"],
    )
    for seed in a.seeds:
        for frames in (1, 2):
            out = a.out / f"{Path(run).name}-f{frames}-s{seed}"
            path = behaviour_cloning(dataclasses.replace(base, out=out, frames=frames, seed=seed, overwrite=True))
            eps = true_episodes(room, load_policy(path), [5000 + i for i in range(a.n)], 50)
            wins = sum(e["success"] for e in eps)
            moved = [np.linalg.norm(np.diff(e["poses"][:, :2], axis=0), axis=1) > 1e-6 for e in eps]
            pushes = np.mean(np.concatenate([~m & (e["actions"] == 0) for m, e in zip(moved, eps)]))
            lo, hi = wilson_interval(wins, a.n)[1:]
            print(
                f"{Path(run).name} seed {seed} frames {frames}: {wins}/{a.n} ({lo:.2f}-{hi:.2f}), "
                f"blocked pushes {pushes:.0%} of steps",
                flush=True,
            )
