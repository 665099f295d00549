"""Slow, dense, obviously-correct rasterizer in pure torch: the yardstick for the fast path.

Every Gaussian is evaluated at every pixel, sorted by depth, and composited with a cumulative
product; autograd supplies the gradients. Memory is O(C*H*W*N): small cases only.
The semantics are gsplat 1.5's classic, unpacked `rasterization` (see `project_reference`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from scenes.rasterize.api import rasterization
from scenes.rasterize.checks import (
    ALPHA_MAX,
    ALPHA_THRESHOLD,
    TRANSMITTANCE_MIN,
    RasterInputs,
    RasterOptions,
    with_depth_channel,
)
from scenes.rasterize.sh_basis import sh_basis


def unit_quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [...,3,3] from unit wxyz quaternions [...,4]."""
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(q.shape[:-1] + (3, 3))


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [N,3,3] from wxyz quaternions [N,4] (normalised here, as in gsplat)."""
    return unit_quat_to_rotmat(F.normalize(quats, dim=-1)).reshape(-1, 3, 3)


def project_reference(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    eps2d: float,
    near_plane: float,
    far_plane: float,
    radius_clip: float,
) -> dict[str, torch.Tensor]:
    """EWA projection of 3D Gaussians to each camera (gsplat 1.5 `fully_fused_projection`).

    Returns means2d [C,N,2], conics [C,N,3] (inverse 2D covariance a, b, c), depths [C,N] and
    radii_xy [C,N,2] (int32, 0 = culled). Culled Gaussians get zero means2d and conics.
    """
    rot = quat_to_rotmat(quats)
    m = rot * scales[:, None, :]
    covars = m @ m.transpose(-1, -2)  # [N,3,3]
    r_w, t_w = viewmats[:, :3, :3], viewmats[:, :3, 3]
    pc = torch.einsum("cij,nj->cni", r_w, means) + t_w[:, None, :]  # [C,N,3]
    cov_c = r_w[:, None] @ covars[None] @ r_w.transpose(-1, -2)[:, None]  # [C,N,3,3]
    x, y, z = pc.unbind(-1)
    in_depth = (z >= near_plane) & (z <= far_plane)
    z = torch.where(in_depth, z, torch.ones_like(z))  # keeps the gradient of culled entries finite
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = z * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x / z))
    ty = z * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y / z))
    zero = torch.zeros_like(z)
    jac = torch.stack([fx / z, zero, -fx * tx / z**2, zero, fy / z, -fy * ty / z**2], -1).reshape(*z.shape, 2, 3)
    cov2d = jac @ cov_c @ jac.transpose(-1, -2)
    a = cov2d[..., 0, 0] + eps2d
    b = cov2d[..., 0, 1]
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * b
    valid = in_depth & (det > 0)
    det = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], -1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)

    with torch.no_grad():  # bounding boxes are not differentiable (gsplat)
        op = opacities[None].expand_as(z)
        valid = valid & (op >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp_max(3.33)
        half = 0.5 * (a + c)
        v1 = half + torch.sqrt((half * half - det).clamp_min(0.01))
        r1 = extend * torch.sqrt(v1)
        rx = torch.ceil(torch.minimum(extend * torch.sqrt(a.clamp_min(0)), r1))
        ry = torch.ceil(torch.minimum(extend * torch.sqrt(c.clamp_min(0)), r1))
        valid = valid & (~((rx <= radius_clip) & (ry <= radius_clip)))
        u, v = means2d[..., 0], means2d[..., 1]
        valid = valid & (~((u + rx <= 0) | (u - rx >= width) | (v + ry <= 0) | (v - ry >= height)))
        radii_xy = torch.where(valid[..., None], torch.stack([rx, ry], -1), 0).to(torch.int32)

    keep = valid[..., None].to(means.dtype)
    return {"means2d": means2d * keep, "conics": conics * keep, "depths": pc[..., 2], "radii_xy": radii_xy}


def sh_colors_reference(
    means: torch.Tensor, coeffs: torch.Tensor, viewmats: torch.Tensor, sh_degree: int
) -> torch.Tensor:
    """View-dependent colours [C,N,3]: SH at the unit direction camera centre → mean, +0.5, ≥ 0."""
    campos = torch.linalg.inv(viewmats)[:, :3, 3]
    dirs = F.normalize(means[None] - campos[:, None], dim=-1)  # [C,N,3]
    basis = sh_basis(dirs, sh_degree)  # [C,N,K]
    k = basis.shape[-1]
    return torch.clamp_min(torch.einsum("cnk,nkd->cnd", basis, coeffs[:, :k]) + 0.5, 0.0)


def tile_mask(means2d: torch.Tensor, radii_xy: torch.Tensor, width: int, height: int, tile_size: int) -> torch.Tensor:
    """[C,H,W,N] True where the pixel's tile lies in the Gaussian's tile rectangle (gsplat isect_tiles)."""
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    r = radii_xy.to(means2d.dtype)
    t_lo = torch.floor((means2d - r) / tile_size)
    t_hi = torch.ceil((means2d + r) / tile_size)
    lim = torch.tensor([tiles_x, tiles_y], dtype=means2d.dtype, device=means2d.device)
    t_lo = torch.minimum(t_lo.clamp_min(0), lim)
    t_hi = torch.minimum(t_hi.clamp_min(0), lim)
    px_tile = (torch.arange(width, device=means2d.device) // tile_size).to(means2d.dtype)
    py_tile = (torch.arange(height, device=means2d.device) // tile_size).to(means2d.dtype)
    in_x = (px_tile[None, :, None] >= t_lo[:, None, :, 0]) & (px_tile[None, :, None] < t_hi[:, None, :, 0])
    in_y = (py_tile[None, :, None] >= t_lo[:, None, :, 1]) & (py_tile[None, :, None] < t_hi[:, None, :, 1])
    has = (radii_xy > 0).all(-1)
    return in_y[:, :, None, :] & in_x[:, None, :, :] & has[:, None, None, :]


def composite_reference(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    mask: torch.Tensor,
    width: int,
    height: int,
    backgrounds: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Front-to-back alpha compositing at pixel centres; returns colours [C,H,W,D], alphas [C,H,W,1]."""
    dtype, device = means2d.dtype, means2d.device
    py, px = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    order = torch.argsort(depths, dim=-1, stable=True)  # [C,N]
    take = lambda t: torch.gather(t, 1, order.reshape(*order.shape, *([1] * (t.dim() - 2))).expand_as(t))  # noqa: E731
    m2, con, col, op = take(means2d), take(conics), take(colors), take(opacities)
    mask = torch.gather(mask, 3, order[:, None, None, :].expand_as(mask))
    dx = m2[:, None, None, :, 0] - px[None, :, :, None]  # [C,H,W,N]
    dy = m2[:, None, None, :, 1] - py[None, :, :, None]
    sigma = (
        0.5 * (con[:, None, None, :, 0] * dx * dx + con[:, None, None, :, 2] * dy * dy)
        + con[:, None, None, :, 1] * dx * dy
    )
    alpha = torch.clamp_max(op[:, None, None, :] * torch.exp(-sigma), ALPHA_MAX)
    alpha = torch.where(mask & (sigma >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))
    with torch.no_grad():  # stop before the Gaussian that would take transmittance to <= 1e-4
        go_on = torch.cumprod(1 - alpha, dim=-1) > TRANSMITTANCE_MIN
    alpha = alpha * go_on
    trans_after = torch.cumprod(1 - alpha, dim=-1)
    trans_before = torch.cat([torch.ones_like(trans_after[..., :1]), trans_after[..., :-1]], -1)
    weights = alpha * trans_before  # [C,H,W,N]
    out = torch.einsum("chwn,cnd->chwd", weights, col)
    t_final = trans_after[..., -1:] if trans_after.shape[-1] else torch.ones_like(out[..., :1])
    if backgrounds is not None:
        out = out + t_final * backgrounds[:, None, None, :]
    return out, 1 - t_final


