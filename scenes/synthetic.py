"""A procedural, textured room rendered by exact ray casting: the project's own example capture.

It exists so that SfM, splat training and collision geometry can be tested against ground truth
(true camera poses, true depth, true free space) without third-party data. Geometry is analytic
(the room's inner faces, axis-aligned boxes, vertical cylinders); textures are baked once per
face from a seed (value noise, bricks, tiles, wood grain, posters with random shapes) and sampled
bilinearly, so renders are deterministic, rich in SIFT features, yet smooth at the pixel level.

Conventions: world z up, metres; camera-to-world 4x4 in OpenCV convention (x right, y down,
z forward); pinhole K with pixel centres at half-integers (COLMAP/gsplat), so a centred principal
point is (width/2, height/2). Depth is z-depth along the optical axis.

The example capture is committed under `assets/example_room/` (small, and so that every
consumer sees the same bytes); `python -m scenes.synthetic OUT_DIR` regenerates it.
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "assets" / "example_room"
"""The committed example capture (regenerate with `python -m scenes.synthetic OUT_DIR`)."""

SPEC_FORMAT = "worldmodel-synthetic-room"
_EPS = 1e-6


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


# Room faces in order -x, +x, -y, +y, -z (floor), +z (ceiling).
_ROOM_MATERIALS = ("brick", "plaster", "plaster", "plaster", "tiles", "ceiling")


class SyntheticRoom:
    """A closed room with solid boxes and cylinders: renders RGB-D and answers exact geometry
    queries (clearance, free space, ray distances, surface samples)."""

    def __init__(self, room_min: tuple[float, float, float], room_max: tuple[float, float, float],
                 boxes: list[Box], cylinders: list[Cylinder], seed: int = 0,
                 light: tuple[float, float, float] = (-1.0, 0.8, 2.5), texels_per_m: float = 128.0):
        self.room_min = np.asarray(room_min, np.float64)
        self.room_max = np.asarray(room_max, np.float64)
        if np.any(self.room_max - self.room_min <= 0):
            raise UserInputError(f"room bounds {room_min} .. {room_max} are empty; max must exceed min")
        self.boxes = list(boxes)
        self.cylinders = list(cylinders)
        self.seed = int(seed)
        self.light = np.asarray(light, np.float64)
        self.texels_per_m = float(texels_per_m)
        for m in [b.material for b in self.boxes] + [c.material for c in self.cylinders]:
            if m not in MATERIALS:
                raise UserInputError(f"unknown material {m!r}; use one of {sorted(MATERIALS)}")
        self._prim_surfaces = self._make_surfaces()
        self._surfaces = [f for faces in self._prim_surfaces for f in faces]

    # ------------------------------------------------------------------ construction
    @classmethod
    def default(cls, seed: int = 0) -> SyntheticRoom:
        """The example room: 6 x 5 x 3 m, a pillar, a table, crates, a cabinet, a bench and a
        barrel. The layout is fixed (the camera path relies on it); `seed` sets the textures."""
        boxes = [
            # table: top, four legs, a small box on it
            Box((-2.7, 1.3, 0.72), (-1.5, 2.1, 0.77), "wood"),
            Box((-2.68, 1.32, 0.0), (-2.62, 1.38, 0.72), "wood"),
            Box((-1.58, 1.32, 0.0), (-1.52, 1.38, 0.72), "wood"),
            Box((-2.68, 2.02, 0.0), (-2.62, 2.08, 0.72), "wood"),
            Box((-1.58, 2.02, 0.0), (-1.52, 2.08, 0.72), "wood"),
            Box((-2.3, 1.5, 0.77), (-1.95, 1.8, 1.0), "painted"),
            # crates, one stacked
            Box((2.05, -2.3, 0.0), (2.65, -1.7, 0.6), "crate"),
            Box((2.12, -2.22, 0.6), (2.58, -1.76, 1.06), "crate"),
            Box((1.35, -2.4, 0.0), (1.85, -1.9, 0.5), "crate"),
            # cabinet against the +x wall, bench along the -y wall
            Box((2.55, 0.4, 0.0), (3.0, 1.6, 1.9), "wood"),
            Box((-1.0, -2.5, 0.0), (0.6, -2.1, 0.45), "wood"),
        ]
        cylinders = [
            Cylinder((0.2, 0.1), 0.22, 0.0, 3.0, "pillar"),
            Cylinder((-2.3, -1.8), 0.3, 0.0, 0.9, "painted"),
        ]
        return cls((-3.0, -2.5, 0.0), (3.0, 2.5, 3.0), boxes, cylinders, seed=seed)

    def to_spec(self) -> dict[str, Any]:
        """A JSON-able description of every primitive (written as `scene_spec.json`)."""
        return {
            "format": SPEC_FORMAT, "version": 1, "seed": self.seed,
            "units": "metres, world z up",
            "room": {"min": self.room_min.tolist(), "max": self.room_max.tolist(),
                     "face_order": ["-x", "+x", "-y", "+y", "-z (floor)", "+z (ceiling)"],
                     "materials": list(_ROOM_MATERIALS)},
            "boxes": [asdict(b) for b in self.boxes],
            "cylinders": [asdict(c) for c in self.cylinders],
            "light": {"position": self.light.tolist(), "ambient": _AMBIENT, "diffuse": _DIFFUSE},
            "texels_per_m": self.texels_per_m,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SyntheticRoom:
        """Rebuild a room from `to_spec()` output."""
        if spec.get("format") != SPEC_FORMAT:
            raise UserInputError(f"not a synthetic-room spec (format {spec.get('format')!r}, "
                                 f"expected {SPEC_FORMAT!r}); regenerate it with python -m scenes.synthetic")
        boxes = [Box(tuple(b["lo"]), tuple(b["hi"]), b["material"]) for b in spec["boxes"]]
        cyls = [Cylinder(tuple(c["center"]), c["radius"], c["z0"], c["z1"], c["material"])
                for c in spec["cylinders"]]
        return cls(tuple(spec["room"]["min"]), tuple(spec["room"]["max"]), boxes, cyls, spec["seed"],
                   tuple(spec["light"]["position"]), spec.get("texels_per_m", 128.0))

    @classmethod
    def load(cls, capture_dir: str | os.PathLike = EXAMPLE_DIR) -> SyntheticRoom:
        """The room described by `scene_spec.json` in a capture directory."""
        path = Path(capture_dir) / "scene_spec.json"
        try:
            spec = json.loads(path.read_text())
            return cls.from_spec(spec)
        except FileNotFoundError as e:
            raise UserInputError(f"{path}: not found; regenerate with python -m scenes.synthetic "
                                 f"{capture_dir}") from e
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserInputError(f"{path}: malformed scene spec ({e!r}); regenerate with "
                                 f"python -m scenes.synthetic {capture_dir}") from e

    @property
    def floor_z(self) -> float:
        """Height of the floor plane in metres."""
        return float(self.room_min[2])

    # ------------------------------------------------------------------ exact geometry
    def clearance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance [N] in metres from each point [N,3] to the nearest solid or room face:
        positive in free space, negative inside a solid or outside the room."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        d = np.minimum(p - self.room_min, self.room_max - p).min(1)
        for b in self.boxes:
            lo, hi = np.asarray(b.lo), np.asarray(b.hi)
            q = np.abs(p - (lo + hi) / 2) - (hi - lo) / 2
            sd = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0)
            d = np.minimum(d, sd)
        for c in self.cylinders:
            w = np.stack([np.hypot(p[:, 0] - c.center[0], p[:, 1] - c.center[1]) - c.radius,
                          np.abs(p[:, 2] - (c.z0 + c.z1) / 2) - (c.z1 - c.z0) / 2], 1)
            sd = np.linalg.norm(np.maximum(w, 0), axis=1) + np.minimum(w.max(1), 0)
            d = np.minimum(d, sd)
        return d

    def is_free(self, points: np.ndarray, radius: float = 0.0) -> np.ndarray:
        """True [N] where a sphere of `radius` metres at each point [N,3] touches no solid and
        stays inside the room."""
        return self.clearance(points) > radius

    def raycast(self, origins: np.ndarray, dirs: np.ndarray, max_dist: float = np.inf) -> np.ndarray:
        """Euclidean distance [N] along each ray to the first surface (capped at `max_dist`);
        0 for origins that are not in free space."""
        o = np.asarray(origins, np.float64).reshape(-1, 3)
        d = np.asarray(dirs, np.float64).reshape(-1, 3)
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
        t, _ = self._intersect(o, d)
        t = np.where(self.clearance(o) > 0, t, 0.0)
        return np.minimum(t, max_dist)

    def sample_surface(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` points [n,3] uniformly by area on every face of the room and its solids."""
        rng = np.random.default_rng(seed)
        areas = np.array([s.area for s in self._surfaces])
        which = rng.choice(len(areas), size=n, p=areas / areas.sum())
        out = np.empty((n, 3))
        for i in np.unique(which):
            m = which == i
            out[m] = self._surfaces[i].sample(rng, int(m.sum()))
        return out

    # ------------------------------------------------------------------ cameras
    @staticmethod
    def intrinsics(width: int, height: int, hfov_deg: float = 67.0) -> np.ndarray:
        """A centred pinhole K [3,3] with square pixels and the given horizontal field of view."""
        f = width / 2 / math.tan(math.radians(hfov_deg) / 2)
        return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)

    def camera_path(self, n: int, yaw_offset: float = 1.4) -> np.ndarray:
        """`n` camera-to-world poses [n,4,4] on a closed, smooth loop (an ellipse of 1.8 x 1.4 m
        around the pillar, counter-clockwise): height 1.25-1.55 m, slight downward pitch, heading
        `yaw_offset` radians left of the direction of travel (positive: inwards, across the room)
        and swinging +-20 degrees to look around. Measured with pycolmap: looking out at the
        nearby walls (too little depth range) or along the path (yaw_offset=1.0) left global
        mapping with collapsed camera centres on 16-frame subsets; 1.4 registers them all."""
        s = np.arange(n) / n * 2 * np.pi
        r = 1.0 + 0.06 * np.sin(3 * s)
        pos = np.stack([1.8 * r * np.cos(s), 1.4 * r * np.sin(s), 1.4 + 0.15 * np.sin(2 * s)], 1)
        yaw = np.arctan2(1.4 * np.cos(s), -1.8 * np.sin(s)) + yaw_offset + 0.35 * np.sin(2 * s + 0.5)
        pitch = -0.15 + 0.08 * np.sin(3 * s + 1.0)
        return _look_poses(pos, yaw, pitch)

    # ------------------------------------------------------------------ rendering
    def render(self, cam_to_world: np.ndarray, K: np.ndarray, width: int, height: int,
               supersample: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 [H,W,3] (anti-aliased by `supersample`^2 rays per pixel) and z-depth float32
        [H,W] in metres (one ray through each pixel centre)."""
        c2w = np.asarray(cam_to_world, np.float64)
        K = np.asarray(K, np.float64)
        if c2w.shape != (4, 4) or K.shape != (3, 3):
            raise ValueError(f"cam_to_world must be [4,4] and K [3,3]; got {c2w.shape} and {K.shape}")
        if self.clearance(c2w[None, :3, 3])[0] <= 0:
            raise UserInputError(f"camera position {c2w[:3, 3].tolist()} is inside a solid or outside "
                                 "the room; move it into free space")
        ss = int(supersample)
        offs = (np.arange(ss) + 0.5) / ss
        xs = (np.arange(width)[:, None] + offs[None, :]).reshape(-1)
        ys = (np.arange(height)[:, None] + offs[None, :]).reshape(-1)
        rgb = self._shade(c2w, K, xs, ys)  # [H*ss, W*ss, 3]
        rgb = rgb.reshape(height, ss, width, ss, 3).mean((1, 3))
        depth = self._depth(c2w, K, width, height)
        return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), depth.astype(np.float32)

    def _rays(self, c2w: np.ndarray, K: np.ndarray, xs: np.ndarray, ys: np.ndarray):
        """Origin [1,3] and float32 world directions [H*W,3] scaled so that the ray parameter is
        the camera z-depth, for pixel coordinates xs (columns) and ys (rows)."""
        Kinv = np.linalg.inv(K)
        X, Y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
        M = (c2w[:3, :3] @ Kinv).astype(np.float32)  # pixel (x, y, 1) -> world direction
        d = X.reshape(-1, 1) * M[:, 0] + Y.reshape(-1, 1) * M[:, 1] + M[:, 2]
        zc = (Kinv[2, 0] * X + Kinv[2, 1] * Y + Kinv[2, 2]).reshape(-1, 1).astype(np.float32)
        return c2w[None, :3, 3], d / zc, X.shape

    def _depth(self, c2w, K, width, height) -> np.ndarray:
        o, d, shape = self._rays(c2w, K, np.arange(width) + 0.5, np.arange(height) + 0.5)
        return self._intersect(o, d, self._in_view(c2w, K, width, height))[0].reshape(shape)

    def _in_view(self, c2w, K, width, height) -> np.ndarray:
        """Per primitive: False when its bounding box lies wholly outside one plane of the view
        frustum (so no ray of this camera can hit it)."""
        corners = []
        for b in self.boxes:
            corners.append(np.array(np.meshgrid(*zip(b.lo, b.hi), indexing="ij")).reshape(3, 8).T)
        for c in self.cylinders:
            lo = (c.center[0] - c.radius, c.center[1] - c.radius, c.z0)
            hi = (c.center[0] + c.radius, c.center[1] + c.radius, c.z1)
            corners.append(np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, 8).T)
        pts = np.stack(corners)  # [P,8,3]
        cam = (pts - c2w[:3, 3]) @ c2w[:3, :3]  # world -> camera (rotation transpose)
        x, y, z = cam[..., 0], cam[..., 1], cam[..., 2]
        x0, x1 = -K[0, 2] / K[0, 0], (width - K[0, 2]) / K[0, 0]
        y0, y1 = -K[1, 2] / K[1, 1], (height - K[1, 2]) / K[1, 1]
        outside = [z <= 0, x < x0 * z, x > x1 * z, y < y0 * z, y > y1 * z]
        culled = np.any([o.all(1) for o in outside], axis=0)
        return np.concatenate([[True], ~culled])

    def _shade(self, c2w, K, xs, ys) -> np.ndarray:
        o, d, shape = self._rays(c2w, K, xs, ys)
        t, prim = self._intersect(o, d, self._in_view(c2w, K, xs.max() + 1, ys.max() + 1))
        p = (o + d * t[:, None]).astype(np.float64)
        rgb = np.zeros((len(t), 3), np.float32)
        order = np.argsort(prim, kind="stable")
        bounds = np.searchsorted(prim[order], np.arange(len(self._prim_surfaces) + 1))
        for k, surfs in enumerate(self._prim_surfaces):
            idx = order[bounds[k]:bounds[k + 1]]
            if len(idx) == 0:
                continue
            pk = p[idx]
            face = self._face_of(k, pk)
            for f in np.unique(face):
                sel = idx[face == f]
                s, ps = surfs[f], p[sel]
                albedo = s.sample_texture(ps)
                to_light = self.light - ps
                lam = np.maximum((s.normal(ps) * to_light).sum(1) / np.linalg.norm(to_light, axis=1), 0)
                rgb[sel] = albedo * (_AMBIENT + _DIFFUSE * lam)[:, None]
        return rgb.reshape(*shape, 3)

    def _face_of(self, prim: int, p: np.ndarray) -> np.ndarray:
        """Which face of primitive `prim` each surface point [M,3] lies on (the nearest one)."""
        if prim == 0 or prim <= len(self.boxes):
            lo, hi = (self.room_min, self.room_max) if prim == 0 else \
                (np.asarray(self.boxes[prim - 1].lo), np.asarray(self.boxes[prim - 1].hi))
            dist = np.stack([np.abs(p - lo), np.abs(p - hi)], 2).reshape(len(p), 6)  # [x lo, x hi, y lo, ...]
            return dist.argmin(1)
        c = self.cylinders[prim - 1 - len(self.boxes)]
        dist = np.stack([np.abs(np.hypot(p[:, 0] - c.center[0], p[:, 1] - c.center[1]) - c.radius),
                         np.abs(p[:, 2] - c.z0), np.abs(p[:, 2] - c.z1)], 1)
        return dist.argmin(1)

    def _intersect(self, o: np.ndarray, d: np.ndarray,
                   test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest hit along rays from origins o [N,3] (or [1,3]) outside every solid, directions
        d [N,3]: parameter t [N] and primitive index [N] (0 room, then boxes, then cylinders).
        `test` [P] marks the primitives that can be hit (all by default)."""
        d = np.where(np.abs(d) < 1e-12, 1e-12, d)
        ox, oy, oz = (o[:, i] for i in range(3))
        dx, dy, dz = (np.ascontiguousarray(d[:, i]) for i in range(3))
        ix, iy, iz = 1.0 / dx, 1.0 / dy, 1.0 / dz
        lo, hi = self.room_min, self.room_max
        # Room: the exit of its slab.
        best = np.minimum(np.minimum(np.maximum((lo[0] - ox) * ix, (hi[0] - ox) * ix),
                                     np.maximum((lo[1] - oy) * iy, (hi[1] - oy) * iy)),
                          np.maximum((lo[2] - oz) * iz, (hi[2] - oz) * iz))
        prim = np.zeros(len(best), np.int16)
        k = 0
        for b in self.boxes:
            k += 1
            if test is not None and not test[k]:
                continue
            ax, bx = (b.lo[0] - ox) * ix, (b.hi[0] - ox) * ix
            ay, by = (b.lo[1] - oy) * iy, (b.hi[1] - oy) * iy
            az, bz = (b.lo[2] - oz) * iz, (b.hi[2] - oz) * iz
            tnear = np.maximum(np.maximum(np.minimum(ax, bx), np.minimum(ay, by)), np.minimum(az, bz))
            tfar = np.minimum(np.minimum(np.maximum(ax, bx), np.maximum(ay, by)), np.maximum(az, bz))
            hit = (tnear <= tfar) & (tnear > _EPS) & (tnear < best)
            best = np.where(hit, tnear, best)
            prim[hit] = k
        for c in self.cylinders:
            k += 1
            if test is not None and not test[k]:
                continue
            fx, fy = ox - c.center[0], oy - c.center[1]
            a = dx * dx + dy * dy
            bq = fx * dx + fy * dy
            disc = bq * bq - a * (fx * fx + fy * fy - c.radius**2)
            ts = (-bq - np.sqrt(np.maximum(disc, 0))) / np.maximum(a, 1e-12)
            z = oz + ts * dz
            hit = (disc > 0) & (ts > _EPS) & (z >= c.z0) & (z <= c.z1) & (ts < best)
            for zc in (c.z0, c.z1):
                tc = (zc - oz) * iz
                px, py = fx + tc * dx, fy + tc * dy
                hit_c = (tc > _EPS) & (px * px + py * py <= c.radius**2) & (tc < best)
                ts = np.where(hit_c & (~hit | (tc < ts)), tc, ts)
                hit |= hit_c
            best = np.where(hit, ts, best)
            prim[hit] = k
        return best, prim

    def _make_surfaces(self) -> list[list[_Surface]]:
        """Per primitive (room, boxes, cylinders) its faces, in the order `_face_of` returns."""
        tpm, base = self.texels_per_m, self.seed * 1000
        room = [_Plane.for_face(self.room_min, self.room_max, a, side, True, _ROOM_MATERIALS[2 * a + side],
                                base + 2 * a + side, tpm) for a in range(3) for side in (0, 1)]
        out = [room]
        for i, b in enumerate(self.boxes):
            lo, hi = np.asarray(b.lo, np.float64), np.asarray(b.hi, np.float64)
            out.append([_Plane.for_face(lo, hi, a, side, False, b.material, base + 100 + 6 * i + 2 * a + side,
                                        tpm) for a in range(3) for side in (0, 1)])
        for i, c in enumerate(self.cylinders):
            sd = base + 500 + 3 * i
            clo = np.array([c.center[0] - c.radius, c.center[1] - c.radius, c.z0])
            chi = np.array([c.center[0] + c.radius, c.center[1] + c.radius, c.z1])
            out.append([_CylinderSide(c, sd, tpm)] + [_Disc.for_cap(clo, chi, side, c, sd + 1 + side, tpm)
                                                      for side in (0, 1)])
        return out


_AMBIENT, _DIFFUSE = 0.55, 0.55


def _look_poses(pos: np.ndarray, yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world poses from positions, yaw (about world z) and pitch (up positive)."""
    fwd = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], 1)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(fwd, right)
    c2w = np.tile(np.eye(4), (len(pos), 1, 1))
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = right, down, fwd, pos
    return c2w


# ---------------------------------------------------------------------- surfaces
class _Surface:
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
        return _bilinear(tex, u * self.tpm - 0.5, v * self.tpm - 0.5)


class _Plane(_Surface):
    def __init__(self, axis: int, coord: float, normal_sign: float, lo: np.ndarray, hi: np.ndarray,
                 material: str, seed: int, tpm: float):
        self.axis, self.coord, self.sign = axis, coord, normal_sign
        self.ua, self.va = [(1, 2), (0, 2), (0, 1)][axis]
        self.lo, self.hi = lo, hi
        self.size = (float(hi[self.ua] - lo[self.ua]), float(hi[self.va] - lo[self.va]))
        self.area = self.size[0] * self.size[1]
        self.material, self.seed, self.tpm = material, seed, tpm

    @classmethod
    def for_face(cls, lo, hi, axis, side, inward, material, seed, tpm) -> _Plane:
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


class _Disc(_Plane):
    """A cylinder cap: a horizontal plane restricted to a disc."""

    @classmethod
    def for_cap(cls, lo, hi, side, cyl: Cylinder, seed, tpm) -> _Disc:
        cap = cls(2, float((lo, hi)[side][2]), -1.0 if side == 0 else 1.0, lo, hi, "wood", seed, tpm)
        cap.cyl = cyl
        cap.area = math.pi * cyl.radius**2
        return cap

    def sample(self, rng, n):
        r = self.cyl.radius * np.sqrt(rng.uniform(0, 1, n))
        a = rng.uniform(0, 2 * np.pi, n)
        return np.stack([self.cyl.center[0] + r * np.cos(a), self.cyl.center[1] + r * np.sin(a),
                         np.full(n, self.coord)], 1)


class _CylinderSide(_Surface):
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
        return np.stack([c.center[0] + c.radius * np.cos(a), c.center[1] + c.radius * np.sin(a),
                         rng.uniform(c.z0, c.z1, n)], 1)


def _bilinear(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of tex [H,W,3] at texel coordinates x (columns), y (rows), clamped."""
    h, w = tex.shape[:2]
    x = np.clip(x.astype(np.float32), 0, w - 1.001)
    y = np.clip(y.astype(np.float32), 0, h - 1.001)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    flat = tex.reshape(-1, 3)
    i = y0 * w + x0
    top = np.take(flat, i, 0) * (1 - fx) + np.take(flat, i + 1, 0) * fx
    bot = np.take(flat, i + w, 0) * (1 - fx) + np.take(flat, i + w + 1, 0) * fx
    return top * (1 - fy) + bot * fy


# ---------------------------------------------------------------------- textures
@functools.lru_cache(maxsize=512)
def bake_texture(material: str, seed: int, width_m: float, height_m: float,
                 texels_per_m: float) -> np.ndarray:
    """A deterministic albedo image float32 [rows, cols, 3] in [0,1] covering width_m x height_m
    metres (row index = v, column index = u, texel centres at (i + 0.5) / texels_per_m).
    Cached (read-only) so that rooms built again in one process do not bake again."""
    rng = np.random.default_rng(seed)
    cols = max(2, math.ceil(width_m * texels_per_m))
    rows = max(2, math.ceil(height_m * texels_per_m))
    U, V = np.meshgrid((np.arange(cols) + 0.5) / texels_per_m, (np.arange(rows) + 0.5) / texels_per_m)
    img = np.clip(MATERIALS[material](rng, U, V), 0, 1).astype(np.float32)
    img.flags.writeable = False
    return img


def _value_noise(rng: np.random.Generator, U: np.ndarray, V: np.ndarray, scale: float) -> np.ndarray:
    """Smooth noise with features of about `scale` metres on the regular grid U, V: a random
    lattice smoothed by a cubic B-spline (separable, so two small matrix products)."""
    lat = rng.uniform(-1.7, 1.7, (int(V.max() / scale) + 4, int(U.max() / scale) + 4))
    return _bspline_weights(V[:, 0] / scale + 1, lat.shape[0]) @ lat @ _bspline_weights(
        U[0] / scale + 1, lat.shape[1]).T


def _bspline_weights(x: np.ndarray, n: int) -> np.ndarray:
    """[len(x), n] cubic B-spline interpolation weights at lattice coordinates x."""
    i = np.floor(x).astype(np.int64)
    f = x - i
    w = np.stack([(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], 1) / 6
    out = np.zeros((len(x), n))
    for k in range(4):
        np.add.at(out, (np.arange(len(x)), np.clip(i - 1 + k, 0, n - 1)), w[:, k])
    return out


def _fbm(rng, U, V, scales, amps) -> np.ndarray:
    return sum(a * _value_noise(rng, U, V, s) for s, a in zip(scales, amps))


def _colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float],
            hue: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    h = rng.uniform(*hue) % 1.0
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val)))


