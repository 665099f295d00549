"""World normalisation: z up, centred on the cameras, cameras inside a unit-ish sphere, plus the
floor height and the metric scale.

SfM worlds have an arbitrary rotation, origin and scale. Everything downstream (splat
optimisation, agent bodies, collisions) wants world z up and a known metric scale, so the
similarity transform input-world → normalised is estimated here and stored with the scene.
Up comes from the cameras (people and robots hold cameras without roll, so up is perpendicular to
every camera's x axis and on the side of their mean -y axis) or from the largest near-horizontal
plane of sparse points below the cameras (the floor), which is more precise when the floor is
well reconstructed.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from scenes.posed import PosedImages
from wmcore.errors import UserInputError

LOG = logging.getLogger(__name__)

UpMethod = Literal["auto", "cameras", "ground", "none"]


@dataclass
class Normalization:
    """The similarity transform input world → normalised world, and what it means in metres."""

    matrix: np.ndarray
    """[4, 4] Sim(3) mapping input-world points to normalised points (s R | t)."""
    metric_scale: float = 1.0
    """Metres per normalised unit (by default the input's units are taken as metres)."""
    up: np.ndarray = dataclasses.field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    """Unit up direction in the input world."""
    floor_z: float = 0.0
    """Floor height in the normalised world (see floor_source for how much to trust it)."""
    floor_source: str = "cameras"
    """How the floor was found: plane (RANSAC floor plane), layer (densest low horizontal layer of
    the points below the cameras), lowest-point, or cameras (lowest camera: no points to go by)."""
    up_source: str = "none"
    """How up was found: cameras, ground or none."""
    scale_source: str = "input-units"
    """Where metric_scale comes from: input-units or the --scale-from spec."""

    @property
    def scale(self) -> float:
        """Normalised units per input unit."""
        return float(np.cbrt(np.linalg.det(self.matrix[:3, :3])))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as stored in ingest.json / scene.json."""
        return {
            "matrix": self.matrix.tolist(),
            "metric_scale": self.metric_scale,
            "up": self.up.tolist(),
            "floor_z": self.floor_z,
            "floor_source": self.floor_source,
            "up_source": self.up_source,
            "scale_source": self.scale_source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        """Inverse of `to_dict`."""
        return cls(
            np.asarray(d["matrix"], np.float64),
            float(d["metric_scale"]),
            np.asarray(d["up"], np.float64),
            float(d["floor_z"]),
            d.get("floor_source", "cameras"),
            d.get("up_source", "none"),
            d.get("scale_source", "input-units"),
        )


def rotation_to_z(up: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector `up` onto +z (Rodrigues)."""
    up = up / np.linalg.norm(up)
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(up, z)
    c = float(up @ z)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def up_from_cameras(cam_to_world: np.ndarray) -> np.ndarray:
    """World up from camera orientations, unbiased by a common pitch.

    People and robots hold cameras without roll, so every camera's x axis is horizontal: up is
    the direction perpendicular to all of them (the smallest singular vector of the stacked x
    axes), signed to agree with the cameras' mean -y. When the x axes are nearly parallel
    (cameras all facing one way) that is ill-posed, and the mean -y made perpendicular to the
    common x axis is used instead (the same rule as nerfstudio's "vertical" orientation).
    """
    x_axes = cam_to_world[:, :3, 0]
    minus_y = -cam_to_world[:, :3, 1].mean(0)
    if np.linalg.norm(minus_y) < 1e-9:
        raise UserInputError(
            "cannot find the up direction from the cameras (they point every which way); use up='ground' or up='none'"
        )
    _, sv, vt = np.linalg.svd(x_axes, full_matrices=True)
    if len(sv) > 1 and sv[1] > 0.17 * np.sqrt(len(x_axes)):
        up = vt[2]
    else:
        up = minus_y - (minus_y @ vt[0]) * vt[0]
    if up @ minus_y < 0:
        up = -up
    return up / np.linalg.norm(up)


def fit_ground_plane(
    points: np.ndarray,
    cam_centres: np.ndarray,
    up_hint: np.ndarray,
    threshold: float,
    max_tilt_deg: float = 15.0,
    iters: int = 400,
    seed: int = 0,
) -> tuple[np.ndarray, float, np.ndarray] | None:
    """RANSAC for the largest plane within `max_tilt_deg` of `up_hint` that lies clearly (3
    thresholds) below the cameras. Returns (unit normal pointing to the cameras, offset d with
    n·x + d = 0, inlier mask) or None when fewer than 20 points support any such plane."""
    if len(points) < 20:
        return None
    rng = np.random.default_rng(seed)
    cos_tilt = np.cos(np.deg2rad(max_tilt_deg))
    best: tuple[int, np.ndarray, float] | None = None
    for _ in range(iters):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            continue
        n = n / norm
        if n @ up_hint < 0:
            n = -n
        if n @ up_hint < cos_tilt:
            continue
        d = -float(n @ a)
        if np.mean(cam_centres @ n + d) <= 3 * threshold:  # a ceiling, or a layer at eye height
            continue
        count = int(np.count_nonzero(np.abs(points @ n + d) < threshold))
        if best is None or count > best[0]:
            best = (count, n, d)
    if best is None or best[0] < 20:
        return None
    inliers = np.abs(points @ best[1] + best[2]) < threshold
    # Refine on the inliers: least-squares plane through them.
    p = points[inliers]
    centroid = p.mean(0)
    n = np.linalg.svd(p - centroid)[2][-1]
    if n @ best[1] < 0:
        n = -n
    d = -float(n @ centroid)
    return n, d, np.abs(points @ n + d) < threshold


def floor_height(z_points: np.ndarray, z_cameras: np.ndarray, threshold: float = 0.01) -> float | None:
    """The floor as the densest horizontal layer (+-`threshold`) among the lowest points below
    the cameras: candidates are the 0-30th percentiles of those points' heights, and the winner
    is refined to the median of its layer. A plain low percentile is pulled down by outliers;
    this is not. None when fewer than 10 points lie below the cameras."""
    below = z_points[z_points < z_cameras.mean()]
    if len(below) < 10:
        return None
    candidates = np.percentile(below, np.arange(0, 31))
    counts = (np.abs(below[None, :] - candidates[:, None]) < threshold).sum(1)
    best = candidates[int(np.argmax(counts))]
    return float(np.median(below[np.abs(below - best) < threshold]))


def normalize(posed: PosedImages, up: UpMethod = "auto", min_ground_fraction: float = 0.1) -> Normalization:
    """Estimate the normalisation of `posed`'s world.

    up: cameras — `up_from_cameras`; ground — the floor plane of the sparse points, within 15
    degrees of the camera up (falls back to cameras when there is none); auto — ground when that
    plane holds at least `min_ground_fraction` of the points, else cameras; none — keep the
    input's rotation.
    """
    centres = posed.cam_to_world[:, :3, 3]
    centre = centres.mean(0)
    radius = float(np.linalg.norm(centres - centre, axis=1).max()) if len(centres) else 0.0
    if radius < 1e-9:  # one camera, or all at one place: size the world by its points
        radius = float(np.linalg.norm(posed.points - centre, axis=1).max()) if len(posed.points) else 1.0
        radius = radius if radius > 1e-9 else 1.0
    s = 1.0 / radius

    plane = None
    if up == "none":
        up_vec, source = np.array([0.0, 0.0, 1.0]), "none"
    else:
        up_vec, source = up_from_cameras(posed.cam_to_world), "cameras"
        if up in ("auto", "ground"):
            plane = fit_ground_plane(posed.points, centres, up_vec, threshold=0.02 * radius)
            enough = plane is not None and plane[2].mean() >= min_ground_fraction
            if plane is not None and (up == "ground" or enough):
                up_vec, source = plane[0], "ground"
            else:
                if up == "ground":
                    LOG.warning("no floor plane found in the sparse points; taking up from the cameras")
                plane = None
    R = rotation_to_z(up_vec)
    T = np.eye(4)
    T[:3, :3] = s * R
    T[:3, 3] = -s * R @ centre

    z_cams = (T[:3, :3] @ centres.T).T[:, 2] + T[2, 3]
    pts_z = (posed.points @ T[:3, :3].T + T[:3, 3])[:, 2] if len(posed.points) else np.zeros(0)
    floor = floor_height(pts_z, z_cams)
    if plane is not None:
        floor, floor_source = float(np.median(pts_z[plane[2]])), "plane"
    elif floor is not None:
        floor_source = "layer"
    elif len(pts_z) and pts_z.min() < z_cams.min():
        floor, floor_source = float(pts_z.min()), "lowest-point"
    else:
        floor, floor_source = float(z_cams.min()), "cameras"
    LOG.info(
        "normalisation: up from %s, %.3g normalised units per input unit, floor z=%.3f (%s)",
        source,
        s,
        floor,
        floor_source,
    )
    return Normalization(T, 1.0 / s, up_vec, floor, floor_source, source, "input-units")


_PAIR = re.compile(r"^\s*([^,]+?)\s*,\s*([^,]+?)\s*,\s*([^,]+?)\s*$")


def _metres(value: str, spec: str) -> float:
    try:
        m = float(value)
    except ValueError:
        m = float("nan")
    if not np.isfinite(m) or m <= 0:
        raise UserInputError(f"--scale-from {spec!r}: {value!r} is not a positive distance in metres")
    return m


def _find_image(posed: PosedImages, name: str, spec: str) -> int:
    for i, p in enumerate(posed.image_paths):
        if name in (p.name, p.stem):
            return i
    known = ", ".join(p.name for p in posed.image_paths[:8])
    raise UserInputError(
        f"--scale-from {spec!r}: no registered image named {name!r} "
        f"(images are named like: {known}{', …' if len(posed) > 8 else ''})"
    )


def check_scale_spec(spec: str) -> None:
    """Check the form of a --scale-from spec (before any work); image names and the floor can only be
    checked once the capture is posed, by `apply_scale_from`."""
    spec_s = spec.strip()
    if spec_s.lower().startswith("camera-height:"):
        _metres(spec_s.split(":", 1)[1].strip(), spec)
        return
    m = _PAIR.match(spec_s)
    if m is None:
        raise UserInputError(
            f"--scale-from {spec!r}: expected 'IMG_A,IMG_B,METRES' (distance between two "
            "camera centres) or 'camera-height:METRES' (mean camera height above the floor)"
        )
    _metres(m.group(3), spec)
    if m.group(1) == m.group(2):
        raise UserInputError(f"--scale-from {spec!r}: name two different images")


def apply_scale_from(norm: Normalization, posed_normalised: PosedImages, spec: str) -> Normalization:
    """Fix the metric scale from a known distance.

    spec "IMG_A,IMG_B,METRES": the camera centres of images IMG_A and IMG_B (file name or stem)
    are METRES apart; spec "camera-height:METRES": the cameras were on average METRES above the
    floor. `posed_normalised` is the capture already in the normalised world.
    """
    spec_s = spec.strip()
    centres = posed_normalised.cam_to_world[:, :3, 3]
    if spec_s.lower().startswith("camera-height:"):
        metres = _metres(spec_s.split(":", 1)[1].strip(), spec)
        if norm.floor_source not in ("plane", "layer"):
            raise UserInputError(
                f"--scale-from {spec!r}: the floor is not visible in the sparse points, so "
                "the camera height is unknown; use the 'IMG_A,IMG_B,METRES' form instead"
            )
        height = float(centres[:, 2].mean() - norm.floor_z)
        if height <= 1e-9:
            raise UserInputError(
                f"--scale-from {spec!r}: the estimated floor is not below the cameras; "
                "use the 'IMG_A,IMG_B,METRES' form instead"
            )
        return dataclasses.replace(norm, metric_scale=metres / height, scale_source=spec_s)
    m = _PAIR.match(spec_s)
    if m is None:
        raise UserInputError(
            f"--scale-from {spec!r}: expected 'IMG_A,IMG_B,METRES' (distance between two "
            "camera centres) or 'camera-height:METRES' (mean camera height above the floor)"
        )
    a, b = _find_image(posed_normalised, m.group(1), spec), _find_image(posed_normalised, m.group(2), spec)
    metres = _metres(m.group(3), spec)
    dist = float(np.linalg.norm(centres[a] - centres[b]))
    if dist < 1e-9:
        raise UserInputError(
            f"--scale-from {spec!r}: the two cameras are at the same place; pick two images taken further apart"
        )
    return dataclasses.replace(norm, metric_scale=metres / dist, scale_source=spec_s)


def umeyama_sim3(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) with dst ≈ s R src + t, as a 4x4 matrix; used to
    align estimated camera centres to true ones."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"umeyama_sim3 needs two [N>=3, 3] arrays of the same shape, got {src.shape}, {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1
    R = U @ S @ Vt
    var_s = (xs**2).sum() / len(src)
    s = float(np.trace(np.diag(D) @ S) / var_s)
    T = np.eye(4)
    T[:3, :3] = s * R
    T[:3, 3] = mu_d - s * R @ mu_s
    return T
