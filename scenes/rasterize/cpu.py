"""The fast CPU rasterizer: numba kernels behind torch.autograd.Functions.

Graph: projection (means, quats, scales → means2d, conics, depths, and each visible Gaussian's
compositing record) with the tile binning riding on it (no gradient) → optional SH colours
(means, coefficients → colours) → pixel compositing (means2d, conics, colours, opacities →
image). When nothing requires a gradient, `render_lean` runs the same kernels on numpy arrays
with no autograd bookkeeping, the SH colours inside the projection's parallel region. Float32
throughout (float64 inputs are cast, and the outputs cast back).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from scenes.rasterize.kernels_pixels import rasterize_bwd, rasterize_fwd, reduce_intersections
from scenes.rasterize.kernels_projection import empty_projection, project_bwd, project_fwd
from scenes.rasterize.kernels_sh import camera_centres, sh_bwd, sh_fwd
from scenes.rasterize.kernels_tiles import intersect_tiles


def _np(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.float32 and t.is_contiguous():  # the usual case: skip two no-op tensor calls
        return t.detach().numpy()
    return t.detach().to(torch.float32).contiguous().numpy()


def cpu_tile_size(n_cameras: int, width: int, height: int) -> int:
    """The CPU path's default tile size: 32 px while that leaves at least two tiles per thread, else
    16. Every Gaussian crossing a tile border is visited once per tile it touches, so larger tiles
    mean fewer visits (the benchmark room at 64x64: 12.2k visits with 16-px tiles, 9.2k with 32-px
    ones, -8 % forward time); smaller ones keep more threads busy."""
    tiles = n_cameras * -(-width // 32) * -(-height // 32)
    return 32 if tiles >= 2 * numba.get_num_threads() else 16


NO_SH = (np.empty((0, 1, 3), np.float32), np.empty((0, 0, 3), np.float32))
"""What `project_fwd` takes for SH coefficients and colours when it evaluates no SH."""


def _project(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far, radius_clip, tile_size,
             coeffs=None, sh_degree=None):
    """Projection and tile binning on float32 numpy arrays: (means2d, conics, depths, radii,
    records, offsets, ids, colours); with SH coefficients it evaluates the colours [C,N,3] too
    (else colours is None)."""
    n_cam, n = viewmats.shape[0], means.shape[0]
    means2d, conics, depths, radii, records, *binning = empty_projection(n_cam, n, width, height, tile_size)
    coeffs, colors = NO_SH if sh_degree is None else (coeffs, np.empty((n_cam, n, 3), np.float32))
    project_fwd(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far, radius_clip,
                tile_size, coeffs, -1 if sh_degree is None else sh_degree, means2d, conics, depths, radii, records,
                colors, *binning)
    offsets, ids = intersect_tiles(*binning, -(-width // tile_size))
    return means2d, conics, depths, radii, records, offsets, ids, None if sh_degree is None else colors


class _Projection(torch.autograd.Function):
    """Projection (differentiable in means, quats, scales) and the tile binning that rides on it."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far, radius_clip,
                tile_size):
        args = (_np(means), _np(quats), _np(scales))
        cams = (_np(viewmats), _np(Ks))
        means2d, conics, depths, radii, records, offsets, ids, _ = _project(
            *args, _np(opacities), *cams, int(width), int(height), float(eps2d), float(near), float(far),
            float(radius_clip), int(tile_size)
        )
        ctx.arrays = (*args, *cams, int(width), int(height), float(eps2d), radii)
        aux = tuple(torch.from_numpy(x) for x in (radii, records, offsets, ids))
        ctx.mark_non_differentiable(*aux)
        return (torch.from_numpy(means2d), torch.from_numpy(conics), torch.from_numpy(depths), *aux)

    @staticmethod
    def backward(ctx, v_means2d, v_conics, v_depths, *_v_aux):
        means, quats, scales, viewmats, ks, width, height, eps2d, radii = ctx.arrays
        v_means, v_quats, v_scales = np.empty_like(means), np.empty_like(quats), np.empty_like(scales)
        project_bwd(
            means,
            quats,
            scales,
            viewmats,
            ks,
            width,
            height,
            eps2d,
            radii,
            _np(v_means2d),
            _np(v_conics),
            _np(v_depths),
            v_means,
            v_quats,
            v_scales,
        )
        return (torch.from_numpy(v_means), torch.from_numpy(v_quats), torch.from_numpy(v_scales)) + (None,) * 10


