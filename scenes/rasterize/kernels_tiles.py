"""Numba kernel: which Gaussians touch which tile, front to back (gsplat `isect_tiles` + sort).

Each Gaussian covers the tile rectangle of its per-axis radii. Per camera, the visible Gaussians
are sorted once by depth (a stable LSD radix sort on the float bits, so ties keep Gaussian
order), then counted into their tiles in that order: the counting sort is stable, so every bin
comes out front to back with ties by index, which is gsplat's order (its radix sort on
tile|depth is stable over Gaussian index). This replaces one comparison sort per tile.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _tile_rect(mx, my, rx, ry, tile_size, tiles_x, tiles_y):
    tx0 = min(max(0, int(math.floor((mx - rx) / tile_size))), tiles_x)
    ty0 = min(max(0, int(math.floor((my - ry) / tile_size))), tiles_y)
    tx1 = min(max(0, int(math.ceil((mx + rx) / tile_size))), tiles_x)
    ty1 = min(max(0, int(math.ceil((my + ry) / tile_size))), tiles_y)
    return tx0, ty0, tx1, ty1


@njit(cache=True)
def _sortable_bits(depths):
    """uint32 keys that order like the float32 depths: flip all bits of negatives, set the sign
    bit of the rest (the usual radix-sort mapping of IEEE floats)."""
    bits = depths.view(np.uint32)
    keys = np.empty(bits.shape[0], np.uint32)
    for i in range(bits.shape[0]):
        b = bits[i]
        keys[i] = ~b if b >> np.uint32(31) else b | np.uint32(0x80000000)
    return keys


@njit(cache=True)
def _radix_argsort(keys, items):
    """`items` stably reordered by `keys` (uint32): four 8-bit counting passes, O(n)."""
    n = items.shape[0]
    src, dst = items.copy(), np.empty_like(items)
    count = np.empty(257, np.int64)
    for shift in range(0, 32, 8):
        count[:] = 0
        for i in range(n):
            count[((keys[src[i]] >> np.uint32(shift)) & np.uint32(255)) + 1] += 1
        for b in range(256):
            count[b + 1] += count[b]
        for i in range(n):
            b = (keys[src[i]] >> np.uint32(shift)) & np.uint32(255)
            dst[count[b]] = src[i]
            count[b] += 1
        src, dst = dst, src
    return src


@njit(cache=True)  # sequential: a few linear passes over the visible Gaussians
def intersect_tiles(means2d, radii, depths, tile_size, tiles_x, tiles_y):
    """Return (offsets [C*T+1] int64, gaussian ids [M] int32) with bin (c, tile) at
    offsets[c*T + tile] : offsets[c*T + tile + 1], each bin sorted front to back."""
    n_cam, n = means2d.shape[0], means2d.shape[1]
    n_tiles = tiles_x * tiles_y
    offsets = np.zeros(n_cam * n_tiles + 1, np.int64)
    orders = []  # per camera: visible Gaussians front to back
    rects = []  # per camera: their tile rectangles, indexed by Gaussian
    for c in range(n_cam):
        n_vis = 0
        visible = np.empty(n, np.int32)
        rect = np.empty((n, 4), np.int32)
        for g in range(n):
            if radii[c, g, 0] > 0 and radii[c, g, 1] > 0:
                visible[n_vis] = g
                n_vis += 1
                tx0, ty0, tx1, ty1 = _tile_rect(
                    float(means2d[c, g, 0]),
                    float(means2d[c, g, 1]),
                    float(radii[c, g, 0]),
                    float(radii[c, g, 1]),
                    float(tile_size),
                    tiles_x,
                    tiles_y,
                )
                rect[g, 0], rect[g, 1], rect[g, 2], rect[g, 3] = tx0, ty0, tx1, ty1
                for ty in range(ty0, ty1):
                    for tx in range(tx0, tx1):
                        offsets[c * n_tiles + ty * tiles_x + tx + 1] += 1
        orders.append(_radix_argsort(_sortable_bits(depths[c]), visible[:n_vis]))
        rects.append(rect)
    for i in range(1, offsets.shape[0]):
        offsets[i] += offsets[i - 1]
    ids = np.empty(offsets[-1], np.int32)
    cursor = offsets[:-1].copy()
    for c in range(n_cam):
        rect = rects[c]
        for g in orders[c]:
            for ty in range(rect[g, 1], rect[g, 3]):
                for tx in range(rect[g, 0], rect[g, 2]):
                    b = c * n_tiles + ty * tiles_x + tx
                    ids[cursor[b]] = g
                    cursor[b] += 1
    return offsets, ids
