"""What the training cameras saw: the surfaces their rays meet, how many of them looked across each
top-down cell before hitting a surface, and, voxel by voxel, how many saw through it and how many
ended in it.

Splat centres alone sample a surface sparsely where Gaussians are large, which leaves holes in a
voxelised wall; the depth maps cover every pixel. And where a capture never looked (behind
walls), nothing is known, so the collision geometry treats it as solid — an agent cannot leave
the captured place through a gap in its reconstruction. A wall that few views saw can be missing
from the reconstruction, and then those views' rays run on through it to a floater behind: the
cells behind it look seen, by those few views only. Counting the views per cell lets the caller
ask for agreement (cells seen by fewer than a threshold stay unknown, hence solid).

The other way round, a floater or a stray depth hit in the middle of a room is an obstacle that is
not there; the views whose rays ran on through that voxel to a surface behind it say so. Counting
the views that saw through each voxel against those whose surface lay in it (the hits and misses of
occupancy mapping, as in OctoMap) lets the caller clear such voxels."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numba import njit

from scenes.surface_depth import surface_depths


class SeenSpace(NamedTuple):
    """What `trace_views` returns (counts are of views, each view counted once per cell or voxel)."""

    views: np.ndarray
    """[nx, ny] int32: views with a ray passing over each top-down cell before its surface."""
    surface: np.ndarray
    """[M, 3] metres: where the rays ended (their surface depth)."""
    crossed: np.ndarray
    """[nx, ny, nz] uint16: views with a ray passing through each voxel, a voxel short of its surface."""
    ended: np.ndarray
    """[nx, ny, nz] uint16: views with a ray ending in each voxel."""


def trace_views(
    params: dict[str, torch.Tensor],
    cam_to_world: np.ndarray,
    Ks: np.ndarray,
    width: int,
    height: int,
    metric_scale: float,
    origin: np.ndarray,
    cell: float,
    shape: tuple[int, int, int],
) -> SeenSpace:
    """Trace the training views through the grid (`origin` [3], `cell` and `shape` [nx, ny, nz] in metres).

    `cam_to_world` [N,4,4] and the splats are in the normalised frame; `Ks` [N,3,3] are for
    (width, height) renders; distances are turned into metres with `metric_scale`. A ray ends at
    its surface depth (`scenes.surface_depth`: where its transmittance falls to one half); rays
    whose alpha never gets there end nowhere and carve nothing."""
    nx, ny, nz = (int(s) for s in shape)
    views = np.zeros((nx, ny), np.int32)
    crossed = np.zeros((nx, ny, nz), np.uint16)
    ended = np.zeros((nx, ny, nz), np.uint16)
    stamps = (np.zeros((nx, ny), np.int32), np.zeros((nx, ny, nz), np.int32), np.zeros((nx, ny, nz), np.int32))
    surface = []
    ys, xs = np.mgrid[0:height, 0:width]
    pix = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, float)], -1).reshape(-1, 3)
    step = cell / 2
    origin = np.ascontiguousarray(origin, np.float64)
    depths, _ = surface_depths(params, cam_to_world, Ks, width, height)
    for i in range(len(cam_to_world)):
        depth = depths[i].reshape(-1) * metric_scale
        ok = np.isfinite(depth) & (depth > 0)
        if not ok.any():
            continue
        rays = (pix[ok] @ np.linalg.inv(Ks[i]).T) @ cam_to_world[i, :3, :3].T  # z-depth 1 → world offset
        centre = cam_to_world[i, :3, 3] * metric_scale
        surface.append(centre[None] + rays * depth[ok, None])
        _mark_view(
            views, crossed, ended, *stamps, i + 1, centre, np.ascontiguousarray(rays), depth[ok], step, origin, cell
        )
    return SeenSpace(views, np.concatenate(surface) if surface else np.zeros((0, 3)), crossed, ended)


def mark_view_reference(
    seen: np.ndarray,
    crossed: np.ndarray,
    ended: np.ndarray,
    centre: np.ndarray,
    rays: np.ndarray,
    depth: np.ndarray,
    step: float,
    origin: np.ndarray,
    cell: float,
) -> None:
    """One view's rays centre + t rays [R,3] (metres, t in z-depth), each ending at `depth` [R]: set `seen`
    [nx,ny] True under every point t = 0, step, 2 step, ... clamped to a voxel short of the surface
    (depth - cell), `crossed` [nx,ny,nz] True in the voxels of those points, and `ended` True in the voxel of
    the surface point. Every point at once: obviously correct and memory-hungry; the tests compare
    `_mark_view` with it."""
    reach = np.maximum(depth - cell, 0.0)
    n = int(np.ceil(reach.max() / step)) + 1
    t = np.minimum(np.arange(n)[None, :] * step, reach[:, None])  # [R, n]
    pts = (centre[None, None, :] + rays[:, None, :] * t[..., None]).reshape(-1, 3)
    ijk = np.floor((pts - origin) / cell).astype(np.int64)
    inside = np.all(ijk[:, :2] >= 0, 1) & (ijk[:, 0] < seen.shape[0]) & (ijk[:, 1] < seen.shape[1])
    seen[ijk[inside, 0], ijk[inside, 1]] = True
    inside &= (ijk[:, 2] >= 0) & (ijk[:, 2] < crossed.shape[2])
    crossed[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]] = True
    end = np.floor((centre + rays * depth[:, None] - origin) / cell).astype(np.int64)
    inside = np.all((end >= 0) & (end < np.array(ended.shape)), 1)
    ended[end[inside, 0], end[inside, 1], end[inside, 2]] = True


@njit(cache=True)
def _mark_view(
    views: np.ndarray,
    crossed: np.ndarray,
    ended: np.ndarray,
    seen_stamp: np.ndarray,
    crossed_stamp: np.ndarray,
    ended_stamp: np.ndarray,
    view: int,
    centre: np.ndarray,
    rays: np.ndarray,
    depth: np.ndarray,
    step: float,
    origin: np.ndarray,
    cell: float,
) -> None:  # pragma: no cover - compiled
    """`mark_view_reference` one ray and one point at a time (the same arithmetic, so the same cells), adding one
    to `views`, `crossed` and `ended` where this view (numbered `view` > 0) marks a cell or voxel for the first
    time: the stamps remember which view counted last, so no array is cleared between views. Building the collision
    geometry of a 120-view twin of the example takes 15-19 s, the surface depths most of it; these counts added
    0.6-0.8 s in one comparison and nothing shown in another (benchmarks/collision_build_time.py; BENCHMARKS.md,
    *The twin's collision geometry*)."""
    nx, ny, nz = crossed.shape
    for r in range(rays.shape[0]):
        reach = max(depth[r] - cell, 0.0)
        k = 0
        while True:
            t = min(k * step, reach)
            i = int(np.floor((centre[0] + rays[r, 0] * t - origin[0]) / cell))
            j = int(np.floor((centre[1] + rays[r, 1] * t - origin[1]) / cell))
            if i >= 0 and j >= 0 and i < nx and j < ny:
                if seen_stamp[i, j] != view:
                    seen_stamp[i, j] = view
                    views[i, j] += 1
                m = int(np.floor((centre[2] + rays[r, 2] * t - origin[2]) / cell))
                if m >= 0 and m < nz and crossed_stamp[i, j, m] != view:
                    crossed_stamp[i, j, m] = view
                    crossed[i, j, m] += 1
            if k * step >= reach:
                break
            k += 1
        i = int(np.floor((centre[0] + rays[r, 0] * depth[r] - origin[0]) / cell))
        j = int(np.floor((centre[1] + rays[r, 1] * depth[r] - origin[1]) / cell))
        m = int(np.floor((centre[2] + rays[r, 2] * depth[r] - origin[2]) / cell))
        if i >= 0 and j >= 0 and m >= 0 and i < nx and j < ny and m < nz and ended_stamp[i, j, m] != view:
            ended_stamp[i, j, m] = view
            ended[i, j, m] += 1