class _SHColors(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, coeffs, campos, radii, degree):
        colors = np.empty((campos.shape[0], means.shape[0], 3), np.float32)
        arrays = (_np(means), _np(coeffs), campos, radii, int(degree))
        sh_fwd(*arrays, colors)
        ctx.arrays = arrays
        return torch.from_numpy(colors)

    @staticmethod
    def backward(ctx, v_colors):
        means, coeffs, campos, radii, degree = ctx.arrays
        v_coeffs, v_means = np.empty_like(coeffs), np.empty_like(means)
        sh_bwd(means, coeffs, campos, radii, degree, _np(v_colors), v_coeffs, v_means)
        return torch.from_numpy(v_means), torch.from_numpy(v_coeffs), None, None, None


class _Composite(torch.autograd.Function):
    """Compositing of the visible Gaussians' records. means2d, conics and opacities come in as
    tensors only so autograd routes their gradients: the kernels read the same values from the
    records."""

    @staticmethod
    def forward(
        ctx,
        means2d,
        conics,
        colors,
        opacities,
        records,
        backgrounds,
        offsets,
        ids,
        width,
        height,
        tile_size,
        absgrad,
    ):
        n_cam, n_ch = colors.shape[0], colors.shape[2]
        bg = _np(backgrounds) if backgrounds is not None else np.zeros((0, n_ch), np.float32)
        arrays = (records, _np(colors), bg, offsets, ids, width, height, tile_size)
        out = np.empty((n_cam, height, width, n_ch), np.float32)
        trans = np.empty((n_cam, height, width), np.float32)
        last = np.empty((n_cam, height, width), np.int32)
        rasterize_fwd(*arrays, out, trans, last)
        ctx.arrays = (*arrays, trans, last)
        ctx.absgrad = absgrad
        ctx.has_bg = backgrounds is not None
        ctx.save_for_backward(means2d)
        trans_t = torch.from_numpy(trans)
        return torch.from_numpy(out), (1.0 - trans_t)[..., None]

    @staticmethod
    def backward(ctx, v_out, v_alphas):
        arrays = ctx.arrays
        records, col, bg, offsets, ids, width, height, tile_size, trans, last = arrays
        m = ids.shape[0]
        n_ch = col.shape[2]
        slots = (
            np.empty((m, 2), np.float32),
            np.empty((m, 3), np.float32),
            np.empty((m, n_ch), np.float32),
            np.empty(m, np.float32),
            np.empty((m, 2), np.float32),
        )
        v_out_np = _np(v_out)
        rasterize_bwd(*arrays, v_out_np, _np(v_alphas[..., 0]), *slots)
        n_cam, n = records.shape[0], records.shape[1]
        grads = (
            np.empty((n_cam, n, 2), np.float32),
            np.empty((n_cam, n, 3), np.float32),
            np.empty_like(col),
            np.empty((n_cam, n), np.float32),
            np.empty((n_cam, n, 2), np.float32),
        )
        n_tiles = math.ceil(width / tile_size) * math.ceil(height / tile_size)
        reduce_intersections(offsets, ids, n_tiles, *slots, *grads)
        v_m2, v_con, v_col, v_opa, abs_m2 = (torch.from_numpy(g) for g in grads)
        if ctx.absgrad:
            (means2d,) = ctx.saved_tensors
            means2d.absgrad = abs_m2
        v_bg = None
        if ctx.has_bg and ctx.needs_input_grad[5]:
            v_bg = (v_out * torch.from_numpy(trans)[..., None]).sum((1, 2))
        return v_m2, v_con, v_col, v_opa, None, v_bg, None, None, None, None, None, None


def _with_depth(feats, depths, backgrounds, render_mode, n_cam, xp_cat, xp_zeros):
    if render_mode in ("RGB+D", "RGB+ED"):
        feats = xp_cat(feats, depths[..., None])
        if backgrounds is not None:
            backgrounds = xp_cat(backgrounds, xp_zeros(n_cam))
    elif render_mode in ("D", "ED"):
        feats = depths[..., None]
        if backgrounds is not None:
            backgrounds = xp_zeros(n_cam)
    return feats, backgrounds