def _soft(sd: np.ndarray, width: float = 0.008) -> np.ndarray:
    """Coverage in [0,1] from a signed distance (negative inside), anti-aliased over `width`."""
    return np.clip(0.5 - sd / width, 0, 1)


def _rect_sd(px, py, cx, cy, hw, hh, angle=0.0):
    c, s = math.cos(angle), math.sin(angle)
    x, y = (px - cx) * c + (py - cy) * s, -(px - cx) * s + (py - cy) * c
    qx, qy = np.abs(x) - hw, np.abs(y) - hh
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)


def _triangle_sd(px, py, pts):
    (x0, y0), (x1, y1), (x2, y2) = pts
    orient = np.sign((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)) or 1.0
    sd = None
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y1)), ((x1, y1), (x2, y2)), ((x2, y2), (x0, y0))):
        ex, ey = bx - ax, by - ay
        dist = -orient * (ex * (py - ay) - ey * (px - ax)) / math.hypot(ex, ey)
        sd = dist if sd is None else np.maximum(sd, dist)
    return sd


def _draw_poster(rng, img, U, V, u0, v0, w, h) -> None:
    """A framed poster with random circles, bars and triangles, drawn into `img` in place."""
    tpm = 1.0 / (U[0, 1] - U[0, 0])
    c0, c1 = max(0, int(u0 * tpm) - 2), min(img.shape[1], int((u0 + w) * tpm) + 3)
    r0, r1 = max(0, int(v0 * tpm) - 2), min(img.shape[0], int((v0 + h) * tpm) + 3)
    pu, pv = U[r0:r1, c0:c1] - u0, V[r0:r1, c0:c1] - v0
    light = rng.uniform() < 0.6
    bg = _colour(rng, (0.05, 0.3), (0.8, 0.95) if light else (0.12, 0.3))
    poster = np.broadcast_to(bg, pu.shape + (3,)).copy()
    poster *= (1 + _fbm(rng, pu, pv, [0.3], [0.05]))[..., None]
    for _ in range(rng.integers(4, 8)):
        col = _colour(rng, (0.5, 1.0), (0.35, 0.95))
        kind = rng.integers(3)
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        size = rng.uniform(0.06, 0.28) * min(w, h) + 0.03
        if kind == 0:
            sd = np.hypot(pu - cx, pv - cy) - size
        elif kind == 1:
            sd = _rect_sd(pu, pv, cx, cy, size, size * rng.uniform(0.15, 0.6), rng.uniform(0, np.pi))
        else:
            ang = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2]) + rng.uniform(-0.4, 0.4, 3)
            sd = _triangle_sd(pu, pv, [(cx + size * math.cos(a), cy + size * math.sin(a)) for a in ang])
        a = _soft(sd)[..., None]
        poster = poster * (1 - a) + col * a
    frame = _rect_sd(pu, pv, w / 2, h / 2, w / 2, h / 2)
    border = np.clip((frame + 0.02) / 0.006, 0, 1)[..., None]  # 1 in the 2 cm frame
    poster = poster * (1 - border) + bg * 0.35 * border
    a = _soft(frame, 0.006)[..., None]
    img[r0:r1, c0:c1] = img[r0:r1, c0:c1] * (1 - a) + poster * a


