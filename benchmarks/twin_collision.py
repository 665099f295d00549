"""How far the twin's geometry is from the room's, on a reconstruction of the bundled example:

1. depth: for every k-th training view, the splats' depth against the true room's z-depth from the same
   camera (carried over by the Sim(3) between the reconstructed and true camera centres) — the
   rasterizer's expected depth ("ED") and `scenes.surface_depth` (what the collision geometry traces);
2. floor: where the demo's body fits in the twin against the room (`envs.reality.floor_agreement`).

    python benchmarks/twin_collision.py SCENE [--every 8] [--size 48]

SCENE is a splat Scene of the example capture (a demo run's `scene/`, or a copy rebuilt with
`worldmodel rebuild-collision`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from envs.reality import FloorMap, floor_agreement, make_room_env
from envs.scene_env import SceneEnv
from scenes.nerfstudio_io import read_transforms
from scenes.ply import read_splat_ply, sh_degree_of
from scenes.pose_eval import scene_to_truth
from scenes.scene_meta import SceneMeta
from scenes.surface_depth import surface_depths
from scenes.synthetic import EXAMPLE_DIR
from scenes.synthetic_room import SyntheticRoom
from scenes.train_splats import render_splats


def depth_ratios(scene: Path, every: int, size: int) -> dict:
    meta = SceneMeta.read(scene)
    params = {k: torch.as_tensor(v) for k, v in read_splat_ply(meta.splat_path(scene)).items()}
    posed = read_transforms(meta.transforms_path(scene))
    to_room = scene_to_truth(scene, EXAMPLE_DIR)
    s_room = float(np.cbrt(np.linalg.det(to_room[:3, :3])))
    room = SyntheticRoom.load(EXAMPLE_DIR)
    w0, h0 = int(posed.widths[0]), int(posed.heights[0])
    w, h = max(1, round(w0 * size / max(w0, h0))), max(1, round(h0 * size / max(w0, h0)))
    idx = np.arange(0, len(posed.cam_to_world), every)
    Ks = posed.Ks[idx] * np.array([[w / w0], [h / h0], [1.0]])[None]
    t0 = time.time()
    surf, _ = surface_depths(params, posed.cam_to_world[idx], Ks, w, h)
    seconds = time.time() - t0
    ratios: dict[str, list] = {"expected depth (rasterizer)": [], "surface depth": []}
    for j, i in enumerate(idx):
        c2w = posed.cam_to_world[i].copy()
        c2w[:3, 3] *= meta.metric_scale
        c2w_room = to_room @ c2w
        c2w_room[:3, :3] /= s_room
        _, true = room.render(c2w_room, Ks[j], w, h, 1)
        viewmat = torch.linalg.inv(torch.as_tensor(posed.cam_to_world[i], dtype=torch.float32))[None]
        with torch.no_grad():
            out, alpha, _ = render_splats(
                params, viewmat, torch.as_tensor(Ks[j : j + 1], dtype=torch.float32), w, h, sh_degree_of(params), "ED"
            )
        scale = meta.metric_scale * s_room
        ed, a = out[0, ..., 0].numpy() * scale, alpha[0, ..., 0].numpy()
        ok = (a > 0.5) & (true > 0)
        ratios["expected depth (rasterizer)"].append(ed[ok] / true[ok])
        ok = np.isfinite(surf[j]) & (true > 0)
        ratios["surface depth"].append(surf[j][ok] * scale / true[ok])
    out = {"views": len(idx), "size": [w, h], "surface_depth_seconds": round(seconds, 2)}
    for name, r in ratios.items():
        r = np.concatenate(r)
        out[name] = {
            "pixels": len(r),
            "ratio_to_true_p5_p25_p50_p75_p95": np.percentile(r, [5, 25, 50, 75, 95]).round(3).tolist(),
            "share_more_than_10pct_short": round(float((r < 0.9).mean()), 3),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scene", type=Path)
    p.add_argument("--every", type=int, default=8, help="every k-th training view")
    p.add_argument("--size", type=int, default=48, help="longer side of the depth maps, pixels")
    args = p.parse_args()
    res = {"scene": str(args.scene), "depth": depth_ratios(args.scene, args.every, args.size)}
    opts = {"width": 40, "height": 40, "max_steps": 50}
    res["floor"] = floor_agreement(
        SceneEnv(args.scene, **opts), make_room_env(**opts), FloorMap.for_scene(args.scene, EXAMPLE_DIR)
    )
    res["collision_settings"] = SceneMeta.read(args.scene).collision
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
