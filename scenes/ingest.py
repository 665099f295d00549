"""Any capture → posed, pinhole, normalised images: the first half of `worldmodel reconstruct`.

INPUT may be a video (frames are selected, then SfM with sequential matching and one shared
camera), a folder of photos (SfM with exhaustive matching), a nerfstudio/instant-ngp
transforms.json (or its folder) or a COLMAP model folder (poses are read, not estimated).
Distorted or oversized images are rectified into the work directory; the world is normalised
(z up, centred, unit-ish) and the work directory receives a nerfstudio-format transforms.json,
the sparse points as sparse_pc.ply and ingest.json describing what happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from tqdm import tqdm

from scenes.capture import VIDEO_SUFFIXES, extract_frames, import_images, list_images
from scenes.colmap_io import is_model_dir, read_colmap_model
from scenes.nerfstudio_io import read_transforms, write_transforms
from scenes.normalize import Normalization, UpMethod, apply_scale_from, check_scale_spec, normalize
from scenes.posed import PosedImages
from scenes.sfm import SfMOptions, run_sfm
from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError, require_at_least

LOG = logging.getLogger(__name__)

InputKind = Literal["video", "photos", "transforms", "colmap"]


@dataclass
class IngestConfig:
    """How a capture becomes posed images."""

    num_frames: int = 150
    """Video: how many frames to keep (the sharpest of as many evenly spaced windows)."""
    max_size: int = 1600
    """Longest image side in pixels; larger frames/photos are downscaled copies (0: keep size)."""
    matcher: Literal["auto", "sequential", "exhaustive"] = "auto"
    """SfM pairing; auto: sequential for video frames, exhaustive for photo folders."""
    mapper: Literal["auto", "global", "incremental"] = "auto"
    """SfM mapper; auto: incremental, then global if images are left unregistered; keep the larger."""
    camera_model: str = "SIMPLE_RADIAL"
    """COLMAP camera model estimated by SfM (distorted models are undistorted afterwards)."""
    sfm_max_size: int = 1024
    """Longest side at which SIFT features are extracted; smaller is faster."""
    max_features: int = 4096
    """Most SIFT features per image."""
    up: UpMethod = "auto"
    """World up: auto (floor plane if clear, else cameras), cameras, ground or none."""
    scale_from: str | None = None
    """Metric scale from a known distance: 'IMG_A,IMG_B,METRES' or 'camera-height:METRES'."""
    image_dir: Path | None = None
    """COLMAP input: folder of its images (default: images/ beside or above the model)."""
    seed: int = 0
    """Seed of SfM (RANSAC and mappers); with a seed (>= 0) SfM runs on one thread so the poses and
    points repeat run after run; -1 uses every core with a time-based seed."""


def check_ingest_config(input_path: Path, cfg: IngestConfig) -> None:
    """Every ingest option and the input's kind, checked before frame extraction and SfM."""
    detect_input(Path(input_path))
    require_at_least(
        ("--ingest.num-frames", cfg.num_frames, 3),
        ("--ingest.max-size", cfg.max_size, 0),
        ("--ingest.sfm-max-size", cfg.sfm_max_size, 16),
        ("--ingest.max-features", cfg.max_features, 16),
    )
    if cfg.scale_from is not None:
        check_scale_spec(cfg.scale_from)
    if cfg.image_dir is not None and not Path(cfg.image_dir).is_dir():
        raise UserInputError(f"--ingest.image-dir {cfg.image_dir}: no such folder; give the folder of the images")


def detect_input(path: Path) -> tuple[InputKind, Path]:
    """The kind of capture at `path` and the file or folder to read it from."""
    if not path.exists():
        raise UserInputError(
            f"{path}: input not found; pass a video, a photo folder, a transforms.json or a COLMAP model folder"
        )
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "video", path
        if path.suffix.lower() == ".json":
            return "transforms", path
        raise UserInputError(
            f"{path}: unsupported input file; pass a video ({', '.join(VIDEO_SUFFIXES)}), "
            "a transforms.json, a photo folder or a COLMAP model folder"
        )
    if (path / "transforms.json").is_file():
        return "transforms", path / "transforms.json"
    for model in (path, path / "sparse" / "0", path / "sparse"):
        if model.is_dir() and is_model_dir(model):
            return "colmap", model
    return "photos", path


