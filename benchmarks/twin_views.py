"""How far the twin's views are from reality's at the same poses, and how much of that is reality's own camera.

Reality's 40x40 frames at several supersampling rates against 8x8 rays per pixel (an area-integrating camera),
and the twin's frames at the same poses (carried by the floor map; starts the twin's floor moves are left out),
rendered at 40, 80 and 160 pixels and area-averaged to 40: PSNR medians over 40 starts, and the paired gain of
rendering the twin at 80.

    python benchmarks/twin_views.py RUN     # RUN: a `worldmodel demo` output (its scene/ and validate/config.json)
"""

import json
import sys
import time

import cv2
import numpy as np
import torch

from envs.reality import FloorMap, make_room_env, nearest_free
from envs.scene_env import SceneEnv
from training.stats import t_interval
from wmcore import metrics

run = sys.argv[1]
kw = json.load(open(f"{run}/validate/config.json"))["env_kwargs"]
kw = {**kw, "goal": tuple(kw["goal"])}
fm = FloorMap.for_scene(f"{run}/scene")
rates = (1, 2, 3, 4, 8)
reality = {s: make_room_env("assets/example_room", supersample=s, **kw) for s in rates}
twin_goal = tuple(fm.to_twin(np.array(kw["goal"])))
twins = {w: SceneEnv(f"{run}/scene", **{**kw, "width": w, "height": w, "goal": twin_goal}) for w in (40, 80, 160)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(metrics.psnr(torch.from_numpy(a), torch.from_numpy(b), max_val=255.0))


by_rate = {s: [] for s in rates}
ms = {s: [] for s in rates}
by_size = {w: [] for w in twins}
for seed in range(40):
    truth, _ = reality[8].reset(seed=seed)
    start = np.array([*reality[8].unwrapped.pos[:2], reality[8].unwrapped.heading])
    for s, env in list(reality.items())[:-1]:
        t0 = time.perf_counter()
        obs, _ = env.reset(seed=seed, options={"start": start})
        ms[s].append(1000 * (time.perf_counter() - t0))
        by_rate[s].append(psnr(obs, truth))
    pose = fm.pose_to_twin(start)
    snapped = np.array([*nearest_free(twins[40].unwrapped, pose[:2]), pose[2]])
    if np.linalg.norm(snapped[:2] - pose[:2]) > 1e-9:
        continue  # the twin's floor moved this start: not the same view
    for w, env in twins.items():
        obs, _ = env.reset(seed=seed, options={"start": snapped})
        by_size[w].append(psnr(cv2.resize(obs, (40, 40), interpolation=cv2.INTER_AREA), truth))
for s in rates[:-1]:
    print(f"reality, {s}x{s} rays a pixel: {np.median(by_rate[s]):.2f} dB from 8x8, {np.median(ms[s]):.1f} ms a frame")
for w, v in by_size.items():
    print(f"twin rendered at {w}x{w}, area-averaged to 40: {np.median(v):.2f} dB from reality (n = {len(v)})")
gain = np.array(by_size[80]) - np.array(by_size[40])  # the same starts: paired
m, lo, hi = t_interval(gain)
print(f"rendered at 80 rather than 40: {m:+.2f} dB (95 % {lo:+.2f} to {hi:+.2f}, paired over {len(gain)} starts)")
