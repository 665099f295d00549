"""A procedural, textured room rendered by exact ray casting: the room the project's own example
capture was filmed in.

It exists so that SfM, splat training and collision geometry can be tested against ground truth
(true camera poses, true depth, true free space) without third-party data. Geometry is analytic
(the room's inner faces, axis-aligned boxes, vertical cylinders: scenes.room_geometry); textures
are baked once per face from a seed and sampled bilinearly (scenes.textures), so renders are
deterministic, rich in SIFT features, yet smooth at the pixel level.

Conventions: world z up, metres; camera-to-world 4x4 in OpenCV convention (x right, y down,
z forward); pinhole K with pixel centres at half-integers (COLMAP/gsplat), so a centred principal
point is (width/2, height/2). Depth is z-depth along the optical axis.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from scenes.room_geometry import Box, Cylinder, CylinderSide, Disc, Plane, Surface
from scenes.textures import MATERIALS
from wmcore.errors import UserInputError

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "assets" / "example_room"
"""The committed example capture (regenerate with `python -m scenes.synthetic OUT_DIR`)."""

SPEC_FORMAT = "worldmodel-synthetic-room"
_EPS = 1e-6


# Room faces in order -x, +x, -y, +y, -z (floor), +z (ceiling).
_ROOM_MATERIALS = ("brick", "plaster", "plaster", "plaster", "tiles", "ceiling")


class SyntheticRoom:
    """A closed room with solid boxes and cylinders: renders RGB-D and answers exact geometry
    queries (clearance, free space, ray distances, surface samples)."""

    def __init__(
        self,
        room_min: tuple[float, float, float],
        room_max: tuple[float, float, float],
        boxes: list[Box],
        cylinders: list[Cylinder],
        seed: int = 0,
        light: tuple[float, float, float] = (-1.0, 0.8, 2.5),
        texels_per_m: float = 128.0,
    ):
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
            "format": SPEC_FORMAT,
            "version": 1,
            "seed": self.seed,
            "units": "metres, world z up",
            "room": {
                "min": self.room_min.tolist(),
                "max": self.room_max.tolist(),
                "face_order": ["-x", "+x", "-y", "+y", "-z (floor)", "+z (ceiling)"],
                "materials": list(_ROOM_MATERIALS),
            },
            "boxes": [asdict(b) for b in self.boxes],
            "cylinders": [asdict(c) for c in self.cylinders],
            "light": {"position": self.light.tolist(), "ambient": _AMBIENT, "diffuse": _DIFFUSE},
            "texels_per_m": self.texels_per_m,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SyntheticRoom:
        """Rebuild a room from `to_spec()` output."""
        if spec.get("format") != SPEC_FORMAT:
            raise UserInputError(
                f"not a synthetic-room spec (format {spec.get('format')!r}, "
                f"expected {SPEC_FORMAT!r}); regenerate it with python -m scenes.synthetic"
            )
        boxes = [Box(tuple(b["lo"]), tuple(b["hi"]), b["material"]) for b in spec["boxes"]]
        cyls = [Cylinder(tuple(c["center"]), c["radius"], c["z0"], c["z1"], c["material"]) for c in spec["cylinders"]]
        return cls(
            tuple(spec["room"]["min"]),
            tuple(spec["room"]["max"]),
            boxes,
            cyls,
            spec["seed"],
            tuple(spec["light"]["position"]),
            spec.get("texels_per_m", 128.0),
        )

    @classmethod
    def load(cls, capture_dir: str | os.PathLike = EXAMPLE_DIR) -> SyntheticRoom:
        """The room described by `scene_spec.json` in a capture directory."""
        path = Path(capture_dir) / "scene_spec.json"
        try:
            spec = json.loads(path.read_text())
            return cls.from_spec(spec)
        except FileNotFoundError as e:
            raise UserInputError(f"{path}: not found; regenerate with python -m scenes.synthetic {capture_dir}") from e
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserInputError(
                f"{path}: malformed scene spec ({e!r}); regenerate with python -m scenes.synthetic {capture_dir}"
            ) from e

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
            w = np.stack(
                [
                    np.hypot(p[:, 0] - c.center[0], p[:, 1] - c.center[1]) - c.radius,
                    np.abs(p[:, 2] - (c.z0 + c.z1) / 2) - (c.z1 - c.z0) / 2,
                ],
                1,
            )
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

    def camera_path(self, n: int, yaw_offset: float = 1.4, swing: float = 0.9, swings: int = 4) -> np.ndarray:
        """`n` camera-to-world poses [n,4,4] on a closed, smooth loop (an ellipse of 1.8 x 1.4 m
        around the pillar, counter-clockwise): height 1.25-1.55 m, slight downward pitch, heading
        `yaw_offset` radians left of the direction of travel (positive: inwards, across the room)
        and swinging `swing` radians either way, `swings` times a loop, to look around. Looking across
        the room gives SfM the depth range it needs: views of the nearby walls or along the path left
        global mapping with collapsed camera centres (BENCHMARKS.md, *Structure from motion*). Looking
        around (+-52 degrees, four times a loop; +-20 twice before) shows the reconstruction the walls the
        pillar hides from the opposite side of the loop: the twin's 40x40 views of the demo's starts
        come 1.7-2.2 dB nearer reality's (BENCHMARKS.md, *Reconstruction of the bundled example*)."""
        s = np.arange(n) / n * 2 * np.pi
        r = 1.0 + 0.06 * np.sin(3 * s)
        pos = np.stack([1.8 * r * np.cos(s), 1.4 * r * np.sin(s), 1.4 + 0.15 * np.sin(2 * s)], 1)
        yaw = np.arctan2(1.4 * np.cos(s), -1.8 * np.sin(s)) + yaw_offset + swing * np.sin(swings * s + 0.5)
        pitch = -0.15 + 0.08 * np.sin(3 * s + 1.0)
        return _look_poses(pos, yaw, pitch)

    # ------------------------------------------------------------------ rendering
    def render(
        self,
        cam_to_world: np.ndarray,
        K: np.ndarray,
        width: int,
        height: int,
        supersample: int = 2,
        depth: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB uint8 [H,W,3] (anti-aliased by `supersample`^2 rays per pixel) and z-depth float32
        [H,W] in metres (one ray through each pixel centre; None with depth=False, which saves its
        ray cast: about a quarter of a 40x40 frame at 2x2 rays)."""
        c2w = np.asarray(cam_to_world, np.float64)
        K = np.asarray(K, np.float64)
        if c2w.shape != (4, 4) or K.shape != (3, 3):
            raise ValueError(f"cam_to_world must be [4,4] and K [3,3]; got {c2w.shape} and {K.shape}")
        if self.clearance(c2w[None, :3, 3])[0] <= 0:
            raise UserInputError(
                f"camera position {c2w[:3, 3].tolist()} is inside a solid or outside the room; move it into free space"
            )
        ss = int(supersample)
        offs = (np.arange(ss) + 0.5) / ss
        xs = (np.arange(width)[:, None] + offs[None, :]).reshape(-1)
        ys = (np.arange(height)[:, None] + offs[None, :]).reshape(-1)
        rgb = self._shade(c2w, K, xs, ys)  # [H*ss, W*ss, 3]
        rgb = rgb.reshape(height, ss, width, ss, 3).mean((1, 3))
        z = self._depth(c2w, K, width, height).astype(np.float32) if depth else None
        return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), z

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
            idx = order[bounds[k] : bounds[k + 1]]
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
            lo, hi = (
                (self.room_min, self.room_max)
                if prim == 0
                else (np.asarray(self.boxes[prim - 1].lo), np.asarray(self.boxes[prim - 1].hi))
            )
            dist = np.stack([np.abs(p - lo), np.abs(p - hi)], 2).reshape(len(p), 6)  # [x lo, x hi, y lo, ...]
            return dist.argmin(1)
        c = self.cylinders[prim - 1 - len(self.boxes)]
        dist = np.stack(
            [
                np.abs(np.hypot(p[:, 0] - c.center[0], p[:, 1] - c.center[1]) - c.radius),
                np.abs(p[:, 2] - c.z0),
                np.abs(p[:, 2] - c.z1),
            ],
            1,
        )
        return dist.argmin(1)

    def _intersect(self, o: np.ndarray, d: np.ndarray, test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest hit along rays from origins o [N,3] (or [1,3]) outside every solid, directions
        d [N,3]: parameter t [N] and primitive index [N] (0 room, then boxes, then cylinders).
        `test` [P] marks the primitives that can be hit (all by default)."""
        d = np.where(np.abs(d) < 1e-12, 1e-12, d)
        ox, oy, oz = (o[:, i] for i in range(3))
        dx, dy, dz = (np.ascontiguousarray(d[:, i]) for i in range(3))
        ix, iy, iz = 1.0 / dx, 1.0 / dy, 1.0 / dz
        lo, hi = self.room_min, self.room_max
        # Room: the exit of its slab.
        best = np.minimum(
            np.minimum(
                np.maximum((lo[0] - ox) * ix, (hi[0] - ox) * ix), np.maximum((lo[1] - oy) * iy, (hi[1] - oy) * iy)
            ),
            np.maximum((lo[2] - oz) * iz, (hi[2] - oz) * iz),
        )
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

    def _make_surfaces(self) -> list[list[Surface]]:
        """Per primitive (room, boxes, cylinders) its faces, in the order `_face_of` returns."""
        tpm, base = self.texels_per_m, self.seed * 1000
        room = [
            Plane.for_face(
                self.room_min, self.room_max, a, side, True, _ROOM_MATERIALS[2 * a + side], base + 2 * a + side, tpm
            )
            for a in range(3)
            for side in (0, 1)
        ]
        out = [room]
        for i, b in enumerate(self.boxes):
            lo, hi = np.asarray(b.lo, np.float64), np.asarray(b.hi, np.float64)
            out.append(
                [
                    Plane.for_face(lo, hi, a, side, False, b.material, base + 100 + 6 * i + 2 * a + side, tpm)
                    for a in range(3)
                    for side in (0, 1)
                ]
            )
        for i, c in enumerate(self.cylinders):
            sd = base + 500 + 3 * i
            clo = np.array([c.center[0] - c.radius, c.center[1] - c.radius, c.z0])
            chi = np.array([c.center[0] + c.radius, c.center[1] + c.radius, c.z1])
            out.append(
                [CylinderSide(c, sd, tpm)] + [Disc.for_cap(clo, chi, side, c, sd + 1 + side, tpm) for side in (0, 1)]
            )
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
