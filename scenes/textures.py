"""Procedural textures for the synthetic room: deterministic albedo images baked from a material
name and a seed (value noise, bricks, tiles, wood grain, posters with random shapes), and the
bilinear lookup that samples them.

Baked once per face and sampled bilinearly, so renders are deterministic and rich in SIFT features
(what SfM needs) yet smooth at the pixel level (what splat training needs).
"""

from __future__ import annotations

import colorsys
import functools
import math

import numpy as np


@functools.lru_cache(maxsize=512)
def bake_texture(material: str, seed: int, width_m: float, height_m: float, texels_per_m: float) -> np.ndarray:
    """A deterministic albedo image float32 [rows, cols, 3] in [0,1] covering width_m x height_m
    metres (row index = v, column index = u, texel centres at (i + 0.5) / texels_per_m).
    Cached (read-only) so that rooms built again in one process do not bake again."""
    rng = np.random.default_rng(seed)
    cols = max(2, math.ceil(width_m * texels_per_m))
    rows = max(2, math.ceil(height_m * texels_per_m))
    U, V = np.meshgrid((np.arange(cols) + 0.5) / texels_per_m, (np.arange(rows) + 0.5) / texels_per_m)
    img = np.clip(MATERIALS[material](rng, U, V), 0, 1).astype(np.float32)
    img.flags.writeable = False
    return img


def _value_noise(rng: np.random.Generator, U: np.ndarray, V: np.ndarray, scale: float) -> np.ndarray:
    """Smooth noise with features of about `scale` metres on the regular grid U, V: a random
    lattice smoothed by a cubic B-spline (separable, so two small matrix products)."""
    lat = rng.uniform(-1.7, 1.7, (int(V.max() / scale) + 4, int(U.max() / scale) + 4))
    return (
        _bspline_weights(V[:, 0] / scale + 1, lat.shape[0]) @ lat @ _bspline_weights(U[0] / scale + 1, lat.shape[1]).T
    )


def _bspline_weights(x: np.ndarray, n: int) -> np.ndarray:
    """[len(x), n] cubic B-spline interpolation weights at lattice coordinates x."""
    i = np.floor(x).astype(np.int64)
    f = x - i
    w = np.stack([(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], 1) / 6
    out = np.zeros((len(x), n))
    for k in range(4):
        np.add.at(out, (np.arange(len(x)), np.clip(i - 1 + k, 0, n - 1)), w[:, k])
    return out


def _fbm(rng, U, V, scales, amps) -> np.ndarray:
    return sum(a * _value_noise(rng, U, V, s) for s, a in zip(scales, amps))


def _colour(
    rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float], hue: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    h = rng.uniform(*hue) % 1.0
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val)))


def _soft(sd: np.ndarray, width: float = 0.008) -> np.ndarray:
    """Coverage in [0,1] from a signed distance (negative inside), anti-aliased over `width`."""
    return np.clip(0.5 - sd / width, 0, 1)


def _rect_sd(px, py, cx, cy, hw, hh, angle=0.0):
    c, s = math.cos(angle), math.sin(angle)
    x, y = (px - cx) * c + (py - cy) * s, -(px - cx) * s + (py - cy) * c
    qx, qy = np.abs(x) - hw, np.abs(y) - hh
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)


def _triangle_sd(px, py, pts):
    (x0, y0), (x1, y1), (x2, y2) = pts
    orient = np.sign((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)) or 1.0
    sd = None
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y1)), ((x1, y1), (x2, y2)), ((x2, y2), (x0, y0))):
        ex, ey = bx - ax, by - ay
        dist = -orient * (ex * (py - ay) - ey * (px - ax)) / math.hypot(ex, ey)
        sd = dist if sd is None else np.maximum(sd, dist)
    return sd


