"""Benchmark the CPU Gaussian-splat rasterizer on a realistic indoor scene.

The scene: Gaussians of a few centimetres on the walls, floor, ceiling and three boxes of a
6 x 5 x 3 m room, SH degree 3, seen from inside by a 70-degree-FOV camera. Reports forward
frames/s (the no-grad path environments use) and forward+backward iterations/s (training) at
several resolutions, the pure-torch reference at a size it can handle, and the numba cold-start
time when the kernel cache is empty.

    .venv/bin/python benchmarks/bench_rasterizer.py [--gaussians 20000] [--json out.json]
    python benchmarks/bench_rasterizer.py --device cuda --cameras 1 32   # gsplat on a GPU

With --device cuda the same `rasterization` call dispatches to gsplat, and the reference runs in
torch on the GPU; every call is synchronised, as an environment reading back its frame would be.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import time

import numpy as np
import torch

from scenes.rasterize import rasterization, rasterization_reference
from scenes.rasterize.sh_basis import C0


def room_scene(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """n surfel-like Gaussians on the surfaces of a 6x5x3 m room with three boxes, SH degree 3."""
    rng = np.random.default_rng(seed)
    # (origin, edge u, edge v, normal axis) of each rectangle; world z is up
    rects = [
        ((0, 0, 0), (6, 0, 0), (0, 5, 0), 2),
        ((0, 0, 3), (6, 0, 0), (0, 5, 0), 2),
        ((0, 0, 0), (6, 0, 0), (0, 0, 3), 1),
        ((0, 5, 0), (6, 0, 0), (0, 0, 3), 1),
        ((0, 0, 0), (0, 5, 0), (0, 0, 3), 0),
        ((6, 0, 0), (0, 5, 0), (0, 0, 3), 0),
    ]
    for bx, by, size in ((1.0, 1.0, 0.6), (4.2, 3.4, 0.8), (2.0, 3.8, 0.5)):  # boxes standing on the floor
        o = np.array([bx, by, 0.0])
        rects += [
            (tuple(o + [0, 0, size]), (size, 0, 0), (0, size, 0), 2),
            (tuple(o), (size, 0, 0), (0, 0, size), 1),
            (tuple(o + [0, size, 0]), (size, 0, 0), (0, 0, size), 1),
            (tuple(o), (0, size, 0), (0, 0, size), 0),
            (tuple(o + [size, 0, 0]), (0, size, 0), (0, 0, size), 0),
        ]
    areas = np.array([np.linalg.norm(np.cross(u, v)) for _, u, v, _ in rects])
    which = rng.choice(len(rects), size=n, p=areas / areas.sum())
    uv = rng.random((n, 2))
    o, u, v = (np.array([r[i] for r in rects], np.float64)[which] for i in range(3))
    means = o + uv[:, :1] * u + uv[:, 1:] * v
    normal_axis = np.array([r[3] for r in rects])[which]
    scales = rng.uniform(0.015, 0.05, (n, 3))
    scales[np.arange(n), normal_axis] = 0.004  # flat against the surface
    angle = rng.uniform(0, math.pi, n)  # random spin about the surface normal
    quats = np.zeros((n, 4))
    quats[:, 0] = np.cos(angle / 2)
    quats[np.arange(n), 1 + normal_axis] = np.sin(angle / 2)
    base = rng.random((n, 3)) * 0.6 + 0.2 * (normal_axis[:, None] == np.arange(3))  # tint by orientation
    coeffs = rng.normal(0, 0.05, (n, 16, 3))
    coeffs[:, 0] = (base - 0.5) / C0
    opacities = rng.uniform(0.4, 1.0, n)
    f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return {
        "means": f32(means),
        "quats": f32(quats),
        "scales": f32(scales),
        "opacities": f32(opacities),
        "colors": f32(coeffs),
    }


def camera(width: int, height: int, fov_deg: float = 70.0, yaw_deg: float = 20.0) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera [1,4,4] (OpenCV) at eye height in the room, looking across it; K [1,3,3]."""
    yaw = math.radians(yaw_deg)
    fwd = np.array([math.cos(yaw), math.sin(yaw), -0.1])
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, fwd, (1.2, 1.5, 1.6)
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    return torch.tensor(np.linalg.inv(c2w), dtype=torch.float32)[None], torch.tensor(K, dtype=torch.float32)[None]


