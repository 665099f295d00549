"""Preview renders of a reconstruction: held-out views beside their photos, and an orbit video."""

from __future__ import annotations

import math

import numpy as np


def side_by_side_grid(pairs: list[tuple[np.ndarray, np.ndarray]], cols: int = 4, pad: int = 2) -> np.ndarray:
    """A grid of (render | photo) tiles, uint8 [H,W,3]."""
    tiles = [np.concatenate([r, np.full((r.shape[0], pad, 3), 255, np.uint8), p], 1) for r, p in pairs]
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    cols = min(cols, len(tiles))
    grid = np.full((rows * (h + pad), cols * (w + pad), 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = t
    return grid


def orbit_poses(cam_to_world: np.ndarray, n: int = 60) -> np.ndarray:
    """Camera-to-world poses [n,4,4] (OpenCV, z up) for a preview: a circle around the centre
    looking inward when the capture looked inward (an object), else a turn in place (a room)."""
    centres = cam_to_world[:, :3, 3]
    centre = centres.mean(0)
    forward = cam_to_world[:, :3, 2]
    to_centre = centre - centres
    inward = np.mean(np.sum(forward * to_centre, 1) / (np.linalg.norm(to_centre, axis=1) + 1e-9)) > 0.3
    radius = float(np.median(np.linalg.norm((centres - centre)[:, :2], axis=1)))
    z = float(np.median(centres[:, 2]))
    poses = []
    for t in np.linspace(0, 2 * np.pi, n, endpoint=False):
        if inward:
            eye = np.array([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t), z])
            fwd = np.array([centre[0], centre[1], centre[2]]) - eye
        else:
            eye = np.array([centre[0] + 0.25 * radius * np.cos(t), centre[1] + 0.25 * radius * np.sin(t), z])
            fwd = np.array([np.cos(t), np.sin(t), -0.1])
        poses.append(look_at(eye, eye + fwd))
    return np.stack(poses)


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world looking from `eye` at `target`, world z up. Scalar maths: environments
    call this every step, and numpy's cross/norm on 3-vectors cost more than the arithmetic."""
    ex, ey, ez = (float(v) for v in eye)
    zx, zy, zz = float(target[0]) - ex, float(target[1]) - ey, float(target[2]) - ez
    n = math.sqrt(zx * zx + zy * zy + zz * zz)
    zx, zy, zz = zx / n, zy / n, zz / n
    xx, xy, xz = zy, -zx, 0.0  # z x up
    if math.hypot(xx, xy) < 1e-6:  # looking straight up or down: z x (1, 0, 0)
        xx, xy, xz = 0.0, zz, -zy
    n = math.sqrt(xx * xx + xy * xy + xz * xz)
    xx, xy, xz = xx / n, xy / n, xz / n
    yx, yy, yz = zy * xz - zz * xy, zz * xx - zx * xz, zx * xy - zy * xx  # z x x
    return np.array([[xx, yx, zx, ex], [xy, yy, zy, ey], [xz, yz, zz, ez], [0.0, 0.0, 0.0, 1.0]])
