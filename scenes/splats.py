"""Gaussian-splat parameters: a dict of tensors in their optimisation space.

means [N,3], quats [N,4] (wxyz, unnormalised), scales [N,3] (log), opacities [N] (logit),
sh0 [N,1,3] and shN [N,K-1,3] spherical-harmonic colour coefficients. The same keys as gsplat's
trainer and as `scenes.ply`, so densification strategies and exporters share one layout.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

SH_C0 = 0.28209479177387814


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - 0.5) / SH_C0


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def init_from_points(
    points: np.ndarray,
    rgb: np.ndarray,
    sh_degree: int = 3,
    init_opacity: float = 0.1,
    init_scale: float = 1.0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Gaussians at the SfM points: isotropic, sized by the mean distance to 3 neighbours."""
    pts = torch.as_tensor(points, dtype=torch.float32)
    n = len(pts)
    k = min(4, n)
    dist, _ = cKDTree(points).query(points, k=k)
    d = np.sqrt((np.asarray(dist)[:, 1:] ** 2).mean(-1)) if k > 1 else np.full(n, 0.01)
    d = np.clip(d, 1e-4, None)
    g = torch.Generator().manual_seed(seed)
    quats = torch.randn(n, 4, generator=g)
    colors = torch.as_tensor(rgb, dtype=torch.float32) / 255.0
    return {
        "means": pts,
        "quats": quats / quats.norm(dim=-1, keepdim=True),
        "scales": torch.log(torch.as_tensor(d * init_scale, dtype=torch.float32))[:, None].repeat(1, 3),
        "opacities": torch.full((n,), math.log(init_opacity / (1 - init_opacity))),
        "sh0": rgb_to_sh(colors)[:, None, :],
        "shN": torch.zeros(n, num_sh_bases(sh_degree) - 1, 3),
    }


def activated(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The rasterizer's inputs: positive scales, opacities in (0,1), SH coefficients [N,K,3]."""
    return {
        "means": params["means"],
        "quats": params["quats"],
        "scales": torch.exp(params["scales"]),
        "opacities": torch.sigmoid(params["opacities"]),
        "colors": torch.cat([params["sh0"], params["shN"]], 1),
    }
