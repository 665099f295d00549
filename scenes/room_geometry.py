"""The solids a synthetic room is made of (axis-aligned boxes, vertical cylinders) and their
textured faces: each face maps surface points to texture coordinates in metres, normals and
area-uniform samples, and looks its albedo up in a baked texture (scenes.textures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scenes.textures import bake_texture, bilinear


@dataclass(frozen=True)
class Box:
    """A solid axis-aligned box."""

    lo: tuple[float, float, float]
    """Minimum corner (x, y, z) in metres."""
    hi: tuple[float, float, float]
    """Maximum corner (x, y, z) in metres."""
    material: str
    """Texture name: one of `MATERIALS`."""


@dataclass(frozen=True)
class Cylinder:
    """A solid vertical cylinder (with flat caps)."""

    center: tuple[float, float]
    """Axis position (x, y) in metres."""
    radius: float
    """Radius in metres."""
    z0: float
    """Bottom height in metres."""
    z1: float
    """Top height in metres."""
    material: str
    """Texture name: one of `MATERIALS`."""


class Surface:
    """One textured face: maps hit points to texture coordinates (metres) and normals."""

    area: float
    material: str
    seed: int
    size: tuple[float, float]
    tpm: float

    def uv(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def normal(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def sample_texture(self, p: np.ndarray) -> np.ndarray:
        """Albedo [M,3] at surface points [M,3]; the texture is baked on first use (cached)."""
        tex = bake_texture(self.material, self.seed, *self.size, self.tpm)
        u, v = self.uv(p)
        return bilinear(tex, u * self.tpm - 0.5, v * self.tpm - 0.5)


class Plane(Surface):
    def __init__(
        self,
        axis: int,
        coord: float,
        normal_sign: float,
        lo: np.ndarray,
        hi: np.ndarray,
        material: str,
        seed: int,
        tpm: float,
    ):
        self.axis, self.coord, self.sign = axis, coord, normal_sign
        self.ua, self.va = [(1, 2), (0, 2), (0, 1)][axis]
        self.lo, self.hi = lo, hi
        self.size = (float(hi[self.ua] - lo[self.ua]), float(hi[self.va] - lo[self.va]))
        self.area = self.size[0] * self.size[1]
        self.material, self.seed, self.tpm = material, seed, tpm

    @classmethod
    def for_face(cls, lo, hi, axis, side, inward, material, seed, tpm) -> Plane:
        sign = (1.0 if side == 0 else -1.0) * (1.0 if inward else -1.0)
        return cls(axis, float((lo, hi)[side][axis]), sign, lo, hi, material, seed, tpm)

    def uv(self, p):
        return p[:, self.ua] - self.lo[self.ua], p[:, self.va] - self.lo[self.va]

    def normal(self, p):
        n = np.zeros((len(p), 3))
        n[:, self.axis] = self.sign
        return n

    def sample(self, rng, n):
        p = np.empty((n, 3))
        p[:, self.axis] = self.coord
        p[:, self.ua] = rng.uniform(self.lo[self.ua], self.hi[self.ua], n)
        p[:, self.va] = rng.uniform(self.lo[self.va], self.hi[self.va], n)
        return p


class Disc(Plane):
    """A cylinder cap: a horizontal plane restricted to a disc."""

    @classmethod
    def for_cap(cls, lo, hi, side, cyl: Cylinder, seed, tpm) -> Disc:
        cap = cls(2, float((lo, hi)[side][2]), -1.0 if side == 0 else 1.0, lo, hi, "wood", seed, tpm)
        cap.cyl = cyl
        cap.area = math.pi * cyl.radius**2
        return cap

    def sample(self, rng, n):
        r = self.cyl.radius * np.sqrt(rng.uniform(0, 1, n))
        a = rng.uniform(0, 2 * np.pi, n)
        return np.stack(
            [self.cyl.center[0] + r * np.cos(a), self.cyl.center[1] + r * np.sin(a), np.full(n, self.coord)], 1
        )


class CylinderSide(Surface):
    def __init__(self, cyl: Cylinder, seed: int, tpm: float):
        self.cyl = cyl
        self.size = (2 * math.pi * cyl.radius, cyl.z1 - cyl.z0)
        self.area = self.size[0] * self.size[1]
        self.material, self.seed, self.tpm = cyl.material, seed, tpm

    def uv(self, p):
        ang = np.arctan2(p[:, 1] - self.cyl.center[1], p[:, 0] - self.cyl.center[0]) + np.pi
        return ang * self.cyl.radius, p[:, 2] - self.cyl.z0

    def normal(self, p):
        n = np.zeros((len(p), 3))
        n[:, 0], n[:, 1] = p[:, 0] - self.cyl.center[0], p[:, 1] - self.cyl.center[1]
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    def sample(self, rng, n):
        a = rng.uniform(0, 2 * np.pi, n)
        c = self.cyl
        return np.stack(
            [c.center[0] + c.radius * np.cos(a), c.center[1] + c.radius * np.sin(a), rng.uniform(c.z0, c.z1, n)], 1
        )
