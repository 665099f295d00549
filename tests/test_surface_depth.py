"""Surface depth of splats along pixel rays: the culled path against the all-pairs reference, and
against the true depth of a wall made of wide flat Gaussians seen at an angle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scenes.preview import look_at
from scenes.surface_depth import surface_depths, surface_depths_reference
from scenes.synthetic import SyntheticRoom
from scenes.train_splats import render_splats


def _random_splats(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "means": torch.randn(n, 3, generator=g) * torch.tensor([1.5, 1.5, 0.8]) + torch.tensor([0.0, 0.0, 1.0]),
        "quats": torch.randn(n, 4, generator=g),
        "scales": torch.log(torch.rand(n, 3, generator=g) * 0.3 + 0.02),
        "opacities": torch.randn(n, generator=g) * 2.0,
    }


def test_culled_path_equals_the_reference():
    """Cameras among the Gaussians (some behind them, one inside a Gaussian's bounding sphere)."""
    params = _random_splats(400, seed=0)
    c2w = np.stack(
        [
            look_at(np.array([0.0, -3.0, 1.0]), np.array([0.0, 0.0, 1.0])),
            look_at(np.array([0.3, 0.2, 1.0]), np.array([2.0, 1.0, 0.8])),
            look_at(np.asarray(params["means"][0], np.float64) + 0.01, np.array([0.0, 0.0, 0.0])),
        ]
    )
    Ks = np.repeat(SyntheticRoom.intrinsics(21, 13, 70.0)[None], 3, 0)
    depth, alpha = surface_depths(params, c2w, Ks, 21, 13, tile=8)
    ref_depth, ref_alpha = surface_depths_reference(params, c2w, Ks, 21, 13)
    assert depth.shape == (3, 13, 21) and alpha.shape == (3, 13, 21)
    np.testing.assert_array_equal(np.isnan(depth), np.isnan(ref_depth))
    assert np.isfinite(depth).mean() > 0.3 and (alpha < 0.5).any()  # both kinds of ray occur
    np.testing.assert_allclose(depth[np.isfinite(depth)], ref_depth[np.isfinite(ref_depth)], rtol=1e-9)
    np.testing.assert_allclose(alpha, ref_alpha, atol=1e-9)


def test_a_faint_edge_beyond_three_sigma_is_not_culled():
    """A ray passing 3.2 standard deviations from an opaque Gaussian still picks up alpha above 1/255; the culled
    path keeps it as the reference does."""
    params = {
        "means": torch.tensor([[0.32, 0.0, 2.0]]),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
        "scales": torch.log(torch.tensor([[0.1, 0.1, 0.1]])),
        "opacities": torch.tensor([10.0]),
    }
    c2w = np.eye(4)[None]
    K = np.array([[[10.0, 0.0, 0.5], [0.0, 10.0, 0.5], [0.0, 0.0, 1.0]]])  # one pixel, its ray along +z
    _, alpha = surface_depths(params, c2w, K, 1, 1)
    _, ref = surface_depths_reference(params, c2w, K, 1, 1)
    assert 1 / 255 < ref[0, 0, 0] < 0.01 and alpha[0, 0, 0] == pytest.approx(ref[0, 0, 0], abs=1e-12)


def _wall(x: float, spacing: float, size: float) -> dict[str, torch.Tensor]:
    """Flat Gaussians (thin along x) tiling the plane x = `x`."""
    ys, zs = np.meshgrid(np.arange(-4, 14.01, spacing), np.arange(-4, 6.01, spacing))
    n = ys.size
    return {
        "means": torch.tensor(np.stack([np.full(n, x), ys.ravel(), zs.ravel()], 1), dtype=torch.float32),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        "scales": torch.log(torch.tensor([[0.005, size, size]])).repeat(n, 1),
        "opacities": torch.full((n,), 3.0),
        "sh0": torch.full((n, 1, 3), 0.5),
        "shN": torch.zeros(n, 0, 3),
    }


def test_a_wall_seen_at_an_angle_is_where_it_is():
    """The rays' surface lies on the wall's plane (within 2 % at every pixel); the rasterizer's
    expected depth, one depth per Gaussian, comes out short — the reason this module exists."""
    params = _wall(3.0, spacing=0.25, size=0.25)
    eye = np.array([0.0, 0.0, 1.0])
    yaw = math.radians(40.0)
    c2w = look_at(eye, eye + np.array([math.cos(yaw), math.sin(yaw), 0.0]))[None]
    K = SyntheticRoom.intrinsics(24, 18, 60.0)
    depth, alpha = surface_depths(params, c2w, K[None], 24, 18)
    ys, xs = np.mgrid[0:18, 0:24]
    rays = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, float)], -1) @ np.linalg.inv(K).T @ c2w[0, :3, :3].T
    true = (3.0 - eye[0]) / rays[..., 0]  # z-depth to the plane x = 3 (rays scaled to z = 1)
    assert np.isfinite(depth).all() and (alpha > 0.9).all()
    assert np.abs(depth[0] / true - 1).max() < 0.02
    viewmat = torch.linalg.inv(torch.as_tensor(c2w, dtype=torch.float32))
    out, _, _ = render_splats(params, viewmat, torch.as_tensor(K[None], dtype=torch.float32), 24, 18, 0, "ED")
    assert np.median(out[0, ..., 0].numpy() / true) < 0.97
