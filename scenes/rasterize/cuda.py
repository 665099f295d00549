"""CUDA tensors go to gsplat (an optional dependency, imported only when needed)."""

from __future__ import annotations

import torch

from scenes.rasterize.checks import RasterInputs, RasterOptions
from wmcore.errors import UserInputError


def render_gsplat(inputs: RasterInputs, options: RasterOptions) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """`gsplat.rasterization` (classic, unpacked); meta["radii"] is reduced to [C,N] like the CPU path."""
    try:
        import gsplat
    except ImportError as e:
        raise UserInputError(
            "rasterization: CUDA tensors need gsplat; install it with "
            "`pip install -c constraints.txt gsplat` (the `cuda` extra), or pass CPU tensors"
        ) from e
    o = options
    out, alphas, meta = gsplat.rasterization(
        *inputs[:7],
        o.width,
        o.height,
        near_plane=o.near_plane,
        far_plane=o.far_plane,
        radius_clip=o.radius_clip,
        eps2d=o.eps2d,
        sh_degree=o.sh_degree,
        tile_size=o.tile_size,
        backgrounds=inputs.backgrounds,
        render_mode=o.render_mode,
        absgrad=o.absgrad,
        packed=False,
        rasterize_mode="classic",
    )
    radii = meta["radii"]
    if radii.dim() == 3:  # gsplat >= 1.5: per-axis radii
        meta["radii_xy"] = radii
        meta["radii"] = radii.amax(-1)
    return out, alphas, meta
