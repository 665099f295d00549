"""CUDA tensors go to gsplat (an optional dependency, imported only when needed)."""

from __future__ import annotations

import torch

from wmcore.errors import UserInputError


def render_gsplat(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """`gsplat.rasterization` (classic, unpacked); meta["radii"] is reduced to [C,N] like the CPU path."""
    try:
        import gsplat
    except ImportError as e:
        raise UserInputError(
            "rasterization: CUDA tensors need gsplat; install it with "
            "`pip install -c constraints.txt gsplat` (the `cuda` extra), or pass CPU tensors"
        ) from e
    out, alphas, meta = gsplat.rasterization(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        packed=False,
        rasterize_mode="classic",
        **kwargs,
    )
    radii = meta["radii"]
    if radii.dim() == 3:  # gsplat >= 1.5: per-axis radii
        meta["radii_xy"] = radii
        meta["radii"] = radii.amax(-1)
    return out, alphas, meta