def _rectify(posed: PosedImages, out_dir: Path, max_size: int) -> PosedImages:
    """Undistort (OpenCV k1 k2 p1 p2) and/or downscale images into `out_dir`; returns pinhole
    PosedImages. Images already pinhole and small enough are left where they are."""
    big = max_size > 0 and bool(np.any(np.maximum(posed.widths, posed.heights) > max_size))
    if posed.distortion is None and not big:
        return _copy_images(posed, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, Ks, ws, hs = [], [], [], []
    for i in tqdm(range(len(posed)), desc="rectifying images", unit="image", leave=False, disable=None):
        src = Path(posed.image_paths[i])
        image = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if image is None:
            raise UserInputError(f"{src}: not a readable image; remove it from the capture or re-save it")
        h, w = image.shape[:2]
        sx, sy = w / posed.widths[i], h / posed.heights[i]  # the file may differ from the stated size
        K = posed.Ks[i] * np.array([[sx], [sy], [1.0]])
        if posed.distortion is not None and np.any(posed.distortion[i] != 0):
            # OpenCV puts pixel centres at integers, COLMAP/nerfstudio at +0.5: shift in and out.
            shift = np.array([[1.0, 0, -0.5], [0, 1.0, -0.5], [0, 0, 1.0]])
            dist = posed.distortion[i]
            newK, _ = cv2.getOptimalNewCameraMatrix(shift @ K, dist, (w, h), 0.0, (w, h))
            maps = cv2.initUndistortRectifyMap(shift @ K, dist, None, newK, (w, h), cv2.CV_32FC1)
            image = cv2.remap(image, *maps, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            K = np.linalg.inv(shift) @ newK
        s = min(1.0, max_size / max(w, h)) if max_size > 0 else 1.0
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        if (nw, nh) != (w, h):
            image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
            K = K * np.array([[nw / w], [nh / h], [1.0]])
        dst = out_dir / f"{src.stem}.png"  # keep the name: --scale-from refers to images by it
        if dst in paths:
            dst = out_dir / f"{i:05d}_{src.stem}.png"
        with atomic_path(dst) as tmp:
            tmp.write_bytes(cv2.imencode(".png", image)[1].tobytes())
        paths.append(dst)
        Ks.append(K)
        ws.append(nw)
        hs.append(nh)
    return PosedImages(
        paths,
        posed.cam_to_world,
        np.stack(Ks),
        np.array(ws),
        np.array(hs),
        posed.points,
        posed.points_rgb,
        None,
        list(posed.dropped),
    )


MIN_POSED_POINTS = 50
"""Posed captures (transforms.json, COLMAP) with fewer sparse points than this get a random start."""
RANDOM_INIT_POINTS = 5000
"""Points of that random start."""


def random_points_in_view(posed: PosedImages, count: int, seed: int = 0) -> PosedImages:
    """`posed` with `count` points added where the cameras look: each on the ray of a random pixel of a
    random image, at a depth uniform between 5% and 150% of the cameras' extent (the largest distance
    of a camera from their centre; 1 when they all stand in one place), coloured by that pixel. Poses
    alone say nothing about where surfaces are; points every view could see are a start the
    optimisation can move and prune (what 3DGS and splatfacto do with a random cube, aimed at what
    was filmed)."""
    import dataclasses

    rng = np.random.default_rng(seed)
    centres = posed.cam_to_world[:, :3, 3]
    extent = float(np.linalg.norm(centres - centres.mean(0), axis=1).max()) if len(centres) else 0.0
    extent = extent if extent > 1e-9 else 1.0
    cams = rng.integers(0, len(posed), count)
    pts, cols = np.zeros((count, 3)), np.zeros((count, 3), np.uint8)
    for i in np.unique(cams):
        sel = np.flatnonzero(cams == i)
        w, h = int(posed.widths[i]), int(posed.heights[i])
        u, v = rng.uniform(0, w, len(sel)), rng.uniform(0, h, len(sel))
        rays = np.stack([u, v, np.ones_like(u)], 1) @ np.linalg.inv(posed.Ks[i]).T
        depth = rng.uniform(0.05, 1.5, len(sel)) * extent
        c2w = posed.cam_to_world[i]
        pts[sel] = (rays * depth[:, None]) @ c2w[:3, :3].T + c2w[:3, 3]
        image = cv2.imread(str(posed.image_paths[i]), cv2.IMREAD_COLOR)
        if image is not None:
            ys = np.clip((v * image.shape[0] / h).astype(int), 0, image.shape[0] - 1)
            xs = np.clip((u * image.shape[1] / w).astype(int), 0, image.shape[1] - 1)
            cols[sel] = image[ys, xs, ::-1]
        else:
            cols[sel] = 128
    return dataclasses.replace(
        posed, points=np.concatenate([posed.points, pts]), points_rgb=np.concatenate([posed.points_rgb, cols])
    )


def _copy_images(posed: PosedImages, out_dir: Path) -> PosedImages:
    """Copies of the images in `out_dir` (names kept: --scale-from refers to them), so the Scene stands
    alone: its transforms.json never points back at the input by a relative path."""
    import dataclasses
    import shutil

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, p in enumerate(posed.image_paths):
        src = Path(p)
        dst = out_dir / src.name
        if dst in paths:
            dst = out_dir / f"{i:05d}_{src.name}"
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        paths.append(dst)
    return dataclasses.replace(posed, image_paths=paths)


def ingest(
    input_path: str | Path, work_dir: str | Path, cfg: IngestConfig | None = None
) -> tuple[PosedImages, Normalization, dict[str, Any]]:
    """Capture → normalised PosedImages, its Normalization and an info dict (also written as
    work_dir/ingest.json beside work_dir/transforms.json and sparse_pc.ply)."""
    cfg = cfg or IngestConfig()
    input_path, work_dir = Path(input_path), Path(work_dir)
    kind, source = detect_input(input_path)
    work_dir.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"input": str(input_path), "kind": kind}
    t0 = time.perf_counter()
    LOG.info("ingest: %s input %s", kind, source)

    if kind in ("video", "photos"):
        images = work_dir / "images"
        if kind == "video":
            paths, frames = extract_frames(source, images, cfg.num_frames, cfg.max_size)
            info["source_frames"] = frames
        else:
            paths = import_images(list_images(source), images, cfg.max_size)
        matcher = cfg.matcher if cfg.matcher != "auto" else "sequential" if kind == "video" else "exhaustive"
        opts = SfMOptions(
            matcher=matcher,
            mapper=cfg.mapper,
            single_camera=kind == "video",
            camera_model=cfg.camera_model,
            max_image_size=cfg.sfm_max_size,
            max_features=cfg.max_features,
            seed=cfg.seed,
        )
        posed, report = run_sfm(images, work_dir / "sfm", [p.name for p in paths], opts)
        info.update(
            num_input_images=report.num_images,
            num_registered=report.num_registered,
            dropped=report.dropped,
            mapper=report.mapper,
            mean_reprojection_error=report.mean_reprojection_error,
            sfm_seconds=report.seconds,
        )
    else:
        posed = read_transforms(source) if kind == "transforms" else read_colmap_model(source, cfg.image_dir)
        posed = _rectify(posed, work_dir / "images_rectified", cfg.max_size)
        info.update(
            num_input_images=len(posed) + len(posed.dropped), num_registered=len(posed), dropped=list(posed.dropped)
        )
    if len(posed) < 3:
        raise UserInputError(f"{input_path}: only {len(posed)} posed image(s); at least 3 are needed")

    norm = normalize(posed, cfg.up)
    posed_n = posed.transformed(norm.matrix)
    if kind in ("transforms", "colmap") and len(posed_n.points) < MIN_POSED_POINTS:
        # Poses without a point cloud (the common instant-ngp dataset): start from points in view.
        LOG.warning(
            "%s: %d sparse points with the poses (no ply_file_path, or an empty one); initialising %d random "
            "points in the cameras' views, as 3DGS and splatfacto do without SfM points",
            source,
            len(posed_n.points),
            RANDOM_INIT_POINTS,
        )
        info["point_init"] = "random"
        posed_n = random_points_in_view(posed_n, RANDOM_INIT_POINTS, cfg.seed)
    if cfg.scale_from:
        norm = apply_scale_from(norm, posed_n, cfg.scale_from)
    write_transforms(posed_n, work_dir, applied_transform=norm.matrix)
    info.update(num_points=len(posed_n.points), normalization=norm.to_dict(), seconds=time.perf_counter() - t0)
    write_json(work_dir / "ingest.json", info)
    LOG.info("ingest: %d posed images, %d points, %.1f s", len(posed_n), len(posed_n.points), info["seconds"])
    return posed_n, norm, info
