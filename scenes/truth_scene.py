"""A Scene made directly from the synthetic room's true geometry: Gaussians on its surfaces,
coloured by back-projecting rendered RGB-D views. No SfM, no optimisation — seconds to build.

It gives tests and benchmarks a realistic splat scene of known geometry and size (e.g. the
20k-Gaussian scene the rasterizer and SceneEnv targets are quoted for).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scenes.collision import OccupancyGrid
from scenes.ply import write_splat_ply
from scenes.scene_meta import SceneMeta
from scenes.splats import rgb_to_sh
from scenes.synthetic_room import SyntheticRoom
from wmcore.atomic import atomic_path


def truth_scene(
    out_dir: str | os.PathLike,
    room: SyntheticRoom | None = None,
    num_gaussians: int = 20_000,
    views: int = 24,
    width: int = 96,
    height: int = 72,
    sh_degree: int = 3,
    voxel_size: float = 0.05,
    seed: int = 0,
) -> Path:
    """Write a Scene directory for `room` (default: the bundled example room) and return it."""
    room = room or SyntheticRoom.default()
    rng = np.random.default_rng(seed)
    K = SyntheticRoom.intrinsics(width, height, 90.0)
    ys, xs = np.mgrid[0:height, 0:width]
    pix = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, float)], -1).reshape(-1, 3)
    rays = pix @ np.linalg.inv(K).T
    pts, cols, sizes = [], [], []
    for c2w in room.camera_path(views, yaw_offset=-1.2, swing=0.35, swings=2):
        rgb, depth = room.render(c2w, K, width, height, supersample=1)
        d = depth.reshape(-1)
        ok = np.isfinite(d) & (d > 0)
        cam = rays[ok] * d[ok, None]
        pts.append(cam @ c2w[:3, :3].T + c2w[:3, 3])
        cols.append(rgb.reshape(-1, 3)[ok])
        sizes.append(d[ok] / K[0, 0])  # footprint of one pixel at that depth
    pts, cols, sizes = np.concatenate(pts), np.concatenate(cols), np.concatenate(sizes)
    pick = rng.choice(len(pts), size=min(num_gaussians, len(pts)), replace=False)
    pts, cols, sizes = pts[pick], cols[pick], sizes[pick]
    n = len(pts)
    k = (sh_degree + 1) ** 2
    params = {
        "means": pts.astype(np.float32),
        "quats": np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
        "scales": np.log(np.clip(sizes * 1.5, 0.005, 0.2)).astype(np.float32)[:, None].repeat(3, 1),
        "opacities": np.full(n, 3.0, np.float32),  # sigmoid(3) ~ 0.95
        "sh0": rgb_to_sh(cols.astype(np.float32) / 255.0)[:, None, :].astype(np.float32),
        "shN": np.zeros((n, k - 1, 3), np.float32),
    }
    lo, hi = np.asarray(room.room_min, float), np.asarray(room.room_max, float)
    out = Path(out_dir)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_splat_ply(tmp / "splats.ply", params)
        # Collision geometry from the true surfaces, densely sampled (several points per voxel face).
        dx, dy, dz = hi - lo
        area = 3.0 * (dx * dy + dx * dz + dy * dz)  # room faces, plus as much again for objects
        surface = room.sample_surface(int(4 * area / voxel_size**2), seed=seed)
        OccupancyGrid.build(surface, None, lo, hi, voxel_size, room.floor_z).save(tmp / "occupancy")
        SceneMeta(
            method="truth",
            splats="splats.ply",
            sh_degree=sh_degree,
            metric_scale=1.0,
            floor_z=room.floor_z,
            bounds_min=tuple(lo.tolist()),
            bounds_max=tuple(hi.tolist()),
            num_gaussians=n,
        ).write(tmp)
    return out
