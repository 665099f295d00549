"""`worldmodel demo` / `make demo`: the three worlds of the bundled example, end to end.

- **reality** is the room the example capture was filmed in (`scenes.room_scene.RoomScene`: its exact
  ray-cast renderer and solids); its steps are the expensive ones, and the demo counts them;
- the **twin** is the reconstruction of the capture (a SceneEnv over the Scene); its steps are free;
- **imagination** is the world model.

Stages: reconstruct the capture (the twin) → record free episodes in the twin (the map-reading expert
with random actions mixed in, and a sticky random walk) → the closed model-based loop in reality
(collect real episodes with the current policy, train the world model further on all data, train the
policy further in imagination; repeat) → evaluate the world model on held-out real episodes → a graded
family of pixel policies (cloned from the twin's expert and mixed with random actions, PPO checkpoints in
the twin, PPO in reality with the loop's real steps, random, the loop's policies) → validate: every
policy in every world → videos → report.md / report.json with the checks and every stage's wall-clock.

Each stage is the same function as its CLI subcommand, so the demo is also a worked example of the
commands. `--resume` reuses the stages a previous run in the same directory finished.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scenes.ingest import IngestConfig
from scenes.reconstruct import ReconstructConfig
from scenes.strategy import DefaultStrategy
from scenes.train_splats import SplatTrainConfig
from training.actor_critic import PPOHyperparameters
from training.demo_family import EXAMPLE, build_family, clone_policy, clone_transfer, measure_deployment
from training.model_based import ModelBasedConfig
from wmcore.errors import UserInputError, flags_under, require_at_least
from wmcore.side_process import SideProcess
from worldmodel.config import WorldModelConfig
from worldmodel.reward_refit import RewardRefitConfig

LOG = logging.getLogger("worldmodel.demo")
WORLD_MODEL_ROOMS = "assets/world_model_rooms"
"""The world model the loop starts from: pretrained on procedural rooms, never the example's (assets/README.md)."""


