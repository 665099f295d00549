"""Reality for the bundled example, and the map between reality's floor and the twin's.

`make_room_env` is a SceneEnv over the example room's true geometry (`scenes.room_scene.RoomScene`):
the same body, actions, task and observations as a SceneEnv over the room's reconstruction (the
twin), in the room's own frame and metres. `FloorMap` carries poses and goals between the two
frames (the Sim(3) between the capture's true cameras and the reconstruction's), so both worlds
can start an episode from the same place and steer to the same goal.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from envs.scene_env import SceneEnv, check_scene_path
from scenes.room_scene import RoomScene
from scenes.synthetic import EXAMPLE_DIR
from wmcore.errors import UserInputError


def make_room_env(room: str | os.PathLike = EXAMPLE_DIR, supersample: int = 2, **kwargs: Any) -> SceneEnv:
    """A SceneEnv in the true room of a synthetic capture directory (`scene_spec.json`; default: the
    bundled example). Keyword arguments are SceneEnvConfig options, in the room's frame (metres)."""
    check_scene_path(f"room:{room}")
    return SceneEnv(RoomScene.load(room, supersample), **kwargs)


def make_place_env(place: str | os.PathLike, **kwargs: Any) -> SceneEnv:
    """A SceneEnv in `place`: "room:DIR" is the true room of a synthetic capture (reality), anything else a
    Scene directory, nerfstudio run or 3DGS .ply (a twin)."""
    check_scene_path(place)
    return SceneEnv(place, **kwargs)


class FloorMap:
    """Poses on the floor between the twin's frame and reality's: x' = s R x + t with R a rotation
    about z (the reconstruction is normalised z up, so any tilt left in the fitted Sim(3) is ignored)."""

    def __init__(self, twin_to_room: np.ndarray):
        T = np.asarray(twin_to_room, np.float64)
        self.scale = float(np.cbrt(np.linalg.det(T[:3, :3])))
        x_axis = T[:3, 0] / self.scale
        self.yaw = math.atan2(x_axis[1], x_axis[0])
        self.t = T[:2, 3].copy()

    @classmethod
    def for_scene(cls, scene_dir: str | os.PathLike, capture_dir: str | os.PathLike = EXAMPLE_DIR) -> FloorMap:
        """The map for a reconstruction of a synthetic capture (from its registered camera centres); the
        identity for a Scene built from the room's true geometry (`scenes.truth_scene`)."""
        from scenes.pose_eval import scene_to_truth
        from scenes.scene_meta import SceneMeta, is_scene_dir

        if is_scene_dir(scene_dir) and SceneMeta.read(scene_dir).method == "truth":
            return cls(np.eye(4))
        if not (Path(scene_dir) / "transforms.json").is_file():
            raise UserInputError(
                f"{scene_dir}: not a reconstruction of {capture_dir} (no transforms.json with its "
                "registered cameras), so its frame cannot be matched to the room's"
            )
        return cls(scene_to_truth(Path(scene_dir), Path(capture_dir)))

    def _rot(self, angle: float) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        return np.array([[c, -s], [s, c]])

    def to_room(self, xy: Any) -> np.ndarray:
        """(x, y) in the twin -> the room; an array [..., 2+] maps every point (extra columns are dropped)."""
        return self.scale * np.asarray(xy, np.float64)[..., :2] @ self._rot(self.yaw).T + self.t

    def to_twin(self, xy: Any) -> np.ndarray:
        """(x, y) in the room -> the twin; an array [..., 2+] maps every point (extra columns are dropped)."""
        return (np.asarray(xy, np.float64)[..., :2] - self.t) @ self._rot(-self.yaw).T / self.scale

    def pose_to_twin(self, pose: Any) -> np.ndarray:
        """(x, y, heading) in the room -> the twin."""
        x, y, h = (float(v) for v in pose)
        heading = (h - self.yaw + math.pi) % (2 * math.pi) - math.pi
        return np.array([*self.to_twin((x, y)), heading])

    def pose_to_room(self, pose: Any) -> np.ndarray:
        """(x, y, heading) in the twin -> the room (the inverse of `pose_to_twin`)."""
        x, y, h = (float(v) for v in pose)
        heading = (h + self.yaw + math.pi) % (2 * math.pi) - math.pi
        return np.array([*self.to_room((x, y)), heading])

    def start_in_twin(self, twin: Any, pose: Any) -> np.ndarray:
        """A start pose (x, y, heading) in the room -> the same start in the twin env `twin` (a SceneEnv, wrapped or
        not): carried over, then moved to the nearest cell of the twin's free floor when a wall sits there."""
        carried = self.pose_to_twin(pose)
        return np.array([*nearest_free(getattr(twin, "unwrapped", twin), carried[:2]), carried[2]])


def nearest_free(env: SceneEnv, xy: Any) -> np.ndarray:
    """The centre of the free, reachable navigation cell nearest to `xy` (for a start or goal carried
    over from another world, where a wall may sit a few centimetres elsewhere)."""
    grid = env.grid
    cells = np.argwhere(grid.labels == grid.largest_component())
    centres = grid.origin + (cells + 0.5) * grid.cell
    i, j = grid.cell_of(np.asarray(xy, np.float64))
    if grid.labels[i, j] == grid.largest_component():
        return np.asarray(xy, np.float64)[:2].copy()
    return centres[np.argmin(np.linalg.norm(centres - np.asarray(xy, np.float64)[:2], axis=1))]


def floor_agreement(twin: SceneEnv, room: SceneEnv, floor: FloorMap, cell: float = 0.05) -> dict[str, float]:
    """Where the body fits in the twin against where it fits in the room: over a grid of `cell` metres on
    the room's floor, each point carried into the twin by `floor`, the share of the room's free points at
    which the twin's body collides (`blocked_in_twin`: the twin is too cautious there), the share of the
    twin's free points that are solid in the room (`free_in_twin_only`: a body walks into things), and the
    intersection over union of the two free floors. Both bodies are checked as the environments check
    them (same radius, same heights under the camera)."""
    lo, hi = room.scene.bounds_min, room.scene.bounds_max
    xs = np.arange(lo[0] + cell / 2, hi[0], cell)
    ys = np.arange(lo[1] + cell / 2, hi[1], cell)
    xy = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    in_twin = floor.to_twin(xy)

    def fits(env: SceneEnv, points: np.ndarray) -> np.ndarray:
        eye = env.scene.floor_z + env.cfg.camera_height
        return env.bodies.fits(np.c_[points, np.full(len(points), eye)])

    free_room, free_twin = fits(room, xy), fits(twin, in_twin)
    return {
        "blocked_in_twin": float((free_room & ~free_twin).sum() / max(free_room.sum(), 1)),
        "free_in_twin_only": float((free_twin & ~free_room).sum() / max(free_twin.sum(), 1)),
        "iou": float((free_room & free_twin).sum() / max((free_room | free_twin).sum(), 1)),
        "cell": cell,
    }