def render_reference(inputs: RasterInputs, options: RasterOptions) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The dense backend of `rasterization`: one checked call (tile size chosen), by autograd."""
    means, quats, scales, opacities, colors, viewmats, Ks, backgrounds = inputs
    o = options
    width, height, tile_size, sh_degree = o.width, o.height, o.tile_size, o.sh_degree
    proj = project_reference(
        means, quats, scales, opacities, viewmats, Ks, width, height, o.eps2d, o.near_plane, o.far_plane, o.radius_clip
    )
    c, n = viewmats.shape[0], means.shape[0]
    if sh_degree is None:
        feats = colors if colors.dim() == 3 else colors[None].expand(c, n, -1)
    else:
        feats = sh_colors_reference(means, colors, viewmats, sh_degree)
    depths = proj["depths"]
    feats, backgrounds = with_depth_channel(
        feats,
        depths,
        backgrounds,
        o.render_mode,
        c,
        lambda a, b: torch.cat([a, b], -1),
        lambda k: backgrounds.new_zeros(k, 1),
    )
    ops = opacities[None].expand(c, n)
    mask = tile_mask(proj["means2d"].detach(), proj["radii_xy"], width, height, tile_size)
    out, alphas = composite_reference(
        proj["means2d"], proj["conics"], feats, ops, depths, mask, width, height, backgrounds
    )
    if o.expected_depth:
        out = torch.cat([out[..., :-1], out[..., -1:] / alphas.clamp(min=1e-10)], -1)
    meta = {
        "means2d": proj["means2d"],
        "radii": proj["radii_xy"].amax(-1),
        "radii_xy": proj["radii_xy"],
        "depths": depths,
        "conics": proj["conics"],
        "opacities": ops,
        "width": width,
        "height": height,
        "n_cameras": c,
        "tile_size": tile_size,
    }
    return out, alphas, meta


def rasterization_reference(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """`rasterization` (same arguments and meaning; tile_size=None is 16) rendered densely by
    `render_reference`, differentiable by autograd. `absgrad` is accepted for signature parity
    but not computed (no `means2d.absgrad`)."""
    return rasterization(*args, **kwargs, backend=render_reference)