@dataclass
class DemoConfig:
    """The three worlds of the bundled example: reconstruct, learn, train policies, judge them."""

    out: Path | None = None
    """Directory that receives every stage's outputs (default: runs/demo/DATE-TIME)."""
    resume: bool = False
    """Reuse the stages already finished in --out (each stage's output is written atomically, so
    one that exists is complete); without it, an existing non-empty --out is refused."""
    quality: bool = False
    """Full-size preset for GPU machines: more frames, larger images, a larger world model, longer
    training, more validation episodes."""
    device: str = "cpu"
    """Torch device: "cpu" or "cuda"."""
    reconstruct: ReconstructConfig = field(
        default_factory=lambda: ReconstructConfig(
            input=Path(EXAMPLE) / "capture.mp4",
            ingest=IngestConfig(num_frames=120, max_size=320, sfm_max_size=320),
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
    twins: int = 2
    """Reconstructions of the capture, each from its own seed: the twin episodes and the clone's DAgger rounds are
    shared out among them, so the clone does not learn one reconstruction's errors. The first is the twin every
    other stage uses (PPO in the twin, validation, the twin checks). Each more costs a reconstruction (about 2
    minutes). In three paired runs the second raised the clone's success in the room from 35.5 % to 64 % over an
    unlucky twin and lowered it by intervals in none (BENCHMARKS.md, *Three worlds*)."""
    goal_in_room: tuple[float, float] = (-2.2, -0.8)
    """The navigation goal in the room's own frame (metres; in front of the brick wall); in the twin it is the
    same spot, carried over by the Sim(3) between the capture's true cameras and the reconstruction's."""
    resolution: int = 40
    """Observation and world-model frame size (square, pixels), in every world."""
    episode_steps: int = 50
    """Steps per episode, in every world."""
    supersample: int | None = None
    """Rays per pixel side in both worlds: the true room casts supersample² rays into each pixel and the twin
    renders at supersample times the size and averages each block, as a camera integrates over its pixels. None:
    each world's own (the room 2, the twin 1). In paired runs a twin at 2 was not shown to make a better deployed
    policy or clone, and it costs 1½–2½ minutes (BENCHMARKS.md, *Three worlds*)."""
    collision_penalty: float = 0.25
    """Reward taken from a step that bumps into a wall, in every world (the task's; SceneEnv's default is 0.05).
    At 0.05 a bump costs less than the reward head's error: imagination paid pushing into walls as much as
    turning away, and the policies trained there learned to push. At 0.25, a step's worth of progress, it
    charges them. BENCHMARKS.md, *Three worlds*, has the measurements."""
    expert_episodes: int = 80
    """Free episodes of the map-reading expert (30% random actions) recorded in the twin."""
    random_episodes: int = 80
    """Free episodes of a sticky random walk recorded in the twin."""
    loop: ModelBasedConfig = field(
        default_factory=lambda: ModelBasedConfig(
            f"room:{EXAMPLE}",
            iterations=3,
            real_episodes=10,
            world_model_first_steps=1500,
            world_model_steps=500,
            world_model_batch_size=16,
            world_model=WorldModelConfig(
                block_out_channels=(16, 32, 32), reward_channels=(16, 32, 32), downsample=2, still_head=True
            ),
            world_model_init=Path(WORLD_MODEL_ROOMS),
            policy_steps=10_000,
            final_policy_steps=0,
            deploy="best_real",
            num_envs=64,
            snap_to_data=True,
            reward_refit=RewardRefitConfig(steps=500, batch_size=64, imagined_fraction=0.0),
            hp=PPOHyperparameters(learning_rate=5e-4, rollout_steps=16, clip=0.2, ent_coef=0.01),
        )
    )
    """The closed model-based loop (its reality, data, output, observation size and episode length are set by
    the demo): real episodes per iteration, world-model and imagination budgets. Its reward and termination head
    is refitted afresh on the loop's data after every world-model training (10-16 s each): the head trained beside
    the diffusion model called the family's true successes right in 80 % of episodes, a refit in 89-92 %
    (BENCHMARKS.md, *Three worlds*)."""
    clone_steps: int = 1500
    """Optimisation steps of the policy cloned from the twin's expert episodes."""
    clone_dagger_rounds: int = 4
    """Rounds of DAgger that correct the clone in the twin, each followed by half of --clone-steps (0: a plain
    clone)."""
    clone_dagger_episodes: int = 30
    """Free twin episodes the clone drives per DAgger round, labelled by the map-reading expert."""
    loop_from_clone: bool = True
    """Start the loop's policy (and its final one) from the clone: it collects the first real episodes and is
    trained further in imagination. The clone's steps are the twin's, so free; the family shows the clone alone
    beside it, so the report says what imagination added."""
    clone_noise: tuple[float, ...] = (0.25, 0.5, 0.75)
    """The clone mixed with random actions at these rates: a graded family of known order."""
    twin_ppo_steps: int = 0
    """Steps of SB3 PPO in the twin (free); it and checkpoints along the run join the family. 0: none — on the CPU
    the 20,000 steps the budget allows left it at 0–17 % success in every world on every run, level with random: a
    tie rather than a grade (it needs about 100,000 for 80 %: BENCHMARKS.md, *SceneVectorEnv*); --quality trains
    500,000."""
    twin_ppo_checkpoints: int = 1
    """Checkpoints of the twin PPO run in the family, evenly spaced (besides its final policy)."""
    reality_ppo: bool = True
    """Train SB3 PPO model-free in reality with as many real steps as the loop used (the baseline the loop
    must beat), and judge it with the family."""
    validate_episodes: int = 30
    """Episodes per policy in each world (episode i starts from the same state in every world)."""
    deployment_episodes: int = 100
    """Episodes in reality, from other starts than validation's, of the three policies the deployment checks
    compare (the imagination-trained one, random, PPO in reality): reality's steps are cheap (about 25 s per
    100 episodes of one policy) and 30 episodes leave ±18 points. 0: the checks use validation's episodes."""
    transfer_episodes: int = 200
    """Episodes of the twin-trained policy (the clone) in reality and in the twin from the same starts (the
    deployment stage's): the twin-transfer check's paired difference, about ±8 points wide at 200, so that its
    ±10-point window can be met or missed (validation's 30 per world leave ±25: undecidable). About 75 s alone.
    0: the check uses validation's episodes."""
    seed: int = 0
    """Seed of every stage, the reconstruction's too (SfM and splat training): the same seed repeats a run on one
    machine, another seed reconstructs another twin."""


def apply_quality(cfg: DemoConfig) -> None:
    """The --quality preset: the same pipeline at full size (meant for a GPU)."""
    rec = cfg.reconstruct
    rec.ingest.num_frames, rec.ingest.max_size, rec.ingest.sfm_max_size = 120, 640, 640
    rec.train.iterations, rec.train.max_size = 30_000, 512
    rec.train.strategy.max_gaussians = 0
    cfg.resolution, cfg.episode_steps = 64, 100
    cfg.random_episodes = cfg.expert_episodes = 500
    lp = cfg.loop
    lp.iterations, lp.real_episodes = 6, 50
    lp.world_model_first_steps, lp.world_model_steps, lp.world_model_batch_size = 40_000, 10_000, 32
    lp.world_model = WorldModelConfig(
        block_out_channels=(64, 128, 128), reward_channels=(64, 128, 128), still_head=True
    )
    lp.world_model_init = None  # the shipped weights are the CPU size; the GPU preset trains its own
    lp.policy_steps, lp.final_policy_steps, lp.num_envs = 50_000, 500_000, 256
    cfg.twin_ppo_steps, cfg.validate_episodes = 500_000, 200


SPREAD_EPISODES = 10
"""Validation measures each policy's imagined-future spread on its first 10 imagined episodes: the trust flag
needs the mean, and second samples for all 30 took about 15 s more of the stage's 3.5 minutes."""
DIAGNOSE_EPISODES = 10
"""Validation diagnoses (reward head on reality's frames, reality's actions replayed open loop, decisions kept)
on each policy's first 10 episodes: the replay of all 30 took about 45 s of the stage's 3.5 minutes."""


class _Stages:
    """Runs stages in order, reusing finished ones under --resume, and times each; `beside` starts a stage in
    the side process (`wmcore.side_process`) and `wait` collects it, so it overlaps the stages run between."""

    def __init__(self, resume: bool, side: SideProcess):
        self.resume, self.side, self.seconds, self.reused = resume, side, {}, []
        self.overlapped: list[str] = []
        self._pending: dict[str, Any] = {}

    def run(self, name: str, done: Path, fn: Any) -> Any:
        if self._reuse(name, done):
            return done
        LOG.info("==== %s", name)
        t0 = time.time()
        out = fn()
        self.seconds[name] = round(time.time() - t0, 1)
        LOG.info("%s: %.1f s", name, self.seconds[name])
        return out

    def beside(self, name: str, done: Path, fn: Any, *args: Any) -> None:
        """Start fn(*args) in the side process (fn module-level, args picklable); its log goes to the side
        process's file."""
        if self._reuse(name, done):
            return
        LOG.info("==== %s (beside the next stages; its log: %s)", name, self.side.log)
        self._pending[name] = self.side.submit(fn, *args)

    def wait(self, name: str, done: Path) -> Any:
        """The result of a stage started `beside` (its done path if it was reused)."""
        future = self._pending.pop(name, None)
        if future is None:
            return done
        out, seconds = future.result()
        self.seconds[name] = round(seconds, 1)
        self.overlapped.append(name)
        LOG.info("%s: %.1f s (beside the main line)", name, seconds)
        return out

    def _reuse(self, name: str, done: Path) -> bool:
        if self.resume and done.exists():
            LOG.info("%s: reusing %s", name, done)
            self.reused.append(name)
            return True
        return False


def world_options(cfg: DemoConfig) -> dict[str, Any]:
    """The SceneEnv options reality and the twin share (each adds its goal)."""
    res = cfg.resolution
    common = {"width": res, "height": res, "max_steps": cfg.episode_steps, "collision_penalty": cfg.collision_penalty}
    return common if cfg.supersample is None else {**common, "supersample": cfg.supersample}


def twin_goal(scene_dir: Path, goal_in_room: tuple[float, float], env_kwargs: dict[str, Any]) -> list[float]:
    """The room's goal in the twin's frame, snapped to the nearest cell the body can stand in there (the
    reconstruction is not the room)."""
    from envs.reality import FloorMap, nearest_free
    from envs.scene_env import SceneEnv

    floor = FloorMap.for_scene(scene_dir, EXAMPLE)
    p = floor.to_twin(goal_in_room)
    best = nearest_free(SceneEnv(scene_dir, **env_kwargs), p)
    LOG.info(
        "goal: room (%.2f, %.2f) -> twin (%.2f, %.2f), snapped to free space at (%.2f, %.2f)", *goal_in_room, *p, *best
    )
    return [round(float(best[0]), 3), round(float(best[1]), 3)]


def check_demo_config(cfg: DemoConfig) -> None:
    """The options of every stage that can be checked before the first one runs (minutes of work)."""
    from envs.scene_config import SceneEnvConfig
    from scenes.reconstruct import check_reconstruct_config
    from wmcore.errors import UserValueError

    require_at_least(
        ("--resolution", cfg.resolution, 8),
        ("--seed", cfg.seed, 0),
        ("--twins", cfg.twins, 1),
        ("--episode-steps", cfg.episode_steps, 1),
        ("--expert-episodes", cfg.expert_episodes, 1),
        ("--random-episodes", cfg.random_episodes, 1),
        ("--clone-steps", cfg.clone_steps, 1),
        ("--clone-dagger-rounds", cfg.clone_dagger_rounds, 0),
        ("--clone-dagger-episodes", cfg.clone_dagger_episodes, 1),
        ("--twin-ppo-steps", cfg.twin_ppo_steps, 0),
        ("--twin-ppo-checkpoints", cfg.twin_ppo_checkpoints, 0),
        ("--validate-episodes", cfg.validate_episodes, 1),
        ("--deployment-episodes", cfg.deployment_episodes, 0),
        ("--transfer-episodes", cfg.transfer_episodes, 0),
        ("--loop.iterations", cfg.loop.iterations, 1),
        ("--loop.real-episodes", cfg.loop.real_episodes, 1),
        ("--loop.world-model-first-steps", cfg.loop.world_model_first_steps, 1),
        ("--loop.policy-steps", cfg.loop.policy_steps, 1),
        ("--loop.num-envs", cfg.loop.num_envs, 1),
        ("--loop.policy-frames", cfg.loop.policy_frames, 1),
    )
    try:  # the price of a bump is the worlds' SceneEnv option: its own check, under the demo's flag
        SceneEnvConfig(collision_penalty=cfg.collision_penalty)
    except UserValueError as e:
        raise UserInputError(f"--collision-penalty: {e}") from e
    if cfg.supersample is not None and cfg.supersample < 1:
        raise UserInputError(f"--supersample {cfg.supersample}: rays per pixel side, 1 or more (or None)")
    if not all(0.0 <= e <= 1.0 for e in cfg.clone_noise):
        raise UserInputError(f"--clone-noise {cfg.clone_noise}: rates of random actions, each in [0, 1]")
    with flags_under("loop"):
        cfg.loop.hp.check()
    if cfg.loop.world_model_init is not None:
        from training.world_model_checkpoints import check_init

        res = (cfg.resolution, cfg.resolution)
        check_init(cfg.loop.world_model_init, res, None, "--loop.world-model-init", f"--resolution {cfg.resolution}")
    rec = cfg.reconstruct
    rec.input, rec.device = Path(EXAMPLE) / "capture.mp4", cfg.device
    with flags_under("reconstruct"):
        check_reconstruct_config(rec)


def demo(cfg: DemoConfig) -> Path:
    """Run the pipeline; returns the output directory (its report.md says what was measured)."""
    from wmcore.rundir import open_run

    if cfg.quality:
        apply_quality(cfg)
        if not cfg.device.startswith("cuda"):
            LOG.warning(
                "--quality on %s: the full-size preset takes hours on a CPU; on a GPU machine pass --device cuda",
                cfg.device,
            )
    out = Path(cfg.out or Path("runs/demo") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    if out.exists() and out.is_dir() and any(out.iterdir()) and not cfg.resume:
        raise UserInputError(f"{out} is not empty; pass --resume to reuse its finished stages, or another --out")
    check_demo_config(cfg)
    if not Path(EXAMPLE, "capture.mp4").is_file():
        raise UserInputError(
            f"{EXAMPLE}/capture.mp4: the bundled example is missing; run the demo from the repository root"
        )
    # Finished stages are kept when a later one fails: --resume reuses them.
    with open_run(out, cfg, option="--out", resume=cfg.resume, keep_on_failure=True) as run:
        run.start()
        return _demo(cfg, out)


def _demo(cfg: DemoConfig, out: Path) -> Path:
    """The stages of `demo`, inside its started run directory."""
    print(f"Demo output: {out.resolve()}", flush=True)
    with SideProcess(out / "side_stages.log") as side:
        stages = _Stages(cfg.resume, side)
        return _stages(cfg, out, stages)


def _stages(cfg: DemoConfig, out: Path, stages: _Stages) -> Path:
    """The demo's stages in order; the twins after the first and the twin-transfer check run beside."""
    from training.demo_report import demo_report

    t_start = time.time()
    scenes = twin_scenes(out, cfg.twins)
    for k, scene in enumerate(scenes[1:], start=1):
        stages.beside(_twin_stage("reconstruct", k), scene / "scene.json", _reconstruct, cfg, scene, k)
    stages.run("reconstruct", scenes[0] / "scene.json", lambda: _reconstruct(cfg, scenes[0], 0))
    for k, scene in enumerate(scenes[1:], start=1):
        stages.wait(_twin_stage("reconstruct", k), scene / "scene.json")
    scene = scenes[0]
    common = world_options(cfg)
    twins = [{**common, "goal": twin_goal(s, cfg.goal_in_room, {**common, "device": cfg.device})} for s in scenes]
    worlds = {"reality": {**common, "goal": list(cfg.goal_in_room)}, "twin": twins[0]}

    data = out / "data"
    stages.run("collect_twin", data / "dataset.json", lambda: _collect_twin(cfg, scenes, twins, data))
    family = out / "family"
    clone = family / "clone"
    stages.run("clone", clone / "policy" / "policy.json", lambda: clone_policy(cfg, scenes, twins, data, clone))
    bc = clone / "policy"
    dep = out / "deployment"
    transfer = dep / "twin_transfer.json"
    early_transfer = cfg.transfer_episodes and not cfg.twin_ppo_steps  # the clone is the twin-trained policy
    if early_transfer:
        stages.beside("twin_transfer", transfer, clone_transfer, cfg, worlds, scene, str(bc), transfer)
    loop = out / "loop"
    stages.run("model_based_loop", loop / "summary.json", lambda: _loop(cfg, worlds["reality"], data, loop, bc))
    model, loop_data = loop / "world_model" / "model", loop / "data"
    held = out / "heldout"
    stages.run("collect_heldout", held / "dataset.json", lambda: _collect_heldout(cfg, worlds["reality"], loop, held))
    wm_eval = out / "world_model_eval"
    stages.run("evaluate_world_model", wm_eval / "metrics.json", lambda: _evaluate(cfg, model, held, wm_eval))
    stages.run("family", family / "family.json", lambda: build_family(cfg, scene, worlds, bc, loop, family))
    val = out / "validate"
    stages.run(
        "validate", val / "report.json", lambda: _validate(cfg, model, loop_data, scene, worlds, family, wm_eval, val)
    )
    if early_transfer:
        stages.wait("twin_transfer", transfer)
    stages.run("deployment", dep / "deployment.json", lambda: measure_deployment(cfg, worlds, scene, family, val, dep))
    videos = out / "videos"
    stages.run("videos", videos / "imagined_vs_reality" / "video.mp4", lambda: _videos(cfg, worlds, loop, held, videos))
    report = demo_report(cfg, out, stages, time.time() - t_start, worlds)
    print(report["summary"], flush=True)
    print(f"Look at it in the browser: worldmodel view {out}", flush=True)
    return out


def twin_scenes(out: Path, twins: int) -> list[Path]:
    """Where a demo run's reconstructions go: OUT/scene (the twin), then OUT/scene_2, OUT/scene_3, ..."""
    return [out / "scene"] + [out / f"scene_{k + 1}" for k in range(1, twins)]


def _twin_stage(name: str, k: int) -> str:
    return name if k == 0 else f"{name}_{k + 1}"


def twin_seed(seed: int, k: int) -> int:
    """The seed of a run's k-th reconstruction (0: the run's own seed, so one twin repeats earlier runs)."""
    return seed + 1000 * k


# ---------------------------------------------------------------------- stages
def _reconstruct(cfg: DemoConfig, scene: Path, k: int = 0) -> Path:
    from scenes.reconstruct import reconstruct
    from scenes.synthetic import SyntheticRoom, load_example_capture

    rec = cfg.reconstruct
    rec.input, rec.out, rec.device = Path(EXAMPLE) / "capture.mp4", scene, cfg.device
    # a seed repeats its twin; another seed reconstructs another
    rec.ingest.seed = rec.train.seed = twin_seed(cfg.seed, k)
    rec.overwrite = cfg.resume  # an unfinished stage of the run being resumed
    if not rec.ingest.scale_from:
        # What a user knows from a tape measure: the height the camera was carried at.
        truth, room = load_example_capture(EXAMPLE), SyntheticRoom.load(EXAMPLE)
        rec.ingest.scale_from = f"camera-height:{truth.cam_to_world[:, 2, 3].mean() - room.floor_z:.3f}"
    return reconstruct(rec)


def _collect_twin(cfg: DemoConfig, scenes: list[Path], twins: list[dict[str, Any]], data: Path) -> Path:
    """Free steps: the map-reading expert (30% random actions, so the data holds arrivals and recoveries)
    and a sticky random walk, in the twin (shared out among the twins when there are several)."""
    from training.collect import CollectConfig, collect

    kinds = (("noisy:0.3:expert", cfg.expert_episodes), ("sticky", cfg.random_episodes))
    first = True
    for k, (scene, twin) in enumerate(zip(scenes, twins)):
        for i, (policy, episodes) in enumerate(kinds):
            share = episodes // len(scenes) + (k < episodes % len(scenes))
            if share == 0:
                continue
            collect(
                CollectConfig(
                    "worldmodel/SceneNav-v0",
                    out=data,
                    episodes=share,
                    max_steps=cfg.episode_steps,
                    resolution=(cfg.resolution, cfg.resolution),
                    policy=policy,
                    env_kwargs={"scene": str(scene), **twin, "device": cfg.device},
                    seed=cfg.seed + 100_000 * i + 10_000 * k,
                    append=not first,
                    overwrite=cfg.resume and first,
                    frames="observation",
                )
            )
            first = False
    return data


def _loop(cfg: DemoConfig, reality: dict[str, Any], data: Path, loop: Path, clone: Path) -> dict[str, Any]:
    from training.model_based import model_based

    lp = cfg.loop
    if cfg.loop_from_clone:
        lp.init_policy = clone
    lp.reality, lp.out, lp.init_data = f"room:{EXAMPLE}", loop, data
    lp.env_kwargs, lp.resolution, lp.episode_steps = dict(reality), (cfg.resolution,) * 2, cfg.episode_steps
    lp.device, lp.seed, lp.overwrite = cfg.device, cfg.seed, cfg.resume
    return model_based(lp)


def _collect_heldout(cfg: DemoConfig, reality: dict[str, Any], loop: Path, held: Path) -> Path:
    """Real episodes no model trained on, for the world model's evaluation: the loop's final policy's own, and
    a sticky random walk's (long episodes: horizons up to 15 need them)."""
    from envs.reality import make_room_env
    from training.model_based import collect_real
    from training.policies import resolve_policy
    from worldmodel.action_space import ActionSpace
    from worldmodel.dataset import DatasetWriter

    env = make_room_env(EXAMPLE, **reality)
    writer = DatasetWriter(
        held,
        ActionSpace.from_gym(env.action_space),
        (cfg.resolution,) * 2,
        source={"env_id": f"room:{EXAMPLE}", "env_kwargs": reality, "frames": "observation"},
    )
    for i, spec in enumerate((str(loop / "policy"), "sticky")):
        collect_real(
            env,
            writer,
            resolve_policy(spec, env, seed=cfg.seed + 7),
            8,
            cfg.seed + 3_000_000 + 100 * i,
            cfg.episode_steps,
            {"env_id": f"room:{EXAMPLE}", "policy": spec, "world": "reality"},
        )
    return held


def _evaluate(cfg: DemoConfig, model: Path, held: Path, out: Path) -> dict[str, Any]:
    from training.evaluate_world_model import EvaluateWorldModelConfig, evaluate_world_model

    return evaluate_world_model(
        EvaluateWorldModelConfig(
            model,
            held,
            out=out,
            horizons=(1, 5, 10, 15),
            segments=32,
            video_examples=2,
            seed=cfg.seed,
            overwrite=cfg.resume,
        )
    )


def _validate(
    cfg: DemoConfig,
    model: Path,
    data: Path,
    scene: Path,
    worlds: dict[str, Any],
    family: Path,
    wm_eval: Path,
    out: Path,
) -> dict[str, Any]:
    from training.validate import ValidateConfig, validate

    policies = json.loads((family / "family.json").read_text())["policies"]
    return validate(
        ValidateConfig(
            model,
            data,
            policies=(*policies.values(), "expert"),
            names=(*policies, "expert (reads the map)"),
            reality=f"room:{EXAMPLE}",
            scene=scene,
            env_kwargs=dict(worlds["reality"]),
            episodes=cfg.validate_episodes,
            max_steps=cfg.episode_steps,
            spread_episodes=SPREAD_EPISODES,
            diagnose_episodes=DIAGNOSE_EPISODES,
            snap_to_data=cfg.loop.snap_to_data,
            eval_metrics=wm_eval / "metrics.json",
            out=out,
            device=cfg.device,
            seed=cfg.seed + 1_000_000,
            overwrite=cfg.resume,
        )
    )


def _videos(cfg: DemoConfig, worlds: dict[str, Any], loop: Path, held: Path, out: Path) -> Path:
    from training.render import RenderConfig, render

    common = {
        "max_steps": cfg.episode_steps,
        "device": cfg.device,
        "seed": cfg.seed + 1_000_000,
        "overwrite": cfg.resume,
    }
    render(
        RenderConfig(
            kind="scene",
            scene=Path(f"room:{EXAMPLE}"),
            policy=str(loop / "policy"),
            env_kwargs=dict(worlds["reality"]),
            out=out / "policy_in_reality",
            **common,
        )
    )
    render(
        RenderConfig(
            kind="compare",
            model=loop / "world_model" / "model",
            dataset=held,
            episode=0,
            snap_to=loop / "data" if cfg.loop.snap_to_data else None,
            out=out / "imagined_vs_reality",
            **common,
        )
    )
    return out
