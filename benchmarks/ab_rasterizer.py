"""Compare the CPU rasterizer of several git revisions in one process, calls interleaved.

On a shared 2-core VM the speed of the host drifts by +-20 % between runs minutes apart, so two
separate `bench_rasterizer.py` runs cannot tell a 5 % change from noise. This copies each
revision's `scenes/rasterize` into a temporary package of its own (imports rewritten), renders
the benchmark's room scene with each in turn, round after round, and reports the median and the
best per-round forward frames/s, and the process CPU time per frame (steadier than wall time when
the host steals cycles): every revision sees the same host conditions.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ab_rasterizer.py 73fe1ca HEAD WORKTREE

WORKTREE means the files as they are now, uncommitted changes included. Kernels compile on first
use into a numba cache under the temporary directory (about a minute per revision). First it
prints how far each revision's outputs are from the first one's (images, alphas, depths and the
gradients of every input, 3 cameras, RGB+ED): 0 everywhere means a pure speed change.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rasterizer import cameras, room_scene  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "scenes/rasterize"


def export(rev: str, dest: Path, name: str) -> None:
    """Write `rev`'s rasterize package to dest/name with its own imports pointing at itself."""
    pkg = dest / name
    pkg.mkdir(parents=True)
    if rev == "WORKTREE":
        files = {p.name: p.read_text() for p in (ROOT / PACKAGE).glob("*.py")}
    else:
        listing = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{rev}:{PACKAGE}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
        files = {
            f: subprocess.run(
                ["git", "show", f"{rev}:{PACKAGE}/{f}"], cwd=ROOT, check=True, capture_output=True, text=True
            ).stdout
            for f in listing
            if f.endswith(".py")
        }
    for fname, text in files.items():
        text = text.replace("scenes.rasterize.", f"{name}.")
        text = text.replace("from scenes.rasterize import", f"from {name} import")
        (pkg / fname).write_text(text)


def compare_outputs(fns: dict, scene: dict, size: int) -> None:
    """Print the largest difference from the first revision's outputs, forward and backward."""
    vm, K = cameras(size, size, 3, "cpu")
    results = {}
    for rev, f in fns.items():
        params = {k: v.clone().requires_grad_(True) for k, v in scene.items()}
        img, alpha, _ = f(**params, viewmats=vm, Ks=K, width=size, height=size, sh_degree=3, render_mode="RGB+ED")
        weights = torch.linspace(-1, 1, img.numel()).reshape(img.shape)
        ((img * weights).sum() + alpha.sum()).backward()
        results[rev] = [img.detach(), alpha.detach()] + [params[k].grad for k in sorted(params)]
    names = ["image", "alpha"] + [f"grad {k}" for k in sorted(scene)]
    first, *others = results
    for rev in others:
        pairs = zip(names, results[first], results[rev])
        diffs = ", ".join(f"{n} {float((a - b).abs().max()):.2g}" for n, a, b in pairs)
        print(f"{rev} vs {first}: max |difference| {diffs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("revs", nargs="+", help="git revisions to compare, or WORKTREE")
    ap.add_argument("--size", type=int, default=64, help="square image size")
    ap.add_argument("--gaussians", type=int, default=20000, help="Gaussians in the room scene")
    ap.add_argument("--cameras", type=int, default=1, help="cameras per call (frames/s counts every camera)")
    ap.add_argument("--rounds", type=int, default=20, help="rounds; each renders every revision --calls times")
    ap.add_argument("--calls", type=int, default=100, help="forward renders per revision and round")
    args = ap.parse_args()
    scene = room_scene(args.gaussians)
    vm, K = cameras(args.size, args.size, args.cameras, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        fns = {}
        for i, rev in enumerate(args.revs):
            export(rev, Path(tmp), f"rasterize_ab{i}")
            fns[rev] = importlib.import_module(f"rasterize_ab{i}").rasterization
        compare_outputs(fns, scene, args.size)
        rates: dict[str, list[float]] = {rev: [] for rev in fns}
        cpu_ms: dict[str, list[float]] = {rev: [] for rev in fns}
        kwargs = dict(viewmats=vm, Ks=K, width=args.size, height=args.size, sh_degree=3)
        with torch.no_grad():
            for f in fns.values():  # compile and warm up
                for _ in range(30):
                    f(**scene, **kwargs)
            for _ in range(args.rounds):
                for rev, f in fns.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(args.calls):
                        f(**scene, **kwargs)
                    rates[rev].append(args.calls * args.cameras / (time.perf_counter() - t0))
                    cpu_ms[rev].append((time.process_time() - c0) / args.calls / args.cameras * 1e3)
    print(
        f"forward frames/s, {args.gaussians} Gaussians at {args.size}x{args.size}, {args.cameras} camera(s) per "
        f"call, {args.rounds} interleaved rounds"
    )
    for rev, r in rates.items():
        print(
            f"{rev:>12s}  median {statistics.median(r):7.1f}  best {max(r):7.1f}  worst {min(r):7.1f}"
            f"   CPU ms/frame (both threads) median {statistics.median(cpu_ms[rev]):.3f}"
        )


if __name__ == "__main__":
    main()
