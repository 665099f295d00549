"""COLMAP models (cameras/images/points3D as .bin or .txt) → PosedImages, read with pycolmap.

COLMAP's cam_from_world is world-to-camera in the OpenCV convention, so camera-to-world is its
inverse with no axis flips. Intrinsics are kept in COLMAP's pixel convention (the image's top-left
corner at (0, 0)), which is also nerfstudio's and gsplat's.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pycolmap

from scenes.posed import PosedImages
from wmcore.errors import UserInputError

LOG = logging.getLogger(__name__)

PINHOLE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")
# COLMAP camera model → indices of (k1, k2, p1, p2) in its params (None: that coefficient is 0).
_DISTORTION_IDX: dict[str, tuple[int | None, int | None, int | None, int | None]] = {
    "SIMPLE_PINHOLE": (None, None, None, None),
    "PINHOLE": (None, None, None, None),
    "SIMPLE_RADIAL": (3, None, None, None),
    "RADIAL": (3, 4, None, None),
    "OPENCV": (4, 5, 6, 7),
}


@contextlib.contextmanager
def quiet_colmap() -> Iterator[None]:
    """Silence COLMAP's per-image INFO logging (thousands of lines) while keeping its warnings."""
    old = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = max(old, 1)
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = old


def is_model_dir(path: Path) -> bool:
    """Whether `path` holds a COLMAP model (cameras + images, binary or text)."""
    return all((path / f"{name}.bin").is_file() or (path / f"{name}.txt").is_file() for name in ("cameras", "images"))


def load_reconstruction(model_dir: str | Path) -> pycolmap.Reconstruction:
    model_dir = Path(model_dir)
    if not model_dir.is_dir() or not is_model_dir(model_dir):
        raise UserInputError(
            f"{model_dir}: not a COLMAP model folder (expected cameras.bin/.txt, "
            "images.bin/.txt and points3D.bin/.txt, e.g. sparse/0)"
        )
    try:
        return pycolmap.Reconstruction(model_dir)
    except Exception as e:  # pycolmap raises RuntimeError/ValueError on corrupt files
        raise UserInputError(f"{model_dir}: COLMAP model could not be read ({e}); re-export it from COLMAP") from e


def find_image_dir(model_dir: Path) -> Path | None:
    """The usual places of a COLMAP project's images: <project>/images beside sparse/0."""
    for cand in (model_dir / "images", model_dir.parent / "images", model_dir.parent.parent / "images"):
        if cand.is_dir():
            return cand
    return None


def opencv_distortion(camera: pycolmap.Camera) -> np.ndarray:
    """(k1, k2, p1, p2) of a COLMAP camera; models OpenCV's 4-coefficient form cannot express
    raise UserInputError."""
    name = camera.model.name
    if name not in _DISTORTION_IDX:
        raise UserInputError(
            f"COLMAP camera model {name} is not supported (supported: {', '.join(_DISTORTION_IDX)}); "
            "undistort the images first (`colmap image_undistorter`) and pass the undistorted model"
        )
    params = np.asarray(camera.params, np.float64)
    return np.array([0.0 if i is None else params[i] for i in _DISTORTION_IDX[name]])


def reconstruction_to_posed(rec: pycolmap.Reconstruction, image_dir: Path) -> PosedImages:
    """Registered images of `rec` (sorted by name) with poses, pinhole K, distortion and points.

    Images whose file is missing under `image_dir` are skipped with a warning and listed in
    `dropped`.
    """
    paths, c2ws, Ks, ws, hs, dists, dropped = [], [], [], [], [], [], []
    for image in sorted(rec.images.values(), key=lambda im: im.name):
        if not image.has_pose:
            dropped.append(image.name)
            continue
        path = image_dir / image.name
        if not path.is_file():
            LOG.warning("%s: image file missing, skipping it", path)
            dropped.append(image.name)
            continue
        cam = image.camera
        w2c = np.eye(4)
        w2c[:3] = image.cam_from_world().matrix()
        paths.append(path)
        c2ws.append(np.linalg.inv(w2c))
        Ks.append(np.asarray(cam.calibration_matrix(), np.float64))
        ws.append(cam.width)
        hs.append(cam.height)
        dists.append(opencv_distortion(cam))
    if not paths:
        raise UserInputError(
            f"{image_dir}: none of the model's registered images were found there; "
            "pass the folder that holds the images the model was built from"
        )
    pts = rec.points3D
    xyz = np.array([p.xyz for p in pts.values()], np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in pts.values()], np.uint8).reshape(-1, 3)
    return PosedImages.from_frames(paths, c2ws, Ks, ws, hs, xyz, rgb, dists, dropped)


def read_colmap_model(model_dir: str | Path, image_dir: str | Path | None = None) -> PosedImages:
    """Read a COLMAP model folder; `image_dir` defaults to the project's images folder."""
    model_dir = Path(model_dir)
    rec = load_reconstruction(model_dir)
    if image_dir is None:
        image_dir = find_image_dir(model_dir)
        if image_dir is None:
            raise UserInputError(
                f"{model_dir}: cannot find the images of this COLMAP model (looked for "
                "images/ beside and above it); pass the image folder explicitly"
            )
    return reconstruction_to_posed(rec, Path(image_dir))


def undistort_model(rec: pycolmap.Reconstruction, image_dir: Path, out_dir: Path) -> PosedImages:
    """Undistort the registered images of `rec` into `out_dir/images` with COLMAP's undistorter
    (all valid pixels kept, no blank borders) and read back the pinhole model."""
    model = out_dir / "distorted_model"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.mkdir(parents=True)
    rec.write(model)
    with quiet_colmap():
        pycolmap.undistort_images(out_dir, model, image_dir, output_type="COLMAP")
    undist = pycolmap.Reconstruction(out_dir / "sparse")
    posed = reconstruction_to_posed(undist, out_dir / "images")
    posed.distortion = None
    return posed
