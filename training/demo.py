"""`worldmodel demo` / `make demo`: the whole pipeline on the bundled example, end to end.

reconstruct the example capture into a Scene → a SceneEnv over it (point-goal navigation to one fixed
spot in the room, RGB observations) → collect real episodes (a sticky random walk and a noisy
shortest-path expert) → train the world model → evaluate it against copy-last-frame → train a policy
only in imagination → validate it in the SceneEnv from the same start states as a random policy and
the expert → videos → report.md / report.json, all under one output directory.

Each stage is the same function the CLI subcommand runs, so the demo is also a worked example of
the commands. `--resume` reuses the stages a previous run in the same directory finished.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from scenes.ingest import IngestConfig
from scenes.reconstruct import ReconstructConfig
from scenes.strategy import DefaultStrategy
from scenes.train_splats import SplatTrainConfig
from training.actor_critic import PPOHyperparameters
from wmcore.atomic import write_json, write_text
from wmcore.errors import UserInputError

LOG = logging.getLogger("worldmodel.demo")


@dataclass
class DemoConfig:
    """The whole pipeline on the bundled example."""

    output: Path | None = None
    """Directory that receives every stage's outputs (default: runs/demo/DATE-TIME)."""
    resume: bool = False
    """Reuse the stages already finished in --output (each stage's output is written atomically, so
    one that exists is complete); without it, an existing non-empty --output is refused."""
    quality: bool = False
    """Full-size preset for GPU machines: more frames, larger images, a larger world model, longer
    training, more validation episodes."""
    device: str = "cpu"
    """Torch device: "cpu" or "cuda"."""
    reconstruct: ReconstructConfig = field(
        default_factory=lambda: ReconstructConfig(
            input=Path("assets/example_room/capture.mp4"),
            ingest=IngestConfig(num_frames=80, max_size=320, sfm_max_size=320),
            train=SplatTrainConfig(
                iterations=2000,
                max_size=128,
                strategy=DefaultStrategy(
                    refine_start_iter=200,
                    refine_stop_iter=1500,
                    refine_every=100,
                    reset_every=1500,
                    max_gaussians=30_000,
                ),
            ),
        )
    )
    """Reconstruction of the example capture (its input and output are set by the demo)."""
    goal_in_room: tuple[float, float] = (-2.2, -0.8)
    """The navigation goal in the example room's own coordinates (metres; in front of the brick
    wall), mapped into the reconstruction's frame with the capture's known camera path."""
    resolution: int = 40
    """Observation and world-model frame size (square, pixels)."""
    episode_steps: int = 50
    """Steps per episode, real and imagined."""
    random_episodes: int = 80
    """Episodes recorded with a sticky random walk."""
    expert_episodes: int = 80
    """Episodes recorded with the shortest-path expert (with random actions mixed in)."""
    world_model_steps: int = 1500
    """World-model optimisation steps."""
    world_model_batch_size: int = 16
    """Segments per world-model optimisation step."""
    world_model_channels: tuple[int, ...] = (16, 32, 32)
    """UNet channels per level (and of the reward model)."""
    denoising_steps: int = 2
    """Denoising steps per imagined frame."""
    policy_steps: int = 24_000
    """Imagined steps of policy training (summed over the batch)."""
    policy_envs: int = 32
    """Imagined rollouts stepped together while training the policy."""
    imagined_horizon: int = 15
    """Imagined episodes are cut after this many steps (values bootstrap the rest), as Dreamer's 15:
    the model's errors compound with every step, and long dreams are where a policy exploits them."""
    ppo: PPOHyperparameters = field(
        default_factory=lambda: PPOHyperparameters(
            learning_rate=5e-4, rollout_steps=25, epochs=4, minibatches=4, clip=0.2, ent_coef=0.01
        )
    )
    """PPO hyperparameters of the actor-critic trained in imagination."""
    validate_episodes: int = 60
    """Episodes per policy in each world (start state i is seed + i for every policy)."""
    seed: int = 0
    """Seed of every stage."""


