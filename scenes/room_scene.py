"""Reality for the bundled example: the Scene interface over a synthetic room's true geometry.

The example capture was filmed in a `SyntheticRoom` (`scenes/synthetic.py`): exact ray-cast
rendering and exact solids. `RoomScene` puts that room behind the same interface as a
reconstructed `Scene` (render from metric OpenCV poses, collision queries in metres, floor and
bounds), so a `SceneEnv` over it is the *real* place the reconstruction (the twin) stands in for,
with the same body, actions, task and observations. Its steps are the ones a user would pay for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from scenes.scene_base import SceneBase
from scenes.synthetic_room import EXAMPLE_DIR, SyntheticRoom


class RoomScene(SceneBase):
    """A `SyntheticRoom` behind the `Scene` interface (renders by ray casting, one camera at a time)."""

    voxel_size = 0.05
    """Collision resolution the environments step bodies at (the geometry itself is exact)."""

    def __init__(self, room: SyntheticRoom, supersample: int = 2):
        super().__init__(1.0, room.floor_z, room.room_min, room.room_max, self)
        # occupancy is self: SceneEnv reads the collision resolution from `occupancy.voxel_size`
        self.room = room
        self.supersample = int(supersample)
        self.device = torch.device("cpu")

    @classmethod
    def load(cls, capture_dir: str | os.PathLike = EXAMPLE_DIR, supersample: int = 2) -> RoomScene:
        """The room of a capture directory (`scene_spec.json`; default: the bundled example)."""
        return cls(SyntheticRoom.load(Path(capture_dir)), supersample)

    def _render(
        self, c2w: np.ndarray, Ks: np.ndarray, width: int, height: int, background, depth: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ray-cast RGB, anti-aliased with supersample² rays per pixel (as a camera integrates over
        its pixels), and z-depth (`background` is unused: the room is closed)."""
        rgbs, depths = [], []
        for pose, k in zip(c2w, Ks):
            rgb, d = self.room.render(pose, k, width, height, self.supersample, depth=depth)
            rgbs.append(rgb)
            depths.append(d)
        rgb = torch.from_numpy(np.stack(rgbs)).float() / 255.0
        return rgb, (torch.from_numpy(np.stack(depths)) if depth else None)

    def is_free(self, points: np.ndarray, radius: float = 0.0) -> np.ndarray:
        """True where a sphere of `radius` metres at each point [N,3] touches no solid (exact)."""
        from scenes.collision import check_points

        return self.room.is_free(check_points(points, "is_free points"), radius)

    def raycast(self, origins: np.ndarray, dirs: np.ndarray, max_dist: float) -> np.ndarray:
        """Distance in metres to the first surface along each ray (max_dist when none is nearer)."""
        from scenes.collision import check_points

        return self.room.raycast(
            check_points(origins, "raycast origins"), check_points(dirs, "raycast directions"), max_dist
        )
