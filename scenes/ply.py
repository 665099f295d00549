"""Standard 3DGS .ply files: the format of the original 3DGS code, gsplat's exporter and
nerfstudio's `ns-export gaussian-splat`, readable by common splat viewers.

Properties: x y z nx ny nz f_dc_0..2 f_rest_0..(3*(K-1)-1) opacity scale_0..2 rot_0..3, where
opacity is a logit, scales are logs, rot is a wxyz quaternion and f_rest is stored channel-major
(all coefficients of red, then green, then blue), as the original code writes it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from wmcore.atomic import atomic_path
from wmcore.errors import UserInputError

_SH_COUNTS = {1: 0, 4: 1, 9: 2, 16: 3}


def write_splat_ply(path: str | os.PathLike, params: dict[str, np.ndarray]) -> Path:
    """Write splat parameters (means [N,3], quats [N,4], scales [N,3] log, opacities [N] logit,
    sh0 [N,1,3], shN [N,K-1,3]) as a standard 3DGS .ply, atomically."""
    means = np.asarray(params["means"], np.float32)
    n = len(means)
    sh0 = np.asarray(params["sh0"], np.float32).reshape(n, 3)
    shn = np.asarray(params["shN"], np.float32).reshape(n, -1, 3)
    rest = shn.transpose(0, 2, 1).reshape(n, -1)  # channel-major
    cols: list[tuple[str, np.ndarray]] = [("x", means[:, 0]), ("y", means[:, 1]), ("z", means[:, 2])]
    cols += [(f"n{a}", np.zeros(n, np.float32)) for a in "xyz"]
    cols += [(f"f_dc_{i}", sh0[:, i]) for i in range(3)]
    cols += [(f"f_rest_{i}", rest[:, i]) for i in range(rest.shape[1])]
    cols.append(("opacity", np.asarray(params["opacities"], np.float32).reshape(n)))
    scales = np.asarray(params["scales"], np.float32)
    quats = np.asarray(params["quats"], np.float32)
    cols += [(f"scale_{i}", scales[:, i]) for i in range(3)]
    cols += [(f"rot_{i}", quats[:, i]) for i in range(4)]
    arr = np.empty(n, dtype=[(name, "f4") for name, _ in cols])
    for name, v in cols:
        arr[name] = v
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(arr, "vertex")], text=False).write(str(tmp))
    return Path(path)


def read_splat_ply(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a 3DGS .ply into the same parameter dict `write_splat_ply` takes."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found (expected a 3DGS .ply of Gaussian splats)")
    try:
        ply = PlyData.read(str(path))
        v = ply["vertex"].data
    except Exception as e:  # plyfile raises many types on malformed input
        raise UserInputError(f"{path}: not a readable .ply file ({e}); re-export it from your splat tool") from e
    names = set(v.dtype.names or ())
    required = (
        {"x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"}
        | {f"scale_{i}" for i in range(3)}
        | {f"rot_{i}" for i in range(4)}
    )
    missing = sorted(required - names)
    if missing:
        raise UserInputError(
            f"{path}: not a Gaussian-splat .ply, missing properties {missing} (a plain point cloud? "
            "export splats with `ns-export gaussian-splat`, gsplat's export or the 3DGS code)"
        )
    n = len(v)
    n_rest = len([k for k in names if k.startswith("f_rest_")])
    k = n_rest // 3 + 1
    if n_rest % 3 or k not in _SH_COUNTS:
        raise UserInputError(f"{path}: {n_rest} f_rest_* properties do not match an SH degree 0..3")
    rest = (
        np.stack([v[f"f_rest_{i}"] for i in range(n_rest)], 1).astype(np.float32)
        if n_rest
        else np.zeros((n, 0), np.float32)
    )
    params = {
        "means": np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32),
        "quats": np.stack([v[f"rot_{i}"] for i in range(4)], 1).astype(np.float32),
        "scales": np.stack([v[f"scale_{i}"] for i in range(3)], 1).astype(np.float32),
        "opacities": np.asarray(v["opacity"], np.float32),
        "sh0": np.stack([v[f"f_dc_{i}"] for i in range(3)], 1).astype(np.float32)[:, None, :],
        "shN": rest.reshape(n, 3, k - 1).transpose(0, 2, 1).copy(),
    }
    for key, arr in params.items():
        if not np.isfinite(arr).all():
            raise UserInputError(f"{path}: property group '{key}' holds NaN or inf values; the file is corrupt")
    return params


def sh_degree_of(params: dict[str, np.ndarray]) -> int:
    return _SH_COUNTS[params["shN"].shape[1] + 1]


def write_points_ply(path: str | os.PathLike, xyz: np.ndarray, rgb: np.ndarray) -> Path:
    """A coloured point cloud (x y z red green blue), as nerfstudio's `ply_file_path` expects."""
    arr = np.empty(
        len(xyz), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    )
    for i, a in enumerate("xyz"):
        arr[a] = xyz[:, i]
    for i, a in enumerate(("red", "green", "blue")):
        arr[a] = rgb[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(arr, "vertex")], text=False).write(str(tmp))
    return Path(path)


def read_points_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a coloured point cloud; colours default to grey when absent."""
    path = Path(path)
    try:
        v = PlyData.read(str(path))["vertex"].data
        xyz = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
    except Exception as e:
        raise UserInputError(f"{path}: not a readable point-cloud .ply ({e})") from e
    names = set(v.dtype.names or ())
    if {"red", "green", "blue"} <= names:
        rgb = np.stack([v["red"], v["green"], v["blue"]], 1).astype(np.uint8)
    else:
        rgb = np.full((len(xyz), 3), 128, np.uint8)
    return xyz, rgb
