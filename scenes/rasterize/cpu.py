"""The fast CPU rasterizer: numba kernels behind torch.autograd.Functions.

Graph: projection (means, quats, scales → means2d, conics, depths, and each visible Gaussian's
compositing record) with the tile binning riding on it (no gradient) → optional SH colours
(means, coefficients → colours) → pixel compositing (means2d, conics, colours, opacities →
image). `render_cpu` is the one driver; it runs that graph on one of two paths: `_Autograd`
(the Functions, when an input requires a gradient) or `_Lean` (the same forward kernels on numpy
arrays with no autograd bookkeeping, the SH colours inside the projection's parallel region: the
environments' path). Float32 throughout (float64 inputs are cast, and the outputs cast back).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import torch

from scenes.rasterize.checks import RasterInputs, RasterOptions, with_depth_channel
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
    mean fewer visits (BENCHMARKS.md, *CPU rasterizer*); smaller ones keep more threads busy."""
    tiles = n_cameras * -(-width // 32) * -(-height // 32)
    return 32 if tiles >= 2 * numba.get_num_threads() else 16


NO_SH = (np.empty((0, 1, 3), np.float32), np.empty((0, 0, 3), np.float32))
"""What `project_fwd` takes for SH coefficients and colours when it evaluates no SH."""


class _Projected(NamedTuple):
    """What the projection and tile binning give the rest of the pipeline (tensors or arrays)."""

    means2d: object
    conics: object
    depths: object
    radii: object
    records: object
    offsets: object
    ids: object
    colors: object
    """SH colours [C,N,3] when the projection evaluated them, else None."""


def _project(means, quats, scales, opacities, viewmats, Ks, options: RasterOptions, coeffs=None) -> _Projected:
    """Projection and tile binning on float32 numpy arrays; with SH coefficients it evaluates the
    colours [C,N,3] (degree `options.sh_degree`) in the same parallel region."""
    o = options
    width, height, tile_size = int(o.width), int(o.height), int(o.tile_size)
    n_cam, n = viewmats.shape[0], means.shape[0]
    means2d, conics, depths, radii, records, *binning = empty_projection(n_cam, n, width, height, tile_size)
    with_sh = coeffs is not None
    coeffs, colors = (coeffs, np.empty((n_cam, n, 3), np.float32)) if with_sh else NO_SH
    project_fwd(
        means,
        quats,
        scales,
        opacities,
        viewmats,
        Ks,
        width,
        height,
        float(o.eps2d),
        float(o.near_plane),
        float(o.far_plane),
        float(o.radius_clip),
        tile_size,
        coeffs,
        o.sh_degree if with_sh else -1,
        means2d,
        conics,
        depths,
        radii,
        records,
        colors,
        *binning,
    )
    offsets, ids = intersect_tiles(*binning, -(-width // tile_size))
    return _Projected(means2d, conics, depths, radii, records, offsets, ids, colors if with_sh else None)


def _composite_fwd(records, feats, backgrounds, offsets, ids, options: RasterOptions):
    """Compositing on float32 numpy arrays: (image [C,H,W,D], transmittance [C,H,W], index of the
    last Gaussian composited [C,H,W], the backgrounds the kernel read)."""
    width, height = int(options.width), int(options.height)
    n_cam, n_ch = feats.shape[0], feats.shape[2]
    bg = np.zeros((0, n_ch), np.float32) if backgrounds is None else backgrounds
    out = np.empty((n_cam, height, width, n_ch), np.float32)
    trans = np.empty((n_cam, height, width), np.float32)
    last = np.empty((n_cam, height, width), np.int32)
    rasterize_fwd(records, feats, bg, offsets, ids, width, height, int(options.tile_size), out, trans, last)
    return out, trans, last, bg


class _Projection(torch.autograd.Function):
    """Projection (differentiable in means, quats, scales) and the tile binning that rides on it."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, options):
        args = (_np(means), _np(quats), _np(scales))
        cams = (_np(viewmats), _np(Ks))
        p = _project(*args, _np(opacities), *cams, options)
        ctx.arrays = (*args, *cams, int(options.width), int(options.height), float(options.eps2d), p.radii)
        aux = tuple(torch.from_numpy(x) for x in (p.radii, p.records, p.offsets, p.ids))
        ctx.mark_non_differentiable(*aux)
        return (torch.from_numpy(p.means2d), torch.from_numpy(p.conics), torch.from_numpy(p.depths), *aux)

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
        return (torch.from_numpy(v_means), torch.from_numpy(v_quats), torch.from_numpy(v_scales)) + (None,) * 4


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
    def forward(ctx, means2d, conics, colors, opacities, backgrounds, records, offsets, ids, options):
        col = _np(colors)
        out, trans, last, bg = _composite_fwd(
            records, col, None if backgrounds is None else _np(backgrounds), offsets, ids, options
        )
        ctx.arrays = (
            records,
            col,
            bg,
            offsets,
            ids,
            int(options.width),
            int(options.height),
            int(options.tile_size),
            trans,
            last,
        )
        ctx.absgrad = options.absgrad
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
        if ctx.has_bg and ctx.needs_input_grad[4]:
            v_bg = (v_out * torch.from_numpy(trans)[..., None]).sum((1, 2))
        return v_m2, v_con, v_col, v_opa, v_bg, None, None, None, None


class _Autograd:
    """The pipeline's steps on tensors, through the autograd Functions above."""

    @staticmethod
    def project(x: RasterInputs, options: RasterOptions) -> _Projected:
        p = _Projection.apply(x.means, x.quats, x.scales, x.opacities.detach(), x.viewmats, x.Ks, options)
        return _Projected(*p, None)

    @staticmethod
    def colors(x: RasterInputs, p: _Projected, options: RasterOptions):
        if options.sh_degree is None:
            n_cam, n = x.viewmats.shape[0], x.means.shape[0]
            return x.colors if x.colors.dim() == 3 else x.colors[None].expand(n_cam, n, -1)
        return _SHColors.apply(x.means, x.colors, camera_centres(_np(x.viewmats)), p.radii.numpy(), options.sh_degree)

    @staticmethod
    def cat(a, b):
        return torch.cat([a, b], -1)

    @staticmethod
    def zeros(n_cam):
        return torch.zeros(n_cam, 1)

    @staticmethod
    def opacities(x: RasterInputs, n_cam: int) -> torch.Tensor:
        return x.opacities[None].expand(n_cam, x.means.shape[0])

    @staticmethod
    def composite(p: _Projected, feats, opacities, backgrounds, options: RasterOptions):
        return _Composite.apply(
            p.means2d,
            p.conics,
            feats,
            opacities,
            backgrounds,
            p.records.numpy(),
            p.offsets.numpy(),
            p.ids.numpy(),
            options,
        )

    @staticmethod
    def expected_depth(out, alphas):
        return torch.cat([out[..., :-1], out[..., -1:] / alphas.clamp(min=1e-10)], -1)

    @staticmethod
    def tensor(t):
        return t


class _Lean:
    """The pipeline's steps on float32 numpy arrays, forward kernels only: no autograd bookkeeping,
    SH colours evaluated inside the projection's parallel region."""

    @staticmethod
    def project(x: RasterInputs, options: RasterOptions) -> _Projected:
        coeffs = None if options.sh_degree is None else x.colors
        return _project(x.means, x.quats, x.scales, x.opacities, x.viewmats, x.Ks, options, coeffs)

    @staticmethod
    def colors(x: RasterInputs, p: _Projected, options: RasterOptions):
        if p.colors is not None:
            return p.colors
        return x.colors if x.colors.ndim == 3 else np.repeat(x.colors[None], x.viewmats.shape[0], axis=0)

    @staticmethod
    def cat(a, b):
        return np.concatenate([a, b], -1)

    @staticmethod
    def zeros(n_cam):
        return np.zeros((n_cam, 1), np.float32)

    @staticmethod
    def opacities(x: RasterInputs, n_cam: int) -> torch.Tensor:
        return torch.from_numpy(x.opacities).expand(n_cam, -1)

    @staticmethod
    def composite(p: _Projected, feats, opacities, backgrounds, options: RasterOptions):
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        bg = None if backgrounds is None else np.ascontiguousarray(backgrounds, dtype=np.float32)
        out, trans, _, _ = _composite_fwd(p.records, feats, bg, p.offsets, p.ids, options)
        return out, 1.0 - trans[..., None]

    @staticmethod
    def expected_depth(out, alphas):
        out[..., -1:] /= np.maximum(alphas, 1e-10)
        return out

    tensor = staticmethod(torch.from_numpy)


def render_cpu(inputs: RasterInputs, options: RasterOptions) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The CPU rasterizer: (colours [C,H,W,D'], alphas [C,H,W,1], meta). Differentiable when an
    input requires a gradient (and grad mode is on); otherwise the lean forward-only path, with
    the same outputs."""
    dtype = inputs.means.dtype
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        f32 = [t.to(torch.float32) for t in inputs[:5]]  # means, quats, scales, opacities, colors
        bg = None if inputs.backgrounds is None else inputs.backgrounds.to(torch.float32)
        path, x = _Autograd, RasterInputs(*f32, inputs.viewmats, inputs.Ks, bg)
    else:
        bg = None if inputs.backgrounds is None else _np(inputs.backgrounds)
        path, x = _Lean, RasterInputs(*map(_np, inputs[:7]), bg)
    n_cam = x.viewmats.shape[0]
    p = path.project(x, options)
    feats = path.colors(x, p, options)
    feats, backgrounds = with_depth_channel(
        feats, p.depths, x.backgrounds, options.render_mode, n_cam, path.cat, path.zeros
    )
    opacities = path.opacities(x, n_cam)
    out, alphas = path.composite(p, feats, opacities, backgrounds, options)
    if options.expected_depth:
        out = path.expected_depth(out, alphas)
    t = path.tensor
    meta = _meta(t(p.means2d), t(p.radii), t(p.depths), t(p.conics), opacities, t(p.offsets), t(p.ids), options)
    return t(out).to(dtype), t(alphas).to(dtype), meta


def _meta(means2d, radii_xy, depths, conics, opacities, offsets, ids, options: RasterOptions) -> dict:
    r = radii_xy.numpy()  # max of the per-axis radii in numpy: cheaper than a torch reduction
    return {
        "means2d": means2d,
        "radii": torch.from_numpy(np.maximum(r[..., 0], r[..., 1])),
        "radii_xy": radii_xy,
        "depths": depths,
        "conics": conics,
        "opacities": opacities,
        "width": options.width,
        "height": options.height,
        "n_cameras": means2d.shape[0],
        "tile_size": options.tile_size,
        "isect_offsets": offsets,
        "flatten_ids": ids,
    }
