"""Numba kernels: view-dependent colour from SH coefficients (degree 0-3), forward and backward.

colour = max(sum_k B_k(d) * coeff_k + 0.5, 0) with d the unit direction from the camera centre
to the mean (gsplat's `spherical_harmonics` followed by `clamp_min(colors + 0.5, 0)`). Culled
(camera, Gaussian) pairs are skipped: they are never composited.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from scenes.rasterize.sh_basis import C0, C1, C2A, C2B, C2C, C2D, C3A, C3B, C3C, C3D, C3E, C3F


@njit(cache=True)
def _basis(deg, x, y, z):
    """The 16 basis values (zeros above `deg`)."""
    b1 = b2 = b3 = b4 = b5 = b6 = b7 = b8 = b9 = b10 = b11 = b12 = b13 = b14 = b15 = 0.0
    if deg >= 1:
        b1, b2, b3 = -C1 * y, C1 * z, -C1 * x
    if deg >= 2:
        z2 = z * z
        fc1, fs1 = x * x - y * y, 2.0 * x * y
        b4, b5, b6, b7, b8 = C2D * fs1, -C2A * z * y, C2B * z2 - C2C, -C2A * z * x, C2D * fc1
        if deg >= 3:
            tc = -C3C * z2 + C3D
            fc2, fs2 = x * fc1 - y * fs1, x * fs1 + y * fc1
            b9, b10, b11, b12 = -C3A * fs2, C3B * z * fs1, tc * y, z * (C3E * z2 - C3F)
            b13, b14, b15 = tc * x, C3B * z * fc1, -C3A * fc2
    return (C0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15)


@njit(cache=True)
def _basis_grad(deg, x, y, z):
    """d(basis)/dx, d/dy, d/dz of the polynomial basis (16-tuples each, zeros above `deg`)."""
    y1 = z2_ = x3 = 0.0
    x4 = y4 = y5 = z5 = z6 = x7 = z7 = x8 = y8 = 0.0
    x9 = y9 = x10 = y10 = z10 = y11 = z11 = z12 = x13 = z13 = x14 = y14 = z14 = x15 = y15 = 0.0
    if deg >= 1:
        y1, z2_, x3 = -C1, C1, -C1
    if deg >= 2:
        x4, y4 = 2.0 * C2D * y, 2.0 * C2D * x
        y5, z5 = -C2A * z, -C2A * y
        z6 = 2.0 * C2B * z
        x7, z7 = -C2A * z, -C2A * x
        x8, y8 = 2.0 * C2D * x, -2.0 * C2D * y
    if deg >= 3:
        tc = -C3C * z * z + C3D
        x9, y9 = -6.0 * C3A * x * y, -3.0 * C3A * (x * x - y * y)
        x10, y10, z10 = 2.0 * C3B * z * y, 2.0 * C3B * z * x, 2.0 * C3B * x * y
        y11, z11 = tc, -2.0 * C3C * z * y
        z12 = 3.0 * C3E * z * z - C3F
        x13, z13 = tc, -2.0 * C3C * z * x
        x14, y14, z14 = 2.0 * C3B * z * x, -2.0 * C3B * z * y, C3B * (x * x - y * y)
        x15, y15 = -3.0 * C3A * (x * x - y * y), 6.0 * C3A * x * y
    gx = (0.0, 0.0, 0.0, x3, x4, 0.0, 0.0, x7, x8, x9, x10, 0.0, 0.0, x13, x14, x15)
    gy = (0.0, y1, 0.0, 0.0, y4, y5, 0.0, 0.0, y8, y9, y10, y11, 0.0, 0.0, y14, y15)
    gz = (0.0, 0.0, z2_, 0.0, 0.0, z5, z6, z7, 0.0, 0.0, z10, z11, z12, z13, z14, 0.0)
    return gx, gy, gz


@njit(cache=True, inline="always")
def _sh_sum(b, coeffs, g, nb):
    """sum_k b[k] * coeffs[g, k, :] over the first nb basis functions, the three channels in one
    pass over the Gaussian's contiguous coefficients. The loop has a fixed trip count, so LLVM
    unrolls it and the basis tuple stays in registers, which `range(1, nb)` did not allow
    (BENCHMARKS.md, *CPU rasterizer*)."""
    r, gr, bl = b[0] * coeffs[g, 0, 0], b[0] * coeffs[g, 0, 1], b[0] * coeffs[g, 0, 2]
    for k in range(1, 16):
        if k < nb:
            bk = b[k]
            r += bk * coeffs[g, k, 0]
            gr += bk * coeffs[g, k, 1]
            bl += bk * coeffs[g, k, 2]
    return r, gr, bl


@njit(cache=True)
def _unit_dir(means, centre, g):
    """Unit direction from the camera centre (a 3-tuple: kept in registers) to mean g, and the distance."""
    dx = float(means[g, 0]) - centre[0]
    dy = float(means[g, 1]) - centre[1]
    dz = float(means[g, 2]) - centre[2]
    norm = math.sqrt(dx * dx + dy * dy + dz * dz)
    inv = 1.0 / max(norm, 1e-12)
    return dx * inv, dy * inv, dz * inv, norm


@njit(cache=True)
def camera_centres(viewmats):
    """Camera centres [C,3] float64 of world-to-camera [R t; 0 1] matrices: -R^-1 t, by Cramer's
    rule (what inverse(viewmats)[:, :3, 3] gives, without a LAPACK call per render)."""
    out = np.empty((viewmats.shape[0], 3))
    for c in range(viewmats.shape[0]):
        m = viewmats[c].astype(np.float64)
        a, b, d = m[0, 0], m[0, 1], m[0, 2]
        e, f, g = m[1, 0], m[1, 1], m[1, 2]
        h, i, j = m[2, 0], m[2, 1], m[2, 2]
        t0, t1, t2 = -m[0, 3], -m[1, 3], -m[2, 3]
        co0, co1, co2 = f * j - g * i, g * h - e * j, e * i - f * h  # cofactors of row 0
        inv_det = 1.0 / (a * co0 + b * co1 + d * co2)
        out[c, 0] = (co0 * t0 + (d * i - b * j) * t1 + (b * g - d * f) * t2) * inv_det
        out[c, 1] = (co1 * t0 + (a * j - d * h) * t1 + (d * e - a * g) * t2) * inv_det
        out[c, 2] = (co2 * t0 + (b * h - a * i) * t1 + (a * f - b * e) * t2) * inv_det
    return out


@njit(cache=True)
def camera_centre(campos, c):
    """Row c of `camera_centres` as a tuple."""
    return campos[c, 0], campos[c, 1], campos[c, 2]


@njit(cache=True, inline="always")
def sh_colour(means, coeffs, centre, deg, nb, c, g, colors):
    """colors[c, g] (3 channels) of Gaussian g seen from camera c, whose centre is the 3-tuple
    `centre` (see `camera_centre`); nb = (deg + 1)^2."""
    x, y, z, _ = _unit_dir(means, centre, g)
    r, gr, bl = _sh_sum(_basis(deg, x, y, z), coeffs, g, nb)
    colors[c, g, 0] = max(r + 0.5, 0.0)
    colors[c, g, 1] = max(gr + 0.5, 0.0)
    colors[c, g, 2] = max(bl + 0.5, 0.0)


@njit(parallel=True, cache=True)
def sh_fwd(means, coeffs, campos, radii, deg, colors):
    """colors [C,N,3] from coeffs [N,K,3]; culled pairs get 0."""
    n_cam, n = campos.shape[0], means.shape[0]
    nb = (deg + 1) * (deg + 1)
    for c in range(n_cam):
        centre = camera_centre(campos, c)
        for g in prange(n):
            if radii[c, g, 0] <= 0 or radii[c, g, 1] <= 0:
                colors[c, g, 0] = colors[c, g, 1] = colors[c, g, 2] = 0.0
                continue
            sh_colour(means, coeffs, centre, deg, nb, c, g, colors)


@njit(parallel=True, cache=True)
def sh_bwd(means, coeffs, campos, radii, deg, v_colors, v_coeffs, v_means):
    """Gradients wrt coeffs [N,K,3] (rows above the degree stay 0) and means [N,3] (overwritten)."""
    n_cam, n = campos.shape[0], means.shape[0]
    nb = (deg + 1) * (deg + 1)
    for g in prange(n):
        for k in range(v_coeffs.shape[1]):
            for ch in range(3):
                v_coeffs[g, k, ch] = 0.0
        vm0 = vm1 = vm2 = 0.0
        for c in range(n_cam):
            if radii[c, g, 0] <= 0 or radii[c, g, 1] <= 0:
                continue
            x, y, z, norm = _unit_dir(means, camera_centre(campos, c), g)
            b = _basis(deg, x, y, z)
            gx, gy, gz = _basis_grad(deg, x, y, z)
            vdx = vdy = vdz = 0.0
            sums = _sh_sum(b, coeffs, g, nb)
            for ch in range(3):
                if sums[ch] + 0.5 < 0.0:  # clamp_min passes the gradient where the input is >= 0
                    continue
                vc = float(v_colors[c, g, ch])
                for k in range(nb):
                    v_coeffs[g, k, ch] += b[k] * vc
                    w = vc * coeffs[g, k, ch]
                    vdx += w * gx[k]
                    vdy += w * gy[k]
                    vdz += w * gz[k]
            if deg > 0:  # through d = v / |v|: (I - d d^T) / |v|
                dot = vdx * x + vdy * y + vdz * z
                inv = 1.0 / max(norm, 1e-12)
                vm0 += (vdx - x * dot) * inv
                vm1 += (vdy - y * dot) * inv
                vm2 += (vdz - z * dot) * inv
        v_means[g, 0] = vm0
        v_means[g, 1] = vm1
        v_means[g, 2] = vm2