def render_autograd(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near_plane: float,
    far_plane: float,
    radius_clip: float,
    eps2d: float,
    sh_degree: int | None,
    tile_size: int,
    backgrounds: torch.Tensor | None,
    render_mode: str,
    absgrad: bool,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Differentiable fast path; returns (colours [C,H,W,D'], alphas [C,H,W,1], meta)."""
    dtype = means.dtype
    means, quats, scales, opacities, colors = (t.to(torch.float32) for t in (means, quats, scales, opacities, colors))
    if backgrounds is not None:
        backgrounds = backgrounds.to(torch.float32)
    n_cam, n = viewmats.shape[0], means.shape[0]
    means2d, conics, depths, radii, records, offsets, ids = _Projection.apply(
        means,
        quats,
        scales,
        opacities.detach(),
        viewmats,
        Ks,
        width,
        height,
        eps2d,
        near_plane,
        far_plane,
        radius_clip,
        tile_size,
    )
    radii_np = radii.numpy()
    if sh_degree is None:
        feats = colors if colors.dim() == 3 else colors[None].expand(n_cam, n, -1)
    else:
        feats = _SHColors.apply(means, colors, camera_centres(_np(viewmats)), radii_np, sh_degree)
    feats, backgrounds = _with_depth(
        feats,
        depths,
        backgrounds,
        render_mode,
        n_cam,
        lambda a, b: torch.cat([a, b], -1),
        lambda c: torch.zeros(c, 1),
    )
    ops = opacities[None].expand(n_cam, n)
    out, alphas = _Composite.apply(
        means2d,
        conics,
        feats,
        ops,
        records.numpy(),
        backgrounds,
        offsets.numpy(),
        ids.numpy(),
        int(width),
        int(height),
        int(tile_size),
        absgrad,
    )
    if render_mode in ("ED", "RGB+ED"):
        out = torch.cat([out[..., :-1], out[..., -1:] / alphas.clamp(min=1e-10)], -1)
    meta = _meta(means2d, radii, depths, conics, ops, width, height, tile_size, offsets, ids)
    return out.to(dtype), alphas.to(dtype), meta


def render_lean(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near_plane: float,
    far_plane: float,
    radius_clip: float,
    eps2d: float,
    sh_degree: int | None,
    tile_size: int,
    backgrounds: torch.Tensor | None,
    render_mode: str,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Forward only, no autograd: the environment/render path. Same outputs as `render_autograd`."""
    dtype = means.dtype
    n_cam = viewmats.shape[0]
    means_np, opac_np = _np(means), _np(opacities)
    means2d, conics, depths, radii, records, offsets, ids, feats = _project(
        means_np, _np(quats), _np(scales), opac_np, _np(viewmats), _np(Ks), int(width), int(height), float(eps2d),
        float(near_plane), float(far_plane), float(radius_clip), int(tile_size),
        None if sh_degree is None else _np(colors), sh_degree,
    )
    if sh_degree is None:
        col = _np(colors)
        feats = col if col.ndim == 3 else np.repeat(col[None], n_cam, axis=0)
    bg = _np(backgrounds) if backgrounds is not None else None
    feats, bg = _with_depth(
        feats,
        depths,
        bg,
        render_mode,
        n_cam,
        lambda a, b: np.concatenate([a, b], -1),
        lambda c: np.zeros((c, 1), np.float32),
    )
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    n_ch = feats.shape[2]
    bg = np.zeros((0, n_ch), np.float32) if bg is None else np.ascontiguousarray(bg, dtype=np.float32)
    out = np.empty((n_cam, height, width, n_ch), np.float32)
    trans = np.empty((n_cam, height, width), np.float32)
    last = np.empty((n_cam, height, width), np.int32)
    rasterize_fwd(records, feats, bg, offsets, ids, int(width), int(height), int(tile_size), out, trans, last)
    alphas = 1.0 - trans[..., None]
    if render_mode in ("ED", "RGB+ED"):
        out[..., -1:] /= np.maximum(alphas, 1e-10)
    meta = _meta(
        torch.from_numpy(means2d),
        torch.from_numpy(radii),
        torch.from_numpy(depths),
        torch.from_numpy(conics),
        torch.from_numpy(opac_np).expand(n_cam, -1),
        width,
        height,
        tile_size,
        torch.from_numpy(offsets),
        torch.from_numpy(ids),
    )
    return torch.from_numpy(out).to(dtype), torch.from_numpy(alphas).to(dtype), meta


def _meta(means2d, radii_xy, depths, conics, opacities, width, height, tile_size, offsets, ids) -> dict:
    r = radii_xy.numpy()  # max of the per-axis radii in numpy: cheaper than a torch reduction
    return {
        "means2d": means2d,
        "radii": torch.from_numpy(np.maximum(r[..., 0], r[..., 1])),
        "radii_xy": radii_xy,
        "depths": depths,
        "conics": conics,
        "opacities": opacities,
        "width": width,
        "height": height,
        "n_cameras": means2d.shape[0],
        "tile_size": tile_size,
        "isect_offsets": offsets,
        "flatten_ids": ids,
    }