def _draw_poster(rng, img, U, V, u0, v0, w, h) -> None:
    """A framed poster with random circles, bars and triangles, drawn into `img` in place."""
    tpm = 1.0 / (U[0, 1] - U[0, 0])
    c0, c1 = max(0, int(u0 * tpm) - 2), min(img.shape[1], int((u0 + w) * tpm) + 3)
    r0, r1 = max(0, int(v0 * tpm) - 2), min(img.shape[0], int((v0 + h) * tpm) + 3)
    pu, pv = U[r0:r1, c0:c1] - u0, V[r0:r1, c0:c1] - v0
    light = rng.uniform() < 0.6
    bg = _colour(rng, (0.05, 0.3), (0.8, 0.95) if light else (0.12, 0.3))
    poster = np.broadcast_to(bg, pu.shape + (3,)).copy()
    poster *= (1 + _fbm(rng, pu, pv, [0.3], [0.05]))[..., None]
    for _ in range(rng.integers(4, 8)):
        col = _colour(rng, (0.5, 1.0), (0.35, 0.95))
        kind = rng.integers(3)
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        size = rng.uniform(0.06, 0.28) * min(w, h) + 0.03
        if kind == 0:
            sd = np.hypot(pu - cx, pv - cy) - size
        elif kind == 1:
            sd = _rect_sd(pu, pv, cx, cy, size, size * rng.uniform(0.15, 0.6), rng.uniform(0, np.pi))
        else:
            ang = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2]) + rng.uniform(-0.4, 0.4, 3)
            sd = _triangle_sd(pu, pv, [(cx + size * math.cos(a), cy + size * math.sin(a)) for a in ang])
        a = _soft(sd)[..., None]
        poster = poster * (1 - a) + col * a
    frame = _rect_sd(pu, pv, w / 2, h / 2, w / 2, h / 2)
    border = np.clip((frame + 0.02) / 0.006, 0, 1)[..., None]  # 1 in the 2 cm frame
    poster = poster * (1 - border) + bg * 0.35 * border
    a = _soft(frame, 0.006)[..., None]
    img[r0:r1, c0:c1] = img[r0:r1, c0:c1] * (1 - a) + poster * a


def _place_posters(rng, img, U, V, count, v_range, size_range) -> None:
    w_m, h_m = U.max(), V.max()
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        w, h = rng.uniform(*size_range), rng.uniform(*size_range)
        v_top = min(v_range[1], h_m) - h
        if w > w_m - 0.2 or v_top <= v_range[0]:
            continue
        u0, v0 = rng.uniform(0.1, w_m - w - 0.1), rng.uniform(v_range[0], v_top)
        if all(u0 > a + c + 0.1 or a > u0 + w + 0.1 or v0 > b + d + 0.1 or b > v0 + h + 0.1 for a, b, c, d in placed):
            placed.append((u0, v0, w, h))
            _draw_poster(rng, img, U, V, u0, v0, w, h)


def _dots(rng, img, U, V, per_m2: float, radius: tuple[float, float]) -> None:
    """Sparse soft discs of random colour (blobs for feature detectors), drawn in place."""
    tpm = 1.0 / (U[0, 1] - U[0, 0])
    w_m, h_m = U.max(), V.max()
    for _ in range(int(per_m2 * w_m * h_m)):
        cu, cv, rad = rng.uniform(0, w_m), rng.uniform(0, h_m), rng.uniform(*radius)
        c0, c1 = max(0, int((cu - rad) * tpm) - 2), min(img.shape[1], int((cu + rad) * tpm) + 3)
        r0, r1 = max(0, int((cv - rad) * tpm) - 2), min(img.shape[0], int((cv + rad) * tpm) + 3)
        a = _soft(np.hypot(U[r0:r1, c0:c1] - cu, V[r0:r1, c0:c1] - cv) - rad)[..., None]
        col = _colour(rng, (0.2, 0.8), (0.15, 0.9))
        img[r0:r1, c0:c1] = img[r0:r1, c0:c1] * (1 - a) + col * a


def _plaster(rng, U, V):
    base = _colour(rng, (0.08, 0.35), (0.55, 0.8))
    tint = _colour(rng, (0.2, 0.5), (0.45, 0.9))
    mix = (0.5 + 0.5 * _value_noise(rng, U, V, 0.8))[..., None] * 0.5
    img = base * (1 - mix) + tint * mix
    img = img * (1 + _fbm(rng, U, V, [0.5, 0.2, 0.08], [0.15, 0.12, 0.07]))[..., None]
    _dots(rng, img, U, V, per_m2=30, radius=(0.015, 0.05))
    area = U.max() * V.max()
    _place_posters(rng, img, U, V, count=max(2, int(area / 1.8)), v_range=(0.5, 2.7), size_range=(0.25, 0.8))
    # A dark skirting board along the floor.
    board = _soft(V - 0.1, 0.006)[..., None]
    return img * (1 - board) + np.array([0.18, 0.16, 0.14]) * board


