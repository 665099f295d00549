"""The bundled example room as a nerfstudio-format dataset with its true poses.

Tests and benchmarks that compare scene representations need posed images without the minutes
of SfM, and in the layout `ns-process-data` writes (images/, transforms.json with OpenGL poses,
sparse_pc.ply): that exercises the "bring a nerfstudio dataset" path exactly as users do.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from scenes.nerfstudio_io import write_transforms
from scenes.posed import PosedImages
from scenes.synthetic_room import SyntheticRoom
from wmcore.atomic import atomic_path


def write_example_dataset(
    out_dir: str | os.PathLike,
    num_frames: int = 48,
    width: int = 128,
    height: int = 96,
    num_points: int = 4000,
    room: SyntheticRoom | None = None,
    seed: int = 0,
) -> Path:
    """Render `room` (default: the bundled example) along its camera loop into `out_dir`:
    images/frame_NNNNN.png, transforms.json and sparse_pc.ply (points back-projected from the true
    depth, coloured by the renders). Returns the transforms.json path. The loop swings its heading +-20
    degrees (the capture's looks around further): the small sets the tests train on need views that overlap."""
    room = room or SyntheticRoom.load()
    c2w = room.camera_path(num_frames, swing=0.35, swings=2)
    K = room.intrinsics(width, height)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    rays = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, float)], -1).reshape(-1, 3) @ np.linalg.inv(K).T
    out = Path(out_dir)
    with atomic_path(out) as tmp:
        (tmp / "images").mkdir(parents=True)
        paths, pts, cols = [], [], []
        for i, pose in enumerate(c2w):
            rgb, depth = room.render(pose, K, width, height)
            path = tmp / "images" / f"frame_{i + 1:05d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            paths.append(path)
            d = depth.reshape(-1)
            ok = np.flatnonzero(np.isfinite(d) & (d > 0))
            pick = rng.choice(ok, size=min(len(ok), max(1, num_points // num_frames)), replace=False)
            pts.append((rays[pick] * d[pick, None]) @ pose[:3, :3].T + pose[:3, 3])
            cols.append(rgb.reshape(-1, 3)[pick])
        n = len(c2w)
        posed = PosedImages(
            paths,
            c2w,
            np.repeat(K[None], n, 0),
            np.full(n, width),
            np.full(n, height),
            np.concatenate(pts),
            np.concatenate(cols).astype(np.uint8),
        )
        write_transforms(posed, tmp)
    return out / "transforms.json"
