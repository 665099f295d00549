"""Numba kernel: which Gaussians touch which tile, front to back (gsplat `isect_tiles` + sort).

Each Gaussian covers the tile rectangle of its per-axis radii. The parallel projection lists the
visible Gaussians with their rectangles, tile counts and depth keys; here, per camera, they are
sorted once by depth (a stable LSD radix sort on the float bits, so ties keep Gaussian order),
then written into their tiles in that order: the counting sort is stable, so every bin comes out
front to back with ties by index, which is gsplat's order (its radix sort on tile|depth is
stable over Gaussian index). This replaces one comparison sort per tile.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def tile_rect(mx, my, rx, ry, tile_size, tiles_x, tiles_y):
    """Tiles [tx0, tx1) x [ty0, ty1) that the box of half-widths (rx, ry) around (mx, my) touches:
    floor((m - r) / tile_size) to ceil((m + r) / tile_size), clamped to the grid."""
    mx, my, rx, ry, ts = float(mx), float(my), float(rx), float(ry), float(tile_size)
    tx0 = min(max(0, int(math.floor((mx - rx) / ts))), tiles_x)
    ty0 = min(max(0, int(math.floor((my - ry) / ts))), tiles_y)
    tx1 = min(max(0, int(math.ceil((mx + rx) / ts))), tiles_x)
    ty1 = min(max(0, int(math.ceil((my + ry) / ts))), tiles_y)
    return tx0, ty0, tx1, ty1


@njit(cache=True)
def sortable_key(bits):
    """A uint32 key that orders like the float32 whose bits these are: flip all bits of negatives,
    set the sign bit of the rest (the usual radix-sort mapping of IEEE floats)."""
    return ~bits if bits >> np.uint32(31) else bits | np.uint32(0x80000000)


@njit(cache=True)
def _radix_sort_high(values, tmp):
    """`values` (uint64) stably sorted by their high 32 bits: LSD radix with 8-bit digits, the four
    histograms counted in one pass, and a pass skipped where every value has the same digit (the
    top byte of depths within a room). Returns whichever of `values` and `tmp` holds the result."""
    n = values.shape[0]
    hist = np.zeros((4, 256), np.int64)
    for i in range(n):
        v = values[i] >> np.uint64(32)
        for d in range(4):
            hist[d, (v >> np.uint64(8 * d)) & np.uint64(255)] += 1
    src, dst = values, tmp
    for d in range(4):
        h = hist[d]
        if h.max() == n:
            continue
        total = 0
        for b in range(256):
            cnt = h[b]
            h[b] = total
            total += cnt
        shift = np.uint64(32 + 8 * d)
        for i in range(n):
            v = src[i]
            b = (v >> shift) & np.uint64(255)
            dst[h[b]] = v
            h[b] += 1
        src, dst = dst, src
    return src


@njit(cache=True)  # sequential: a sort and a scatter of the visible Gaussians
def intersect_tiles(keys, visible_ids, visible_rects, chunk_visible, chunk_tiles, tiles_x):
    """Return (offsets [C*T+1] int64, gaussian ids [M] int32) with bin (c, tile) at
    offsets[c*T + tile] : offsets[c*T + tile + 1], each bin sorted front to back.

    Takes what `project_fwd` listed per chunk of Gaussians: the visible ones' sort keys (depth key
    << 32 | position), indices, tile rectangles (tile index ty * tiles_x + tx), and tile counts.
    One radix sort of plain integers per camera orders them by depth, ties by position, which is
    index order."""
    n_cam, n_chunks, n_tiles = chunk_tiles.shape
    n = keys.shape[1]
    offsets = np.zeros(n_cam * n_tiles + 1, np.int64)
    for c in range(n_cam):
        for k in range(n_chunks):
            for tile in range(n_tiles):
                offsets[c * n_tiles + tile + 1] += chunk_tiles[c, k, tile]
    for i in range(1, offsets.shape[0]):
        offsets[i] += offsets[i - 1]
    ids = np.empty(offsets[-1], np.int32)
    cursor = offsets[:-1].copy()
    buf, tmp = np.empty(n, np.uint64), np.empty(n, np.uint64)
    low = np.uint64(0xFFFFFFFF)
    for c in range(n_cam):
        m = 0
        for k in range(n_chunks):
            g0 = k * n // n_chunks
            for i in range(chunk_visible[c, k]):
                buf[m] = keys[c, g0 + i]
                m += 1
        order = _radix_sort_high(buf[:m], tmp[:m])
        for j in range(m):
            i = np.int64(order[j] & low)
            g = visible_ids[c, i]
            rect = visible_rects[c, i]
            for ty in range(rect[1], rect[3]):
                for tx in range(rect[0], rect[2]):
                    b = c * n_tiles + ty * tiles_x + tx
                    ids[cursor[b]] = g
                    cursor[b] += 1
    return offsets, ids
