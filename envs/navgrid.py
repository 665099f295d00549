"""A 2D navigation grid over a Scene's floor: where the body fits, what is reachable from where,
and geodesic distances — for sampling start/goal states and shaping rewards."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra


class NavGrid:
    """Cells of `cell` metres over the scene bounds; a cell is free when a body of `radius`
    standing there collides with nothing at any of `z_levels`, with `margin_cells` to spare."""

    def __init__(
        self,
        is_free_fn,
        bounds_min: np.ndarray,
        bounds_max: np.ndarray,
        z_levels: np.ndarray,
        radius: float,
        cell: float,
        margin_cells: int = 0,
    ):
        self.origin = np.asarray(bounds_min[:2], np.float64)
        self.cell = float(cell)
        nx = max(1, int(np.ceil((bounds_max[0] - bounds_min[0]) / cell)))
        ny = max(1, int(np.ceil((bounds_max[1] - bounds_min[1]) / cell)))
        xs = self.origin[0] + (np.arange(nx) + 0.5) * cell
        ys = self.origin[1] + (np.arange(ny) + 0.5) * cell
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        free = np.ones((nx, ny), bool)
        for z in z_levels:
            pts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], 1)
            free &= is_free_fn(pts, radius).reshape(nx, ny)
        if margin_cells > 0:
            free = ndimage.binary_erosion(free, np.ones((3, 3), bool), iterations=margin_cells, border_value=0)
        self.free = free
        self.labels, self.num_components = ndimage.label(free, structure=np.ones((3, 3)))
        self._graph = _grid_graph(free, cell)

    @property
    def shape(self) -> tuple[int, int]:
        return self.free.shape  # type: ignore[return-value]

    def cell_of(self, xy: np.ndarray) -> tuple[int, int]:
        """The cell holding point xy (clipped to the grid); scalar maths, as it runs every step."""
        i = math.floor((float(xy[0]) - self.origin[0]) / self.cell)
        j = math.floor((float(xy[1]) - self.origin[1]) / self.cell)
        return min(max(i, 0), self.shape[0] - 1), min(max(j, 0), self.shape[1] - 1)

    def centre_of(self, ij: tuple[int, int]) -> np.ndarray:
        return self.origin + (np.asarray(ij, np.float64) + 0.5) * self.cell

    def largest_component(self) -> int:
        if self.num_components == 0:
            raise RuntimeError(
                "the scene has no free floor space for the body; lower body_radius or "
                "camera_height, or check the scene's floor and occupancy"
            )
        sizes = ndimage.sum(self.free, self.labels, index=np.arange(1, self.num_components + 1))
        return int(np.argmax(sizes)) + 1

    def sample_free(self, rng: np.random.Generator, component: int | None = None) -> np.ndarray:
        """A random point (metres) in a free cell, in `component` (default: the largest)."""
        comp = component or self.largest_component()
        cells = np.argwhere(self.labels == comp)
        ij = cells[rng.integers(len(cells))]
        return self.centre_of((int(ij[0]), int(ij[1]))) + rng.uniform(-0.25, 0.25, 2) * self.cell

    def geodesic_from(self, xy: np.ndarray) -> np.ndarray:
        """Shortest free-space distance (metres) from `xy` to every cell; inf when unreachable."""
        i, j = self.cell_of(xy)
        d = dijkstra(self._graph, indices=i * self.shape[1] + j)
        return d.reshape(self.shape)


def _grid_graph(free: np.ndarray, cell: float) -> csr_matrix:
    """8-connected graph over free cells with metric edge lengths."""
    nx, ny = free.shape
    idx = np.arange(nx * ny).reshape(nx, ny)
    rows, cols, w = [], [], []
    for di, dj in ((1, 0), (0, 1), (1, 1), (1, -1)):
        a = free[max(0, -di) : nx - max(0, di), max(0, -dj) : ny - max(0, dj)]
        b = free[max(0, di) : nx - max(0, -di) or None, max(0, dj) : ny - max(0, -dj) or None]
        ok = a & b
        ia = idx[max(0, -di) : nx - max(0, di), max(0, -dj) : ny - max(0, dj)][ok]
        ib = idx[max(0, di) : nx - max(0, -di) or None, max(0, dj) : ny - max(0, -dj) or None][ok]
        length = cell * np.hypot(di, dj)
        rows += [ia, ib]
        cols += [ib, ia]
        w += [np.full(len(ia), length), np.full(len(ia), length)]
    return csr_matrix((np.concatenate(w), (np.concatenate(rows), np.concatenate(cols))), shape=(nx * ny,) * 2)