def _grid_cells(U, V, cw, ch, row_shift):
    row = np.floor(V / ch).astype(np.int64)
    uu = U + (row % 2) * row_shift
    col = np.floor(uu / cw).astype(np.int64)
    lu, lv = uu - col * cw, V - row * ch
    edge = np.minimum(np.minimum(lu, cw - lu), np.minimum(lv, ch - lv))
    return row, col, edge


def _brick(rng, U, V):
    bw, bh = 0.24, 0.08
    row, col, edge = _grid_cells(U, V, bw, bh, bw / 2)
    base = _colour(rng, (0.45, 0.7), (0.45, 0.65), hue=(0.0, 0.07))
    jit = rng.normal(0, 1, (row.max() + 1, col.max() + 2, 3)) * np.array([0.035, 0.025, 0.02])
    tone = rng.uniform(0.82, 1.15, (row.max() + 1, col.max() + 2))
    brick = base * tone[row, col][..., None] + jit[row, col]
    brick *= (1 + _fbm(rng, U, V, [0.5, 0.15], [0.10, 0.05]))[..., None]
    mortar = np.array([0.72, 0.70, 0.66]) * (1 + 0.05 * _value_noise(rng, U, V, 0.3))[..., None]
    m = np.clip((edge - 0.006) / 0.006, 0, 1)[..., None]
    img = mortar * (1 - m) + brick * m
    _place_posters(rng, img, U, V, count=2, v_range=(1.0, 2.4), size_range=(0.4, 0.8))
    return img


def _tiles(rng, U, V):
    ts = 0.5
    row, col, edge = _grid_cells(U, V, ts, ts, 0.0)
    a, b = _colour(rng, (0.1, 0.35), (0.5, 0.7)), _colour(rng, (0.1, 0.35), (0.3, 0.5))
    checker = ((row + col) % 2)[..., None]
    jit = rng.normal(0, 0.05, (row.max() + 1, col.max() + 1, 3))
    img = a * (1 - checker) + b * checker + jit[row, col]
    img = img * (1 + _fbm(rng, U, V, [0.7, 0.2, 0.08], [0.12, 0.08, 0.04]))[..., None]
    grout = np.clip((edge - 0.004) / 0.005, 0, 1)[..., None]
    img = img * grout + np.array([0.2, 0.2, 0.2]) * (1 - grout)
    # A rug with a patterned border: a large, unique region under the camera loop.
    u0, v0, w, h = 1.2, 1.3, 1.7, 1.2
    rugc = _colour(rng, (0.5, 0.8), (0.35, 0.6))
    sd = _rect_sd(U, V, u0 + w / 2, v0 + h / 2, w / 2, h / 2)
    inner = _rect_sd(U, V, u0 + w / 2, v0 + h / 2, w / 2 - 0.12, h / 2 - 0.12)
    stripes = 0.5 + 0.5 * np.sin((U + V) * 2 * np.pi / 0.16)
    rug = rugc * (1 + 0.08 * _value_noise(rng, U, V, 0.15))[..., None]
    ring = (_soft(sd) * (1 - _soft(inner)))[..., None]
    rug = rug * (1 - ring) + rugc[::-1] * (0.6 + 0.4 * stripes)[..., None] * ring
    cover = _soft(sd)[..., None]
    img = img * (1 - cover) + rug * cover
    _draw_poster(rng, img, U, V, u0 + 0.25, v0 + 0.25, w - 0.5, h - 0.5)
    return img


def _ceiling(rng, U, V):
    ps = 0.6
    row, col, edge = _grid_cells(U, V, ps, ps, 0.0)
    base = _colour(rng, (0.0, 0.12), (0.75, 0.9))
    jit = rng.normal(0, 0.04, (row.max() + 1, col.max() + 1, 1))
    img = base * (1 + jit[row, col] + _fbm(rng, U, V, [0.5, 0.15], [0.08, 0.04])[..., None])
    seam = np.clip((edge - 0.005) / 0.005, 0, 1)[..., None]
    img = img * (0.55 + 0.45 * seam)
    for _ in range(3):
        cx, cy = rng.uniform(0.8, U.max() - 0.8), rng.uniform(0.8, V.max() - 0.8)
        a = _soft(_rect_sd(U, V, cx, cy, 0.25, 0.5, rng.uniform(0, np.pi)))[..., None]
        img = img * (1 - a) + np.array([1.0, 0.97, 0.9]) * a
    return img


