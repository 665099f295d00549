"""What every reconstructed Scene has in metres, whatever renders it (splats or a NeRF): the
metric scale, floor, bounds and collision geometry, with the collision queries over them; and the
camera-batch check every `render` starts with.

`scenes.scene.Scene` (splats) and `scenes.nerf_scene.NerfScene` both build on `SceneBase`, so
neither imports the other; `scenes.scene.load_scene` chooses between them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scenes.collision import OccupancyGrid


class SceneBase:
    """Scale, floor, bounds and collision queries of a Scene, in metres, world z up."""

    def __init__(
        self,
        metric_scale: float,
        floor_z: float,
        bounds_min: np.ndarray,
        bounds_max: np.ndarray,
        occupancy: OccupancyGrid,
        meta: dict[str, Any] | None = None,
    ):
        self.metric_scale = float(metric_scale)
        self.floor_z = float(floor_z)
        self.bounds_min = np.asarray(bounds_min, np.float64)
        self.bounds_max = np.asarray(bounds_max, np.float64)
        self.occupancy = occupancy
        self.meta = meta or {}

    def is_free(self, points: np.ndarray, radius: float = 0.0) -> np.ndarray:
        """True where a sphere of `radius` metres at each point [N,3] touches no obstacle."""
        return self.occupancy.is_free(np.asarray(points, np.float64), radius)

    def raycast(self, origins: np.ndarray, dirs: np.ndarray, max_dist: float) -> np.ndarray:
        """Distance in metres to the first obstacle along each ray (max_dist when none)."""
        return self.occupancy.raycast(np.asarray(origins, np.float64), np.asarray(dirs, np.float64), max_dist)


def camera_batch(c2w: Any, Ks: Any) -> tuple[Any, Any]:
    """Camera-to-world poses and intrinsics (arrays or tensors) as a batch [B,4,4], [B,3,3]: one
    camera [4,4], [3,3] gains the batch axis; other shapes are refused."""
    if c2w.ndim == 2:
        c2w, Ks = c2w[None], Ks[None] if Ks.ndim == 2 else Ks
    if c2w.shape[-2:] != (4, 4) or Ks.shape[-2:] != (3, 3) or len(Ks) != len(c2w):
        raise ValueError(f"cam_to_world must be [B,4,4] and K [B,3,3]; got {tuple(c2w.shape)} and {tuple(Ks.shape)}")
    for name, x in (("cam_to_world", c2w), ("K", Ks)):
        finite = bool(x.isfinite().all()) if hasattr(x, "isfinite") else bool(np.isfinite(np.asarray(x)).all())
        if not finite:
            from wmcore.errors import UserValueError

            raise UserValueError(f"{name} holds NaN or inf; give finite camera poses and intrinsics")
    return c2w, Ks
