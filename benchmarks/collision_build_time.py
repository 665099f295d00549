"""Seconds to build a splat Scene's collision geometry (`scenes.reconstruct.build_occupancy`: the training views'
surface depths, the rays traced through the grid, the voxels), three calls in a row, with the demo's settings.

Run it from two checkouts alternately to compare them (it takes the older signature too, from before
`CollisionSettings`), e.g. `PYTHONPATH=/tmp/old python benchmarks/collision_build_time.py SCENE` then
`PYTHONPATH=. python benchmarks/collision_build_time.py SCENE`, twice each.

    python benchmarks/collision_build_time.py SCENE
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

import scenes.reconstruct as rc
from scenes.nerfstudio_io import read_transforms
from scenes.ply import read_splat_ply
from scenes.scene_meta import SceneMeta

scene = Path(sys.argv[1])
meta = SceneMeta.read(scene)
params = read_splat_ply(meta.splat_path(scene))
posed = read_transforms(meta.transforms_path(scene))
s = meta.metric_scale
lo, hi = np.asarray(meta.bounds_min, float), np.asarray(meta.bounds_max, float)
pts, wts = rc.obstacle_points(params, posed, s)
tensors = {k: torch.as_tensor(v) for k, v in params.items()}
for _ in range(3):
    t = time.time()
    if hasattr(rc, "CollisionSettings"):
        settings = rc.CollisionSettings(0.05, 0.3, 3, 0, rc.ReconstructConfig.clear_views)
        rc.build_occupancy(tensors, posed, s, pts, wts, lo, hi, meta.floor_z, settings)
    else:  # the signature before CollisionSettings
        rc.build_occupancy(tensors, posed, s, pts, wts, lo, hi, 0.05, meta.floor_z, 0.3, 3, 0)
    print(f"build_occupancy: {time.time() - t:.2f} s")
