"""A Scene: a reconstructed place that renders from metric camera poses and answers collision
queries in metres. Splat scenes and NeRF scenes (scenes.nerf_scene, trained nerfstudio models) sit
behind this interface; `load_scene` (and `Scene.load`) chooses between them from what the path
holds (scene.json is read by scenes.scene_meta).

Coordinates: camera-to-world in the OpenCV convention, world z up, metres. The splats are stored
in the normalised frame used for optimisation; `metric_scale` (metres per normalised unit) is
undone here, at the boundary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scenes.collision import OccupancyGrid
from scenes.ply import read_splat_ply, sh_degree_of
from scenes.rasterize import rasterization
from scenes.scene_base import SceneBase
from scenes.scene_meta import SceneMeta, is_scene_dir
from wmcore.errors import UserInputError

if TYPE_CHECKING:
    from scenes.nerf_scene import NerfScene


def load_scene(path: str | os.PathLike, device: str | torch.device = "cpu") -> Scene | NerfScene:
    """Load a Scene directory written by `worldmodel reconstruct` (splats or nerfacto), a
    nerfstudio run directory (the folder holding its config.yml; needs the nerfstudio extra),
    or a bare 3DGS .ply (nerfstudio's `ns-export gaussian-splat` of a splatfacto run, gsplat,
    the original 3DGS code). Bare runs and .ply files are taken to be z-up and in metres."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".ply":
        return Scene.from_ply(path, device=device)
    if not path.exists():
        raise UserInputError(
            f"{path}: no such scene (give a Scene directory from `worldmodel reconstruct`, "
            "a nerfstudio run directory or a 3DGS .ply)"
        )
    if not is_scene_dir(path) and (path.name == "config.yml" or (path / "config.yml").is_file()):
        from scenes.nerf_scene import NerfScene

        return NerfScene.from_run(path, device=device)
    meta = SceneMeta.read(path)
    bounds = (np.asarray(meta.bounds_min), np.asarray(meta.bounds_max))
    occupancy = OccupancyGrid.load(meta.occupancy_path(path))
    if meta.nerfstudio_run is not None:
        from scenes.nerf_scene import NerfScene

        return NerfScene.from_run(
            path / meta.nerfstudio_run, device, meta.metric_scale, meta.floor_z, bounds, occupancy
        )
    splats = read_splat_ply(meta.splat_path(path))
    return Scene(splats, meta.metric_scale, meta.floor_z, *bounds, occupancy, meta.to_dict(), device)


class Scene(SceneBase):
    """Renderable, collidable splat reconstruction; build with `Scene.load` (or `load_scene`)."""

    def __init__(
        self,
        splats: dict[str, np.ndarray],
        metric_scale: float,
        floor_z: float,
        bounds_min: np.ndarray,
        bounds_max: np.ndarray,
        occupancy: OccupancyGrid,
        meta: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ):
        super().__init__(metric_scale, floor_z, bounds_min, bounds_max, occupancy, meta)
        self.sh_degree = sh_degree_of(splats)
        self._raw = splats
        self.to(device)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> Scene | NerfScene:
        """`load_scene`: a Scene directory (splats, or a NerfScene for nerfacto), a nerfstudio run
        directory or a bare 3DGS .ply."""
        return load_scene(path, device)

    @classmethod
    def from_ply(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", voxel_size: float | None = None
    ) -> Scene:
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

    def gaussians(self) -> dict[str, np.ndarray]:
        """The Gaussians in metres as float32 numpy arrays (for viewers and exports): means [N,3], unit wxyz
        quats [N,4], scales [N,3] (standard deviations), opacities [N] in [0,1], SH coefficients [N,K,3]."""
        return {
            "means": self._means.detach().cpu().float().numpy(),
            "quats": self._quats.detach().cpu().float().numpy(),
            "scales": self._scales.detach().cpu().float().numpy(),
            "opacities": self._opacities.detach().cpu().float().numpy().reshape(-1),
            "sh": self._colors.detach().cpu().float().numpy(),
        }

    @property
    def num_gaussians(self) -> int:
        return int(self._means.shape[0])

    # ------------------------------------------------------------------ rendering
    def _camera_arrays(
        self, cam_to_world: torch.Tensor | np.ndarray, K: torch.Tensor | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The poses and intrinsics as float32 tensors on the splats' device."""
        c2w = torch.as_tensor(cam_to_world, dtype=torch.float32, device=self.device)
        return c2w, torch.as_tensor(K, dtype=torch.float32, device=self.device)

    @torch.inference_mode()
    def _render(
        self, c2w: torch.Tensor, Ks: torch.Tensor, width: int, height: int, background, depth: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rasterize the splats (gsplat on CUDA, the numba rasterizer on the CPU) over `background`;
        the depth is the expected depth in metres, 0 where nothing is hit."""
        viewmats = torch.linalg.inv(c2w)
        bg = torch.tensor(background, dtype=torch.float32, device=self.device).expand(len(c2w), 3)
        out, alpha, _ = rasterization(
            self._means,
            self._quats,
            self._scales,
            self._opacities,
            self._colors,
            viewmats,
            Ks,
            width,
            height,
            sh_degree=self.sh_degree,
            render_mode="RGB+ED" if depth else "RGB",
            backgrounds=bg,
        )
        return out[..., :3].clamp(0, 1), out[..., 3] if depth else None


def visible_points(splats: dict[str, np.ndarray], min_opacity: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Means of the Gaussians that are opaque enough to be obstacles, with their opacities."""
    opa = 1.0 / (1.0 + np.exp(-splats["opacities"]))
    keep = opa >= min_opacity
    return splats["means"][keep].astype(np.float64), opa[keep]
