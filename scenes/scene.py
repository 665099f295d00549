"""A Scene: a reconstructed place that renders from metric camera poses and answers collision
queries in metres. Splat scenes and NeRF scenes (scenes.nerf_scene, trained nerfstudio models) sit
behind this interface.

Coordinates: camera-to-world in the OpenCV convention, world z up, metres. The splats are stored
in the normalised frame used for optimisation; `metric_scale` (metres per normalised unit) is
undone here, at the boundary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scenes.collision import OccupancyGrid
from scenes.ply import read_splat_ply, sh_degree_of
from scenes.rasterize import rasterization
from wmcore.errors import UserInputError

SCENE_FILE = "scene.json"
FORMAT = "worldmodel-scene"


class Scene:
    """Renderable, collidable reconstruction; build with `Scene.load`."""

    def __init__(self, splats: dict[str, np.ndarray], metric_scale: float, floor_z: float,
                 bounds_min: np.ndarray, bounds_max: np.ndarray, occupancy: OccupancyGrid,
                 meta: dict[str, Any] | None = None, device: str | torch.device = "cpu"):
        self.sh_degree = sh_degree_of(splats)
        self.metric_scale = float(metric_scale)
        self.floor_z = float(floor_z)
        self.bounds_min = np.asarray(bounds_min, np.float64)
        self.bounds_max = np.asarray(bounds_max, np.float64)
        self.occupancy = occupancy
        self.meta = meta or {}
        self._raw = splats
        self.to(device)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> Scene:
        """Load a Scene directory written by `worldmodel reconstruct` (splats or nerfacto), a
        nerfstudio run directory (the folder holding its config.yml; needs the nerfstudio extra),
        or a bare 3DGS .ply (nerfstudio's `ns-export gaussian-splat` of a splatfacto run, gsplat,
        the original 3DGS code). Bare runs and .ply files are taken to be z-up and in metres."""
        path = Path(path)
        if path.is_file() and path.suffix.lower() == ".ply":
            return cls.from_ply(path, device=device)
        if not path.exists():
            raise UserInputError(f"{path}: no such scene (give a Scene directory from `worldmodel reconstruct`, "
                                 "a nerfstudio run directory or a 3DGS .ply)")
        meta_path = path / SCENE_FILE
        if not meta_path.is_file() and (path.name == "config.yml" or (path / "config.yml").is_file()):
            from scenes.nerf_scene import NerfScene

            return NerfScene.from_run(path, device=device)
        if not meta_path.is_file():
            raise UserInputError(f"{path}: not a Scene directory ({SCENE_FILE} is missing); run "
                                 "`worldmodel reconstruct` on your capture first")
        try:
            meta = json.loads(meta_path.read_text())
            splat_file = path / meta.get("splats", "splats.ply")
            metric_scale = float(meta["metric_scale"])
            floor_z = float(meta["floor_z"])
            bmin, bmax = np.asarray(meta["bounds"]["min"]), np.asarray(meta["bounds"]["max"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserInputError(f"{meta_path}: malformed scene description ({e!r}); re-run reconstruct") from e
        occupancy = OccupancyGrid.load(path / meta.get("occupancy", "occupancy"))
        if "nerfstudio_run" in meta:
            from scenes.nerf_scene import NerfScene

            return NerfScene.from_run(path / meta["nerfstudio_run"], device, metric_scale, floor_z, (bmin, bmax),
                                      occupancy)
        splats = read_splat_ply(splat_file)
        return cls(splats, metric_scale, floor_z, bmin, bmax, occupancy, meta, device)

    @classmethod
    def from_ply(cls, path: str | os.PathLike, device: str | torch.device = "cpu",
                 voxel_size: float | None = None) -> Scene:
        """A Scene from a bare 3DGS .ply: z up, units taken as metres, floor and collision
        geometry estimated from the Gaussians."""
        splats = read_splat_ply(path)
        means, weights = visible_points(splats)
        lo, hi = np.percentile(means, 0.5, 0), np.percentile(means, 99.5, 0)
        floor_z = float(np.percentile(means[:, 2], 1.0))
        voxel = voxel_size or float(max(hi - lo)) / 96
        occ = OccupancyGrid.build(means, weights, lo, hi, voxel, floor_z)
        return cls(splats, 1.0, floor_z, lo, hi, occ, {"source": str(path)}, device)

    def to(self, device: str | torch.device) -> Scene:
        """Move the splats to `device` (CUDA renders through gsplat)."""
        dev = torch.device(device)
        s = self._raw
        t = {k: torch.as_tensor(v, device=dev) for k, v in s.items()}
        self._means = t["means"] * self.metric_scale
        self._quats = t["quats"] / t["quats"].norm(dim=-1, keepdim=True)
        self._scales = torch.exp(t["scales"]) * self.metric_scale
        self._opacities = torch.sigmoid(t["opacities"])
        self._colors = torch.cat([t["sh0"], t["shN"]], 1)
        self.device = dev
        return self

    @property
    def num_gaussians(self) -> int:
        return int(self._means.shape[0])

    # ------------------------------------------------------------------ rendering
    @torch.inference_mode()
    def render(self, cam_to_world: torch.Tensor | np.ndarray, K: torch.Tensor | np.ndarray, width: int,
               height: int, background: tuple[float, float, float] = (0.0, 0.0, 0.0), depth: bool = True,
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """RGB [B,H,W,3] in [0,1] and depth [B,H,W] in metres (0 where nothing is hit) from metric
        camera-to-world poses [B,4,4] (OpenCV) and intrinsics [B,3,3]. depth=False skips compositing
        the depth channel (returns None for it), for callers that only need RGB."""
        c2w = torch.as_tensor(cam_to_world, dtype=torch.float32, device=self.device)
        Ks = torch.as_tensor(K, dtype=torch.float32, device=self.device)
        if c2w.dim() == 2:
            c2w, Ks = c2w[None], Ks[None] if Ks.dim() == 2 else Ks
        if c2w.shape[-2:] != (4, 4) or Ks.shape[-2:] != (3, 3) or len(Ks) != len(c2w):
            raise ValueError(f"cam_to_world must be [B,4,4] and K [B,3,3]; got {tuple(c2w.shape)} and "
                             f"{tuple(Ks.shape)}")
        viewmats = torch.linalg.inv(c2w)
        bg = torch.tensor(background, dtype=torch.float32, device=self.device).expand(len(c2w), 3)
        out, alpha, _ = rasterization(self._means, self._quats, self._scales, self._opacities, self._colors,
                                      viewmats, Ks, width, height, sh_degree=self.sh_degree,
                                      render_mode="RGB+ED" if depth else "RGB", backgrounds=bg)
        return out[..., :3].clamp(0, 1), out[..., 3] if depth else None

    # ------------------------------------------------------------------ collisions (metres)
    def is_free(self, points: np.ndarray, radius: float = 0.0) -> np.ndarray:
        """True where a sphere of `radius` metres at each point [N,3] touches no obstacle."""
        return self.occupancy.is_free(np.asarray(points, np.float64), radius)

    def raycast(self, origins: np.ndarray, dirs: np.ndarray, max_dist: float) -> np.ndarray:
        """Distance in metres to the first obstacle along each ray (max_dist when none)."""
        return self.occupancy.raycast(np.asarray(origins, np.float64), np.asarray(dirs, np.float64), max_dist)


def visible_points(splats: dict[str, np.ndarray], min_opacity: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Means of the Gaussians that are opaque enough to be obstacles, with their opacities."""
    opa = 1.0 / (1.0 + np.exp(-splats["opacities"]))
    keep = opa >= min_opacity
    return splats["means"][keep].astype(np.float64), opa[keep]
