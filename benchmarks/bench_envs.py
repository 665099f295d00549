"""SceneEnv, SceneVectorEnv and DreamVectorEnv throughput, and SceneEnv's collision guarantee.

python benchmarks/bench_envs.py scene      # steps/s at 64x64 on a 20k-Gaussian truth scene of the
                                           # example room; 10k random steps checked against the true
                                           # room geometry
python benchmarks/bench_envs.py scene --scene runs/demo/scene   # the same on the reconstruction of the
                                           # bundled example (aligned to the truth by Sim(3))
python benchmarks/bench_envs.py vector     # total steps/s of one SceneEnv against SceneVectorEnv with 8 and
                                           # 32 bodies (64x64, 20k-Gaussian truth scene), variants alternating
                                           # round by round; medians and ratios to the single env
python benchmarks/bench_envs.py dream      # imagined steps/s at batch 1, 8, 32 (default model)
python benchmarks/bench_envs.py leaks --scene runs/demo/scene   # where the reconstruction's collision
                                           # geometry would let a body stand inside the true room's solids
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_scene(steps: int, check_steps: int, scene_dir: str | None) -> dict:
    from envs.scene_env import SceneEnv
    from scenes.pose_eval import scene_to_truth
    from scenes.synthetic import EXAMPLE_DIR, SyntheticRoom
    from scenes.truth_scene import truth_scene

    room = SyntheticRoom.load(EXAMPLE_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        if scene_dir is None:
            scene, to_truth = truth_scene(Path(tmp) / "room", num_gaussians=20_000), np.eye(4)
        else:
            scene, to_truth = Path(scene_dir), scene_to_truth(scene_dir, EXAMPLE_DIR)
        env = SceneEnv(scene, extended_actions=True, max_steps=1000)
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        for _ in range(50):  # warm-up (numba compile, caches)
            env.step(int(rng.integers(env.action_space.n)))
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, te, tr, _ = env.step(int(rng.integers(env.action_space.n)))
            if te or tr:
                env.reset()
        sps = steps / (time.perf_counter() - t0)
        s = float(np.cbrt(np.linalg.det(to_truth[:3, :3])))
        lift = 0.3 / s  # a point 0.3 m above the floor, in scene metres
        passes = collisions = 0
        env.reset(seed=1)
        for _ in range(check_steps):
            before = env.pos.copy()
            _, _, te, tr, info = env.step(int(rng.integers(env.action_space.n)))
            seg = before[None] + np.linspace(0, 1, 12)[:, None] * (env.pos - before)[None]
            for z in (env.scene.floor_z + lift, env.pos[2]):  # low on the body and at the camera
                pts = seg.copy()
                pts[:, 2] = z
                true_pts = pts @ to_truth[:3, :3].T + to_truth[:3, 3]
                passes += int(not room.is_free(true_pts, 0.0).all())
            collisions += info["collided"]
            if te or tr:
                env.reset()
    return {
        "scene": scene_dir or "truth scene, 20k Gaussians",
        "num_gaussians": env.scene.num_gaussians,
        "steps_per_s": sps,
        "resolution": "64x64",
        "random_steps_checked": check_steps,
        "passes_through_obstacles": passes,
        "collisions_stopped": collisions,
    }


def bench_vector(sizes: list[int], rounds: int, seconds: float, scene_dir: str | None, device: str = "cpu") -> dict:
    """Total environment steps/s (random extended discrete actions, 64x64 RGB) of one SceneEnv and of
    SceneVectorEnv with each of `sizes` bodies over the same Scene object. Every round runs each
    variant for about `seconds` of wall-clock in turn, so a slowdown of the shared host lands on all
    of them alike; the medians over rounds and their ratios to the single env are the result."""
    from envs.scene_env import SceneEnv
    from envs.scene_vector_env import SceneVectorEnv
    from scenes.scene import Scene
    from scenes.truth_scene import truth_scene

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(scene_dir) if scene_dir else truth_scene(Path(tmp) / "room", num_gaussians=20_000)
        scene = Scene.load(path, device=device)
    kw = {"extended_actions": True, "max_steps": 200, "device": device}
    rng = np.random.default_rng(0)
    single = SceneEnv(scene, **kw)
    single.reset(seed=0)
    vectors = {n: SceneVectorEnv(scene, num_envs=n, **kw) for n in sizes}
    for v in vectors.values():
        v.reset(seed=0)

    def run_single() -> float:
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _, _, te, tr, _ = single.step(int(rng.integers(6)))
            if te or tr:
                single.reset()
            steps += 1
        return steps / (time.perf_counter() - t0)

    def run_vector(v) -> float:
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            v.step(rng.integers(0, 6, v.num_envs))  # NEXT_STEP autoreset inside
            steps += v.num_envs
        return steps / (time.perf_counter() - t0)

    variants = {"single": run_single, **{f"vector_{n}": (lambda v=v: run_vector(v)) for n, v in vectors.items()}}
    for fn in variants.values():  # warm-up (numba compile, caches)
        fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            samples[name].append(round(fn(), 1))
    med = {name: float(np.median(x)) for name, x in samples.items()}
    return {
        "scene": scene_dir or "truth scene, 20k Gaussians",
        "num_gaussians": scene.num_gaussians,
        "resolution": "64x64",
        "rounds": rounds,
        "seconds_per_run": seconds,
        "steps_per_s": samples,
        "median_steps_per_s": med,
        "ratio_to_single": {k: round(v / med["single"], 2) for k, v in med.items()},
        "torch_threads": __import__("torch").get_num_threads(),
        "numba_threads": __import__("numba").get_num_threads(),
    }


def bench_dream(batches: list[int], steps: int) -> dict:
    import torch

    from envs.dream_env import DreamVectorEnv
    from worldmodel.action_space import ActionSpace
    from worldmodel.config import WorldModelConfig
    from worldmodel.dataset import DatasetWriter
    from worldmodel.model import WorldModel

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        w = DatasetWriter(Path(tmp) / "data", ActionSpace.discrete(3), (64, 64))
        rng = np.random.default_rng(0)
        w.add(
            rng.integers(0, 255, (41, 64, 64, 3), dtype=np.uint8),
            rng.integers(0, 3, 40),
            np.zeros(40),
            np.zeros(40, bool),
            np.zeros(40, bool),
        )
        torch.manual_seed(0)
        model = WorldModel(WorldModelConfig(action_space={"kind": "discrete", "n": 3}))
        out["parameters"] = sum(p.numel() for p in model.parameters())
        for b in batches:
            env = DreamVectorEnv(model, Path(tmp) / "data", num_envs=b, max_steps=10_000)
            env.reset(seed=0)
            env.step(np.zeros(b, np.int64))
            t0 = time.perf_counter()
            for _ in range(steps):
                env.step(rng.integers(0, 3, b))
            dt = time.perf_counter() - t0
            out[f"batch_{b}"] = {"env_steps_per_s": steps * b / dt, "batched_calls_per_s": steps / dt}
    return out


def bench_leaks(scene_dir: str, body_radius: float = 0.2) -> dict:
    """Every point of a 2 cm lattice, 0.3 m and 1.0 m above the true floor, that lies inside the true
    room's walls or objects but where the reconstruction accepts a body sphere: the places a random
    walk could pass through an obstacle, and how many of them lie in the navigation map's main
    component (where episodes start; the rest are enclosed pockets). Also the navigable floor area."""
    from envs.scene_env import SceneEnv
    from scenes.pose_eval import scene_to_truth
    from scenes.scene import Scene
    from scenes.scene_meta import SceneMeta
    from scenes.synthetic import EXAMPLE_DIR, SyntheticRoom

    room = SyntheticRoom.load(EXAMPLE_DIR)
    scene = Scene.load(scene_dir)
    to_truth = scene_to_truth(scene_dir, EXAMPLE_DIR)
    lo, hi = room.room_min - 0.3, room.room_max + 0.3
    x, y = np.meshgrid(np.arange(lo[0], hi[0], 0.02), np.arange(lo[1], hi[1], 0.02), indexing="ij")
    out = {"scene": scene_dir, "body_radius": body_radius}
    grid = SceneEnv(scene, width=16, height=16, body_radius=body_radius).grid
    main = grid.largest_component()  # where episodes start
    for z in (0.3, 1.0):
        pts = np.stack([x.ravel(), y.ravel(), np.full(x.size, room.room_min[2] + z)], 1)
        solid = pts[~room.is_free(pts, 0.0)]
        in_scene = (solid - to_truth[:3, 3]) @ np.linalg.inv(to_truth[:3, :3]).T
        leaks = in_scene[scene.is_free(in_scene, body_radius)]
        out[f"leak_points_at_{z}m"] = len(leaks)
        reachable = sum(grid.labels[grid.cell_of(p)] == main for p in leaks)
        out[f"leak_points_at_{z}m_in_navigable_component"] = int(reachable)
    out["navigable_floor_m2"] = float(grid.free.sum() * grid.cell**2)
    out["collision_settings"] = SceneMeta.read(scene_dir).collision
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["scene", "vector", "dream", "leaks"])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--check-steps", type=int, default=10_000)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 32], help="vector: bodies per SceneVectorEnv")
    p.add_argument("--rounds", type=int, default=7, help="vector: rounds of all variants, alternating")
    p.add_argument("--seconds", type=float, default=4.0, help="vector: wall-clock per variant and round")
    p.add_argument("--scene", default=None, help="a reconstruction of the bundled example (default: truth scene)")
    p.add_argument("--device", default="cpu", help="vector: torch device the scene renders on (cuda: gsplat)")
    args = p.parse_args()
    if args.which == "leaks":
        if args.scene is None:
            p.error("leaks needs --scene (a reconstruction of the bundled example)")
        res = bench_leaks(args.scene)
    elif args.which == "vector":
        res = bench_vector(args.sizes, args.rounds, args.seconds, args.scene, args.device)
    elif args.which == "scene":
        res = bench_scene(args.steps, args.check_steps, args.scene)
    else:
        res = bench_dream(args.batches, max(3, args.steps // 200))
    res.update(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
