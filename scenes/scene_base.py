"""What every Scene has in metres, whatever renders it (splats, a NeRF or a synthetic room's
true geometry): the metric scale, floor, bounds and collision geometry, with the collision queries
over them; and `render`'s contract, whose camera-batch check every renderer starts with.

`scenes.scene.Scene` (splats), `scenes.nerf_scene.NerfScene` and `scenes.room_scene.RoomScene`
all build on `SceneBase`, so none imports another; `scenes.scene.load_scene` chooses between the
first two.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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

    def render(
        self,
        cam_to_world: torch.Tensor | np.ndarray,
        K: torch.Tensor | np.ndarray,
        width: int,
        height: int,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
        depth: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """RGB [B,H,W,3] in [0,1] and z-depth [B,H,W] in metres from metric camera-to-world poses
        [B,4,4] (OpenCV) and intrinsics [B,3,3] (or one camera, [4,4] and [3,3]). depth=False
        returns None for the depth, for callers that only need RGB. Each kind of Scene renders the
        checked batch in `_render` (see there for what it does with `background`)."""
        c2w, Ks = camera_batch(*self._camera_arrays(cam_to_world, K))
        return self._render(c2w, Ks, width, height, background, depth)

    def _camera_arrays(self, cam_to_world: Any, K: Any) -> tuple[Any, Any]:
        """The poses and intrinsics as the renderer takes them: float64 numpy arrays here."""
        return (
            np.asarray(torch.as_tensor(cam_to_world, dtype=torch.float64).cpu(), np.float64),
            np.asarray(torch.as_tensor(K, dtype=torch.float64).cpu(), np.float64),
        )

    def _render(
        self, c2w: Any, Ks: Any, width: int, height: int, background: tuple[float, float, float], depth: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`render` of a checked batch of cameras ([B,4,4], [B,3,3], from `_camera_arrays`)."""
        raise NotImplementedError


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
