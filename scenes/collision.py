"""Collision geometry of a Scene: a metric occupancy grid (world z up, metres) with a distance
field, so that agents can ask "is a body sphere here free?" and "how far is the first obstacle
along this ray?" quickly, whatever the scene representation was.

Obstacles are where reconstructed points are (Gaussian means weighted by opacity, SfM points),
kept only where a voxel's neighbourhood has enough weight (isolated floaters are dropped), plus
everything below the floor plane and everything outside the grid's bounds (the walls of the
world). Small enclosed free pockets (the hollow inside of a box whose faces are covered by points)
are filled, so the inside of an object counts as solid.

On disk (a directory): `occupancy.safetensors` (the grid, bit-packed) and `occupancy.json`
(origin, voxel size, shape, floor height).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError, UserValueError
from wmcore.tensors import load_tensors, save_tensors

FORMAT = "worldmodel-occupancy"
TENSOR_FILE = "occupancy.safetensors"
META_FILE = "occupancy.json"
MAX_VOXELS = 200_000_000


class OccupancyGrid:
    """Boolean voxels `occupied[ix, iy, iz]`; voxel (0,0,0) spans `origin` .. `origin + voxel_size`."""

    def __init__(self, occupied: np.ndarray, origin: np.ndarray, voxel_size: float, floor_z: float):
        occupied = np.asarray(occupied, bool)
        if occupied.ndim != 3 or min(occupied.shape) < 1:
            raise ValueError(f"occupied must be a non-empty [nx,ny,nz] array, got shape {occupied.shape}")
        self.occupied = occupied
        self.origin = np.asarray(origin, np.float64).reshape(3)
        self.voxel_size = float(voxel_size)
        self.floor_z = float(floor_z)
        # Distance (metres) from each voxel centre to the nearest occupied voxel centre; the
        # world outside the grid is occupied, hence the padding.
        padded = np.pad(~occupied, 1, constant_values=False)
        self.distance = (ndimage.distance_transform_edt(padded)[1:-1, 1:-1, 1:-1] * self.voxel_size).astype(np.float32)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        points: np.ndarray,
        weights: np.ndarray | None,
        bounds_min: np.ndarray,
        bounds_max: np.ndarray,
        voxel_size: float,
        floor_z: float,
        min_weight: float = 1.5,
        dilate: int = 1,
        max_cavity: float = 2.0,
        seen_xy: np.ndarray | None = None,
        floor_band: float = 0.0,
        see_through: np.ndarray | None = None,
    ) -> OccupancyGrid:
        """Voxelise `points` [N,3] (metres) with `weights` [N] (opacity; 1 when None).

        A voxel holding points is an obstacle when the total weight in its 3x3x3 neighbourhood
        reaches `min_weight` (so one stray Gaussian is not a wall); obstacles are then grown by
        `dilate` voxels (26-neighbourhood) to close gaps between sparse points, so they are inflated
        by up to about (dilate + 1) voxels; voxels whose centre is below
        `floor_z` are solid; enclosed free regions smaller than `max_cavity` cubic metres, other
        than the largest free region, are filled (object interiors). With `seen_xy` [nx, ny] (see
        `scenes.seen_space`), columns no camera looked across are solid: unknown is not free. With
        `see_through` [nx, ny, nz] (bool), the points in those voxels are not obstacles: the views saw
        through them to a surface behind (a floater, a stray depth hit).

        Points less than `floor_band` metres above `floor_z` are floor, not obstacles: a reconstructed
        floor is a band of Gaussians and of depth rendered at grazing angles, not a plane, and counted
        as obstacles it left a ground body almost nowhere to stand on the bundled example
        (BENCHMARKS.md, *SceneEnv*). The cost: obstacles lower than the band are not collided with.
        """
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        w = np.ones(len(pts)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        lo = np.asarray(bounds_min, np.float64).reshape(3)
        hi = np.asarray(bounds_max, np.float64).reshape(3)
        if len(w) != len(pts):
            raise UserInputError(f"weights has {len(w)} entries for {len(pts)} points; give one per point")
        if not (voxel_size > 0 and math.isfinite(voxel_size)):
            raise UserInputError(f"voxel_size={voxel_size!r}: must be a positive number of metres")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
            raise UserInputError(f"bounds {lo.tolist()} .. {hi.tolist()}: max must exceed min on every axis")
        shape = np.maximum(np.ceil((hi - lo) / voxel_size).astype(np.int64), 1)
        if int(np.prod(shape)) > MAX_VOXELS:
            raise UserInputError(
                f"voxel_size={voxel_size} m gives a {shape.tolist()} grid (over "
                f"{MAX_VOXELS:,} voxels); use a larger voxel size"
            )
        keep = np.all(np.isfinite(pts), 1) & (pts[:, 2] >= floor_z + floor_band)
        idx = np.floor((pts[keep] - lo) / voxel_size).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < shape), 1)
        flat = np.ravel_multi_index(idx[inside].T, shape)
        mass = np.bincount(flat, weights=w[keep][inside], minlength=int(np.prod(shape))).reshape(shape)
        support = ndimage.uniform_filter(mass, size=3, mode="constant") * 27
        occ = (mass > 0) & (support >= min_weight - 1e-9)
        if see_through is not None:
            if tuple(see_through.shape) != tuple(shape):
                raise ValueError(f"see_through has shape {tuple(see_through.shape)}, the grid is {tuple(shape)}")
            occ &= ~np.asarray(see_through, bool)
        if dilate > 0 and occ.any():
            occ = ndimage.binary_dilation(occ, np.ones((3, 3, 3), bool), iterations=dilate)
        zc = lo[2] + (np.arange(shape[2]) + 0.5) * voxel_size
        occ[:, :, zc < floor_z] = True
        if seen_xy is not None:
            if tuple(seen_xy.shape) != tuple(shape[:2]):
                raise ValueError(f"seen_xy has shape {tuple(seen_xy.shape)}, the grid is {tuple(shape[:2])}")
            occ[~np.asarray(seen_xy, bool)] = True
        if max_cavity > 0:
            labels, n = ndimage.label(~occ)
            if n > 1:
                sizes = np.bincount(labels.ravel())[1:] * voxel_size**3
                small = np.flatnonzero(sizes < max_cavity)
                small = small[small != sizes.argmax()] + 1  # the largest free region always stays
                occ |= np.isin(labels, small)
        return cls(occ, lo, voxel_size, floor_z)

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write the directory `path` (occupancy.safetensors + occupancy.json), atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.mkdir(parents=True)
            bits = np.packbits(self.occupied.ravel())
            save_tensors(tmp / TENSOR_FILE, {"occupied_bits": torch.from_numpy(bits)}, metadata={"format": FORMAT})
            write_json(
                tmp / META_FILE,
                {
                    "format": FORMAT,
                    "version": 1,
                    "units": "metres, world z up",
                    "origin": self.origin.tolist(),
                    "voxel_size": self.voxel_size,
                    "shape": list(self.occupied.shape),
                    "floor_z": self.floor_z,
                    "layout": "occupied_bits = numpy.packbits(occupied[ix, iy, iz].ravel()), C order",
                    "occupied_fraction": float(self.occupied.mean()),
                },
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> OccupancyGrid:
        """Read a directory written by `save`; missing or corrupt files raise UserInputError."""
        path = Path(path)
        meta_path = path / META_FILE
        remedy = "re-run reconstruct to rebuild the scene's collision geometry"
        if not meta_path.is_file():
            raise UserInputError(f"{meta_path}: not found (expected occupancy written by worldmodel); {remedy}")
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r} is not {FORMAT!r}")
            shape = tuple(int(s) for s in meta["shape"])
            origin, voxel, floor_z = meta["origin"], float(meta["voxel_size"]), float(meta["floor_z"])
            if len(shape) != 3 or len(origin) != 3 or min(shape) < 1 or voxel <= 0:
                raise ValueError(f"bad shape {shape}, origin {origin} or voxel size {voxel}")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserInputError(f"{meta_path}: malformed occupancy description ({e}); {remedy}") from e
        tensors = load_tensors(path / TENSOR_FILE)
        bits = tensors.get("occupied_bits")
        n = int(np.prod(shape))
        if bits is None or bits.dtype != torch.uint8 or bits.numel() != (n + 7) // 8:
            raise UserInputError(f"{path / TENSOR_FILE}: does not hold a {list(shape)} occupancy grid; {remedy}")
        occ = np.unpackbits(bits.numpy(), count=n).astype(bool).reshape(shape)
        return cls(occ, np.asarray(origin, np.float64), voxel, floor_z)

    # ------------------------------------------------------------------ queries (metres)
    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space min and max corners of the grid."""
        return self.origin.copy(), self.origin + np.array(self.occupied.shape) * self.voxel_size

    def _index(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.floor((p - self.origin) / self.voxel_size).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < self.occupied.shape), 1)
        return np.where(inside[:, None], idx, 0), inside

    def _blocked(self, p: np.ndarray) -> np.ndarray:
        idx, inside = self._index(p)
        return ~inside | self.occupied[idx[:, 0], idx[:, 1], idx[:, 2]]

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """Approximate distance [N] in metres from each point [N,3] to the nearest obstacle
        (interpolated distance field; accurate to about half a voxel); 0 inside obstacles and
        outside the grid."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        return np.where(self._blocked(p), 0.0, self._field(p))

    def _field(self, p: np.ndarray) -> np.ndarray:
        """The interpolated distance field at points p [N,3], blocked or not."""
        coords = ((p - self.origin) / self.voxel_size - 0.5).T
        d = ndimage.map_coordinates(self.distance, coords, order=1, mode="nearest") - self.voxel_size / 2
        return np.maximum(d, 0.0)

    def is_free(self, points: np.ndarray, radius: float = 0.0) -> np.ndarray:
        """True [N] where a body sphere of `radius` metres at each point [N,3] touches no obstacle
        (radius 0: the point's voxel is free and inside the grid)."""
        p = check_points(points, "is_free points")
        if not (math.isfinite(radius) and radius >= 0):
            raise UserValueError(f"is_free radius {radius!r}: give a finite radius in metres, 0 or more")
        free = ~self._blocked(p)
        if radius > 0:
            free &= self._field(p) > radius
        return free

    def raycast(self, origins: np.ndarray, dirs: np.ndarray, max_dist: float) -> np.ndarray:
        """Distance [N] in metres along each ray to the first obstacle or the grid's edge
        (`max_dist` when none is nearer; 0 for origins inside an obstacle).

        Sphere tracing on the distance field, never stepping past the next voxel face near
        obstacles (so no voxel is skipped), then bisection to the voxel face.
        """
        o = check_points(origins, "raycast origins")
        d = check_points(dirs, "raycast directions")
        if not (math.isfinite(max_dist) and max_dist > 0):
            raise UserValueError(f"raycast max_dist {max_dist!r}: give a finite distance above 0")
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        if np.any(norm == 0) or len(d) != len(o):
            raise UserValueError("raycast needs one non-zero direction per origin")
        d = d / norm
        v = self.voxel_size
        t = np.zeros(len(o))
        hit = self._blocked(o)
        active = ~hit
        prev = np.zeros(len(o))
        while active.any():
            ia = np.flatnonzero(active)
            p = o[ia] + d[ia] * t[ia, None]
            idx, _ = self._index(p)
            # A step that cannot reach any obstacle (the distance field's lower bound), and at
            # least to the next voxel face, so that no voxel along the ray is skipped.
            lower = self.distance[idx[:, 0], idx[:, 1], idx[:, 2]] - math.sqrt(3) * v
            da = d[ia]
            face = self.origin + (idx + (da > 0)) * v
            with np.errstate(divide="ignore", invalid="ignore"):
                to_face = np.where(da != 0, (face - p) / da, np.inf).min(1)
            prev[ia] = t[ia]
            t[ia] += np.maximum(lower, np.maximum(to_face, 0) + 1e-6 * v)
            over = t[ia] >= max_dist
            t[ia[over]] = max_dist
            blocked = self._blocked(o[ia] + d[ia] * t[ia, None])
            hit[ia] = blocked
            active[ia] = ~blocked & ~over
        # Refine hits: the boundary lies between prev (free) and t (blocked).
        ih = np.flatnonzero(hit & (t > 0))
        a, b = prev[ih], t[ih]
        for _ in range(8):
            m = (a + b) / 2
            blocked = self._blocked(o[ih] + d[ih] * m[:, None])
            a, b = np.where(blocked, a, m), np.where(blocked, m, b)
        t[ih] = b
        return np.minimum(t, max_dist)

    def top_down(self, z_min: float, z_max: float) -> np.ndarray:
        """A 2D map bool [ny, nx] (row = y index, column = x index; row 0 at the grid's minimum y):
        True where any voxel with its centre between z_min and z_max (metres) is occupied."""
        zc = self.origin[2] + (np.arange(self.occupied.shape[2]) + 0.5) * self.voxel_size
        sel = (zc >= z_min) & (zc <= z_max)
        if not sel.any():
            raise UserInputError(
                f"z range {z_min}..{z_max} m holds no voxel centre of the grid "
                f"(z from {zc[0]:.3f} to {zc[-1]:.3f}); widen it"
            )
        return self.occupied[:, :, sel].any(2).T


def check_points(points: Any, what: str) -> np.ndarray:
    """Points or directions as [N,3] float64: one [3] gains the batch axis; another shape, NaN or inf is
    refused (a (3, 2) array is not two points, and a NaN ray would silently report no obstacle)."""
    try:
        p = np.asarray(points, np.float64)
    except (TypeError, ValueError) as e:
        raise UserValueError(f"{what}: not numbers ({e}); give an array [N, 3] in metres") from e
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 3:
        raise UserValueError(f"{what}: shape {tuple(np.shape(points))}; give an array [N, 3] (or one [3])")
    if not np.isfinite(p).all():
        raise UserValueError(f"{what} hold NaN or inf; give finite coordinates")
    return p
