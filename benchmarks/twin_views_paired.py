"""Two twins of the example room against reality at the same poses: which one's views are nearer the room's.

Each start of the demo's reality env (seeds 0..N-1, the run's own env options) is carried into both twins by
their floor maps; starts either twin's floor moves are left out (not the same view). Per start, the PSNR of the
twin's 40x40 frame against reality's (4x4 rays a pixel); reported: each twin's median and the paired difference
B - A with its Student-t 95 % interval over the starts both keep.

    python benchmarks/twin_views_paired.py SCENE_A SCENE_B N [RUN]

RUN (default /work/runs/n3) supplies the env options (its validate/config.json); the twins need not be its own.
"""

import json
import sys

import numpy as np
import torch

from envs.reality import FloorMap, make_room_env, nearest_free
from envs.scene_env import SceneEnv
from training.stats import t_interval
from wmcore import metrics

scene_a, scene_b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = sys.argv[4] if len(sys.argv) > 4 else "/work/runs/n3"
kw = json.load(open(f"{run}/validate/config.json"))["env_kwargs"]
kw = {**kw, "goal": tuple(kw["goal"])}
reality = make_room_env("assets/example_room", supersample=4, **kw)
twins = []
for scene in (scene_a, scene_b):
    fm = FloorMap.for_scene(scene)
    twins.append((fm, SceneEnv(scene, **{**kw, "goal": tuple(fm.to_twin(np.array(kw["goal"])))})))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(metrics.psnr(torch.from_numpy(a), torch.from_numpy(b), max_val=255.0))


rows = []
for seed in range(n):
    truth, _ = reality.reset(seed=seed)
    start = np.array([*reality.unwrapped.pos[:2], reality.unwrapped.heading])
    row = []
    for fm, env in twins:
        pose = fm.pose_to_twin(start)
        snapped = np.array([*nearest_free(env.unwrapped, pose[:2]), pose[2]])
        if np.linalg.norm(snapped[:2] - pose[:2]) > 1e-9:
            break  # this twin's floor moved the start: not the same view
        obs, _ = env.reset(seed=seed, options={"start": snapped})
        row.append(psnr(obs, truth))
    if len(row) == 2:
        rows.append(row)
r = np.array(rows)
m, lo, hi = t_interval(r[:, 1] - r[:, 0])
print(f"starts both twins keep: {len(r)} of {n}")
print(f"median PSNR against reality: A {np.median(r[:, 0]):.2f} dB, B {np.median(r[:, 1]):.2f} dB")
print(f"B - A: {m:+.2f} dB (95 % {lo:+.2f} to {hi:+.2f}, paired)")
