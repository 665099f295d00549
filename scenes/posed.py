"""Posed images: the contract between capture ingest / SfM and scene optimisation.

Poses are camera-to-world matrices in the OpenCV convention (x right, y down, z forward).
nerfstudio's OpenGL convention is converted only where transforms.json is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class PosedImages:
    """A set of images with intrinsics, camera-to-world poses and sparse 3D points."""

    image_paths: list[Path]
    """One path per image."""
    cam_to_world: np.ndarray
    """[N, 4, 4] float64 camera-to-world, OpenCV convention."""
    Ks: np.ndarray
    """[N, 3, 3] float64 pinhole intrinsics in pixels of the image at (width, height)."""
    widths: np.ndarray
    """[N] int image widths in pixels."""
    heights: np.ndarray
    """[N] int image heights in pixels."""
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    """[M, 3] float64 sparse points in the same world frame."""
    points_rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    """[M, 3] uint8 colours of the sparse points."""
    distortion: np.ndarray | None = None
    """[N, 4] OpenCV (k1, k2, p1, p2) per image, or None when images are undistorted."""
    dropped: list[str] = field(default_factory=list)
    """Names of input images that were not registered or were skipped (for reporting)."""

    @classmethod
    def from_frames(
        cls,
        paths: list[Path],
        c2ws: list[np.ndarray],
        Ks: list[np.ndarray],
        widths: list[int],
        heights: list[int],
        points: np.ndarray,
        points_rgb: np.ndarray,
        distortions: list,
        dropped: list[str],
    ) -> PosedImages:
        """Posed images from per-image lists (as a reader collects them); the distortion [N,4] is
        kept only when some coefficient is non-zero."""
        dist = np.asarray(distortions, np.float64)
        return cls(
            paths,
            np.stack(c2ws),
            np.stack(Ks),
            np.array(widths),
            np.array(heights),
            points,
            points_rgb,
            dist if np.any(dist != 0) else None,
            dropped,
        )

    def __len__(self) -> int:
        return len(self.image_paths)

    def subset(self, idx: np.ndarray | list[int]) -> PosedImages:
        """The images at `idx`, sharing the sparse points."""
        idx = np.asarray(idx, dtype=np.int64)
        return PosedImages(
            image_paths=[self.image_paths[i] for i in idx],
            cam_to_world=self.cam_to_world[idx],
            Ks=self.Ks[idx],
            widths=self.widths[idx],
            heights=self.heights[idx],
            points=self.points,
            points_rgb=self.points_rgb,
            distortion=None if self.distortion is None else self.distortion[idx],
            dropped=list(self.dropped),
        )

    def transformed(self, sim3: np.ndarray) -> PosedImages:
        """Apply a similarity transform (4x4, uniform scale s*R | t) to poses and points."""
        s = float(np.cbrt(np.linalg.det(sim3[:3, :3])))
        R = sim3[:3, :3] / s
        c2w = self.cam_to_world.copy()
        c2w[:, :3, :3] = R @ c2w[:, :3, :3]
        c2w[:, :3, 3] = (sim3[:3, :3] @ self.cam_to_world[:, :3, 3].T).T + sim3[:3, 3]
        pts = (sim3[:3, :3] @ self.points.T).T + sim3[:3, 3] if len(self.points) else self.points
        return PosedImages(
            self.image_paths,
            c2w,
            self.Ks,
            self.widths,
            self.heights,
            pts,
            self.points_rgb,
            self.distortion,
            list(self.dropped),
        )
