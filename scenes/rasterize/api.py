"""`rasterization`: one function, gsplat's meaning, dispatched on the device of the inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from scenes.rasterize.checks import RasterInputs, RasterOptions, check_inputs
from scenes.rasterize.cpu import cpu_tile_size, render_cpu
from scenes.rasterize.cuda import render_gsplat

Backend = Callable[[RasterInputs, RasterOptions], tuple[torch.Tensor, torch.Tensor, dict]]
"""What renders one checked call: `render_gsplat`, `render_cpu` or `reference.render_reference`."""


def rasterization(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    tile_size: int | None = None,
    backgrounds: torch.Tensor | None = None,
    render_mode: str = "RGB",
    absgrad: bool = False,
    *,
    backend: Backend | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Render N 3D Gaussians into C cameras; gsplat 1.5 `rasterization` semantics (classic, unpacked).

    means [N,3]; quats [N,4] wxyz (normalised inside); scales [N,3] (positive, not log);
    opacities [N] in [0,1]; colors [N,D] or [C,N,D] features, or [N,K,3] SH coefficients when
    `sh_degree` is set; viewmats [C,4,4] world-to-camera (OpenCV); Ks [C,3,3].
    Returns render_colors [C,H,W,D'] (depth last for the D modes; ED = D / alpha), render_alphas
    [C,H,W,1] and meta with means2d [C,N,2] (call `.retain_grad()` for screen-space gradients;
    `.absgrad` is set when absgrad=True), radii [C,N] int32 (0 = culled; max of the per-axis
    radii_xy [C,N,2]), depths, conics, opacities [C,N], width, height, n_cameras, tile_size.
    tile_size=None lets the backend choose (the image is the same for any tile size): 16 for
    gsplat; on the CPU see `cpu_tile_size`. meta["tile_size"] says which was used.
    CUDA tensors are rendered by gsplat; CPU tensors by our numba rasterizer, which is
    differentiable w.r.t. means, quats, scales, opacities, colors and backgrounds. `backend`
    renders the checked call instead (tile_size=None is then 16): `rasterization_reference`
    passes the dense pure-torch one.
    """
    inputs = RasterInputs(means, quats, scales, opacities, colors, viewmats, Ks, backgrounds)
    options = RasterOptions(
        width, height, near_plane, far_plane, radius_clip, eps2d, sh_degree, tile_size, render_mode, absgrad
    )
    check_inputs(inputs, options)
    if backend is None:
        backend = render_gsplat if means.is_cuda else render_cpu
    if tile_size is None:
        cpu = backend is render_cpu
        options = replace(options, tile_size=cpu_tile_size(viewmats.shape[0], width, height) if cpu else 16)
    return backend(inputs, options)
