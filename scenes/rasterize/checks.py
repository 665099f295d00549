"""What one rasterization call is, stated once for every path: its tensors (`RasterInputs`), its
settings (`RasterOptions`, built once by `rasterization`) and the validation every path shares,
so bad input fails the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from wmcore.errors import UserInputError

RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
ALPHA_THRESHOLD = 1.0 / 255.0
"""Alphas below this are skipped, and Gaussians with opacity below it are culled (gsplat)."""
TRANSMITTANCE_MIN = 1e-4
"""Compositing stops before a Gaussian that would take transmittance to this or below."""
ALPHA_MAX = 0.999
"""Per-Gaussian alpha is clamped to this so transmittance never reaches zero."""


@dataclass(frozen=True)
class Problem:
    """Sizes of one validated rasterization call."""

    n_cameras: int
    n_gaussians: int
    channels: int
    """Channels of the per-Gaussian colours (3 for SH), before any depth channel is appended."""


def _shape(name: str, t: torch.Tensor, expected: str, ok: bool) -> None:
    if not ok:
        raise UserInputError(f"rasterization: `{name}` must have shape {expected}, got {tuple(t.shape)}")


class RasterInputs(NamedTuple):
    """The tensors of one call (gsplat's meaning; see `rasterization`)."""

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    viewmats: torch.Tensor
    Ks: torch.Tensor
    backgrounds: torch.Tensor | None


@dataclass(frozen=True)
class RasterOptions:
    """The settings of one call, named and meant as gsplat's keyword arguments (see `rasterization`).
    `tile_size` is None only until `rasterization` has chosen one for the backend."""

    width: int
    height: int
    near_plane: float
    far_plane: float
    radius_clip: float
    eps2d: float
    sh_degree: int | None
    tile_size: int | None
    render_mode: str
    absgrad: bool

    @property
    def expected_depth(self) -> bool:
        """The depth channel is divided by alpha (ED modes)."""
        return self.render_mode in ("ED", "RGB+ED")


def with_depth_channel(
    feats: Any,
    depths: Any,
    backgrounds: Any,
    render_mode: str,
    n_cameras: int,
    cat: Callable[[Any, Any], Any],
    zeros: Callable[[int], Any],
) -> tuple[Any, Any]:
    """The features to composite for `render_mode` ([C,N,D], with depth [C,N] appended or alone) and
    their backgrounds (depth channels always get background 0, as in gsplat). `cat` joins along
    the last axis and `zeros(C)` makes [C,1] zeros, so tensors and arrays go through alike."""
    if render_mode in ("RGB+D", "RGB+ED"):
        feats = cat(feats, depths[..., None])
        if backgrounds is not None:
            backgrounds = cat(backgrounds, zeros(n_cameras))
    elif render_mode in ("D", "ED"):
        feats = depths[..., None]
        if backgrounds is not None:
            backgrounds = zeros(n_cameras)
    return feats, backgrounds


def check_inputs(inputs: RasterInputs, options: RasterOptions) -> Problem:
    """Raise UserInputError naming the offending argument; return the problem's sizes."""
    means, quats, scales, opacities, colors, viewmats, Ks, backgrounds = inputs
    width, height, sh_degree, tile_size = options.width, options.height, options.sh_degree, options.tile_size
    render_mode = options.render_mode
    tensors = dict(zip(RasterInputs._fields, inputs))
    if backgrounds is None:
        del tensors["backgrounds"]
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise UserInputError(f"rasterization: `{name}` must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise UserInputError(f"rasterization: `{name}` must be a floating-point tensor, got {t.dtype}")
        if t.device != means.device:
            raise UserInputError(
                f"rasterization: `{name}` is on {t.device} but `means` is on {means.device}; "
                "move all inputs to one device"
            )
    n = means.shape[0] if means.dim() == 2 else -1
    _shape("means", means, "[N,3]", means.dim() == 2 and means.shape[1] == 3)
    _shape("quats", quats, f"[{n},4]", tuple(quats.shape) == (n, 4))
    _shape("scales", scales, f"[{n},3]", tuple(scales.shape) == (n, 3))
    _shape("opacities", opacities, f"[{n}]", tuple(opacities.shape) == (n,))
    _shape("viewmats", viewmats, "[C,4,4]", viewmats.dim() == 3 and viewmats.shape[1:] == (4, 4))
    c = viewmats.shape[0]
    _shape("Ks", Ks, f"[{c},3,3]", tuple(Ks.shape) == (c, 3, 3))
    if render_mode not in RENDER_MODES:
        raise UserInputError(f"rasterization: render_mode={render_mode!r} is not one of {RENDER_MODES}")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise UserInputError(f"rasterization: width and height must be positive ints, got {width!r}, {height!r}")
    if not (tile_size is None or (isinstance(tile_size, int) and tile_size > 0)):
        raise UserInputError(f"rasterization: tile_size must be a positive int or None, got {tile_size!r}")
    if sh_degree is None:
        _shape(
            "colors",
            colors,
            f"[{n},D] or [{c},{n},D] (features; sh_degree=None)",
            (colors.dim() == 2 and colors.shape[0] == n) or (colors.dim() == 3 and colors.shape[:2] == (c, n)),
        )
        channels = colors.shape[-1]
    else:
        if sh_degree not in (0, 1, 2, 3):
            raise UserInputError(f"rasterization: sh_degree must be None or 0..3, got {sh_degree!r}")
        k_min = (sh_degree + 1) ** 2
        _shape(
            "colors",
            colors,
            f"[{n},K,3] with K >= {k_min} (SH coefficients for sh_degree={sh_degree})",
            colors.dim() == 3 and colors.shape[0] == n and colors.shape[2] == 3 and colors.shape[1] >= k_min,
        )
        channels = 3
    if backgrounds is not None:
        if tuple(backgrounds.shape) != (c, channels):
            raise UserInputError(
                f"rasterization: `backgrounds` must have shape [{c},{channels}] (one value per colour "
                f"channel; depth channels always get background 0, as in gsplat), got "
                f"{tuple(backgrounds.shape)}"
            )
    return Problem(n_cameras=c, n_gaussians=n, channels=channels)