def _place_posters(rng, img, U, V, count, v_range, size_range) -> None:
    w_m, h_m = U.max(), V.max()
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        w, h = rng.uniform(*size_range), rng.uniform(*size_range)
        v_top = min(v_range[1], h_m) - h
        if w > w_m - 0.2 or v_top <= v_range[0]:
            continue
        u0, v0 = rng.uniform(0.1, w_m - w - 0.1), rng.uniform(v_range[0], v_top)
        if all(u0 > a + c + 0.1 or a > u0 + w + 0.1 or v0 > b + d + 0.1 or b > v0 + h + 0.1
               for a, b, c, d in placed):
            placed.append((u0, v0, w, h))
            _draw_poster(rng, img, U, V, u0, v0, w, h)


def _dots(rng, img, U, V, per_m2: float, radius: tuple[float, float]) -> None:
    """Sparse soft discs of random colour (blobs for feature detectors), drawn in place."""
    tpm = 1.0 / (U[0, 1] - U[0, 0])
    w_m, h_m = U.max(), V.max()
    for _ in range(int(per_m2 * w_m * h_m)):
        cu, cv, rad = rng.uniform(0, w_m), rng.uniform(0, h_m), rng.uniform(*radius)
        c0, c1 = max(0, int((cu - rad) * tpm) - 2), min(img.shape[1], int((cu + rad) * tpm) + 3)
        r0, r1 = max(0, int((cv - rad) * tpm) - 2), min(img.shape[0], int((cv + rad) * tpm) + 3)
        a = _soft(np.hypot(U[r0:r1, c0:c1] - cu, V[r0:r1, c0:c1] - cv) - rad)[..., None]
        col = _colour(rng, (0.2, 0.8), (0.15, 0.9))
        img[r0:r1, c0:c1] = img[r0:r1, c0:c1] * (1 - a) + col * a


