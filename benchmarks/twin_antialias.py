"""Two ways to anti-alias the twin's small views, against reality's (8x8 rays a pixel) at the same poses.

The twin at 40x40 as it renders, with gsplat's "antialiased" opacity compensation (each Gaussian's opacity times
sqrt(det Σ2D / det(Σ2D + eps2d·I)), emulated here by scaling the opacities per view), and rendered at 80x80 and
averaged to 40 (SceneEnv's `supersample` 2): PSNR medians and paired gains over the starts the twin's floor keeps.

    python benchmarks/twin_antialias.py RUN [EPS2D]   # RUN: a `worldmodel demo` output
"""

import json
import sys

import numpy as np
import torch

from envs.reality import FloorMap, make_room_env, nearest_free
from envs.scene_env import SceneEnv
from scenes.rasterize.reference import quat_to_rotmat
from training.stats import t_interval
from wmcore import metrics

run = sys.argv[1]
eps = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
kw = json.load(open(f"{run}/validate/config.json"))["env_kwargs"]
kw = {k: v for k, v in kw.items() if k != "supersample"}
kw = {**kw, "goal": tuple(kw["goal"])}
fm = FloorMap.for_scene(f"{run}/scene")
real = make_room_env("assets/example_room", supersample=8, **kw)
tg = tuple(fm.to_twin(np.array(kw["goal"])))
t40 = SceneEnv(f"{run}/scene", **{**kw, "goal": tg})
t80 = SceneEnv(f"{run}/scene", **{**kw, "goal": tg, "supersample": 2})
sc = t40.unwrapped.scene
base = sc._opacities.clone()


def comp(c2w, K):
    w2c = np.linalg.inv(c2w)
    R, t = torch.tensor(w2c[:3, :3], dtype=torch.float32), torch.tensor(w2c[:3, 3], dtype=torch.float32)
    m = sc._means @ R.T + t
    Rg = quat_to_rotmat(sc._quats)  # the rasterizer's reference
    M = Rg * sc._scales[:, None, :]
    cov = M @ M.transpose(1, 2)
    covc = R @ cov @ R.T
    zc = m[:, 2].clamp(min=1e-3)
    fx, fy = float(K[0, 0]), float(K[1, 1])
    J = torch.zeros(len(m), 2, 3)
    J[:, 0, 0], J[:, 0, 2] = fx / zc, -fx * m[:, 0] / zc**2
    J[:, 1, 1], J[:, 1, 2] = fy / zc, -fy * m[:, 1] / zc**2
    c2 = J @ covc @ J.transpose(1, 2)
    d0 = (c2[:, 0, 0] * c2[:, 1, 1] - c2[:, 0, 1] ** 2).clamp(min=0)
    d1 = (c2[:, 0, 0] + eps) * (c2[:, 1, 1] + eps) - c2[:, 0, 1] ** 2
    return torch.sqrt(d0 / d1)


def psnr(a, b):
    return float(metrics.psnr(torch.from_numpy(a), torch.from_numpy(b), max_val=255.0))


res = {"40": [], "40aa": [], "80": []}
for seed in range(40):
    truth, _ = real.reset(seed=seed)
    start = np.array([*real.unwrapped.pos[:2], real.unwrapped.heading])
    pose = fm.pose_to_twin(start)
    snapped = np.array([*nearest_free(t40.unwrapped, pose[:2]), pose[2]])
    if np.linalg.norm(snapped[:2] - pose[:2]) > 1e-9:
        continue
    sc._opacities = base
    o40, _ = t40.reset(seed=seed, options={"start": snapped})
    b = t40.unwrapped.bodies
    sc._opacities = base * comp(b.cameras()[0], b.Ks[0])
    oaa = b.observe()[0]
    sc._opacities = base
    o80, _ = t80.reset(seed=seed, options={"start": snapped})
    res["40"].append(psnr(o40, truth))
    res["40aa"].append(psnr(oaa, truth))
    res["80"].append(psnr(o80, truth))
for k, v in res.items():
    print(k, f"median {np.median(v):.2f} dB n={len(v)}")
for k in ("40aa", "80"):
    g = np.array(res[k]) - np.array(res["40"])
    m, lo, hi = t_interval(g)
    print(f"{k} - 40: {m:+.2f} ({lo:+.2f} to {hi:+.2f})")
g = np.array(res["40aa"]) - np.array(res["80"])
m, lo, hi = t_interval(g)
print(f"40aa - 80: {m:+.2f} ({lo:+.2f} to {hi:+.2f})")
