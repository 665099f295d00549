"""Camera poses from images: structure-from-motion with pycolmap, in process, on the CPU.

SIFT features → sequential (video) or exhaustive (unordered photos) matching → incremental
mapping, then global mapping (GLOMAP) when incremental leaves images unregistered; global's model
replaces incremental's only when it registers clearly more images. Incremental goes first because
it is accurate when it succeeds and cheap when it fails; global rescues sparse photo sets where
incremental finds no initial pair, but on videos it can register every frame with its camera
centres far off while its track filtering keeps the reprojection error low (BENCHMARKS.md,
*Structure from motion*, has the measurements).
Distorted cameras are undistorted into the work directory so the result is pinhole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pycolmap

from scenes.capture import list_images
from scenes.colmap_io import PINHOLE_MODELS, quiet_colmap, reconstruction_to_posed, undistort_model
from scenes.normalize import umeyama_sim3
from scenes.posed import PosedImages
from wmcore.errors import UserInputError

LOG = logging.getLogger(__name__)


@dataclass
class SfMOptions:
    """Structure-from-motion settings."""

    matcher: Literal["exhaustive", "sequential"] = "exhaustive"
    """exhaustive: every pair (unordered photos); sequential: neighbours in name order plus key
    frames (video)."""
    mapper: Literal["auto", "global", "incremental"] = "auto"
    """auto: incremental, then global if images are left unregistered; global's model is kept
    only if it registers more than `global_margin` times as many images."""
    global_margin: float = 1.1
    """auto mapper: how many times more images global must register to be preferred."""
    max_disagreement: float = 0.1
    """auto mapper: global's model replaces incremental's only if, after the best similarity
    transform, it puts the cameras both registered within this fraction of their spread (RMS) of
    where incremental has them; otherwise it is taken for a degenerate solution."""
    single_camera: bool = False
    """One shared camera for all images (video frames); otherwise COLMAP groups by EXIF/size."""
    camera_model: str = "SIMPLE_RADIAL"
    """COLMAP camera model to estimate; distorted models are undistorted afterwards."""
    max_image_size: int = 1024
    """Longest side at which SIFT features are extracted (keypoints are in full-size pixels)."""
    max_features: int = 4096
    """Most SIFT features per image; fewer is faster to match."""
    peak_threshold: float = 0.0067
    """SIFT contrast threshold (COLMAP's default 0.0067); lower finds more features on smooth,
    low-texture surfaces."""
    sequential_overlap: int = 10
    """Sequential matcher: how many following frames each frame is matched with."""
    keyframes: int = 10
    """Sequential matcher: every frame is also matched with this many evenly spaced key frames,
    which ties distant parts of the video together (loop closure without a vocabulary tree)."""
    seed: int = 0
    """Random seed of the two-view verification's RANSAC and of the mappers. A seed (>= 0) makes the
    model repeatable, at the price of extracting, matching and mapping on one thread (with several
    threads COLMAP numbers the images in the order their features finish, its verifiers draw from
    per-thread generators and its bundle adjustment sums in another order, so the poses and points
    change from run to run; the cost is in BENCHMARKS.md); -1 uses every core with a time-based seed."""


@dataclass
class SfMReport:
    """What structure-from-motion did, for logs and the ingest info."""

    num_images: int
    """Images given to SfM."""
    num_registered: int
    """Images with a pose in the result."""
    dropped: list[str]
    """Names of the images without a pose."""
    mapper: str
    """Which mapper's model was kept: incremental or global."""
    mean_reprojection_error: float
    """Mean reprojection error of the kept model in pixels (before undistortion)."""
    num_points: int
    """Sparse 3D points."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage."""


def sequential_pairs(names: list[str], overlap: int, keyframes: int) -> list[tuple[str, str]]:
    """Image pairs for an ordered sequence: each frame with its next `overlap` frames and with
    `keyframes` evenly spaced key frames.

    An explicit pair list, because pycolmap's own match_sequential drifted (focal length and camera
    centres) on our rendered videos where the same neighbour window matched from a pair list did
    not (BENCHMARKS.md, *Structure from motion*).
    """
    n = len(names)
    pairs = {(i, j) for i in range(n) for j in range(i + 1, min(n, i + overlap + 1))}
    if keyframes > 0:
        stride = max(1, -(-n // keyframes))
        pairs |= {(min(i, k), max(i, k)) for k in range(0, n, stride) for i in range(n) if i != k}
    return [(names[i], names[j]) for i, j in sorted(pairs)]


def _largest(recs: dict[int, pycolmap.Reconstruction]) -> pycolmap.Reconstruction | None:
    return max(recs.values(), key=lambda r: r.num_reg_images(), default=None)


def camera_centres(rec: pycolmap.Reconstruction) -> dict[str, np.ndarray]:
    """Camera centre [3] of every registered image, by image name."""
    return {rec.image(i).name: np.asarray(rec.image(i).projection_center(), np.float64) for i in rec.reg_image_ids()}


def centre_disagreement(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> float | None:
    """RMS distance between the two models' centres of the images both have, after the similarity
    transform that best maps `other`'s onto `reference`'s, as a fraction of the RMS spread of
    `reference`'s about their mean; None when fewer than 4 images are shared or they do not spread."""
    shared = sorted(reference.keys() & other.keys())
    if len(shared) < 4:
        return None
    ref = np.stack([reference[k] for k in shared])
    oth = np.stack([other[k] for k in shared])
    spread = float(np.sqrt(((ref - ref.mean(0)) ** 2).sum(1).mean()))
    if spread == 0.0 or not np.isfinite(spread):
        return None
    T = umeyama_sim3(oth, ref)
    moved = oth @ T[:3, :3].T + T[:3, 3]
    return float(np.sqrt(((moved - ref) ** 2).sum(1).mean())) / spread


def _map(db: Path, image_dir: Path, out: Path, mapper: str, seed: int) -> pycolmap.Reconstruction | None:
    out.mkdir(parents=True, exist_ok=True)
    if mapper == "global":
        opts = pycolmap.GlobalPipelineOptions()
        opts.random_seed = seed
        opts.num_threads = 1 if seed >= 0 else -1
        recs = pycolmap.global_mapping(db, image_dir, out, opts)
    else:
        opts = pycolmap.IncrementalPipelineOptions()
        opts.random_seed = seed
        opts.num_threads = 1 if seed >= 0 else -1
        recs = pycolmap.incremental_mapping(db, image_dir, out, opts)
    return _largest(recs)


def run_sfm(
    image_dir: str | Path, work_dir: str | Path, image_names: list[str] | None = None, opts: SfMOptions | None = None
) -> tuple[PosedImages, SfMReport]:
    """Estimate camera poses and sparse points for the images in `image_dir`.

    Writes the COLMAP database, the chosen model (`work_dir/sparse/0`) and, for distorted
    cameras, the undistorted images (`work_dir/undistorted/images`) under `work_dir`.
    Raises UserInputError when no model with at least 3 images can be built.
    """
    with quiet_colmap():
        return _run_sfm(image_dir, work_dir, image_names, opts)


def _run_sfm(
    image_dir: str | Path, work_dir: str | Path, image_names: list[str] | None, opts: SfMOptions | None
) -> tuple[PosedImages, SfMReport]:
    opts = opts or SfMOptions()
    image_dir, work_dir = Path(image_dir), Path(work_dir)
    names = image_names or [p.name for p in list_images(image_dir)]
    work_dir.mkdir(parents=True, exist_ok=True)
    db = work_dir / "database.db"
    db.unlink(missing_ok=True)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = opts.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.use_gpu = False
    extraction.max_image_size = opts.max_image_size
    extraction.sift.max_num_features = opts.max_features
    extraction.sift.peak_threshold = opts.peak_threshold
    if opts.seed >= 0:  # with several threads the images' ids follow which finishes first
        extraction.num_threads = 1
    mode = pycolmap.CameraMode.SINGLE if opts.single_camera else pycolmap.CameraMode.AUTO
    LOG.info("SfM: extracting SIFT features from %d images", len(names))
    pycolmap.extract_features(
        db,
        image_dir,
        image_names=names,
        camera_mode=mode,
        reader_options=reader,
        extraction_options=extraction,
        device=pycolmap.Device.cpu,
    )
    seconds["extract"] = time.perf_counter() - t

    t = time.perf_counter()
    LOG.info("SfM: %s matching", opts.matcher)
    matching = pycolmap.FeatureMatchingOptions()
    verification = pycolmap.TwoViewGeometryOptions()
    if opts.seed >= 0:
        matching.num_threads = 1
        verification.ransac.random_seed = opts.seed
    common = {"matching_options": matching, "verification_options": verification, "device": pycolmap.Device.cpu}
    if opts.matcher == "sequential":
        pairs = sequential_pairs(names, opts.sequential_overlap, opts.keyframes)
        pair_file = work_dir / "pairs.txt"
        pair_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))
        pairing = pycolmap.ImportedPairingOptions()
        pairing.match_list_path = pair_file
        pycolmap.match_image_pairs(db, pairing_options=pairing, **common)
    else:
        pycolmap.match_exhaustive(db, **common)
    seconds["match"] = time.perf_counter() - t

    order = {"auto": ["incremental", "global"], "global": ["global"], "incremental": ["incremental"]}
    best: pycolmap.Reconstruction | None = None
    best_mapper = ""
    for mapper in order[opts.mapper]:
        t = time.perf_counter()
        rec = _map(db, image_dir, work_dir / f"sparse_{mapper}", mapper, opts.seed)
        seconds[mapper] = time.perf_counter() - t
        n = 0 if rec is None else rec.num_reg_images()
        LOG.info("SfM: %s mapping registered %d of %d images (%.1f s)", mapper, n, len(names), seconds[mapper])
        margin = opts.global_margin if best_mapper == "incremental" else 1.0
        if rec is not None and (best is None or n > margin * best.num_reg_images()):
            gap = None if best is None else centre_disagreement(camera_centres(best), camera_centres(rec))
            if gap is not None and gap > opts.max_disagreement:
                LOG.warning(
                    "SfM: %s mapping registered more images, but puts the cameras it shares with %s "
                    "mapping's model %.0f%% of their spread away from them (degenerate); keeping %s",
                    mapper,
                    best_mapper,
                    100 * gap,
                    best_mapper,
                )
                continue
            best, best_mapper = rec, mapper
        if best is not None and best.num_reg_images() == len(names):
            break
    if best is None or best.num_reg_images() < 3:
        raise UserInputError(
            f"{image_dir}: structure-from-motion could not register the images "
            f"({0 if best is None else best.num_reg_images()} of {len(names)}); the photos need to overlap "
            "(the same surfaces seen from nearby viewpoints), be sharp and textured — retake them, or pass "
            "known poses as a transforms.json or COLMAP model"
        )

    model = work_dir / "sparse" / "0"
    model.mkdir(parents=True, exist_ok=True)
    best.write(model)
    registered = {best.image(i).name for i in best.reg_image_ids()}
    dropped = [n for n in names if n not in registered]
    if dropped:
        LOG.warning("SfM: %d image(s) not registered and dropped: %s", len(dropped), ", ".join(dropped))
    error = float(best.compute_mean_reprojection_error())

    t = time.perf_counter()
    distorted = any(c.model.name not in PINHOLE_MODELS for c in best.cameras.values())
    if distorted:
        posed = undistort_model(best, image_dir, work_dir / "undistorted")
        seconds["undistort"] = time.perf_counter() - t
    else:
        posed = reconstruction_to_posed(best, image_dir)
    posed.dropped = sorted(set(posed.dropped) | set(dropped))
    report = SfMReport(len(names), len(posed), posed.dropped, best_mapper, error, len(posed.points), seconds)
    LOG.info(
        "SfM: %d of %d registered with %s mapping, mean reprojection error %.2f px, %d points",
        report.num_registered,
        report.num_images,
        best_mapper,
        error,
        report.num_points,
    )
    return posed, report