def _plaster(rng, U, V):
    base = _colour(rng, (0.08, 0.35), (0.55, 0.8))
    tint = _colour(rng, (0.2, 0.5), (0.45, 0.9))
    mix = (0.5 + 0.5 * _value_noise(rng, U, V, 0.8))[..., None] * 0.5
    img = base * (1 - mix) + tint * mix
    img = img * (1 + _fbm(rng, U, V, [0.5, 0.2, 0.08], [0.15, 0.12, 0.07]))[..., None]
    _dots(rng, img, U, V, per_m2=30, radius=(0.015, 0.05))
    area = U.max() * V.max()
    _place_posters(rng, img, U, V, count=max(2, int(area / 1.8)), v_range=(0.5, 2.7), size_range=(0.25, 0.8))
    # A dark skirting board along the floor.
    board = _soft(V - 0.1, 0.006)[..., None]
    return img * (1 - board) + np.array([0.18, 0.16, 0.14]) * board


def _grid_cells(U, V, cw, ch, row_shift):
    row = np.floor(V / ch).astype(np.int64)
    uu = U + (row % 2) * row_shift
    col = np.floor(uu / cw).astype(np.int64)
    lu, lv = uu - col * cw, V - row * ch
    edge = np.minimum(np.minimum(lu, cw - lu), np.minimum(lv, ch - lv))
    return row, col, edge


