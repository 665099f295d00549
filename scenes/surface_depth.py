"""Where each pixel's ray meets the splats' surface: the depth at which its transmittance falls to
one half, with every Gaussian placed where its density peaks along that ray.

The rasterizer's depth (gsplat's "ED"/"D" modes, and ours) gives each Gaussian one depth, its
centre's, for every pixel it covers, and composites front to back by those centres. Walls are
made of wide, flat Gaussians seen at an angle, so the centres nearer the camera come first and
weigh most: on the bundled example's reconstruction that depth is 7 % short of the true room's
at the median (BENCHMARKS.md, *The twin's collision geometry*), and collision geometry traced
with it put every wall 20-35 cm into the room. Here each Gaussian meets a ray r(t) = t d at
t* = (d^T A mu) / (d^T A d), A = Sigma^-1, with alpha = opacity * exp(-(mu^T A mu - t* d^T A mu) / 2)
— the flat Gaussians of a wall put t* on the wall's plane — and the ray's surface is the t* of the
Gaussian at which the composited alpha crosses one half (the median depth of 2DGS and Gaussian
Opacity Fields, here with the 3D-evaluated Gaussians of 3DGRT).

`surface_depths` culls Gaussians per 8x8 pixel tile with a cone test before compositing;
`surface_depths_reference` evaluates every Gaussian on every ray, obviously correct and slow, and
the tests compare them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scenes.rasterize.reference import quat_to_rotmat

ALPHA_MIN = 1.0 / 255.0
"""Smaller contributions are skipped (as in the rasterizers)."""
ALPHA_MAX = 0.99
"""One Gaussian never makes a ray fully opaque (as in the rasterizers)."""
SIGMAS = math.sqrt(2.0 * math.log(1.0 / ALPHA_MIN))
"""Beyond this many standard deviations no Gaussian reaches ALPHA_MIN (its bounding sphere, for culling: the
culled path then drops only what the reference drops)."""


def _gaussians(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Means [N,3], inverse covariances [N,3,3], opacities [N] and bounding radii [N] (float64)."""
    means = params["means"].detach().double()
    rot = quat_to_rotmat(params["quats"].detach().double())
    inv_var = torch.exp(-2.0 * params["scales"].detach().double())
    precision = rot @ torch.diag_embed(inv_var) @ rot.transpose(1, 2)
    opacity = torch.sigmoid(params["opacities"].detach().double())
    radius = SIGMAS * torch.exp(params["scales"].detach().double()).amax(1)
    return means, precision, opacity, radius


def _pixel_rays(K: np.ndarray, width: int, height: int) -> torch.Tensor:
    """Camera-frame directions [H*W,3] through the pixel centres, scaled to z = 1 (so t is z-depth)."""
    ys, xs = np.mgrid[0:height, 0:width]
    pix = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, np.float64)], -1).reshape(-1, 3)
    return torch.as_tensor(pix @ np.linalg.inv(np.asarray(K, np.float64)).T)


def _composite(rays: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor, opacity: torch.Tensor):
    """Median depth [R] (NaN where alpha never reaches one half) and alpha [R] of rays [R,3] from the
    camera origin through camera-frame Gaussians."""
    if len(mean) == 0:
        return torch.full((len(rays),), float("nan"), dtype=rays.dtype), torch.zeros(len(rays), dtype=rays.dtype)
    a_mu = torch.einsum("nij,nj->ni", precision, mean)  # [G,3]
    d_a_d = torch.einsum("ri,nij,rj->rn", rays, precision, rays)  # [R,G]
    d_a_mu = rays @ a_mu.T
    t = d_a_mu / d_a_d
    maha = ((mean * a_mu).sum(1)[None] - t * d_a_mu).clamp(min=0.0)
    alpha = (opacity[None] * torch.exp(-0.5 * maha)).clamp(max=ALPHA_MAX)
    alpha = torch.where((t > 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
    t, order = torch.sort(torch.where(alpha > 0, t, torch.full_like(t, float("inf"))), 1)
    log_t = torch.cumsum(torch.log1p(-alpha.gather(1, order)), 1)  # log transmittance after each
    crossed = log_t <= np.log(0.5)
    first = crossed.double().argmax(1)
    depth = torch.where(crossed.any(1), t.gather(1, first[:, None])[:, 0], torch.full_like(t[:, 0], float("nan")))
    return depth, 1.0 - torch.exp(log_t[:, -1])


def _to_camera(means, precision, c2w: np.ndarray):
    w2c = torch.linalg.inv(torch.as_tensor(np.asarray(c2w, np.float64)))
    r, tr = w2c[:3, :3], w2c[:3, 3]
    return means @ r.T + tr, r @ precision @ r.T


def surface_depths_reference(
    params: dict[str, torch.Tensor], cam_to_world: np.ndarray, Ks: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """`surface_depths` with every Gaussian on every ray (no culling): the obviously-correct version."""
    means, precision, opacity, _ = _gaussians(params)
    depth = np.zeros((len(cam_to_world), height, width))
    alpha = np.zeros_like(depth)
    for i, (c2w, K) in enumerate(zip(cam_to_world, Ks)):
        m, p = _to_camera(means, precision, c2w)
        d, a = _composite(_pixel_rays(K, width, height), m, p, opacity)
        depth[i], alpha[i] = d.reshape(height, width).numpy(), a.reshape(height, width).numpy()
    return depth, alpha


def surface_depths(
    params: dict[str, torch.Tensor],
    cam_to_world: np.ndarray,
    Ks: np.ndarray,
    width: int,
    height: int,
    tile: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """(z-depth [N,H,W], NaN where the ray's alpha stays below one half; alpha [N,H,W]) of the splats
    `params` (raw, as optimised) seen from `cam_to_world` [N,4,4] (OpenCV) with `Ks` [N,3,3], in the
    splats' units. Each `tile` x `tile` block of pixels composites only the Gaussians whose bounding
    sphere meets the cone around its rays."""
    means, precision, opacity, radius = _gaussians(params)
    depth = np.full((len(cam_to_world), height, width), np.nan)
    alpha = np.zeros_like(depth)
    for i, (c2w, K) in enumerate(zip(cam_to_world, Ks)):
        m, p = _to_camera(means, precision, c2w)
        front = m[:, 2] + radius > 0
        m, p, o, r = m[front], p[front], opacity[front], radius[front]
        rays = _pixel_rays(K, width, height).reshape(height, width, 3)
        dist = m.norm(dim=1)
        inside = dist <= r  # the camera sits in the Gaussian's sphere: it meets every ray
        spread = torch.asin((r / dist.clamp(min=1e-12)).clamp(max=1.0))
        for y0 in range(0, height, tile):
            for x0 in range(0, width, tile):
                block = rays[y0 : y0 + tile, x0 : x0 + tile]
                bh, bw = block.shape[:2]
                unit = block.reshape(-1, 3) / block.reshape(-1, 3).norm(dim=1, keepdim=True)
                axis = unit.mean(0)
                axis = axis / axis.norm()
                half = torch.acos((unit @ axis).clamp(max=1.0)).max()
                angle = torch.acos(((m @ axis) / dist.clamp(min=1e-12)).clamp(-1.0, 1.0))
                keep = inside | (angle <= half + spread)
                d, a = _composite(block.reshape(-1, 3), m[keep], p[keep], o[keep])
                depth[i, y0 : y0 + bh, x0 : x0 + bw] = d.reshape(bh, bw).numpy()
                alpha[i, y0 : y0 + bh, x0 : x0 + bw] = a.reshape(bh, bw).numpy()
    return depth, alpha
