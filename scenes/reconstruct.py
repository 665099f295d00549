"""`worldmodel reconstruct INPUT`: a capture becomes a Scene directory.

capture → posed images (scenes.ingest) → splat optimisation (scenes.train_splats) or nerfacto
(scenes.nerfacto, through nerfstudio) → the Scene directory: splats.ply or the nerfstudio run,
scene.json, transforms.json + images, occupancy, metrics, previews.
Everything is built in a temporary sibling and renamed into place at the end, so a failed run
leaves no half-written scene.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from scenes.ingest import IngestConfig
from scenes.nerfacto import NerfactoConfig
from scenes.train_splats import SplatTrainConfig

LOG = logging.getLogger(__name__)


@dataclass
class ReconstructConfig:
    """Reconstruct a capture into a Scene directory."""

    input: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="CAPTURE")]]
    """A video (mp4/mov/avi/mkv), a folder of photos, a nerfstudio dataset (transforms.json or its
    folder) or a COLMAP model folder."""
    out: Path = Path("runs/scene")
    """The Scene directory to write; built beside it and renamed into place when complete. An existing
    non-empty directory is refused unless --overwrite."""
    overwrite: bool = False
    """Replace the previous run (a Scene or another worldmodel run) in --out; the old one is kept
    until the new Scene is complete, and a directory holding other files is never replaced."""
    method: str = "splats"
    """Scene representation: "splats" (Gaussian splatting) or "nerfacto" (nerfstudio's NeRF; needs
    `make install-nerfstudio`)."""
    device: str = "cpu"
    """Torch device for optimisation: "cpu" or "cuda" (CUDA renders through gsplat)."""
    voxel_size: float = 0.05
    """Edge of the collision voxels, in metres."""
    floor_band: float = 0.3
    """Metres above the floor that count as floor, not obstacles, in the collision geometry: a
    reconstructed floor is a band of Gaussians and grazing-angle depth, not a plane (see
    OccupancyGrid.build). Lower obstacles are not collided with; 0 keeps every one."""
    min_views: int = 3
    """Collision geometry: a floor cell is known to be free only where at least this many training
    views looked across it; elsewhere it is unknown, hence solid. A wall that few views saw can be
    missing from the reconstruction, and their rays then run on through it; the default closes such
    gaps on the bundled example (BENCHMARKS.md, *SceneEnv*)."""
    dilate: int = 0
    """Collision geometry of splats: grow obstacles by this many voxels. 0 since the example's capture looks
    around: its twins then blocked 16-17 % of the room's free floor instead of 25-26 % (before --clear-views), still
    with no way into a true solid from the navigable floor (1 before, when a sparser capture left gaps in its
    walls)."""
    clear_views: int = 3
    """Collision geometry of splats: a voxel holding obstacle points is cleared when at least this many training
    views saw through it to a surface behind, and more of them than views whose rays ended in it (a floater, a
    stray depth hit: what occupancy mapping calls misses outweighing hits). 0 keeps every such voxel. On the
    bundled example's twins it frees 6-7 points of the room's free floor that they blocked (16-18 % down to
    10-12 %), with no way into a true solid from the navigable floor (BENCHMARKS.md, *The twin's collision
    geometry*). The cost: an obstacle thinner than a voxel that the 48-pixel tracing renders miss (a pole a few
    centimetres across) is seen through too, and cleared; 0 keeps it (as far as the splats hold it)."""
    preview_frames: int = 60
    """Frames of the orbit preview video (each is a full render: slow for nerfacto on a CPU)."""
    ingest: IngestConfig = field(default_factory=IngestConfig)
    """Frame selection, camera poses and normalisation."""
    train: SplatTrainConfig = field(default_factory=SplatTrainConfig)
    """Splat optimisation."""
    nerfacto: NerfactoConfig = field(default_factory=NerfactoConfig)
    """nerfacto training (with --method nerfacto)."""


METHODS = ("splats", "nerfacto")


def reconstruct(cfg: ReconstructConfig) -> Path:
    """Run the whole reconstruction; returns the Scene directory."""
    import torch

    from scenes.ingest import ingest
    from scenes.preview import orbit_poses, side_by_side_grid
    from scenes.scene import load_scene
    from scenes.scene_meta import SceneMeta
    from scenes.train_splats import load_images
    from wmcore.atomic import write_json
    from wmcore.media import to_uint8, write_png, write_video
    from wmcore.rundir import open_run

    check_reconstruct_config(cfg)
    out = Path(cfg.out)
    t_start = time.perf_counter()
    # Staged: built in a temporary sibling of --out, renamed into place when complete.
    with open_run(out, cfg, option="--out", overwrite=cfg.overwrite, staged=True, tensorboard=True) as run:
        run.start()
        tmp = run.path
        posed, norm, info = ingest(Path(cfg.input), tmp, cfg.ingest)
        ingest_metrics = {
            "ingest_seconds": info["seconds"],
            "input_images": info["num_input_images"],
            "registered_images": len(posed),
            "dropped_images": len(posed.dropped),
            "sparse_points": info["num_points"],
            "mean_reprojection_error": info.get("mean_reprojection_error"),
            "sfm_mapper": info.get("mapper"),
        }
        run.log_metrics(stage="ingest", **ingest_metrics)
        prune_work_files(tmp, posed.image_paths)
        build = build_nerfacto if cfg.method == "nerfacto" else build_splats
        method_meta, metrics, test_idx, max_size = build(cfg, tmp, out, posed, norm, run)

        K0 = posed.Ks[0]
        SceneMeta(
            method=cfg.method,
            **method_meta,
            occupancy="occupancy",
            transforms="transforms.json",
            normalization=norm.to_dict(),
            metric_scale=norm.metric_scale,
            intrinsics={"K": K0.tolist(), "width": int(posed.widths[0]), "height": int(posed.heights[0])},
            registered_images=len(posed),
            dropped_images=list(posed.dropped),
        ).write(tmp)
        metrics = {**metrics, **ingest_metrics}

        # Previews from the Scene exactly as environments will see it.
        scene = load_scene(tmp, device=cfg.device)
        images, Ks, w, h = load_images(posed, max_size)
        idx = test_idx or list(range(0, len(posed), max(1, len(posed) // 8)))
        c2w = metric_poses(posed.cam_to_world, norm.metric_scale)
        rgb, _ = scene.render(torch.as_tensor(c2w[idx]), Ks[idx], w, h, depth=False)
        pairs = [(to_uint8(rgb[j]), to_uint8(images[i])) for j, i in enumerate(idx[:16])]
        write_png(tmp / "previews" / "heldout_grid.png", side_by_side_grid(pairs))
        orbit = orbit_poses(c2w, cfg.preview_frames)
        frames = [to_uint8(scene.render(torch.as_tensor(p[None]), Ks[:1], w, h, depth=False)[0][0]) for p in orbit]
        write_video(tmp / "previews" / "orbit.mp4", frames)
        metrics["total_seconds"] = time.perf_counter() - t_start
        write_json(tmp / "metrics.json", metrics)
        LOG.info(
            "held-out PSNR %.2f dB, SSIM %.4f (%s), %d/%d images registered",
            metrics["psnr"],
            metrics["ssim"],
            cfg.method,
            len(posed),
            len(posed) + len(posed.dropped),
        )
    print(f"Scene written to {out} (held-out PSNR {metrics['psnr']:.2f} dB); previews in {out / 'previews'}")
    return out


def build_splats(cfg: ReconstructConfig, tmp: Path, out: Path, posed, norm, run) -> tuple[dict, dict, list, int]:
    """Optimise splats into tmp/splats.ply and build their collision geometry; returns the
    SceneMeta fields, metrics, held-out indices and the evaluation image size."""
    from scenes.ply import write_splat_ply
    from scenes.train_splats import train_splats

    def on_eval(step: int, m: dict) -> None:
        run.log_metrics(step=step, stage="splats_eval", **m)

    result = train_splats(posed, cfg.train, cfg.device, on_eval)
    params = {k: v.cpu().numpy() for k, v in result.params.items()}
    write_splat_ply(tmp / "splats.ply", params)

    # Collision geometry and bounds, in metres.
    s = norm.metric_scale
    pts, wts = obstacle_points(params, posed, s)
    lo, hi, floor_z = metric_bounds(pts, posed, norm, cfg.voxel_size)
    settings = CollisionSettings.of(cfg, cfg.voxel_size)
    occ = build_occupancy(result.params, posed, s, pts, wts, lo, hi, floor_z, settings)
    occ.save(tmp / "occupancy")
    meta = {
        "splats": "splats.ply",
        "sh_degree": result.sh_degree,
        "floor_z": floor_z,
        "bounds_min": tuple(lo.tolist()),
        "bounds_max": tuple(hi.tolist()),
        "num_gaussians": int(len(params["means"])),
        "collision": settings.to_dict(),
    }
    return meta, result.metrics, result.test_indices, cfg.train.max_size


def check_reconstruct_config(cfg: ReconstructConfig) -> None:
    """Every option and the input's kind, checked before minutes of frame extraction and SfM."""
    from scenes.ingest import check_ingest_config
    from wmcore.errors import UserInputError

    if cfg.method not in METHODS:
        raise UserInputError(f"--method {cfg.method!r} is not available; use one of {', '.join(METHODS)}")
    CollisionSettings.of(cfg, cfg.voxel_size).check()
    if cfg.preview_frames < 1:
        raise UserInputError(f"--preview-frames {cfg.preview_frames}: give 1 or more")
    if cfg.device != "cpu" and not cfg.device.startswith("cuda"):
        raise UserInputError(f"--device {cfg.device!r}: use cpu or cuda")
    if cfg.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserInputError(f"--device {cfg.device}: no CUDA GPU is available here; use --device cpu")
    check_ingest_config(Path(cfg.input), cfg.ingest)
    cfg.train.check()
    if cfg.method == "nerfacto":
        from scenes.nerfstudio_runtime import require_nerfstudio

        require_nerfstudio()  # before minutes of ingest


