"""Held-out PSNR against wall-clock time for nerfacto (nerfstudio) and our splats, on the bundled
example room at one resolution, and the time to render one 64x64 observation with each.

Both methods train on the same posed images (the example room rendered along its camera loop with
its true poses, in nerfstudio's dataset layout, through our ingest) and are evaluated on the same
held-out views (every 8th) with the same PSNR. Needs the nerfstudio extra (`make install-nerfstudio`).

    python benchmarks/bench_nerf_vs_splat.py --out runs/bench_nerf_vs_splat
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from scenes.collision import OccupancyGrid
from scenes.example_dataset import write_example_dataset
from scenes.ingest import ingest
from scenes.nerf_scene import NerfScene
from scenes.nerfacto import NerfactoConfig, train_nerfacto
from scenes.scene import Scene
from scenes.strategy import DefaultStrategy
from scenes.train_splats import SplatTrainConfig, load_images, train_splats
from wmcore.atomic import write_json


def render_seconds(scene: Scene, c2w: np.ndarray, K: np.ndarray, repeats: int = 3) -> float:
    """Median seconds for one 64x64 observation (after one warm-up render)."""
    scene.render(c2w[None], K[None], 64, 64)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        scene.render(c2w[None], K[None], 64, 64)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench_nerf_vs_splat"))
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--splat-iterations", type=int, default=2000)
    ap.add_argument("--splat-eval-every", type=int, default=250)
    ap.add_argument("--nerf-budget", type=float, default=300.0, help="nerfacto training seconds")
    ap.add_argument("--nerf-eval-every", type=int, default=40, help="nerfacto steps between evaluations")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work = Path(tempfile.mkdtemp(prefix="bench_nerf_"))
    data = write_example_dataset(work / "data", args.frames, args.width, args.height)
    posed, norm, _ = ingest(data, work / "posed")
    size = max(args.width, args.height)
    test = list(range(0, len(posed), 8))
    _, Ks, w, h = load_images(posed, size)
    K64 = Ks[test[0]].numpy() * np.array([[64 / w], [64 / h], [1.0]])  # 64x64 from the first held-out view
    c2w = posed.cam_to_world[test[0]]
    lo, hi = posed.cam_to_world[:, :3, 3].min(0) - 1, posed.cam_to_world[:, :3, 3].max(0) + 1
    no_collisions = OccupancyGrid(np.zeros((1, 1, 1), bool), lo, float(max(hi - lo)), float(lo[2]))
    results: dict = {
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {args.threads} torch thread(s)",
        "load_average_start": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }

    curve: list[dict] = []
    t0 = time.perf_counter()
    splat_cfg = SplatTrainConfig(
        iterations=args.splat_iterations,
        max_size=size,
        eval_every=args.splat_eval_every,
        strategy=DefaultStrategy(
            refine_start_iter=200, refine_stop_iter=1500, refine_every=100, reset_every=1500, max_gaussians=30_000
        ),
    )
    res = train_splats(
        posed, splat_cfg, "cpu", lambda step, m: curve.append({"step": step, "seconds": time.perf_counter() - t0, **m})
    )
    params = {k: v.cpu().numpy() for k, v in res.params.items()}
    splat_scene = Scene(params, 1.0, float(lo[2]), lo, hi, no_collisions)
    results["splats"] = {
        "curve": curve,
        "final": res.metrics,
        "render_64_seconds": render_seconds(splat_scene, c2w, K64),
    }

    curve = []
    nerf_cfg = NerfactoConfig(
        iterations=1 << 30, time_budget=args.nerf_budget, eval_every=args.nerf_eval_every, max_size=size
    )
    nres = train_nerfacto(
        posed,
        work / "posed",
        work / "nerf",
        nerf_cfg,
        "cpu",
        lambda step, m: curve.append({"step": step, "seconds": m["train_seconds"], **m}),
    )
    nerf_scene = NerfScene(nres.model, np.eye(4), float(lo[2]), lo, hi, no_collisions)
    results["nerfacto"] = {
        "curve": curve,
        "final": nres.metrics,
        "render_64_seconds": render_seconds(nerf_scene, c2w, K64),
    }
    results["load_average_end"] = os.getloadavg()
    write_json(args.out / "results.json", results)

    print(f"\n{args.frames} frames at {args.width}x{args.height}, {len(test)} held out; {results['machine']}")
    print("| method | step | train s | held-out PSNR dB | SSIM |\n|---|---|---|---|---|")
    for name in ("splats", "nerfacto"):
        for row in results[name]["curve"]:
            secs = row.get("train_seconds", row["seconds"])
            print(f"| {name} | {row['step']} | {secs:.0f} | {row['psnr']:.2f} | {row['ssim']:.3f} |")
    for name in ("splats", "nerfacto"):
        print(f"{name}: one 64x64 observation in {results[name]['render_64_seconds'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
