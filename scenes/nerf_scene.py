"""A NeRF Scene: a trained nerfstudio model (its config.yml and checkpoint) behind the Scene
interface, so environments run on a NeRF exactly as on splats.

Frames: the Scene world is metric, z up, OpenCV cameras (flipped to nerfstudio's OpenGL cameras at
the boundary only). nerfstudio's dataparser_transforms.json maps the *original* data frame (before
the dataset's `applied_transform`) to the model frame: `scale * [R | t]`. For our own scenes the
dataparser is configured to keep the normalised frame of the transforms.json we wrote (scenes.nerfacto),
so metres → ÷ metric_scale → model frame. A bare nerfstudio run (no scene.json) is taken, like a bare
.ply, to be in metres in the model frame with nerfstudio's scale undone: the original data, rotated
and centred by nerfstudio (z up with its default orientation).

Collision geometry comes from the density field: voxel centres where one voxel's worth of
density is mostly opaque count as points for `OccupancyGrid.build`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scenes.collision import OccupancyGrid
from scenes.nerfstudio_io import GL_FROM_CV
from scenes.nerfstudio_runtime import load_checkpoint, lpips_without_download, require_nerfstudio
from scenes.scene_base import SceneBase
from wmcore.errors import UserInputError

LOG = logging.getLogger(__name__)
CONFIG_FILE = "config.yml"


def find_run_config(path: str | os.PathLike) -> Path | None:
    """The config.yml of a nerfstudio run given the file or its folder; None when there is none."""
    path = Path(path)
    if path.is_file() and path.name == CONFIG_FILE:
        return path
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        return path / CONFIG_FILE
    return None


def load_run_config(config_path: Path) -> Any:
    """nerfstudio's TrainerConfig from its config.yml. The file holds Python object tags (nerfstudio
    writes it with yaml.dump), so it is trusted input, exactly as for `ns-viewer`."""
    import yaml

    require_nerfstudio()
    try:
        return yaml.load(config_path.read_text(), Loader=yaml.Loader)
    except Exception as e:  # yaml errors and missing nerfstudio classes surface here
        raise UserInputError(
            f"{config_path}: not a readable nerfstudio config ({e}); point at the config.yml that ns-train wrote"
        ) from e


def latest_checkpoint(run_dir: Path, config: Any) -> Path:
    """The newest step-*.ckpt of a run (nerfstudio's `nerfstudio_models/` unless configured else)."""
    ckpt_dir = run_dir / getattr(config, "relative_model_dir", "nerfstudio_models")
    ckpts = sorted(ckpt_dir.glob("step-*.ckpt")) if ckpt_dir.is_dir() else []
    if not ckpts:
        raise UserInputError(
            f"{ckpt_dir}: no step-*.ckpt checkpoint; train the run first (ns-train or "
            "`worldmodel reconstruct --method nerfacto`)"
        )
    return ckpts[-1]


def dataparser_scale(run_dir: Path) -> float:
    """Model units per original data unit: the scale in the run's dataparser_transforms.json (1 when
    it is absent)."""
    path = run_dir / "dataparser_transforms.json"
    if not path.is_file():
        LOG.warning("%s not found; taking the model frame to be in data units", path)
        return 1.0
    try:
        return float(json.loads(path.read_text())["scale"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserInputError(f"{path}: malformed ({e!r}); it is written by ns-train, re-run training") from e


def build_model(config: Any, state: dict[str, torch.Tensor], device: str | torch.device) -> torch.nn.Module:
    """The trained model alone (no datamanager, so the run's images need not be present), sized from
    its checkpoint: the number of training cameras from the per-camera parameters."""
    from nerfstudio.data.scene_box import SceneBox

    model_state = {k[len("_model.") :]: v for k, v in state.items() if k.startswith("_model.")}
    model_state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in model_state.items()}
    num_cameras = next(
        (
            v.shape[0]
            for k, v in model_state.items()
            if k.endswith(("embedding_appearance.embedding.weight", "pose_adjustment"))
        ),
        1,
    )
    aabb = model_state.get("field.aabb", torch.tensor([[-1.0, -1, -1], [1, 1, 1]]))
    with lpips_without_download():
        model = config.pipeline.model.setup(
            scene_box=SceneBox(aabb=aabb.float()),
            num_train_data=int(num_cameras),
            metadata={},
            device=device,
            grad_scaler=None,
        )
    # LPIPS's own weights (when the run was trained with them) are not part of the scene.
    model_state = {k: v for k, v in model_state.items() if not k.startswith("lpips.")}
    missing, unexpected = model.load_state_dict(model_state, strict=False)
    missing = [k for k in missing if not k.startswith("lpips.")]
    if missing or unexpected:
        raise UserInputError(
            f"checkpoint does not match the run's config.yml (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); use the config.yml and checkpoint of the same run"
        )
    return model.to(device).eval()


def render_model(
    model: torch.nn.Module, cam_to_world: np.ndarray, K: np.ndarray, width: int, height: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB [B,H,W,3] and z-depth [B,H,W] (model units) of a nerfstudio model from OpenCV
    camera-to-world poses [B,4,4] in the model frame and intrinsics [B,3,3]."""
    from nerfstudio.cameras.cameras import Cameras, CameraType

    c2w_gl = torch.as_tensor(np.asarray(cam_to_world, np.float64) @ GL_FROM_CV, dtype=torch.float32)
    Ks = torch.as_tensor(np.asarray(K), dtype=torch.float32)
    cams = Cameras(
        camera_to_worlds=c2w_gl[:, :3, :4],
        fx=Ks[:, 0, 0:1],
        fy=Ks[:, 1, 1:2],
        cx=Ks[:, 0, 2:3],
        cy=Ks[:, 1, 2:3],
        width=width,
        height=height,
        camera_type=CameraType.PERSPECTIVE,
    )
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    rgbs, depths = [], []
    for i in range(len(c2w_gl)):
        out = model.get_outputs_for_camera(cams[i : i + 1].to(model.device))
        # nerfstudio's depth is the distance along unit rays; the Scene contract is camera z.
        ray_len = torch.sqrt(((xs - Ks[i, 0, 2]) / Ks[i, 0, 0]) ** 2 + ((ys - Ks[i, 1, 2]) / Ks[i, 1, 1]) ** 2 + 1)
        rgbs.append(out["rgb"].float().cpu())
        depths.append(out["depth"][..., 0].float().cpu() / ray_len)
    return torch.stack(rgbs), torch.stack(depths)


def density_points(
    model: torch.nn.Module, to_model: np.ndarray, lo: np.ndarray, hi: np.ndarray, voxel_size: float, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Obstacle points (metres) from the density field over the metric box lo..hi, with their
    opacities: each voxel centre is queried, and where the opacity of one voxel's length of its
    density, 1 - exp(-sigma * length), reaches 0.5 the centre is an obstacle point."""
    shape = np.maximum(np.ceil((hi - lo) / voxel_size).astype(np.int64), 1)
    axes = [lo[i] + (np.arange(shape[i]) + 0.5) * voxel_size for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    scale = float(np.cbrt(np.linalg.det(to_model[:3, :3])))
    alpha = np.empty(len(centres), np.float64)
    with torch.no_grad():
        for s in range(0, len(centres), chunk):
            p = centres[s : s + chunk] @ to_model[:3, :3].T + to_model[:3, 3]
            sigma = model.field.density_fn(torch.as_tensor(p, dtype=torch.float32, device=model.device))
            alpha[s : s + chunk] = 1 - np.exp(-sigma[..., 0].double().cpu().numpy() * voxel_size * scale)
    dense = alpha >= 0.5
    return centres[dense], alpha[dense]


class NerfScene(SceneBase):
    """A trained nerfstudio model as a Scene: same `render`, `is_free`, `raycast`, `floor_z`, bounds."""

    def __init__(
        self,
        model: torch.nn.Module,
        to_model: np.ndarray,
        floor_z: float,
        bounds_min: np.ndarray,
        bounds_max: np.ndarray,
        occupancy: OccupancyGrid,
        meta: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ):
        self.to_model = np.asarray(to_model, np.float64)
        """[4,4] similarity: Scene world (metres) → model frame."""
        metric_scale = 1.0 / float(np.cbrt(np.linalg.det(self.to_model[:3, :3])))
        super().__init__(metric_scale, floor_z, bounds_min, bounds_max, occupancy, meta)
        self.model = model
        self.to(device)

    @classmethod
    def from_run(
        cls,
        run: str | os.PathLike,
        device: str | torch.device = "cpu",
        metric_scale: float | None = None,
        floor_z: float | None = None,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
        occupancy: OccupancyGrid | None = None,
        voxel_size: float | None = None,
    ) -> NerfScene:
        """A nerfstudio run directory (or its config.yml). With `metric_scale` (metres per model unit,
        from our scene.json) the model frame scaled to metres is the world; without, the model frame
        with nerfstudio's scale undone is. Missing floor, bounds or occupancy come from the density."""
        config_path = find_run_config(run)
        if config_path is None:
            raise UserInputError(
                f"{run}: not a nerfstudio run (no {CONFIG_FILE}); give the folder ns-train wrote "
                "(outputs/NAME/METHOD/TIMESTAMP)"
            )
        run_dir = config_path.parent
        config = load_run_config(config_path)
        ckpt_path = latest_checkpoint(run_dir, config)
        ckpt = load_checkpoint(ckpt_path)
        model = build_model(config, ckpt["pipeline"], device)
        if metric_scale is not None:  # our scene: the model frame is the normalised frame
            to_model = np.diag([1 / metric_scale] * 3 + [1.0])
        else:  # a bare run: its model frame with nerfstudio's scale undone is the world
            s = dataparser_scale(run_dir)
            to_model = np.diag([s, s, s, 1.0])
        meta = {"source": str(run_dir), "checkpoint": ckpt_path.name, "step": int(ckpt.get("step", -1))}
        if bounds is None:
            aabb = model.field.aabb.detach().cpu().numpy().astype(np.float64)
            inv = np.linalg.inv(to_model)
            corners = np.array(np.meshgrid(*aabb.T, indexing="ij")).reshape(3, -1).T
            world = corners @ inv[:3, :3].T + inv[:3, 3]
            bounds = (world.min(0), world.max(0))
        lo, hi = np.asarray(bounds[0], np.float64), np.asarray(bounds[1], np.float64)
        if occupancy is None:
            voxel = voxel_size or float(max(hi - lo)) / 48
            points, alpha = density_points(model, to_model, lo, hi, voxel)
            if floor_z is None:
                floor_z = float(np.percentile(points[:, 2], 1.0)) if len(points) else float(lo[2])
            occupancy = OccupancyGrid.build(points, alpha, lo, hi, voxel, floor_z)
        return cls(model, to_model, float(lo[2]) if floor_z is None else floor_z, lo, hi, occupancy, meta, device)

    def to(self, device: str | torch.device) -> NerfScene:
        """Move the model to `device` (CUDA renders on the GPU)."""
        self.device = torch.device(device)
        self.model = self.model.to(self.device)
        return self

    @property
    def num_gaussians(self) -> int:
        return 0

    @torch.inference_mode()
    def _render(
        self, c2w: np.ndarray, Ks: np.ndarray, width: int, height: int, background, depth: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model's RGB and z-depth, rendered in its frame (`background` is unused: a NeRF has no
        empty pixels)."""
        m = self.to_model
        c2w_model = np.einsum("ij,bjk->bik", m, c2w)
        c2w_model[:, :3, :3] *= self.metric_scale  # keep rotations orthonormal
        rgb, z = render_model(self.model, c2w_model, Ks, width, height)
        return rgb.clamp(0, 1).to(self.device), (z * self.metric_scale).to(self.device) if depth else None