@dataclass(frozen=True)
class CollisionSettings:
    """How a splat Scene's collision geometry is built, recorded in scene.json (each option's meaning is in
    `ReconstructConfig`, whose flags set it; `rebuild-collision` takes the same flags)."""

    voxel_size: float
    floor_band: float
    min_views: int
    dilate: int
    clear_views: int

    @classmethod
    def of(cls, cfg: ReconstructConfig | RebuildCollisionConfig, voxel_size: float) -> CollisionSettings:
        """The settings a reconstruct or rebuild-collision run asks for, at `voxel_size` metres."""
        return cls(voxel_size, cfg.floor_band, cfg.min_views, cfg.dilate, cfg.clear_views)

    def check(self) -> None:
        """Every value, refused with one line naming its flag before any work."""
        from wmcore.errors import UserInputError

        for name, value in (("--voxel-size", self.voxel_size), ("--floor-band", self.floor_band)):
            if not np.isfinite(value) or value < 0 or (name == "--voxel-size" and value == 0):
                raise UserInputError(f"{name} {value}: give a finite distance in metres (voxel size above 0)")
        if self.min_views < 1:
            raise UserInputError(f"--min-views {self.min_views}: must be at least 1 (views that looked across a cell)")
        if self.dilate < 0:
            raise UserInputError(f"--dilate {self.dilate}: give 0 or more voxels to grow obstacles by")
        if self.clear_views < 0:
            raise UserInputError(f"--clear-views {self.clear_views}: give 0 (clear nothing) or more views")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def obstacle_points(params: dict[str, np.ndarray], posed, metric_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate obstacle points in metres (opaque splat centres and SfM points) with their weights."""
    from scenes.scene import visible_points

    means, weights = visible_points(params)
    pts = np.concatenate([means, posed.points]) * metric_scale
    return pts, np.concatenate([weights, np.ones(len(posed.points))])


def build_nerfacto(cfg: ReconstructConfig, tmp: Path, out: Path, posed, norm, run) -> tuple[dict, dict, list, int]:
    """Train nerfacto with nerfstudio on tmp/transforms.json into tmp/nerfstudio/ and build collision
    geometry from its density field; returns what `build_splats` returns."""
    from scenes.collision import OccupancyGrid
    from scenes.nerf_scene import density_points
    from scenes.nerfacto import finalize_run, train_nerfacto

    def on_eval(step: int, m: dict) -> None:
        run.log_metrics(step=step, stage="nerfacto_eval", **m)

    result = train_nerfacto(posed, tmp, tmp, cfg.nerfacto, cfg.device, on_eval)
    run_rel = result.run_dir.relative_to(tmp)
    finalize_run(result.run_dir, tmp, out)
    s = norm.metric_scale
    pts = posed.points * s
    lo, hi, floor_z = metric_bounds(pts, posed, norm, cfg.voxel_size)
    to_model = np.diag([1 / s, 1 / s, 1 / s, 1.0])  # the dataparser keeps our normalised frame
    dense, alpha = density_points(result.model, to_model, lo, hi, cfg.voxel_size)
    OccupancyGrid.build(
        np.concatenate([dense, pts]),
        np.concatenate([alpha, np.ones(len(pts))]),
        lo,
        hi,
        cfg.voxel_size,
        floor_z,
        floor_band=cfg.floor_band,
    ).save(tmp / "occupancy")
    meta = {
        "nerfstudio_run": run_rel.as_posix(),
        "floor_z": floor_z,
        "bounds_min": tuple(lo.tolist()),
        "bounds_max": tuple(hi.tolist()),
    }
    return meta, {**result.metrics, "density_points": len(dense)}, result.test_indices, cfg.nerfacto.max_size


def metric_bounds(points: np.ndarray, posed, norm, voxel_size: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Scene bounds in metres (the 1-99th percentiles of the points, and every camera) and the floor
    height; the box reaches at least one voxel below the floor."""
    s = norm.metric_scale
    cams = posed.cam_to_world[:, :3, 3] * s
    lo = np.minimum(np.percentile(points, 1, 0), cams.min(0))
    hi = np.maximum(np.percentile(points, 99, 0), cams.max(0))
    floor_z = float(norm.floor_z * s)
    lo[2] = min(lo[2], floor_z - voxel_size)
    return lo, hi, floor_z


def metric_poses(c2w: np.ndarray, metric_scale: float) -> np.ndarray:
    """Normalised camera-to-world poses [N,4,4] expressed in metres."""
    m = np.array(c2w, dtype=np.float64)
    m[:, :3, 3] *= metric_scale
    return m


def prune_work_files(scene_dir: Path, keep_images: list[Path]) -> None:
    """Drop SfM intermediates (database, models, stereo set-up) and unused image copies from the
    scene directory; keep the folders holding the images transforms.json points at."""
    import shutil

    keep = {Path(p).resolve().parent for p in keep_images}
    for top in ("sfm", "images"):
        root = scene_dir / top
        if not root.exists():
            continue
        for path in sorted(root.rglob("*"), key=lambda q: len(q.parts), reverse=True):
            r = path.resolve()
            needed = any(r == k or k in r.parents or r in k.parents for k in keep)
            if not needed:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        if not any(root.iterdir()):
            root.rmdir()


def build_occupancy(
    params: dict,
    posed,
    metric_scale: float,
    points: np.ndarray,
    weights: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    floor_z: float,
    settings: CollisionSettings,
):
    """Collision geometry in metres: voxels holding splats, SfM points and the surfaces the training
    views' rendered depth hits, less those that at least `clear_views` views saw through (more of them than
    views that ended there), plus every column fewer than `min_views` of those views looked across (unknown
    space is solid)."""
    from scenes.collision import OccupancyGrid
    from scenes.seen_space import trace_views

    voxel_size = settings.voxel_size
    shape = tuple(np.maximum(np.ceil((hi - lo) / voxel_size).astype(np.int64), 1))
    w0, h0 = int(posed.widths[0]), int(posed.heights[0])
    scale = 48.0 / max(w0, h0)  # coarse renders are enough to trace free space
    w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    Ks = posed.Ks * np.array([[w / w0], [h / h0], [1.0]])[None]
    seen = trace_views(params, posed.cam_to_world, Ks, w, h, metric_scale, lo, voxel_size, shape)
    see_through = None
    if settings.clear_views > 0:
        see_through = (seen.crossed >= settings.clear_views) & (seen.crossed > seen.ended)
    # A depth hit weighs 0.1: a wall seen from many views adds up; a floater seen in a few does not.
    return OccupancyGrid.build(
        np.concatenate([points, seen.surface]),
        np.concatenate([weights, np.full(len(seen.surface), 0.1)]),
        lo,
        hi,
        voxel_size,
        floor_z,
        seen_xy=seen.views >= settings.min_views,
        floor_band=settings.floor_band,
        dilate=settings.dilate,
        see_through=see_through,
    )


@dataclass
class RebuildCollisionConfig:
    """Rebuild a splat Scene's collision geometry with new settings, without re-optimising it."""

    scene: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="SCENE")]]
    """Scene directory written by `worldmodel reconstruct` (splats)."""
    floor_band: float = ReconstructConfig.floor_band
    """Metres above the floor that count as floor, not obstacles (see `reconstruct --floor-band`)."""
    min_views: int = ReconstructConfig.min_views
    """Training views that must have looked across a floor cell for it to be known free (see
    `reconstruct --min-views`)."""
    dilate: int = ReconstructConfig.dilate
    """Voxels obstacles grow by (see `reconstruct --dilate`)."""
    clear_views: int = ReconstructConfig.clear_views
    """Views that must have seen through a voxel to clear its obstacle points (see `reconstruct --clear-views`)."""


