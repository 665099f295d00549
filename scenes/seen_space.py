"""What the training cameras saw: the surfaces their rays meet, and how many of them
looked across each top-down cell before hitting a surface.

Splat centres alone sample a surface sparsely where Gaussians are large, which leaves holes in a
voxelised wall; the depth maps cover every pixel. And where a capture never looked (behind
walls), nothing is known, so the collision geometry treats it as solid — an agent cannot leave
the captured place through a gap in its reconstruction. A wall that few views saw can be missing
from the reconstruction, and then those views' rays run on through it to a floater behind: the
cells behind it look seen, by those few views only. Counting the views per cell lets the caller
ask for agreement (cells seen by fewer than a threshold stay unknown, hence solid)."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from scenes.surface_depth import surface_depths


def trace_views(
    params: dict[str, torch.Tensor],
    cam_to_world: np.ndarray,
    Ks: np.ndarray,
    width: int,
    height: int,
    metric_scale: float,
    origin: np.ndarray,
    cell: float,
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(views [nx, ny] int32 over the grid (`origin`, `cell` in metres): how many cameras had a ray
    pass over each cell; surface points [M, 3] in metres where the rays ended).

    `cam_to_world` [N,4,4] and the splats are in the normalised frame; `Ks` [N,3,3] are for
    (width, height) renders; distances are turned into metres with `metric_scale`. A ray ends at
    its surface depth (`scenes.surface_depth`: where its transmittance falls to one half); rays
    whose alpha never gets there end nowhere and carve nothing."""
    views = np.zeros(shape, np.int32)
    surface = []
    ys, xs = np.mgrid[0:height, 0:width]
    pix = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, float)], -1).reshape(-1, 3)
    step = cell / 2
    depths, _ = surface_depths(params, cam_to_world, Ks, width, height)
    for i in range(len(cam_to_world)):
        depth = depths[i].reshape(-1) * metric_scale
        ok = np.isfinite(depth) & (depth > 0)
        if not ok.any():
            continue
        rays = (pix[ok] @ np.linalg.inv(Ks[i]).T) @ cam_to_world[i, :3, :3].T  # z-depth 1 → world offset
        reach = np.maximum(depth[ok] - cell, 0.0)  # stop short of the surface
        centre = cam_to_world[i, :3, 3] * metric_scale
        surface.append(centre[None] + rays * depth[ok, None])
        seen = np.zeros(shape, bool)
        _mark_cells(seen, centre[:2].copy(), np.ascontiguousarray(rays[:, :2]), reach, step, origin[:2].copy(), cell)
        views += seen
    return views, np.concatenate(surface) if surface else np.zeros((0, 3))


def mark_cells_reference(
    seen: np.ndarray,
    centre: np.ndarray,
    rays: np.ndarray,
    reach: np.ndarray,
    step: float,
    origin: np.ndarray,
    cell: float,
) -> None:
    """Set `seen` [nx,ny] True under every point t = 0, step, 2 step, ... (clamped to `reach` [R]) of the rays
    centre + t rays [R,2] (top-down, metres): every point at once, obviously correct and memory-hungry; the tests
    compare `_mark_cells` with it."""
    n = int(np.ceil(reach.max() / step)) + 1
    t = np.minimum(np.arange(n)[None, :] * step, reach[:, None])  # [R, n] metres of z-depth
    pts = centre[None, None, :] + rays[:, None, :] * t[..., None]
    ij = np.floor((pts.reshape(-1, 2) - origin) / cell).astype(np.int64)
    inside = (ij[:, 0] >= 0) & (ij[:, 1] >= 0) & (ij[:, 0] < seen.shape[0]) & (ij[:, 1] < seen.shape[1])
    seen[ij[inside, 0], ij[inside, 1]] = True


@njit(cache=True)
def _mark_cells(
    seen: np.ndarray,
    centre: np.ndarray,
    rays: np.ndarray,
    reach: np.ndarray,
    step: float,
    origin: np.ndarray,
    cell: float,
) -> None:  # pragma: no cover - compiled
    """`mark_cells_reference`, one ray and one point at a time (the same arithmetic, so the same cells), each ray
    stopping at its own reach, with no point array: a reconstruction's work after splat training takes 16-18 s
    with the example's 120 views, as numpy took with 80 (benchmarks/log/2026-12-07-looking-around-capture.md)."""
    nx, ny = seen.shape
    for r in range(rays.shape[0]):
        k = 0
        while True:
            t = min(k * step, reach[r])
            i = int(np.floor((centre[0] + rays[r, 0] * t - origin[0]) / cell))
            j = int(np.floor((centre[1] + rays[r, 1] * t - origin[1]) / cell))
            if i >= 0 and j >= 0 and i < nx and j < ny:
                seen[i, j] = True
            if k * step >= reach[r]:
                break
            k += 1
