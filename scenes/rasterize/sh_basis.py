"""Real spherical-harmonics basis up to degree 3, with gsplat's constants and ordering.

The polynomial form assumes unit directions. The numba kernels use the same constants.
"""

from __future__ import annotations

import torch

C0 = 0.2820947917738781
C1 = 0.48860251190292
C2A = 1.092548430592079  # xz, yz terms
C2B = 0.9461746957575601  # z^2 term
C2C = 0.3153915652525201  # constant of the z^2 term
C2D = 0.5462742152960395  # x^2 - y^2, xy terms
C3A = 0.5900435899266435  # (x^3 - 3xy^2), (3x^2y - y^3) terms
C3B = 1.445305721320277  # z (x^2 - y^2), z xy terms
C3C = 2.285228997322329  # z^2 of the x, y terms
C3D = 0.4570457994644658  # constant of the x, y terms
C3E = 1.865881662950577  # z^3
C3F = 1.119528997770346  # z


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Basis values [..., (degree+1)^2] at unit directions [..., 3] (gsplat `_eval_sh_bases_fast`)."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        z2 = z * z
        fc1, fs1 = x * x - y * y, 2 * x * y
        out += [C2D * fs1, -C2A * z * y, C2B * z2 - C2C, -C2A * z * x, C2D * fc1]
    if degree >= 3:
        tc = -C3C * z2 + C3D
        fc2, fs2 = x * fc1 - y * fs1, x * fs1 + y * fc1
        out += [-C3A * fs2, C3B * z * fs1, tc * y, z * (C3E * z2 - C3F), tc * x, C3B * z * fc1, -C3A * fc2]
    return torch.stack(out, dim=-1)