def rebuild_collision(cfg: RebuildCollisionConfig) -> Path:
    """Replace SCENE/occupancy (atomically) and record the settings in scene.json; the splats, poses
    and bounds are the scene's own, so the same settings give the same grid."""
    import torch

    from scenes.collision import OccupancyGrid
    from scenes.nerfstudio_io import read_transforms
    from scenes.ply import read_splat_ply
    from scenes.scene_meta import SceneMeta
    from wmcore.errors import UserInputError

    scene = Path(cfg.scene)
    meta = SceneMeta.read(scene)
    if meta.method != "splats":
        raise UserInputError(
            f"{scene}: a {meta.method} scene; its collision geometry comes from the density field, "
            "so rebuild it with `worldmodel reconstruct --method nerfacto`"
        )
    settings = CollisionSettings.of(cfg, OccupancyGrid.load(meta.occupancy_path(scene)).voxel_size)
    settings.check()
    transforms = meta.transforms_path(scene)
    if not transforms.is_file():
        raise UserInputError(
            f"{transforms}: missing; the camera poses are needed to trace what the capture saw "
            "(re-run `worldmodel reconstruct`)"
        )
    s, floor_z = meta.metric_scale, meta.floor_z
    lo, hi = np.asarray(meta.bounds_min, float), np.asarray(meta.bounds_max, float)
    params = read_splat_ply(meta.splat_path(scene))
    posed = read_transforms(transforms)
    pts, wts = obstacle_points(params, posed, s)
    occ = build_occupancy(
        {k: torch.as_tensor(v) for k, v in params.items()}, posed, s, pts, wts, lo, hi, floor_z, settings
    )
    occ.save(meta.occupancy_path(scene))
    dataclasses.replace(meta, collision=settings.to_dict()).write(scene)
    free = float((~occ.occupied).sum()) * settings.voxel_size**3
    print(f"Collision geometry of {scene} rebuilt ({settings.to_dict()}): {free:.1f} m^3 free")
    return scene