def _brick(rng, U, V):
    bw, bh = 0.24, 0.08
    row, col, edge = _grid_cells(U, V, bw, bh, bw / 2)
    base = _colour(rng, (0.45, 0.7), (0.45, 0.65), hue=(0.0, 0.07))
    jit = rng.normal(0, 1, (row.max() + 1, col.max() + 2, 3)) * np.array([0.035, 0.025, 0.02])
    tone = rng.uniform(0.82, 1.15, (row.max() + 1, col.max() + 2))
    brick = (base * tone[row, col][..., None] + jit[row, col])
    brick *= (1 + _fbm(rng, U, V, [0.5, 0.15], [0.10, 0.05]))[..., None]
    mortar = np.array([0.72, 0.70, 0.66]) * (1 + 0.05 * _value_noise(rng, U, V, 0.3))[..., None]
    m = np.clip((edge - 0.006) / 0.006, 0, 1)[..., None]
    img = mortar * (1 - m) + brick * m
    _place_posters(rng, img, U, V, count=2, v_range=(1.0, 2.4), size_range=(0.4, 0.8))
    return img


def _tiles(rng, U, V):
    ts = 0.5
    row, col, edge = _grid_cells(U, V, ts, ts, 0.0)
    a, b = _colour(rng, (0.1, 0.35), (0.5, 0.7)), _colour(rng, (0.1, 0.35), (0.3, 0.5))
    checker = ((row + col) % 2)[..., None]
    jit = rng.normal(0, 0.05, (row.max() + 1, col.max() + 1, 3))
    img = a * (1 - checker) + b * checker + jit[row, col]
    img = img * (1 + _fbm(rng, U, V, [0.7, 0.2, 0.08], [0.12, 0.08, 0.04]))[..., None]
    grout = np.clip((edge - 0.004) / 0.005, 0, 1)[..., None]
    img = img * grout + np.array([0.2, 0.2, 0.2]) * (1 - grout)
    # A rug with a patterned border: a large, unique region under the camera loop.
    u0, v0, w, h = 1.2, 1.3, 1.7, 1.2
    rugc = _colour(rng, (0.5, 0.8), (0.35, 0.6))
    sd = _rect_sd(U, V, u0 + w / 2, v0 + h / 2, w / 2, h / 2)
    inner = _rect_sd(U, V, u0 + w / 2, v0 + h / 2, w / 2 - 0.12, h / 2 - 0.12)
    stripes = 0.5 + 0.5 * np.sin((U + V) * 2 * np.pi / 0.16)
    rug = rugc * (1 + 0.08 * _value_noise(rng, U, V, 0.15))[..., None]
    ring = (_soft(sd) * (1 - _soft(inner)))[..., None]
    rug = rug * (1 - ring) + rugc[::-1] * (0.6 + 0.4 * stripes)[..., None] * ring
    cover = _soft(sd)[..., None]
    img = img * (1 - cover) + rug * cover
    _draw_poster(rng, img, U, V, u0 + 0.25, v0 + 0.25, w - 0.5, h - 0.5)
    return img


