"""Gaussian-splat rasterization with gsplat 1.5's `rasterization` meaning.

CUDA tensors go to gsplat; CPU tensors go to our tile-based numba rasterizer with hand-written
backward kernels. `rasterization_reference` is a slow, dense, obviously-correct pure-torch
version of the same function that the tests hold the fast path to.
"""

from scenes.rasterize.api import rasterization
from scenes.rasterize.reference import rasterization_reference

__all__ = ["rasterization", "rasterization_reference"]