STAGES = ("reconstruct", "collect", "train_world_model", "evaluate_world_model", "train_policy", "validate", "videos")


def apply_quality(cfg: DemoConfig) -> None:
    """The --quality preset: the same pipeline at full size (meant for a GPU)."""
    rec = cfg.reconstruct
    rec.ingest.num_frames, rec.ingest.max_size, rec.ingest.sfm_max_size = 120, 640, 640
    rec.train.iterations, rec.train.max_size = 30_000, 512
    rec.train.strategy.max_gaussians = 0
    cfg.resolution, cfg.episode_steps = 64, 100
    cfg.random_episodes = cfg.expert_episodes = 500
    cfg.world_model_steps, cfg.world_model_batch_size = 40_000, 32
    cfg.world_model_channels, cfg.denoising_steps = (64, 128, 128), 3
    cfg.policy_steps, cfg.policy_envs, cfg.validate_episodes = 1_000_000, 64, 200


def goal_in_scene(scene_dir: Path, goal_in_room: tuple[float, float], env_kwargs: dict[str, Any]) -> list[float]:
    """Map a point of the example room into the Scene's frame (Sim(3) from the camera path), then
    snap it to the nearest cell the body can stand in (the reconstruction is not the room)."""
    from envs.scene_env import SceneEnv
    from scenes.pose_eval import scene_to_truth
    from scenes.synthetic import EXAMPLE_DIR, load_example_capture

    to_room = scene_to_truth(scene_dir, EXAMPLE_DIR)
    eye_z = load_example_capture(EXAMPLE_DIR).cam_to_world[:, 2, 3].mean()
    p = np.linalg.inv(to_room) @ np.array([*goal_in_room, eye_z, 1.0])
    grid = SceneEnv(scene_dir, **env_kwargs).grid
    main = np.argwhere(grid.labels == grid.largest_component())
    centres = grid.origin + (main + 0.5) * grid.cell
    best = centres[np.argmin(np.linalg.norm(centres - p[:2], axis=1))]
    LOG.info(
        "goal: room (%.2f, %.2f) -> scene (%.2f, %.2f), snapped to free space at (%.2f, %.2f)",
        *goal_in_room,
        p[0],
        p[1],
        *best,
    )
    return [round(float(best[0]), 3), round(float(best[1]), 3)]


class _Stages:
    """Runs stages in order, reusing finished ones under --resume, and times each."""

    def __init__(self, resume: bool):
        self.resume, self.seconds, self.reused = resume, {}, []

    def run(self, name: str, done: Path, fn: Any) -> Any:
        if self.resume and done.exists():
            LOG.info("%s: reusing %s", name, done)
            self.reused.append(name)
            return done
        LOG.info("==== %s", name)
        t0 = time.time()
        out = fn()
        self.seconds[name] = round(time.time() - t0, 1)
        LOG.info("%s: %.1f s", name, self.seconds[name])
        return out