def _ceiling(rng, U, V):
    ps = 0.6
    row, col, edge = _grid_cells(U, V, ps, ps, 0.0)
    base = _colour(rng, (0.0, 0.12), (0.75, 0.9))
    jit = rng.normal(0, 0.04, (row.max() + 1, col.max() + 1, 1))
    img = base * (1 + jit[row, col] + _fbm(rng, U, V, [0.5, 0.15], [0.08, 0.04])[..., None])
    seam = np.clip((edge - 0.005) / 0.005, 0, 1)[..., None]
    img = img * (0.55 + 0.45 * seam)
    for _ in range(3):
        cx, cy = rng.uniform(0.8, U.max() - 0.8), rng.uniform(0.8, V.max() - 0.8)
        a = _soft(_rect_sd(U, V, cx, cy, 0.25, 0.5, rng.uniform(0, np.pi)))[..., None]
        img = img * (1 - a) + np.array([1.0, 0.97, 0.9]) * a
    return img


def _wood(rng, U, V):
    pw = 0.11
    plank = np.floor(V / pw).astype(np.int64)
    base = _colour(rng, (0.45, 0.7), (0.4, 0.65), hue=(0.05, 0.11))
    tone = rng.uniform(0.8, 1.2, plank.max() + 1)[plank][..., None]
    warp = _value_noise(rng, U, V, 0.4) * 2.5 + _value_noise(rng, U, V, 0.1) * 0.5
    grain = np.sin(2 * np.pi * (V / 0.035 + warp))
    img = base * tone * (1 + 0.07 * grain + _fbm(rng, U, V, [0.3, 0.08], [0.08, 0.04]))[..., None]
    lv = V - plank * pw
    seam = np.clip((np.minimum(lv, pw - lv) - 0.003) / 0.004, 0, 1)[..., None]
    return img * (0.5 + 0.5 * seam)