def cameras(width: int, height: int, n: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """n cameras [n,4,4], [n,3,3] at the same spot, turned 10 degrees apart (a batch of environments)."""
    cams = [camera(width, height, yaw_deg=20.0 + 10.0 * i) for i in range(n)]
    return torch.cat([c[0] for c in cams]).to(device), torch.cat([c[1] for c in cams]).to(device)


def _best_rate(fn, min_time: float, repeats: int) -> tuple[float, float]:
    """Best of `repeats` timing rounds, each at least `min_time` seconds: (calls per wall-clock
    second, process CPU milliseconds per call in that round; all threads summed). CUDA work is
    synchronised after every call."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    fn()
    sync()
    best, cpu_ms = 0.0, float("nan")
    for _ in range(repeats):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            sync()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        if n / dt > best:
            best, cpu_ms = n / dt, (time.process_time() - c0) / n * 1e3
    return best, cpu_ms


def bench(
    n: int,
    sizes: list[int],
    ref_n: int,
    ref_size: int,
    min_time: float,
    repeats: int,
    device: str = "cpu",
    num_cameras: tuple[int, ...] = (1,),
) -> dict:
    scene = {k: v.to(device) for k, v in room_scene(n).items()}
    fast = "gsplat" if device.startswith("cuda") else "fast"
    rows = []
    t0 = time.perf_counter()
    vm, K = cameras(64, 64, 1, device)
    with torch.no_grad():
        rasterization(**scene, viewmats=vm, Ks=K, width=64, height=64, sh_degree=3)
    first_fwd = time.perf_counter() - t0
    params = {k: v.clone().requires_grad_(True) for k, v in scene.items()}

    def train_step(w, h, vm, K, target):
        out, _, meta = rasterization(**params, viewmats=vm, Ks=K, width=w, height=h, sh_degree=3)
        meta["means2d"].retain_grad()
        loss = (out - target).abs().mean()
        loss.backward()
        for p in params.values():
            p.grad = None

    t0 = time.perf_counter()
    train_step(64, 64, vm, K, torch.zeros(1, 64, 64, 3, device=device))
    first_bwd = time.perf_counter() - t0
    for s, c in ((s, c) for s in sizes for c in num_cameras):
        vm, K = cameras(s, s, c, device)
        with torch.no_grad():
            img, alpha, meta = rasterization(**scene, viewmats=vm, Ks=K, width=s, height=s, sh_degree=3)
        visible = int((meta["radii"][0] > 0).sum())
        with torch.no_grad():
            fwd = _best_rate(
                functools.partial(rasterization, **scene, viewmats=vm, Ks=K, width=s, height=s, sh_degree=3),
                min_time,
                repeats,
            )
        target = torch.rand(c, s, s, 3, device=device)
        fb = _best_rate(functools.partial(train_step, s, s, vm, K, target), min_time, repeats)
        rows.append(
            {
                "path": fast,
                "gaussians": n,
                "visible": visible,
                "size": s,
                "cameras": c,
                "forward_fps": c * fwd[0],
                "forward_cpu_ms": fwd[1],
                "fwd_bwd_its": fb[0],
                "fwd_bwd_cpu_ms": fb[1],
                "coverage": float(alpha.mean()),
            }
        )
    sub = {k: v[:ref_n] for k, v in scene.items()}
    vm, K = cameras(ref_size, ref_size, 1, device)
    ref_params = {k: v.clone().requires_grad_(True) for k, v in sub.items()}

    def ref_step():
        out, _, _ = rasterization_reference(
            **ref_params, viewmats=vm, Ks=K, width=ref_size, height=ref_size, sh_degree=3
        )
        out.mean().backward()

    with torch.no_grad():
        ref_fwd = _best_rate(
            lambda: rasterization_reference(**sub, viewmats=vm, Ks=K, width=ref_size, height=ref_size, sh_degree=3),
            min_time,
            1,
        )
    ref_fb = _best_rate(ref_step, min_time, 1)
    rows.append(
        {
            "path": "reference",
            "gaussians": ref_n,
            "visible": None,
            "size": ref_size,
            "cameras": 1,
            "forward_fps": ref_fwd[0],
            "forward_cpu_ms": ref_fwd[1],
            "fwd_bwd_its": ref_fb[0],
            "fwd_bwd_cpu_ms": ref_fb[1],
            "coverage": None,
        }
    )
    with torch.no_grad():
        fast_small = _best_rate(
            lambda: rasterization(**sub, viewmats=vm, Ks=K, width=ref_size, height=ref_size, sh_degree=3),
            min_time,
            repeats,
        )
    rows.append(
        {
            "path": f"{fast} (reference's case)",
            "gaussians": ref_n,
            "visible": None,
            "size": ref_size,
            "cameras": 1,
            "forward_fps": fast_small[0],
            "forward_cpu_ms": fast_small[1],
            "fwd_bwd_its": None,
            "fwd_bwd_cpu_ms": None,
            "coverage": None,
        }
    )
    return {"rows": rows, "first_forward_s": first_fwd, "first_fwd_bwd_s": first_bwd}


def _copy(dst: np.ndarray, src: np.ndarray, reps: int) -> None:
    for _ in range(reps):
        np.copyto(dst, src)


def host_check() -> dict:
    """How fast the host is right now, independent of our code: a pure-Python arithmetic loop (core
    speed) and array copies of 4 MB (about one frame's data, cache-resident when the host is quiet)
    and 64 MB (main memory). The shared VM's speed varies by tens of percent between hours; these
    tell a slow host from a slow rasterizer."""

    def best(fn, n: int) -> float:
        t = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        return min(t)

    out = {"python_loop_ms": 1e3 * best(lambda: sum(math.sqrt(i) for i in range(300_000)), 5)}
    for mb in (4, 64):
        src = np.ones(mb * 2**20 // 8)
        dst = np.empty_like(src)
        reps = max(1, 256 // mb)
        sec = best(functools.partial(_copy, dst, src, reps), 5)
        out[f"copy_{mb}mb_gbps"] = 2 * src.nbytes * reps / sec / 1e9  # read + write
    return out


def machine() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_1min": load,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_initialized() else None,
        "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count())),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host_check": {k: round(v, 1) for k, v in host_check().items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gaussians", type=int, default=20000, help="Gaussians in the room scene")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="square image sizes")
    ap.add_argument("--ref-gaussians", type=int, default=2000, help="Gaussians for the dense reference")
    ap.add_argument("--ref-size", type=int, default=64, help="image size for the dense reference")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per timing round")
    ap.add_argument("--repeats", type=int, default=3, help="timing rounds; the best is reported")
    ap.add_argument("--device", default="cpu", help="cpu (our rasterizer) or cuda (gsplat)")
    ap.add_argument("--cameras", type=int, nargs="+", default=[1], help="cameras per call (batched views)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args()
    res = bench(
        args.gaussians,
        args.sizes,
        args.ref_gaussians,
        args.ref_size,
        args.min_time,
        args.repeats,
        args.device,
        tuple(args.cameras),
    )
    res["machine"] = machine()
    print(f"machine: {res['machine']}")
    print(
        f"first call (numba compile or cache load): forward {res['first_forward_s']:.1f} s, "
        f"forward+backward {res['first_fwd_bwd_s']:.1f} s"
    )
    print("wall-clock rates (best round); cpu ms = process CPU time per call, all threads summed")
    print(
        f"{'path':26s} {'gaussians':>9s} {'visible':>8s} {'size':>5s} {'cams':>4s} {'fwd frames/s':>13s} "
        f"{'fwd cpu ms':>11s} {'fwd+bwd it/s':>13s} {'f+b cpu ms':>11s}"
    )
    for r in res["rows"]:
        fb = (
            f"{r['fwd_bwd_its']:13.1f} {r['fwd_bwd_cpu_ms']:11.2f}"
            if r["fwd_bwd_its"] is not None
            else f"{'-':>13s} {'-':>11s}"
        )
        vis = str(r["visible"]) if r["visible"] is not None else "-"
        print(
            f"{r['path']:26s} {r['gaussians']:9d} {vis:>8s} {r['size']:5d} {r['cameras']:4d} {r['forward_fps']:13.1f} "
            f"{r['forward_cpu_ms']:11.2f} {fb}"
        )
    if args.json:
        from wmcore.atomic import write_json

        write_json(args.json, res)


if __name__ == "__main__":
    main()
