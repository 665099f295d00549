"""Numba kernels: EWA projection of 3D Gaussians to 2D (forward and hand-written backward).

Same maths as `reference.project_reference` (gsplat 1.5 `fully_fused_projection`, pinhole):
scalar code on float32 arrays with float64 arithmetic. The forward gives each thread chunks of
(camera, contiguous Gaussians) and also prepares the tile binning (tile rectangles, per-chunk tile
counts, depth sort keys) and, for SH colours, evaluates them, so one parallel region does all the
per-Gaussian work of a render (each region costs ~40 us of thread wake-up with the passive OpenMP
wait policy the Makefile sets); the backward runs one thread per Gaussian looping over cameras,
so gradient writes never race.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from scenes.rasterize.kernels_pixels import empty_records, write_record
from scenes.rasterize.kernels_sh import camera_centre, camera_centres, sh_colour
from scenes.rasterize.kernels_tiles import sortable_key, tile_rect

ALPHA_THRESHOLD = 1.0 / 255.0


@njit(cache=True)
def _rotmat(qw, qx, qy, qz):
    return (
        1 - 2 * (qy * qy + qz * qz),
        2 * (qx * qy - qw * qz),
        2 * (qx * qz + qw * qy),
        2 * (qx * qy + qw * qz),
        1 - 2 * (qx * qx + qz * qz),
        2 * (qy * qz - qw * qx),
        2 * (qx * qz - qw * qy),
        2 * (qy * qz + qw * qx),
        1 - 2 * (qx * qx + qy * qy),
    )


@njit(cache=True)
def _mm(a, b):
    """3x3 @ 3x3 on row-major 9-tuples."""
    return (
        a[0] * b[0] + a[1] * b[3] + a[2] * b[6],
        a[0] * b[1] + a[1] * b[4] + a[2] * b[7],
        a[0] * b[2] + a[1] * b[5] + a[2] * b[8],
        a[3] * b[0] + a[4] * b[3] + a[5] * b[6],
        a[3] * b[1] + a[4] * b[4] + a[5] * b[7],
        a[3] * b[2] + a[4] * b[5] + a[5] * b[8],
        a[6] * b[0] + a[7] * b[3] + a[8] * b[6],
        a[6] * b[1] + a[7] * b[4] + a[8] * b[7],
        a[6] * b[2] + a[7] * b[5] + a[8] * b[8],
    )


@njit(cache=True)
def _aat(a):
    """a @ a^T on a row-major 9-tuple: symmetric, so only its 6 distinct entries are computed."""
    s00 = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
    s01 = a[0] * a[3] + a[1] * a[4] + a[2] * a[5]
    s02 = a[0] * a[6] + a[1] * a[7] + a[2] * a[8]
    s11 = a[3] * a[3] + a[4] * a[4] + a[5] * a[5]
    s12 = a[3] * a[6] + a[4] * a[7] + a[5] * a[8]
    s22 = a[6] * a[6] + a[7] * a[7] + a[8] * a[8]
    return (s00, s01, s02, s01, s11, s12, s02, s12, s22)


@njit(cache=True)
def _t(a):
    return (a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8])


# camera_constants columns: world-to-camera rotation (0-8, row-major) and translation, intrinsics,
# and the x/y limits of the Jacobian's clamped view ray (gsplat: 1.3 x the half field of view)
_T, _FX, _FY, _CX, _CY, _LXP, _LXN, _LYP, _LYN = 9, 12, 13, 14, 15, 16, 17, 18, 19
N_CAMERA_CONSTANTS = 20


@njit(cache=True)
def camera_constants(viewmats, Ks, width, height):
    """Per-camera float64 constants [C, N_CAMERA_CONSTANTS], computed once per call instead of once
    per Gaussian."""
    out = np.empty((viewmats.shape[0], N_CAMERA_CONSTANTS))
    for c in range(viewmats.shape[0]):
        for i in range(3):
            for j in range(3):
                out[c, 3 * i + j] = viewmats[c, i, j]
            out[c, _T + i] = viewmats[c, i, 3]
        fx, fy, cx, cy = float(Ks[c, 0, 0]), float(Ks[c, 1, 1]), float(Ks[c, 0, 2]), float(Ks[c, 1, 2])
        tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
        out[c, _FX], out[c, _FY], out[c, _CX], out[c, _CY] = fx, fy, cx, cy
        out[c, _LXP], out[c, _LXN] = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
        out[c, _LYP], out[c, _LYN] = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    return out


@njit(cache=True)
def _camera(cam, c):
    """Camera c's constants as tuples (kept in registers by the per-Gaussian loops): rotation
    (row-major 9-tuple), translation, intrinsics (fx, fy, cx, cy) and view-ray limits."""
    return (
        (cam[c, 0], cam[c, 1], cam[c, 2], cam[c, 3], cam[c, 4], cam[c, 5], cam[c, 6], cam[c, 7], cam[c, 8]),
        (cam[c, _T], cam[c, _T + 1], cam[c, _T + 2]),
        (cam[c, _FX], cam[c, _FY], cam[c, _CX], cam[c, _CY]),
        (cam[c, _LXP], cam[c, _LXN], cam[c, _LYP], cam[c, _LYN]),
    )


@njit(cache=True)
def _view_point(w, t, means, g):
    """The mean of Gaussian g in the camera frame (float64)."""
    mx, my, mz = float(means[g, 0]), float(means[g, 1]), float(means[g, 2])
    x = w[0] * mx + w[1] * my + w[2] * mz + t[0]
    y = w[3] * mx + w[4] * my + w[5] * mz + t[1]
    z = w[6] * mx + w[7] * my + w[8] * mz + t[2]
    return x, y, z


@njit(cache=True)
def _cov_camera(w, quats, scales, g):
    """Normalised quaternion, its norm, rotation R, scales, M = R S and the camera-frame 3D
    covariance W (M M^T) W^T = (W M)(W M)^T (45 multiplies instead of 81) of Gaussian g."""
    qw, qx, qy, qz = float(quats[g, 0]), float(quats[g, 1]), float(quats[g, 2]), float(quats[g, 3])
    qnorm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    inv = 1.0 / max(qnorm, 1e-12)
    qw, qx, qy, qz = qw * inv, qx * inv, qy * inv, qz * inv
    r = _rotmat(qw, qx, qy, qz)
    sx, sy, sz = float(scales[g, 0]), float(scales[g, 1]), float(scales[g, 2])
    m = (r[0] * sx, r[1] * sy, r[2] * sz, r[3] * sx, r[4] * sy, r[5] * sz, r[6] * sx, r[7] * sy, r[8] * sz)
    return (qw, qx, qy, qz), qnorm, r, (sx, sy, sz), m, _aat(_mm(w, m))


@njit(cache=True)
def _jacobian(intr, lims, x, y, z):
    """Projection Jacobian entries at the view ray clamped to the limits (gsplat's tx, ty clamp)."""
    fx, fy = intr[0], intr[1]
    lim_x_pos, lim_x_neg, lim_y_pos, lim_y_neg = lims
    rz = 1.0 / z
    xr, yr = x * rz, y * rz
    free_x = xr <= lim_x_pos and xr >= -lim_x_neg
    free_y = yr <= lim_y_pos and yr >= -lim_y_neg
    tx = z * min(lim_x_pos, max(-lim_x_neg, xr))
    ty = z * min(lim_y_pos, max(-lim_y_neg, yr))
    return rz, tx, ty, free_x, free_y, fx * rz, -fx * tx * rz * rz, fy * rz, -fy * ty * rz * rz


@njit(cache=True)
def _cov2d(cov_c, j00, j02, j11, j12, eps2d):
    # rows of J @ cov_c, then (J cov_c J^T)
    a0, a1, a2 = (
        j00 * cov_c[0] + j02 * cov_c[6],
        j00 * cov_c[1] + j02 * cov_c[7],
        j00 * cov_c[2] + j02 * cov_c[8],
    )
    b1, b2 = j11 * cov_c[4] + j12 * cov_c[7], j11 * cov_c[5] + j12 * cov_c[8]
    c00 = a0 * j00 + a2 * j02 + eps2d
    c01 = a1 * j11 + a2 * j12
    c11 = b1 * j11 + b2 * j12 + eps2d
    return c00, c01, c11


@njit(cache=True)
def _cull_slopes(intr, lims, eps2d):
    """(kx, ky, k0) of the conservative screen half-extent bound k * s_max / z + k0 used by
    `project_fwd` before any covariance maths: |row of J|^2 s_max^2 + eps2d bounds the 2D
    variance, 3.33 sigma the radius, sqrt(a + b) <= sqrt(a) + sqrt(b), plus 2 px of slack."""
    lim_x, lim_y = max(lims[0], lims[1]), max(lims[2], lims[3])
    k0 = 3.33 * math.sqrt(eps2d) + 2.0
    return 3.33 * intr[0] * math.sqrt(1.0 + lim_x * lim_x), 3.33 * intr[1] * math.sqrt(1.0 + lim_y * lim_y), k0


@njit(cache=True, inline="always")
def _project_one(
    means,
    quats,
    scales,
    op,
    w,
    t,
    intr,
    lims,
    cull,
    width,
    height,
    eps2d,
    near,
    far,
    radius_clip,
    c,
    g,
    means2d,
    conics,
    depths,
    radii,
    records,
):
    """Project Gaussian g into camera c: write its depth, and for a visible one its mean, conic,
    radii and record (culled ones keep zeros). Returns whether it is visible."""
    fx, fy, cx, cy = intr
    kx, ky, k0 = cull
    means2d[c, g, 0] = 0.0
    means2d[c, g, 1] = 0.0
    conics[c, g, 0] = 0.0
    conics[c, g, 1] = 0.0
    conics[c, g, 2] = 0.0
    radii[c, g, 0] = 0
    radii[c, g, 1] = 0
    x, y, z = _view_point(w, t, means, g)
    depths[c, g] = z
    if z < near or z > far or op < ALPHA_THRESHOLD:
        return False
    rz = 1.0 / z
    u = fx * x * rz + cx
    v = fy * y * rz + cy
    s_max = max(abs(scales[g, 0]), abs(scales[g, 1]), abs(scales[g, 2])) * rz
    bx, by = kx * s_max + k0, ky * s_max + k0
    if z > 0.0 and (u + bx <= 0 or u - bx >= width or v + by <= 0 or v - by >= height):
        return False
    cov_c = _cov_camera(w, quats, scales, g)[5]
    rz, tx, ty, fr_x, fr_y, j00, j02, j11, j12 = _jacobian(intr, lims, x, y, z)
    c00, c01, c11 = _cov2d(cov_c, j00, j02, j11, j12, eps2d)
    det = c00 * c11 - c01 * c01
    if det <= 0.0:
        return False
    log_ratio = math.log(op / ALPHA_THRESHOLD)
    extend = min(3.33, math.sqrt(2.0 * log_ratio))
    b = 0.5 * (c00 + c11)
    v1 = b + math.sqrt(max(0.01, b * b - det))
    r1 = extend * math.sqrt(v1)
    rx = math.ceil(min(extend * math.sqrt(c00), r1))
    ry = math.ceil(min(extend * math.sqrt(c11), r1))
    if rx <= radius_clip and ry <= radius_clip:
        return False
    if u + rx <= 0 or u - rx >= width or v + ry <= 0 or v - ry >= height:
        return False
    mx, my = np.float32(u), np.float32(v)
    means2d[c, g, 0] = mx
    means2d[c, g, 1] = my
    inv_det = 1.0 / det
    ca, cb, cc = np.float32(c11 * inv_det), np.float32(-c01 * inv_det), np.float32(c00 * inv_det)
    conics[c, g, 0], conics[c, g, 1], conics[c, g, 2] = ca, cb, cc
    radii[c, g, 0] = int(rx)
    radii[c, g, 1] = int(ry)
    write_record(records, c, g, mx, my, ca, cb, cc, op, log_ratio)
    return True


def num_chunks(n: int) -> int:
    """How many chunks `project_fwd` splits the Gaussians into: enough for the threads to share
    them evenly, few enough that the per-chunk tile histograms stay small."""
    return max(1, min(32, n // 256))


@njit(parallel=True, cache=True)
def project_fwd(
    means,
    quats,
    scales,
    opacities,
    viewmats,
    Ks,
    width,
    height,
    eps2d,
    near,
    far,
    radius_clip,
    tile_size,
    coeffs,
    sh_degree,
    means2d,
    conics,
    depths,
    radii,
    records,
    colors,
    keys,
    visible_ids,
    visible_rects,
    chunk_visible,
    chunk_tiles,
):
    """Fill means2d [C,N,2], conics [C,N,3], depths [C,N], radii [C,N,2] (int32, 0 = culled) and,
    for the visible, the compositing's records [C,N,N_RECORD], and what the tile binning needs:
    the Gaussians are split into chunks [g0, g1); chunk k of camera c lists its visible Gaussians
    in index order at positions i in [g0, g0 + chunk_visible[c, k]): their index (visible_ids
    [C,N]), tile rectangle [tx0, ty0, tx1, ty1) (visible_rects [C,N,4]) and sort key (keys [C,N],
    depth key << 32 | i), and counts how many touch each tile (chunk_tiles [C,chunks,tiles]),
    so `intersect_tiles` only sorts and scatters. With sh_degree >= 0 it also evaluates the
    visible Gaussians' colours from SH coefficients [N,K,3] into colors [C,N,3] (the culled
    entries are left unset: nothing reads them), saving the thread wake-up of a kernel of their own.
    Most Gaussians of a scene are off-screen: a cheap conservative bound rejects them before the
    covariance maths, which then runs only for the few that may be visible."""
    n_cam, n = viewmats.shape[0], means.shape[0]
    n_chunks = chunk_tiles.shape[1]
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    cam = camera_constants(viewmats, Ks, width, height)
    campos = camera_centres(viewmats)
    n_basis = (sh_degree + 1) * (sh_degree + 1)
    depth_bits = depths.view(np.uint32)
    for job in prange(n_cam * n_chunks):
        c, k = job // n_chunks, job % n_chunks
        w, t, intr, lims = _camera(cam, c)
        cull = _cull_slopes(intr, lims, eps2d)
        g0, g1 = k * n // n_chunks, (k + 1) * n // n_chunks
        counts = chunk_tiles[c, k]
        counts[:] = 0
        n_vis = 0
        for g in range(g0, g1):
            op = float(opacities[g])
            visible = _project_one(
                means,
                quats,
                scales,
                op,
                w,
                t,
                intr,
                lims,
                cull,
                width,
                height,
                eps2d,
                near,
                far,
                radius_clip,
                c,
                g,
                means2d,
                conics,
                depths,
                radii,
                records,
            )
            if not visible:
                continue
            tx0, ty0, tx1, ty1 = tile_rect(
                means2d[c, g, 0], means2d[c, g, 1], radii[c, g, 0], radii[c, g, 1], tile_size, tiles_x, tiles_y
            )
            i = g0 + n_vis
            rect = visible_rects[c, i]
            rect[0], rect[1], rect[2], rect[3] = tx0, ty0, tx1, ty1
            visible_ids[c, i] = g
            keys[c, i] = (np.uint64(sortable_key(depth_bits[c, g])) << np.uint64(32)) | np.uint64(i)
            n_vis += 1
        chunk_visible[c, k] = n_vis
        for i in range(g0, g0 + n_vis):  # loops of their own run faster than inside the one above
            rect = visible_rects[c, i]
            for ty in range(rect[1], rect[3]):
                for tx in range(rect[0], rect[2]):
                    counts[ty * tiles_x + tx] += 1
        if sh_degree >= 0:  # inside the projection loop this ran at half the speed
            centre = camera_centre(campos, c)
            for i in range(g0, g0 + n_vis):
                sh_colour(means, coeffs, centre, sh_degree, n_basis, c, visible_ids[c, i], colors)


@njit(parallel=True, cache=True)
def project_bwd(
    means,
    quats,
    scales,
    viewmats,
    Ks,
    width,
    height,
    eps2d,
    radii,
    v_means2d,
    v_conics,
    v_depths,
    v_means,
    v_quats,
    v_scales,
):
    """Accumulate d(loss)/d(means, quats, scales) [N,...] from gradients of the projection outputs."""
    n_cam, n = viewmats.shape[0], means.shape[0]
    cam = camera_constants(viewmats, Ks, width, height)
    for g in prange(n):
        gm0 = gm1 = gm2 = 0.0
        gq0 = gq1 = gq2 = gq3 = 0.0
        gs0 = gs1 = gs2 = 0.0
        for c in range(n_cam):
            if radii[c, g, 0] <= 0 or radii[c, g, 1] <= 0:
                continue
            w, t, intr, lims = _camera(cam, c)
            fx, fy = intr[0], intr[1]
            x, y, z = _view_point(w, t, means, g)
            q, qn, r, s, m, cov_c = _cov_camera(w, quats, scales, g)
            rz, tx, ty, fr_x, fr_y, j00, j02, j11, j12 = _jacobian(intr, lims, x, y, z)
            c00, c01, c11 = _cov2d(cov_c, j00, j02, j11, j12, eps2d)
            det = c00 * c11 - c01 * c01
            ia, ib, ic = c11 / det, -c01 / det, c00 / det
            # conic = inv(cov2d): d cov2d = -inv G inv, with G the symmetric gradient of the conic
            ga, gb, gc = float(v_conics[c, g, 0]), 0.5 * float(v_conics[c, g, 1]), float(v_conics[c, g, 2])
            p00, p01 = ia * ga + ib * gb, ia * gb + ib * gc
            p10, p11 = ib * ga + ic * gb, ib * gb + ic * gc
            v00 = -(p00 * ia + p01 * ib)
            v01 = -(p00 * ib + p01 * ic)
            v11 = -(p10 * ib + p11 * ic)
            # cov2d = J cov_c J^T, J = [[j00, 0, j02], [0, j11, j12]]
            jj = (j00, 0.0, j02, 0.0, j11, j12)
            vj = (
                v00 * jj[0] + v01 * jj[3],
                v00 * jj[1] + v01 * jj[4],
                v00 * jj[2] + v01 * jj[5],
                v01 * jj[0] + v11 * jj[3],
                v01 * jj[1] + v11 * jj[4],
                v01 * jj[2] + v11 * jj[5],
            )  # V J (2x3)
            v_cov_c = (
                jj[0] * vj[0] + jj[3] * vj[3],
                jj[0] * vj[1] + jj[3] * vj[4],
                jj[0] * vj[2] + jj[3] * vj[5],
                jj[1] * vj[0] + jj[4] * vj[3],
                jj[1] * vj[1] + jj[4] * vj[4],
                jj[1] * vj[2] + jj[4] * vj[5],
                jj[2] * vj[0] + jj[5] * vj[3],
                jj[2] * vj[1] + jj[5] * vj[4],
                jj[2] * vj[2] + jj[5] * vj[5],
            )
            # dL/dJ = 2 V J cov_c (only the four non-constant entries are needed)
            vjc00 = 2 * (vj[0] * cov_c[0] + vj[1] * cov_c[3] + vj[2] * cov_c[6])
            vjc02 = 2 * (vj[0] * cov_c[2] + vj[1] * cov_c[5] + vj[2] * cov_c[8])
            vjc11 = 2 * (vj[3] * cov_c[1] + vj[4] * cov_c[4] + vj[5] * cov_c[7])
            vjc12 = 2 * (vj[3] * cov_c[2] + vj[4] * cov_c[5] + vj[5] * cov_c[8])
            gu, gv = float(v_means2d[c, g, 0]), float(v_means2d[c, g, 1])
            rz2 = rz * rz
            rz3 = rz2 * rz
            vx = fx * rz * gu
            vy = fy * rz * gv
            vz = -(fx * x * gu + fy * y * gv) * rz2 + float(v_depths[c, g])
            vz += -fx * rz2 * vjc00 - fy * rz2 * vjc11
            if fr_x:
                vx += -fx * rz2 * vjc02
                vz += 2.0 * fx * tx * rz3 * vjc02
            else:
                vz += fx * tx * rz3 * vjc02
            if fr_y:
                vy += -fy * rz2 * vjc12
                vz += 2.0 * fy * ty * rz3 * vjc12
            else:
                vz += fy * ty * rz3 * vjc12
            gm0 += w[0] * vx + w[3] * vy + w[6] * vz
            gm1 += w[1] * vx + w[4] * vy + w[7] * vz
            gm2 += w[2] * vx + w[5] * vy + w[8] * vz
            # cov_c = W Sigma W^T; Sigma = M M^T; M = R S
            v_sig = _mm(_mm(_t(w), v_cov_c), w)
            vm_ = _mm(
                (
                    v_sig[0] + v_sig[0],
                    v_sig[1] + v_sig[3],
                    v_sig[2] + v_sig[6],
                    v_sig[3] + v_sig[1],
                    v_sig[4] + v_sig[4],
                    v_sig[5] + v_sig[7],
                    v_sig[6] + v_sig[2],
                    v_sig[7] + v_sig[5],
                    v_sig[8] + v_sig[8],
                ),
                m,
            )
            gs0 += vm_[0] * r[0] + vm_[3] * r[3] + vm_[6] * r[6]
            gs1 += vm_[1] * r[1] + vm_[4] * r[4] + vm_[7] * r[7]
            gs2 += vm_[2] * r[2] + vm_[5] * r[5] + vm_[8] * r[8]
            g00, g01, g02 = vm_[0] * s[0], vm_[1] * s[1], vm_[2] * s[2]
            g10, g11, g12 = vm_[3] * s[0], vm_[4] * s[1], vm_[5] * s[2]
            g20, g21, g22 = vm_[6] * s[0], vm_[7] * s[1], vm_[8] * s[2]
            qw, qx, qy, qz = q
            dw = 2 * (-qz * g01 + qy * g02 + qz * g10 - qx * g12 - qy * g20 + qx * g21)
            dx = 2 * (qy * g01 + qz * g02 + qy * g10 - 2 * qx * g11 - qw * g12 + qz * g20 + qw * g21 - 2 * qx * g22)
            dy = 2 * (-2 * qy * g00 + qx * g01 + qw * g02 + qx * g10 + qz * g12 - qw * g20 + qz * g21 - 2 * qy * g22)
            dz = 2 * (-2 * qz * g00 - qw * g01 + qx * g02 + qw * g10 - 2 * qz * g11 + qy * g12 + qx * g20 + qy * g21)
            dot = qw * dw + qx * dx + qy * dy + qz * dz
            inv = 1.0 / max(qn, 1e-12)
            gq0 += (dw - qw * dot) * inv
            gq1 += (dx - qx * dot) * inv
            gq2 += (dy - qy * dot) * inv
            gq3 += (dz - qz * dot) * inv
        v_means[g, 0] = gm0
        v_means[g, 1] = gm1
        v_means[g, 2] = gm2
        v_quats[g, 0] = gq0
        v_quats[g, 1] = gq1
        v_quats[g, 2] = gq2
        v_quats[g, 3] = gq3
        v_scales[g, 0] = gs0
        v_scales[g, 1] = gs1
        v_scales[g, 2] = gs2


def empty_projection(n_cam: int, n: int, width: int, height: int, tile_size: int) -> tuple[np.ndarray, ...]:
    """Output buffers for `project_fwd`: means2d, conics, depths, radii, records, keys,
    visible_ids, visible_rects, chunk_visible, chunk_tiles."""
    n_tiles = -(-width // tile_size) * -(-height // tile_size)
    n_chunks = num_chunks(n)
    return (
        np.empty((n_cam, n, 2), np.float32),
        np.empty((n_cam, n, 3), np.float32),
        np.empty((n_cam, n), np.float32),
        np.empty((n_cam, n, 2), np.int32),
        empty_records(n_cam, n),
        np.empty((n_cam, n), np.uint64),
        np.empty((n_cam, n), np.int32),
        np.empty((n_cam, n, 4), np.int32),
        np.empty((n_cam, n_chunks), np.int64),
        np.empty((n_cam, n_chunks, n_tiles), np.int32),
    )
