"""CUDA tensors go to gsplat (an optional dependency, imported only when needed)."""

from __future__ import annotations

from dataclasses import asdict

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
    # RasterOptions' fields are named as gsplat's keyword arguments.
    out, alphas, meta = gsplat.rasterization(
        *inputs[:7], backgrounds=inputs.backgrounds, packed=False, rasterize_mode="classic", **asdict(options)
    )
    radii = meta["radii"]
    if radii.dim() == 3:  # gsplat >= 1.5: per-axis radii
        meta["radii_xy"] = radii
        meta["radii"] = radii.amax(-1)
    return out, alphas, meta
