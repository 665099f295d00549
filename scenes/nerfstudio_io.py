"""nerfstudio / instant-ngp transforms.json ↔ PosedImages.

The files use the OpenGL camera convention (x right, y up, z backward): the camera-to-world
matrix differs from OpenCV's by negating its y and z columns; the world frame is unchanged.
We write what `ns-process-data` writes (global or per-frame fl_x/fl_y/cx/cy/w/h, camera_model,
k1/k2/p1/p2, file_path relative to the json, `ply_file_path` to a binary x,y,z,red,green,blue
point cloud in the same frame as the poses, `applied_transform` from the original world), so
`ns-train` reads it unchanged. Reading also accepts instant-ngp/Blender files (camera_angle_x,
file paths without extension, `aabb_scale`, `scale`/`offset`, which describe ngp's own box and
are ignored).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scenes.ply import read_points_ply, write_points_ply
from scenes.posed import PosedImages
from wmcore.atomic import write_json
from wmcore.errors import UserInputError

LOG = logging.getLogger(__name__)

GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplying a camera-to-world by this flips its camera y and z axes (its own inverse)."""
_SUPPORTED_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")
_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
_DIST = ("k1", "k2", "p1", "p2")


def write_transforms(
    posed: PosedImages,
    out_dir: str | os.PathLike,
    applied_transform: np.ndarray | None = None,
    ply_name: str = "sparse_pc.ply",
) -> Path:
    """Write `out_dir/transforms.json` (and `out_dir/<ply_name>` when there are points), atomically.

    applied_transform: the 4x4 similarity from the original world (e.g. COLMAP's) to the frame of
    `posed`; written as nerfstudio's 3x4 `applied_transform` plus `applied_scale` when it scales.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = len(posed)
    intr = np.stack(
        [posed.Ks[:, 0, 0], posed.Ks[:, 1, 1], posed.Ks[:, 0, 2], posed.Ks[:, 1, 2], posed.widths, posed.heights], 1
    ).astype(np.float64)
    dist = posed.distortion if posed.distortion is not None else np.zeros((n, 4))
    shared = bool(np.all(intr == intr[:1]) and np.all(dist == dist[:1]))
    meta: dict[str, Any] = {"camera_model": "OPENCV" if posed.distortion is not None else "PINHOLE"}

    def camera(i: int) -> dict[str, Any]:
        d: dict[str, Any] = {k: float(v) for k, v in zip(_INTRINSICS[:4], intr[i, :4])}
        d.update(w=int(posed.widths[i]), h=int(posed.heights[i]))
        if posed.distortion is not None:
            d.update({k: float(v) for k, v in zip(_DIST, dist[i])})
        return d

    if shared:
        meta.update(camera(0))
    frames = []
    for i in range(n):
        rel = os.path.relpath(Path(posed.image_paths[i]).resolve(), out_dir.resolve())
        frame: dict[str, Any] = {
            "file_path": Path(rel).as_posix(),
            "transform_matrix": (posed.cam_to_world[i] @ GL_FROM_CV).tolist(),
        }
        if not shared:
            frame.update(camera(i))
        frames.append(frame)
    meta["frames"] = frames
    if applied_transform is not None:
        s = float(np.cbrt(np.linalg.det(applied_transform[:3, :3])))
        meta["applied_transform"] = (applied_transform[:3, :4] / s).tolist()
        if abs(s - 1.0) > 1e-12:
            meta["applied_scale"] = s
    if len(posed.points):
        write_points_ply(out_dir / ply_name, posed.points, posed.points_rgb)
        meta["ply_file_path"] = ply_name
    return write_json(out_dir / "transforms.json", meta)


def _number(src: dict[str, Any], key: str, path: Path, where: str) -> float:
    try:
        value = float(src[key])
    except (TypeError, ValueError) as e:
        raise UserInputError(f"{path}: {where} key {key!r} is not a number ({src[key]!r}); fix the file") from e
    if not np.isfinite(value):
        raise UserInputError(f"{path}: {where} key {key!r} is not finite; fix the file")
    return value


def _lookup(frame: dict[str, Any], meta: dict[str, Any], key: str, path: Path, where: str) -> float | None:
    """A per-frame value, else the top-level one (nerfstudio's precedence), else None."""
    if key in frame:
        return _number(frame, key, path, where)
    return _number(meta, key, path, "top-level") if key in meta else None


def _resolve_image(data_dir: Path, file_path: str) -> Path | None:
    p = data_dir / file_path
    if p.is_file():
        return p
    if not p.suffix:  # Blender/ngp files often omit the extension
        for ext in (".png", ".jpg", ".jpeg", ".PNG", ".JPG"):
            if p.with_suffix(ext).is_file():
                return p.with_suffix(ext)
    return None


def read_transforms(path: str | os.PathLike) -> PosedImages:
    """Read a nerfstudio or instant-ngp transforms.json (a file, or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    if not path.is_file():
        raise UserInputError(f"{path}: file not found (expected a nerfstudio transforms.json)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: not valid JSON ({e}); fix or regenerate the file") from e
    if not isinstance(meta, dict):
        raise UserInputError(f"{path}: expected a JSON object with a 'frames' list")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise UserInputError(f"{path}: key 'frames' is missing or empty; it must list the images and their poses")
    data_dir = path.parent

    paths, c2ws, Ks, ws, hs, dists, dropped = [], [], [], [], [], [], []
    for i, frame in enumerate(frames):
        where = f"frame {i}"
        if not isinstance(frame, dict):
            raise UserInputError(f"{path}: {where} is not a JSON object")
        for key in ("file_path", "transform_matrix"):
            if key not in frame:
                raise UserInputError(f"{path}: {where} is missing key {key!r}")
        model = str(frame.get("camera_model", meta.get("camera_model", "PINHOLE")))
        if model not in _SUPPORTED_MODELS:
            raise UserInputError(
                f"{path}: camera_model {model!r} is not supported (use one of "
                f"{', '.join(_SUPPORTED_MODELS)}; undistort fisheye/360 images first)"
            )
        try:
            m = np.asarray(frame["transform_matrix"], np.float64)
        except (TypeError, ValueError) as e:
            raise UserInputError(f"{path}: {where} key 'transform_matrix' is not a 4x4 matrix") from e
        if m.shape not in ((4, 4), (3, 4)) or not np.isfinite(m).all():
            raise UserInputError(
                f"{path}: {where} key 'transform_matrix' must be a finite 4x4 (or 3x4) matrix, got shape {m.shape}"
            )
        image = _resolve_image(data_dir, str(frame["file_path"]))
        if image is None:
            LOG.warning("%s: %s image %s not found, skipping it", path, where, data_dir / str(frame["file_path"]))
            dropped.append(str(frame["file_path"]))
            continue

        def get(key: str, frame: dict[str, Any] = frame, where: str = where) -> float | None:
            return _lookup(frame, meta, key, path, where)

        w, h = get("w"), get("h")
        if w is None or h is None:
            img = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise UserInputError(f"{image}: not a readable image (and {path} gives no 'w'/'h')")
            h, w = float(img.shape[0]), float(img.shape[1])
        fx = get("fl_x")
        if fx is None:
            angle = get("camera_angle_x")
            if angle is None:
                raise UserInputError(
                    f"{path}: {where} has no focal length: key 'fl_x' (or 'camera_angle_x') "
                    "missing at the top level and in the frame"
                )
            fx = 0.5 * w / np.tan(0.5 * angle)
        fy = get("fl_y")
        if fy is None:
            angle_y = get("camera_angle_y")
            fy = fx if angle_y is None else 0.5 * h / np.tan(0.5 * angle_y)
        cx, cy = get("cx"), get("cy")
        K = np.array([[fx, 0.0, w / 2 if cx is None else cx], [0.0, fy, h / 2 if cy is None else cy], [0.0, 0.0, 1.0]])
        extra = [k for k in ("k3", "k4") if (get(k) or 0.0) != 0.0]
        if extra:
            LOG.warning("%s: %s distortion %s ignored (only k1, k2, p1, p2 are used)", path, where, extra)
        c2w = np.eye(4)
        c2w[: m.shape[0]] = m
        paths.append(image)
        c2ws.append(c2w @ GL_FROM_CV)
        Ks.append(K)
        ws.append(int(round(w)))
        hs.append(int(round(h)))
        dists.append([get(k) or 0.0 for k in _DIST])
    if not paths:
        raise UserInputError(
            f"{path}: none of the {len(frames)} images listed under 'frames' exist; "
            "file_path is relative to the json's folder"
        )
    points, rgb = np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
    if "ply_file_path" in meta:
        ply = data_dir / str(meta["ply_file_path"])
        if ply.is_file():
            points, rgb = read_points_ply(ply)
        else:
            LOG.warning("%s: ply_file_path %s not found, continuing without sparse points", path, ply)
    return PosedImages.from_frames(paths, c2ws, Ks, ws, hs, points, rgb, dists, dropped)