def _crate(rng, U, V):
    img = _wood(rng, U, V)
    w_m, h_m = U.max(), V.max()
    # Diagonal and border battens, and a stencilled mark.
    border = np.minimum(np.minimum(U, w_m - U), np.minimum(V, h_m - V))
    batt = _soft(border - 0.05)[..., None]
    diag = _soft(np.abs((U / w_m - V / h_m) * min(w_m, h_m)) - 0.03)[..., None]
    dark = img * 0.7
    img = img * (1 - np.maximum(batt, diag)) + dark * np.maximum(batt, diag)
    mark = _soft(np.hypot(U - w_m * rng.uniform(0.3, 0.7), V - h_m * rng.uniform(0.3, 0.7)) - 0.06)[..., None]
    return img * (1 - mark) + _colour(rng, (0.6, 0.9), (0.2, 0.5)) * mark


def _painted(rng, U, V):
    base = _colour(rng, (0.5, 0.85), (0.4, 0.75))
    img = base * (1 + _fbm(rng, U, V, [0.4, 0.12], [0.1, 0.05]))[..., None]
    for zb in (0.12, V.max() - 0.12):
        band = _soft(np.abs(V - zb) - 0.03)[..., None]
        img = img * (1 - band) + np.array([0.25, 0.25, 0.27]) * band
    if U.max() > 0.5 and V.max() > 0.5:
        _draw_poster(rng, img, U, V, U.max() * 0.25, V.max() * 0.3, min(0.45, U.max() * 0.5), V.max() * 0.4)
    return img


