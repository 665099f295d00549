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
from numba import njit, prange


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


@njit(cache=True)
def _bin_offsets(chunk_tiles):
    """Bin boundaries [C*T+1] from the per-chunk tile counts [C,chunks,T]."""
    n_cam, n_chunks, n_tiles = chunk_tiles.shape
    offsets = np.zeros(n_cam * n_tiles + 1, np.int64)
    for c in range(n_cam):
        for k in range(n_chunks):
            for tile in range(n_tiles):
                offsets[c * n_tiles + tile + 1] += chunk_tiles[c, k, tile]
    for i in range(1, offsets.shape[0]):
        offsets[i] += offsets[i - 1]
    return offsets


@njit(cache=True)
def _bin_camera(c, keys, visible_ids, visible_rects, chunk_visible, n_tiles, tiles_x, offsets, ids):
    """Sort camera c's visible Gaussians by depth and write them into its tile bins."""
    n_chunks, n = chunk_visible.shape[1], keys.shape[1]
    m = 0
    for k in range(n_chunks):
        m += chunk_visible[c, k]
    buf, tmp = np.empty(m, np.uint64), np.empty(m, np.uint64)
    m = 0
    for k in range(n_chunks):
        g0 = k * n // n_chunks
        for i in range(chunk_visible[c, k]):
            buf[m] = keys[c, g0 + i]
            m += 1
    order = _radix_sort_high(buf, tmp)
    cursor = offsets[c * n_tiles : (c + 1) * n_tiles].copy()
    low = np.uint64(0xFFFFFFFF)
    for j in range(m):
        i = np.int64(order[j] & low)
        g = visible_ids[c, i]
        rect = visible_rects[c, i]
        for ty in range(rect[1], rect[3]):
            for tx in range(rect[0], rect[2]):
                b = ty * tiles_x + tx
                ids[cursor[b]] = g
                cursor[b] += 1


@njit(cache=True, parallel=True)
def intersect_tiles(keys, visible_ids, visible_rects, chunk_visible, chunk_tiles, tiles_x):
    """Return (offsets [C*T+1] int64, gaussian ids [M] int32) with bin (c, tile) at
    offsets[c*T + tile] : offsets[c*T + tile + 1], each bin sorted front to back.

    Takes what `project_fwd` listed per chunk of Gaussians: the visible ones' sort keys (depth key
    << 32 | position), indices, tile rectangles (tile index ty * tiles_x + tx), and tile counts.
    One radix sort of plain integers per camera orders them by depth, ties by position, which is
    index order. Cameras are binned in parallel when there are several."""
    offsets = _bin_offsets(chunk_tiles)
    ids = np.empty(offsets[-1], np.int32)
    n_cam, n_tiles = chunk_tiles.shape[0], chunk_tiles.shape[2]
    if n_cam == 1:  # on the calling thread: a parallel region would cost a thread wake-up
        _bin_camera(0, keys, visible_ids, visible_rects, chunk_visible, n_tiles, tiles_x, offsets, ids)
    else:
        for c in prange(n_cam):
            _bin_camera(c, keys, visible_ids, visible_rects, chunk_visible, n_tiles, tiles_x, offsets, ids)
    return offsets, ids
