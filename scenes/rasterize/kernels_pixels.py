"""Numba kernels: front-to-back compositing of 2D Gaussians into pixels, forward and backward.

One thread per (camera, tile). Inside a tile, Gaussians are visited in depth order and each one
only touches the pixels of the bounding box of its ellipse {sigma <= log(255 opacity)}: outside
it alpha < 1/255 is skipped anyway, so the result is that of evaluating every pixel of the
tile (as gsplat does), at a fraction of the cost. The forward saves, per pixel, the final
transmittance and the number of bin entries up to the last contributor; the backward walks each
bin back to front from there (gsplat's scheme) and writes one gradient slot per intersection,
so no two threads ever write the same memory. `reduce_intersections` then sums the slots.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

ALPHA_THRESHOLD = 1.0 / 255.0
ALPHA_MAX = 0.999
TRANSMITTANCE_MIN = 1e-4


@njit(cache=True)
def _ellipse_box(mx, my, ca, cb, cc, cut, x0, y0, x1, y1):
    """Pixels [px0, px1) x [py0, py1) of the tile that the ellipse sigma <= cut can reach: its
    bounding box (half-widths sqrt(2 cut cov_xx), sqrt(2 cut cov_yy) with cov = conic^-1),
    widened by half a pixel so that rounding never drops a pixel the exact test would keep."""
    det = ca * cc - cb * cb
    if det <= 0.0:
        return x0, y0, x0, y0
    ex = math.sqrt(2.0 * cut * cc / det)
    ey = math.sqrt(2.0 * cut * ca / det)
    # pixel centre px + 0.5 within [mx - ex, mx + ex], widened by 0.5
    px0 = max(x0, int(math.floor(mx - ex - 1.0)))
    px1 = min(x1, int(math.floor(mx + ex)) + 1)
    py0 = max(y0, int(math.floor(my - ey - 1.0)))
    py1 = min(y1, int(math.floor(my + ey)) + 1)
    return px0, py0, max(px0, px1), max(py0, py1)


@njit(cache=True)
def _sigma_cut(op):
    """Beyond this sigma, op * exp(-sigma) < 1/255 for sure: skip the exp (a small margin keeps
    boundary cases on the exact test)."""
    return math.log(max(op, 1e-30) / ALPHA_THRESHOLD) * (1.0 + 1e-6) + 1e-6


@njit(parallel=True, cache=True)
def rasterize_fwd(
    means2d,
    conics,
    colors,
    opacities,
    backgrounds,
    offsets,
    ids,
    width,
    height,
    tile_size,
    out_colors,
    out_trans,
    out_last,
):
    """Fill out_colors [C,H,W,D], out_trans [C,H,W] (final transmittance) and out_last [C,H,W]
    (number of bin entries up to and including the pixel's last contributor). `backgrounds`
    is [C,D] or [0,D] for none."""
    n_cam, n_ch = means2d.shape[0], colors.shape[2]
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    n_tiles = tiles_x * tiles_y
    has_bg = backgrounds.shape[0] > 0
    for job in prange(n_cam * n_tiles):
        c, tile = job // n_tiles, job % n_tiles
        x0, y0 = (tile % tiles_x) * tile_size, (tile // tiles_x) * tile_size
        x1, y1 = min(x0 + tile_size, width), min(y0 + tile_size, height)
        tw = x1 - x0
        n_pix = tw * (y1 - y0)
        trans = np.ones(n_pix)
        acc = np.zeros((n_pix, n_ch))
        last = np.zeros(n_pix, np.int32)
        done = np.zeros(n_pix, np.bool_)
        n_done = 0
        start, end = offsets[job], offsets[job + 1]
        for k in range(start, end):
            g = ids[k]
            mx, my = float(means2d[c, g, 0]), float(means2d[c, g, 1])
            ca, cb, cc = float(conics[c, g, 0]), float(conics[c, g, 1]), float(conics[c, g, 2])
            op = float(opacities[c, g])
            sigma_cut = _sigma_cut(op)
            px0, py0, px1, py1 = _ellipse_box(mx, my, ca, cb, cc, sigma_cut, x0, y0, x1, y1)
            for py in range(py0, py1):
                dy = my - (py + 0.5)
                for px in range(px0, px1):
                    p = (py - y0) * tw + (px - x0)
                    if done[p]:
                        continue
                    dx = mx - (px + 0.5)
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0.0 or sigma > sigma_cut:
                        continue
                    alpha = min(ALPHA_MAX, op * math.exp(-sigma))
                    if alpha < ALPHA_THRESHOLD:
                        continue
                    next_t = trans[p] * (1.0 - alpha)
                    if next_t <= TRANSMITTANCE_MIN:
                        done[p] = True
                        n_done += 1
                        continue
                    vis = alpha * trans[p]
                    for d in range(n_ch):
                        acc[p, d] += colors[c, g, d] * vis
                    trans[p] = next_t
                    last[p] = k - start + 1
            if n_done == n_pix:
                break
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * tw + (px - x0)
                for d in range(n_ch):
                    bg = backgrounds[c, d] if has_bg else 0.0
                    out_colors[c, py, px, d] = acc[p, d] + trans[p] * bg
                out_trans[c, py, px] = trans[p]
                out_last[c, py, px] = last[p]


@njit(parallel=True, cache=True)
def rasterize_bwd(
    means2d,
    conics,
    colors,
    opacities,
    backgrounds,
    offsets,
    ids,
    width,
    height,
    tile_size,
    trans_final,
    last,
    v_out_colors,
    v_out_alphas,
    v_means2d_k,
    v_conics_k,
    v_colors_k,
    v_opac_k,
    abs_means2d_k,
):
    """Per-intersection gradient slots [M,...] from d(loss)/d(out colours [C,H,W,D], alphas [C,H,W])."""
    n_cam, n_ch = means2d.shape[0], colors.shape[2]
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    n_tiles = tiles_x * tiles_y
    has_bg = backgrounds.shape[0] > 0
    for job in prange(n_cam * n_tiles):
        c, tile = job // n_tiles, job % n_tiles
        x0, y0 = (tile % tiles_x) * tile_size, (tile // tiles_x) * tile_size
        x1, y1 = min(x0 + tile_size, width), min(y0 + tile_size, height)
        tw = x1 - x0
        n_pix = tw * (y1 - y0)
        start, end = offsets[job], offsets[job + 1]
        for k in range(start, end):
            v_means2d_k[k, 0] = v_means2d_k[k, 1] = 0.0
            abs_means2d_k[k, 0] = abs_means2d_k[k, 1] = 0.0
            v_conics_k[k, 0] = v_conics_k[k, 1] = v_conics_k[k, 2] = 0.0
            v_opac_k[k] = 0.0
            for d in range(n_ch):
                v_colors_k[k, d] = 0.0
        trans = np.empty(n_pix)
        t_fin = np.empty(n_pix)
        n_last = np.empty(n_pix, np.int32)
        buf = np.zeros((n_pix, n_ch))
        v_a = np.empty(n_pix)
        bg_dot = np.zeros(n_pix)
        max_last = 0
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * tw + (px - x0)
                trans[p] = t_fin[p] = trans_final[c, py, px]
                n_last[p] = last[c, py, px]
                max_last = max(max_last, n_last[p])
                v_a[p] = v_out_alphas[c, py, px]
                if has_bg:
                    for d in range(n_ch):
                        bg_dot[p] += backgrounds[c, d] * v_out_colors[c, py, px, d]
        for j in range(max_last - 1, -1, -1):
            k = start + j
            g = ids[k]
            mx, my = float(means2d[c, g, 0]), float(means2d[c, g, 1])
            ca, cb, cc = float(conics[c, g, 0]), float(conics[c, g, 1]), float(conics[c, g, 2])
            op = float(opacities[c, g])
            sigma_cut = _sigma_cut(op)
            px0, py0, px1, py1 = _ellipse_box(mx, my, ca, cb, cc, sigma_cut, x0, y0, x1, y1)
            g_mx = g_my = a_mx = a_my = g_ca = g_cb = g_cc = g_op = 0.0
            for py in range(py0, py1):
                dy = my - (py + 0.5)
                for px in range(px0, px1):
                    p = (py - y0) * tw + (px - x0)
                    if j >= n_last[p]:
                        continue
                    dx = mx - (px + 0.5)
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0.0 or sigma > sigma_cut:
                        continue
                    vis = math.exp(-sigma)
                    alpha = min(ALPHA_MAX, op * vis)
                    if alpha < ALPHA_THRESHOLD:
                        continue
                    ra = 1.0 / (1.0 - alpha)
                    trans[p] *= ra
                    fac = alpha * trans[p]
                    v_alpha = 0.0
                    for d in range(n_ch):
                        vc = v_out_colors[c, py, px, d]
                        v_colors_k[k, d] += fac * vc
                        v_alpha += (colors[c, g, d] * trans[p] - buf[p, d] * ra) * vc
                    v_alpha += t_fin[p] * ra * (v_a[p] - bg_dot[p])
                    if op * vis <= ALPHA_MAX:
                        v_sigma = -op * vis * v_alpha
                        g_ca += 0.5 * v_sigma * dx * dx
                        g_cb += v_sigma * dx * dy
                        g_cc += 0.5 * v_sigma * dy * dy
                        gx = v_sigma * (ca * dx + cb * dy)
                        gy = v_sigma * (cb * dx + cc * dy)
                        g_mx += gx
                        g_my += gy
                        a_mx += abs(gx)
                        a_my += abs(gy)
                        g_op += vis * v_alpha
                    for d in range(n_ch):
                        buf[p, d] += colors[c, g, d] * fac
            v_means2d_k[k, 0] = g_mx
            v_means2d_k[k, 1] = g_my
            abs_means2d_k[k, 0] = a_mx
            abs_means2d_k[k, 1] = a_my
            v_conics_k[k, 0] = g_ca
            v_conics_k[k, 1] = g_cb
            v_conics_k[k, 2] = g_cc
            v_opac_k[k] = g_op


@njit(cache=True)
def reduce_intersections(
    offsets,
    ids,
    n_tiles,
    v_means2d_k,
    v_conics_k,
    v_colors_k,
    v_opac_k,
    abs_means2d_k,
    v_means2d,
    v_conics,
    v_colors,
    v_opac,
    abs_means2d,
):
    """Sum per-intersection slots into per-(camera, Gaussian) gradients (outputs zeroed here)."""
    n_cam = v_means2d.shape[0]
    for c in range(n_cam):
        v_means2d[c] = 0.0
        v_conics[c] = 0.0
        v_colors[c] = 0.0
        v_opac[c] = 0.0
        abs_means2d[c] = 0.0
        for k in range(offsets[c * n_tiles], offsets[(c + 1) * n_tiles]):
            g = ids[k]
            v_means2d[c, g, 0] += v_means2d_k[k, 0]
            v_means2d[c, g, 1] += v_means2d_k[k, 1]
            abs_means2d[c, g, 0] += abs_means2d_k[k, 0]
            abs_means2d[c, g, 1] += abs_means2d_k[k, 1]
            v_conics[c, g, 0] += v_conics_k[k, 0]
            v_conics[c, g, 1] += v_conics_k[k, 1]
            v_conics[c, g, 2] += v_conics_k[k, 2]
            v_opac[c, g] += v_opac_k[k]
            for d in range(v_colors.shape[2]):
                v_colors[c, g, d] += v_colors_k[k, d]
