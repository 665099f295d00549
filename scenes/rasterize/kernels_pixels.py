"""Numba kernels: front-to-back compositing of 2D Gaussians into pixels, forward and backward.

One thread per (camera, tile). Inside a tile, Gaussians are visited in depth order and each one
only touches, row by row, the pixels of the chord of its ellipse {sigma <= log(255 opacity)}:
outside it alpha < 1/255 is skipped anyway, so the result is that of evaluating every pixel of
the tile (as gsplat does), at a fraction of the cost. Sigma and alpha are float32 and computed
by the same helpers in the forward and the backward, so both skip exactly the same pixels
(the forward composites in float32; the backward accumulates gradients in float64); the
per-Gaussian values they share (mean, conic, opacity, sigma cut, ellipse box, chord terms) come
from the record table the projection writes once per visible Gaussian. The forward saves, per pixel, the final
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
SPAN_MARGIN = 0.05  # pixels
CHORD_MIN_WIDTH = 5  # pixels; narrower boxes skip the chord test of `_row_span`
# float32 copies: numba promotes float32 op python-float to float64, which the compositing avoids
ZERO, HALF, ONE = np.float32(0.0), np.float32(0.5), np.float32(1.0)
ALPHA_THRESHOLD_F32 = np.float32(ALPHA_THRESHOLD)
ALPHA_MAX_F32 = np.float32(ALPHA_MAX)
TRANSMITTANCE_MIN_F32 = np.float32(TRANSMITTANCE_MIN)


# The record table [C,N,N_RECORD] float32: what the compositing reads of a visible (camera,
# Gaussian), written once by the projection into one 64-byte row (one cache line when the table
# is aligned, see `empty_records`), so a tile's visit of a Gaussian touches one line instead of
# five scattered arrays. Columns: mean (2), conic (3), opacity, sigma cut, the ellipse box's
# half-widths (2), the chord terms of `_row_span` (3); 4 spare.
R_MX, R_MY, R_CA, R_CB, R_CC, R_OP, R_CUT, R_EX, R_EY, R_SHIFT, R_DET, R_CHORD = range(12)
N_RECORD = 16


def empty_records(n_cam: int, n: int) -> np.ndarray:
    """An uninitialised record table [n_cam, n, N_RECORD] whose rows start on 64-byte boundaries."""
    size = n_cam * n * N_RECORD
    raw = np.empty(size + 16, np.float32)
    skip = (-raw.ctypes.data % 64) // 4
    return raw[skip : skip + size].reshape(n_cam, n, N_RECORD)


@njit(cache=True)
def write_record(records, c, g, mx, my, ca, cb, cc, op, log_ratio):
    """Record of (camera c, Gaussian g): mean (mx, my) and float32 conic (ca, cb, cc) as the
    projection outputs them, opacity op and log_ratio = log(op * 255).

    Sigma cut: beyond it, op * exp(-sigma) < 1/255 for sure, so the exp is skipped (a small margin
    keeps boundary cases on the exact test); stored as the float32 value every test uses.
    Box: the ellipse sigma <= cut has half-widths sqrt(2 cut cov_xx), sqrt(2 cut cov_yy) with
    cov = conic^-1 (-1: empty). Chord terms: cb/ca, det/ca^2, 2 cut/ca (0, 0, -1 when ca <= 0,
    which gives empty spans). Box and chord are computed in float64 and stored in float32: they
    only bound the pixels the exact test visits, with margins far above the rounding."""
    cut = float(np.float32(log_ratio * (1.0 + 1e-6) + 1e-6))
    r = records[c, g]
    r[R_MX], r[R_MY], r[R_CA], r[R_CB], r[R_CC], r[R_OP], r[R_CUT] = mx, my, ca, cb, cc, op, cut
    ca, cb, cc = float(ca), float(cb), float(cc)
    det = ca * cc - cb * cb
    r[R_EX] = math.sqrt(2.0 * cut * cc / det) if det > 0.0 else -1.0
    r[R_EY] = math.sqrt(2.0 * cut * ca / det) if det > 0.0 else -1.0
    inv = 1.0 / ca if ca > 0.0 else 0.0
    r[R_SHIFT] = cb * inv
    r[R_DET] = det * inv * inv
    r[R_CHORD] = 2.0 * cut * inv if ca > 0.0 else -1.0


@njit(cache=True)
def _ellipse_box(mx, my, ex, ey, x0, y0, x1, y1):
    """Pixels [px0, px1) x [py0, py1) of the tile that the ellipse sigma <= cut can reach: those
    whose centre lies within its bounding box (half-widths ex, ey from the record), widened by
    SPAN_MARGIN against rounding (the exact per-pixel test still decides, as for the chords)."""
    if ex < 0.0:
        return x0, y0, x0, y0
    mx, my = float(mx), float(my)
    # pixel centre px + 0.5 within [mx - ex, mx + ex]
    px0 = max(x0, int(math.ceil(mx - ex - 0.5 - SPAN_MARGIN)))
    px1 = min(x1, int(math.floor(mx + ex - 0.5 + SPAN_MARGIN)) + 1)
    py0 = max(y0, int(math.ceil(my - ey - 0.5 - SPAN_MARGIN)))
    py1 = min(y1, int(math.floor(my + ey - 0.5 + SPAN_MARGIN)) + 1)
    return px0, py0, max(px0, px1), max(py0, py1)


@njit(cache=True)
def _row_terms(cb, cc, my, py):
    """float32 terms of sigma shared by a pixel row py: sigma = (ca/2 dx + cb dy) dx + cc/2 dy^2."""
    dy = my - (np.float32(py) + HALF)
    return dy, cb * dy, HALF * cc * dy * dy


@njit(cache=True)
def _row_span(mx, span, dy, px0, px1):
    """Pixels [qx0, qx1) of row offset dy (within the box [px0, px1)) that can hold sigma <= cut
    (span: the record's chord terms):
    the chord of the ellipse, dx = -dy cb/ca +- sqrt(2 cut/ca - dy^2 det/ca^2), widened by
    0.05 px on each side against float32 rounding of sigma in the exact per-pixel test, which
    still decides. Bounding boxes of thin tilted ellipses are mostly empty: this skips ~2/3 of
    their pixels. Boxes at most CHORD_MIN_WIDTH wide are visited whole: there the square root
    costs more than the few pixels it skips (BENCHMARKS.md, *CPU rasterizer*)."""
    if px1 - px0 <= CHORD_MIN_WIDTH:
        return px0, px1
    k_shift, k_det, k_cut = float(span[0]), float(span[1]), float(span[2])
    dy = float(dy)
    half2 = k_cut - k_det * dy * dy
    if half2 < 0.0:
        return px0, px0
    half = math.sqrt(half2) + SPAN_MARGIN
    # dx = mx - (px + 0.5) in [-dy cb/ca - half, -dy cb/ca + half]
    centre = float(mx) - 0.5 + k_shift * dy
    qx0 = max(px0, int(math.ceil(centre - half)))
    qx1 = min(px1, int(math.floor(centre + half)) + 1)
    return qx0, max(qx0, qx1)


@njit(cache=True)
def _pixel_alpha(op, half_ca, b_dy, c_dy2, mx, px, sigma_cut):
    """(dx, sigma, alpha) of pixel px in float32, alpha = 0 where the pixel is skipped. Forward and
    backward both call this, so they make the same skip decisions bit for bit."""
    dx = mx - (np.float32(px) + HALF)
    sigma = (half_ca * dx + b_dy) * dx + c_dy2
    if sigma < ZERO or sigma > sigma_cut:
        return dx, sigma, ZERO
    alpha = min(ALPHA_MAX_F32, op * math.exp(-sigma))
    if alpha < ALPHA_THRESHOLD_F32:
        return dx, sigma, ZERO
    return dx, sigma, alpha


@njit(cache=True)
def _gaussian_2d(records, c, g, x0, y0, x1, y1):
    """float32 mean, conic, opacity and sigma cut of one (camera, Gaussian), its box in the tile
    [x0, x1) x [y0, y1) and its chord terms, from its record."""
    r = records[c, g]
    mx, my = r[R_MX], r[R_MY]
    box = _ellipse_box(mx, my, float(r[R_EX]), float(r[R_EY]), x0, y0, x1, y1)
    gauss = (mx, my, r[R_CA], r[R_CB], r[R_CC], r[R_OP], r[R_CUT])
    return gauss, box, (r[R_SHIFT], r[R_DET], r[R_CHORD])


@njit(cache=True, inline="always")
def _tile_grid(width, height, tile_size):
    """Tiles per image row, and per image, of the tile grid."""
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    return tiles_x, tiles_x * tiles_y


@njit(cache=True, inline="always")
def _tile_job(job, n_tiles, tiles_x, tile_size, width, height):
    """Camera c and pixels [x0, x1) x [y0, y1) of parallel job `job` (one tile of one camera, the
    index of its bin), with the tile's width and pixel count."""
    c, tile = job // n_tiles, job % n_tiles
    x0, y0 = (tile % tiles_x) * tile_size, (tile // tiles_x) * tile_size
    x1, y1 = min(x0 + tile_size, width), min(y0 + tile_size, height)
    tw = x1 - x0
    return c, x0, y0, x1, y1, tw, tw * (y1 - y0)


@njit(parallel=True, cache=True)
def rasterize_fwd(
    records,
    colors,
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
    is [C,D] or [0,D] for none. All arithmetic is float32 (the inputs are float32)."""
    n_cam, n_ch = records.shape[0], colors.shape[2]
    tiles_x, n_tiles = _tile_grid(width, height, tile_size)
    has_bg = backgrounds.shape[0] > 0
    for job in prange(n_cam * n_tiles):
        c, x0, y0, x1, y1, tw, n_pix = _tile_job(job, n_tiles, tiles_x, tile_size, width, height)
        trans = np.ones(n_pix, np.float32)  # 0 marks a finished pixel, whose value is in `final`
        final = np.empty(n_pix, np.float32)
        acc = np.zeros((n_pix, n_ch), np.float32)
        last = np.zeros(n_pix, np.int32)
        n_done = 0
        start, end = offsets[job], offsets[job + 1]
        for k in range(start, end):
            g = ids[k]
            gauss, box, span = _gaussian_2d(records, c, g, x0, y0, x1, y1)
            mx, my, ca, cb, cc, op, sigma_cut = gauss
            px0, py0, px1, py1 = box
            half_ca = HALF * ca
            color = colors[c, g]
            for py in range(py0, py1):
                dy, b_dy, c_dy2 = _row_terms(cb, cc, my, py)
                qx0, qx1 = _row_span(mx, span, dy, px0, px1)
                row = (py - y0) * tw - x0
                for px in range(qx0, qx1):
                    p = row + px
                    t = trans[p]
                    if t == ZERO:  # finished: transmittance would have dropped below 1e-4
                        continue
                    _, _, alpha = _pixel_alpha(op, half_ca, b_dy, c_dy2, mx, px, sigma_cut)
                    if alpha == ZERO:
                        continue
                    next_t = t * (ONE - alpha)
                    if next_t <= TRANSMITTANCE_MIN_F32:
                        final[p] = t
                        trans[p] = ZERO
                        n_done += 1
                        continue
                    vis = alpha * t
                    if n_ch == 3:  # unrolled: a loop over a run-time channel count costs ~10% here
                        acc[p, 0] += color[0] * vis
                        acc[p, 1] += color[1] * vis
                        acc[p, 2] += color[2] * vis
                    else:
                        for d in range(n_ch):
                            acc[p, d] += color[d] * vis
                    trans[p] = next_t
                    last[p] = k - start + 1
            if n_done == n_pix:
                break
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * tw + (px - x0)
                t = trans[p] if trans[p] != ZERO else final[p]
                for d in range(n_ch):
                    bg = backgrounds[c, d] if has_bg else ZERO
                    out_colors[c, py, px, d] = acc[p, d] + t * bg
                out_trans[c, py, px] = t
                out_last[c, py, px] = last[p]


@njit(parallel=True, cache=True)
def rasterize_bwd(
    records,
    colors,
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
    n_cam, n_ch = records.shape[0], colors.shape[2]
    tiles_x, n_tiles = _tile_grid(width, height, tile_size)
    has_bg = backgrounds.shape[0] > 0
    for job in prange(n_cam * n_tiles):
        c, x0, y0, x1, y1, tw, n_pix = _tile_job(job, n_tiles, tiles_x, tile_size, width, height)
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
            gauss, box, span = _gaussian_2d(records, c, g, x0, y0, x1, y1)
            mx, my, ca, cb, cc, op, sigma_cut = gauss
            px0, py0, px1, py1 = box
            half_ca = HALF * ca
            g_mx = g_my = a_mx = a_my = g_ca = g_cb = g_cc = g_op = 0.0
            for py in range(py0, py1):
                dy32, b_dy, c_dy2 = _row_terms(cb, cc, my, py)
                dy = float(dy32)
                qx0, qx1 = _row_span(mx, span, dy32, px0, px1)
                for px in range(qx0, qx1):
                    p = (py - y0) * tw + (px - x0)
                    if j >= n_last[p]:
                        continue
                    dx32, sigma, alpha32 = _pixel_alpha(op, half_ca, b_dy, c_dy2, mx, px, sigma_cut)
                    if alpha32 == ZERO:
                        continue
                    dx, alpha = float(dx32), float(alpha32)
                    vis = math.exp(-float(sigma))
                    ra = 1.0 / (1.0 - alpha)
                    trans[p] *= ra
                    fac = alpha * trans[p]
                    v_alpha = 0.0
                    for d in range(n_ch):
                        vc = v_out_colors[c, py, px, d]
                        v_colors_k[k, d] += fac * vc
                        v_alpha += (colors[c, g, d] * trans[p] - buf[p, d] * ra) * vc
                    v_alpha += t_fin[p] * ra * (v_a[p] - bg_dot[p])
                    if alpha32 < ALPHA_MAX_F32:  # unclamped: alpha depends on sigma and op
                        v_sigma = -alpha * v_alpha
                        g_ca += 0.5 * v_sigma * dx * dx
                        g_cb += v_sigma * dx * dy
                        g_cc += 0.5 * v_sigma * dy * dy
                        gx = v_sigma * (float(ca) * dx + float(cb) * dy)
                        gy = v_sigma * (float(cb) * dx + float(cc) * dy)
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