def demo(cfg: DemoConfig) -> Path:
    """Run the pipeline; returns the output directory (its report.md says what was measured)."""
    from training.collect import CollectConfig, collect
    from training.evaluate_world_model import EvaluateWorldModelConfig, evaluate_world_model
    from training.render import RenderConfig, render
    from training.train_policy import TrainPolicyConfig, train_policy
    from training.train_world_model import TrainWorldModelConfig, train_world_model
    from training.validate import ValidateConfig, validate

    if cfg.quality:
        apply_quality(cfg)
        if not cfg.device.startswith("cuda"):
            LOG.warning("--quality on %s: the full-size preset takes hours on a CPU; on a GPU machine pass "
                        "--device cuda", cfg.device)
    out = Path(cfg.output or Path("runs/demo") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    if out.exists() and any(out.iterdir()) and not cfg.resume:
        raise UserInputError(f"{out} is not empty; pass --resume to reuse its finished stages, or another --output")
    out.mkdir(parents=True, exist_ok=True)
    print(f"Demo output: {out.resolve()}", flush=True)
    t_start = time.time()
    stages = _Stages(cfg.resume)
    res, steps = cfg.resolution, cfg.episode_steps

    scene = out / "scene"
    stages.run("reconstruct", scene / "scene.json", lambda: _reconstruct(cfg, scene))
    env_kwargs: dict[str, Any] = {"width": res, "height": res, "max_steps": steps, "device": cfg.device}
    env_kwargs["goal"] = goal_in_scene(scene, cfg.goal_in_room, env_kwargs)

    data = out / "data"

    def _collect() -> Path:
        for i, (policy, episodes) in enumerate((("expert", cfg.expert_episodes), ("sticky", cfg.random_episodes))):
            collect(
                CollectConfig(
                    "worldmodel/SceneNav-v0",
                    out=data,
                    episodes=episodes,
                    max_steps=steps,
                    resolution=(res, res),
                    policy=policy,
                    env_kwargs=json.dumps({"scene": str(scene), **env_kwargs}),
                    seed=cfg.seed + 100_000 * i,
                    append=i > 0,
                    frames="observation",
                )
            )
        return data

    stages.run("collect", data / "dataset.json", _collect)
    held_out = max(1, min(8, (cfg.random_episodes + cfg.expert_episodes) // 10))  # the last: random walks, full length
    wm_run = out / "world_model"
    model = wm_run / "model"
    stages.run(
        "train_world_model",
        model / "config.json",
        lambda: train_world_model(
            TrainWorldModelConfig(
                data,
                out=wm_run,
                steps=cfg.world_model_steps,
                batch_size=cfg.world_model_batch_size,
                warmup_steps=min(100, cfg.world_model_steps // 10),
                block_out_channels=cfg.world_model_channels,
                reward_channels=cfg.world_model_channels,
                num_sampling_steps=cfg.denoising_steps,
                holdout_episodes=held_out,
                eval_every=10**9,
                seed=cfg.seed,
            )
        ),
    )
    wm_eval = out / "world_model_eval"
    stages.run(
        "evaluate_world_model",
        wm_eval / "metrics.json",
        lambda: evaluate_world_model(
            EvaluateWorldModelConfig(
                model, data, out=wm_eval, holdout_episodes=held_out, horizons=(1, 5, 10), segments=32, seed=cfg.seed
            )
        ),
    )
    pol_run = out / "policy"
    policy = pol_run / "policy"
    stages.run(
        "train_policy",
        policy / "policy.json",
        lambda: train_policy(
            TrainPolicyConfig(
                model,
                data,
                out=pol_run,
                total_steps=cfg.policy_steps,
                num_envs=cfg.policy_envs,
                max_steps=cfg.imagined_horizon,
                algorithm="actor-critic",
                hp=cfg.ppo,
                device=cfg.device,
                seed=cfg.seed,
            )
        ),
    )
    val = out / "validate"
    stages.run(
        "validate",
        val / "report.json",
        lambda: validate(
            ValidateConfig(
                model,
                data,
                policies=("random", str(policy), "oracle"),
                episodes=cfg.validate_episodes,
                max_steps=steps,
                eval_metrics=wm_eval / "metrics.json",
                out=val,
                device=cfg.device,
                seed=cfg.seed + 1_000_000,
            )
        ),
    )
    videos = out / "videos"

    def _videos() -> Path:
        common = {
            "env_kwargs": json.dumps(env_kwargs),
            "max_steps": steps,
            "device": cfg.device,
            "seed": cfg.seed + 1_000_000,
        }
        render(RenderConfig(kind="scene", scene=scene, policy=str(policy), out=videos / "policy_in_scene", **common))
        last = cfg.random_episodes + cfg.expert_episodes - 1  # held out of training
        render(
            RenderConfig(
                kind="compare", model=model, dataset=data, episode=last, out=videos / "imagined_vs_scene", **common
            )
        )
        return videos

    stages.run("videos", videos / "imagined_vs_scene" / "video.mp4", _videos)
    report = demo_report(cfg, out, stages, time.time() - t_start, env_kwargs)
    print(report["summary"], flush=True)
    return out


def _reconstruct(cfg: DemoConfig, scene: Path) -> Path:
    from scenes.reconstruct import reconstruct
    from scenes.synthetic import EXAMPLE_DIR, SyntheticRoom, load_example_capture

    rec = cfg.reconstruct
    rec.input, rec.output, rec.device = EXAMPLE_DIR / "capture.mp4", scene, cfg.device
    if not rec.ingest.scale_from:
        # What a user knows from a tape measure: the height the camera was carried at.
        truth, room = load_example_capture(EXAMPLE_DIR), SyntheticRoom.load(EXAMPLE_DIR)
        rec.ingest.scale_from = f"camera-height:{truth.cam_to_world[:, 2, 3].mean() - room.floor_z:.3f}"
    return reconstruct(rec)


def demo_report(cfg: DemoConfig, out: Path, stages: _Stages, seconds: float, env_kwargs: dict) -> dict[str, Any]:
    """report.json / report.md at the top of the output: the two checks the demo exists to show,
    the scene's quality, per-stage wall-clock, and where every artefact is."""
    from scenes.pose_eval import pose_accuracy
    from scenes.synthetic import EXAMPLE_DIR

    scene_metrics = json.loads((out / "scene" / "metrics.json").read_text())
    poses = pose_accuracy(out / "scene", EXAMPLE_DIR)
    wm = json.loads((out / "world_model_eval" / "metrics.json").read_text())
    val = json.loads((out / "validate" / "report.json").read_text())
    pols = val["policies"]
    name = next(k for k in pols if k not in ("random", "oracle"))
    rand, learned, expert = pols["random"]["true"], pols[name]["true"], pols["oracle"]["true"]
    psnr, copy = wm["next_frame_psnr"], wm["copy_last_psnr"]
    checks = {
        "world_model_beats_copy_last": {"psnr": psnr, "copy_last_psnr": copy, "passed": psnr > copy},
        "policy_success_at_least_twice_random": {
            "policy": learned["success_rate"],
            "random": rand["success_rate"],
            "passed": learned["success_rate"] >= 2 * rand["success_rate"] and learned["success_rate"] > 0,
        },
    }
    report = {
        "output": str(out.resolve()),
        "seconds_total": round(seconds, 1),
        "seconds_by_stage": stages.seconds,
        "stages_reused": stages.reused,
        "checks": checks,
        "scene": {
            "psnr": scene_metrics["psnr"],
            "ssim": scene_metrics["ssim"],
            "camera_centre_error_frac": poses["max_centre_error_frac"],
        },
        "env_kwargs": env_kwargs,
        "world_model": {
            "psnr_by_horizon": wm["psnr_by_horizon"],
            "copy_last_psnr_by_horizon": wm["copy_last_psnr_by_horizon"],
        },
        "policies_in_scene": {"random": rand, "imagination-trained": learned, "expert (reads the map)": expert},
        "imagination_gap": {k: v["gap"] for k, v in pols.items()},
        "rank_agreement": val["rank_agreement"],
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
    }
    c1, c2 = checks["world_model_beats_copy_last"], checks["policy_success_at_least_twice_random"]
    lines = [
        f"Demo finished in {_mmss(seconds)} ({'; '.join(f'{k} {_mmss(v)}' for k, v in stages.seconds.items())}).",
        f"  output:               {out.resolve()}",
        f"  scene:                held-out PSNR {scene_metrics['psnr']:.2f} dB, camera centres within "
        f"{100 * poses['max_centre_error_frac']:.2f}% of the room",
        f"  world model:          next-frame PSNR {psnr:.2f} dB vs copy-last {copy:.2f} dB  [{_verdict(c1)}]",
        f"  success in the scene: imagination-trained {_pct(learned)} vs random {_pct(rand)}  [{_verdict(c2)}]"
        f"  (expert with the map: {_pct(expert)}; {val['episodes']} start states each)",
        f"  report:               {out / 'report.md'}",
        f"  videos:               {out / 'videos'}",
    ]
    report["summary"] = "\n".join(lines)
    write_json(out / "report.json", report)
    write_text(out / "report.md", _markdown(report, out))
    return report


def _mmss(s: float) -> str:
    """'3 min 59 s'; rounded to whole seconds first, so 239.6 s reads '4 min 0 s', not '3 min 60 s'."""
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec} s"


def _pct(summary: dict[str, Any]) -> str:
    """Success rate with its 95% (Wilson) interval."""
    lo, hi = summary["success_ci95"]
    return f"{100 * summary['success_rate']:.0f}% (95% CI {100 * lo:.0f}–{100 * hi:.0f}%)"


def _verdict(check: dict[str, Any]) -> str:
    return "PASS" if check["passed"] else "MISS"


def _markdown(r: dict[str, Any], out: Path) -> str:
    c1, c2 = r["checks"]["world_model_beats_copy_last"], r["checks"]["policy_success_at_least_twice_random"]
    rows = "\n".join(f"| {k} | {v['mean_return']:.2f} | {_pct(v)} |" for k, v in r["policies_in_scene"].items())
    stage_rows = "\n".join(f"| {k} | {_mmss(v)} |" for k, v in r["seconds_by_stage"].items())
    wm = r["world_model"]
    hz = "\n".join(
        f"| {h} | {wm['psnr_by_horizon'][h]:.2f} | {wm['copy_last_psnr_by_horizon'][h]:.2f} |"
        for h in wm["psnr_by_horizon"]
    )
    rho = r["rank_agreement"]["spearman_rho"]
    return f"""# worldmodel demo report

Output: `{r["output"]}` — total {_mmss(r["seconds_total"])}.

## Checks
- World model next-frame PSNR {c1["psnr"]:.2f} dB against copy-last-frame {c1["copy_last_psnr"]:.2f} dB: \
**{_verdict(c1)}**
- Success of the policy trained only in imagination, in the SceneEnv, at least twice a random policy's from \
the same start states: {100 * c2["policy"]:.0f}% against {100 * c2["random"]:.0f}%: **{_verdict(c2)}**

## Scene
Held-out PSNR {r["scene"]["psnr"]:.2f} dB (SSIM {r["scene"]["ssim"]:.3f}); camera centres within \
{100 * r["scene"]["camera_centre_error_frac"]:.2f}% of the room after Sim(3). Previews: `scene/previews/`.

## World model (held-out episodes)
| horizon | world model PSNR (dB) | copy last frame (dB) |
|---|---|---|
{hz}

Plot: `world_model_eval/psnr_horizon.png`; rollouts: `world_model_eval/rollouts.mp4`.

## Policies in the SceneEnv (ground truth)
| policy | mean return | success |
|---|---|---|
{rows}

The expert plans on the scene's map (an upper bound, not a learned policy). Imagined against true
returns, the imagination gap and rank agreement (Spearman ρ = {"n/a" if rho is None else f"{rho:.2f}"}) are in
`validate/report.md`.

## Stage wall-clock
| stage | time |
|---|---|
{stage_rows}

## Videos
- `videos/policy_in_scene/video.mp4`: the imagination-trained policy in the SceneEnv (first person beside the map).
- `videos/imagined_vs_scene/video.mp4`: a held-out SceneEnv episode beside the world model's imagination
  of it under the same actions, from the same first frames.
"""