def _pillar(rng, U, V):
    base = _colour(rng, (0.0, 0.1), (0.55, 0.7))
    img = base * (1 + _fbm(rng, U, V, [0.5, 0.2, 0.08], [0.15, 0.12, 0.07]))[..., None]
    _dots(rng, img, U, V, per_m2=30, radius=(0.015, 0.04))
    _place_posters(rng, img, U, V, count=3, v_range=(0.6, 2.4), size_range=(0.3, 0.5))
    return img


MATERIALS = {"plaster": _plaster, "brick": _brick, "tiles": _tiles, "ceiling": _ceiling, "wood": _wood,
             "crate": _crate, "painted": _painted, "pillar": _pillar}
"""Texture generators: (rng, U [rows,cols], V [rows,cols] in metres) -> albedo [rows,cols,3]."""


# ---------------------------------------------------------------------- the example capture
class ExampleCapture(NamedTuple):
    """A rendered capture with its true cameras."""

    video: Path
    """The capture video (capture.mp4)."""
    cam_to_world: np.ndarray
    """True camera-to-world poses [n,4,4], OpenCV convention, metres, world z up."""
    K: np.ndarray
    """Pinhole intrinsics [3,3] shared by every frame (pixel centres at half-integers)."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""


def write_example_capture(out_dir: str | os.PathLike, num_frames: int = 120, width: int = 320,
                          height: int = 240, fps: int = 10, seed: int = 0, supersample: int = 2,
                          room: SyntheticRoom | None = None) -> ExampleCapture:
    """Render `room` (default: `SyntheticRoom.default(seed)`) along its camera loop and write
    `capture.mp4` (H.264, checked to decode with OpenCV), `true_poses.json` and `scene_spec.json`
    into `out_dir` (atomically, as one directory)."""
    import cv2
    import imageio.v2 as imageio
    from tqdm import tqdm

    room = room or SyntheticRoom.default(seed)
    c2w = room.camera_path(num_frames)
    K = room.intrinsics(width, height)
    out = Path(out_dir)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        writer = imageio.get_writer(str(tmp / "capture.mp4"), fps=fps, codec="libx264", quality=None,
                                    pixelformat="yuv420p", macro_block_size=8,
                                    output_params=["-crf", "16", "-preset", "slow"])
        with writer:
            for pose in tqdm(c2w, desc="render example", unit="frame", disable=None):
                writer.append_data(room.render(pose, K, width, height, supersample)[0])
        cap = cv2.VideoCapture(str(tmp / "capture.mp4"))
        decoded = 0
        while cap.read()[0]:
            decoded += 1
        cap.release()
        if decoded != num_frames:
            raise RuntimeError(f"OpenCV decoded {decoded} of {num_frames} frames of the written video")
        frames = [{"index": i, "c2w": p.tolist(), "K": K.tolist(), "width": width, "height": height}
                  for i, p in enumerate(c2w)]
        write_json(tmp / "true_poses.json", {
            "convention": "camera-to-world, OpenCV camera (x right, y down, z forward), world z up, metres; "
                          "K with pixel centres at half-integers",
            "video": "capture.mp4", "fps": fps, "width": width, "height": height, "K": K.tolist(),
            "frames": frames})
        write_json(tmp / "scene_spec.json", room.to_spec())
    return ExampleCapture(out / "capture.mp4", c2w, K, width, height)


def load_example_capture(capture_dir: str | os.PathLike = EXAMPLE_DIR) -> ExampleCapture:
    """The video path and true cameras of a capture written by `write_example_capture`."""
    d = Path(capture_dir)
    path = d / "true_poses.json"
    remedy = f"regenerate it with: python -m scenes.synthetic {d}"
    if not path.is_file() or not (d / "capture.mp4").is_file():
        raise UserInputError(f"{d}: no example capture (capture.mp4 + true_poses.json); {remedy}")
    try:
        meta = json.loads(path.read_text())
        c2w = np.array([f["c2w"] for f in meta["frames"]], np.float64)
        K = np.array(meta["K"], np.float64)
        width, height = int(meta["width"]), int(meta["height"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserInputError(f"{path}: malformed ({e!r}); {remedy}") from e
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or K.shape != (3, 3):
        raise UserInputError(f"{path}: poses must be [n,4,4] and K [3,3]; {remedy}")
    return ExampleCapture(d / "capture.mp4", c2w, K, width, height)


def main(argv: list[str] | None = None) -> int:
    """`python -m scenes.synthetic OUT_DIR [NUM_FRAMES]`: regenerate the example capture."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m scenes.synthetic OUT_DIR [NUM_FRAMES]", file=sys.stderr)
        return 2
    cap = write_example_capture(args[0], num_frames=int(args[1]) if len(args) == 2 else 120)
    print(f"wrote {cap.video.parent}: {len(cap.cam_to_world)} frames at {cap.width}x{cap.height}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