def _wood(rng, U, V):
    pw = 0.11
    plank = np.floor(V / pw).astype(np.int64)
    base = _colour(rng, (0.45, 0.7), (0.4, 0.65), hue=(0.05, 0.11))
    tone = rng.uniform(0.8, 1.2, plank.max() + 1)[plank][..., None]
    warp = _value_noise(rng, U, V, 0.4) * 2.5 + _value_noise(rng, U, V, 0.1) * 0.5
    grain = np.sin(2 * np.pi * (V / 0.035 + warp))
    img = base * tone * (1 + 0.07 * grain + _fbm(rng, U, V, [0.3, 0.08], [0.08, 0.04]))[..., None]
    lv = V - plank * pw
    seam = np.clip((np.minimum(lv, pw - lv) - 0.003) / 0.004, 0, 1)[..., None]
    return img * (0.5 + 0.5 * seam)


def _crate(rng, U, V):
    img = _wood(rng, U, V)
    w_m, h_m = U.max(), V.max()
    # Diagonal and border battens, and a stencilled mark.
    border = np.minimum(np.minimum(U, w_m - U), np.minimum(V, h_m - V))
    batt = _soft(border - 0.05)[..., None]
    diag = _soft(np.abs((U / w_m - V / h_m) * min(w_m, h_m)) - 0.03)[..., None]
    dark = img * 0.7
    img = img * (1 - np.maximum(batt, diag)) + dark * np.maximum(batt, diag)
    mark = _soft(np.hypot(U - w_m * rng.uniform(0.3, 0.7), V - h_m * rng.uniform(0.3, 0.7)) - 0.06)[..., None]
    return img * (1 - mark) + _colour(rng, (0.6, 0.9), (0.2, 0.5)) * mark


def _painted(rng, U, V):
    base = _colour(rng, (0.5, 0.85), (0.4, 0.75))
    img = base * (1 + _fbm(rng, U, V, [0.4, 0.12], [0.1, 0.05]))[..., None]
    for zb in (0.12, V.max() - 0.12):
        band = _soft(np.abs(V - zb) - 0.03)[..., None]
        img = img * (1 - band) + np.array([0.25, 0.25, 0.27]) * band
    if U.max() > 0.5 and V.max() > 0.5:
        _draw_poster(rng, img, U, V, U.max() * 0.25, V.max() * 0.3, min(0.45, U.max() * 0.5), V.max() * 0.4)
    return img


def _pillar(rng, U, V):
    base = _colour(rng, (0.0, 0.1), (0.55, 0.7))
    img = base * (1 + _fbm(rng, U, V, [0.5, 0.2, 0.08], [0.15, 0.12, 0.07]))[..., None]
    _dots(rng, img, U, V, per_m2=30, radius=(0.015, 0.04))
    _place_posters(rng, img, U, V, count=3, v_range=(0.6, 2.4), size_range=(0.3, 0.5))
    return img


MATERIALS = {
    "plaster": _plaster,
    "brick": _brick,
    "tiles": _tiles,
    "ceiling": _ceiling,
    "wood": _wood,
    "crate": _crate,
    "painted": _painted,
    "pillar": _pillar,
}
"""Texture generators: (rng, U [rows,cols], V [rows,cols] in metres) -> albedo [rows,cols,3]."""


def bilinear(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of tex [H,W,3] at texel coordinates x (columns), y (rows), clamped."""
    h, w = tex.shape[:2]
    x = np.clip(x.astype(np.float32), 0, w - 1.001)
    y = np.clip(y.astype(np.float32), 0, h - 1.001)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    flat = tex.reshape(-1, 3)
    i = y0 * w + x0
    top = np.take(flat, i, 0) * (1 - fx) + np.take(flat, i + 1, 0) * fx
    bot = np.take(flat, i + w, 0) * (1 - fx) + np.take(flat, i + w + 1, 0) * fx
    return top * (1 - fy) + bot * fy
