"""`worldmodel model-based REALITY`: the closed model-based loop, counting real steps.

DIAMOND's and Dreamer's alternation, with reality as the robot: each iteration

1. **collects** whole episodes in reality with the current policy (sampling its actions; the first
   iteration with `--initial-policy`) and appends them to OUT/data — these are the real steps, counted;
2. **trains the world model further** on all data (it resumes its checkpoint), drawing a fraction of
   every batch from the real episodes so what the current policy meets weighs more;
3. **trains the same policy further in imagination**: a DreamVectorEnv started from contexts of the
   data's real (and free) episodes, short imagined episodes with bootstrapped values.

So the policy's exploits of the model enter the data it is corrected on. `--init-data` starts OUT/data
from a dataset of free steps (e.g. the twin's, or a simulator's), recorded with the same observations.
The return and success of the episodes each iteration collects are honest measurements of the policy
of the iteration before: they come from reality, never from the model.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import tyro

from envs.options import EnvKwargs, parse_env_kwargs
from training.actor_critic import PPOHyperparameters
from wmcore.atomic import write_json
from wmcore.errors import UserInputError
from wmcore.rundir import open_run
from worldmodel.config import WorldModelConfig
from worldmodel.reward_refit import RewardRefitConfig

LOG = logging.getLogger("worldmodel.model_based")


@dataclass
class ModelBasedConfig:
    """Alternate real data collection, world-model training and policy training in imagination."""

    reality: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="REALITY")]]
    """Where real steps are taken and counted: room:DIR (the true room of a synthetic capture) or a Gymnasium id."""
    out: Path = Path("runs/model_based")
    """Run directory: data/, world_model/, policy/ (and policy_iter_N/), summary.json, config, log, metrics."""
    env_kwargs: EnvKwargs = field(default_factory=dict)
    """JSON options of the real env (SceneEnv options for room:, e.g. the goal in the room's metres)."""
    resolution: tuple[int, int] = (64, 64)
    """Observation (and world-model frame) height and width."""
    episode_steps: int = 100
    """Steps per real episode at most."""
    init_data: Path | None = None
    """A dataset of free steps to start OUT/data from (copied); recorded with the same observations and actions."""
    iterations: int = 3
    """Collect / train model / train policy rounds."""
    real_episodes: int = 10
    """Real episodes collected per iteration."""
    initial_policy: str = "sticky"
    """Policy of the first iteration's real episodes (any kind training.policies.resolve_policy takes); with
    --init-policy, that policy collects them instead."""
    init_policy: Path | None = None
    """A saved actor-critic policy (e.g. RUN/policy of `behaviour-cloning`, cloned and corrected in a twin for
    free) that the loop's policy starts from: it collects the first real episodes, is trained further in
    imagination, and the final policy (--final-policy-steps) starts from it too. None: a fresh network."""
    world_model_first_steps: int = 1500
    """World-model optimisation steps in the first iteration."""
    world_model_steps: int = 500
    """World-model optimisation steps added in every later iteration."""
    world_model_batch_size: int = 16
    """Segments per world-model step."""
    world_model_processes: int | None = None
    """Data-parallel CPU processes that train the world model, the batch split among them (train-world-model
    --processes); None: `default_processes`, 2 on the 2-core CPU, where they train the same steps about twice as
    fast as one process (BENCHMARKS.md, *World model*); 1 on a GPU."""
    world_model_lr: float = 1e-3
    """Peak learning rate of the world model."""
    world_model: WorldModelConfig = field(
        default_factory=lambda: WorldModelConfig(
            block_out_channels=(32, 64, 64), reward_channels=(32, 64, 64), downsample=2, still_head=True
        )
    )
    """The world model's architecture and sampling settings (its resolution and action space are reality's)."""
    world_model_init: Path | None = None
    """Start the world model from these saved weights (e.g. assets/world_model_rooms, pretrained on procedural
    rooms by `pretrain-world-model`); their architecture replaces --world-model.*, except that
    --world-model.still-head adds a still head they lack. None: random weights."""
    self_context: float = 0.25
    """World model: fraction of each batch trained on its own prediction of the last context frame (from step
    `world_model_first_steps // 2`): scheduled sampling, against errors compounding along rollouts."""
    reward_refit: RewardRefitConfig = field(default_factory=RewardRefitConfig)
    """World model: after each training, refit its reward model afresh (off while the steps are 0;
    worldmodel.reward_refit): on its own imagined rollouts mixed with real transitions, so the policy is not paid
    for what the model imagines wrongly, or with imagined_fraction 0 on the data's transitions alone, drawn
    uniformly (the demo's, whose imagination shows the data's own frames)."""
    real_fraction: float = 0.5
    """Fraction of every world-model batch drawn from the real episodes (when there are free ones too)."""
    policy_steps: int = 20_000
    """Imagined steps of policy training per iteration (summed over the batch); these policies collect the next
    iteration's real episodes."""
    final_policy_steps: int = 0
    """After the last iteration, train a fresh policy (from --init-policy when given) for this many imagined steps
    on the final world model and deploy it as OUT/policy (0: OUT/policy is the loop's own policy). On the demo's
    task a fresh network did better this way, and a policy started from a clone did better carried through the
    loop, as BENCHMARKS.md ("Three worlds") records."""
    deploy: Literal["last", "best_real"] = "last"
    """Which policy becomes OUT/policy. last: the loop's last (or --final-policy-steps' fresh one). best_real: the
    last one also collects --real-episodes real episodes (counted, recorded), and of the policies trained in
    imagination the one with the highest success in its own real episodes is deployed (then return, then the
    later one); the loop's real episodes are the only evidence from reality it holds, so it chooses by them."""
    num_envs: int = 64
    """Imagined rollouts stepped together (one batched model call per step)."""
    uncertainty_penalty: float = 0.0
    """λ of MOPO's penalty in imagination: λ × the RMS difference of two sampled next frames (pixels in [0, 1]) is
    subtracted from every imagined reward, so the policy gains less where the model is unsure (twice the model
    calls); 0: off."""
    snap_to_data: bool = False
    """Imagination shows the policy, at every step, the frame of the loop's data nearest to the model's sample, by
    worldmodel.frame_memory: the model decides where a rollout goes, the data what it looks like there."""
    imagined_horizon: int = 15
    """Imagined episodes are cut after this many steps and their value bootstrapped (Dreamer's and DIAMOND's 15)."""
    hp: PPOHyperparameters = field(
        default_factory=lambda: PPOHyperparameters(learning_rate=5e-4, rollout_steps=16, clip=0.2, ent_coef=0.01)
    )
    """Actor-critic PPO hyperparameters."""
    policy_input_size: int | None = None
    """The policy looks at observations area-averaged to this size (None: the world model's network resolution)."""
    policy_frames: int = 1
    """The policy sees this many latest observations, stacked (2: whether its last step moved it, which a push
    into a wall does not); with --init-policy, that policy's own number."""
    channels: tuple[int, int, int] = (32, 64, 64)
    """Actor-critic CNN channels."""
    hidden: int = 256
    """Actor-critic hidden width."""
    device: str = "cpu"
    """Torch device of the world model and the policy."""
    seed: int = 0
    """Seed of the real episodes, the policy and the world model."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


def collect_real(
    env: Any, writer: Any, policy: Any, episodes: int, seed: int, max_steps: int, meta: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run `episodes` whole episodes of `policy` (sampling its actions) in `env`, recording the observations it
    acted on into `writer`; returns each episode's return, success (None where the env does not report one: an
    ending there may be a failure, as leaving CarRacing's track is) and length."""
    from training.rollouts import true_episode

    rows = []
    for ep in range(episodes):
        e = true_episode(env, policy, seed + ep, max_steps, deterministic=False)
        n = len(e["rewards"])
        terminated, truncated = np.zeros(n, bool), np.zeros(n, bool)
        terminated[-1], truncated[-1] = e["terminated"], not e["terminated"]
        writer.add(
            e["frames"], e["actions"], e["rewards"], terminated, truncated, meta=meta, poses=e["poses"], goal=e["goal"]
        )
        success = bool(e["success"]) if e["success_reported"] else None
        rows.append({"return": float(e["rewards"].sum()), "success": success, "steps": n})
    return rows


def measured(rows: list[dict[str, Any]]) -> tuple[float | None, float]:
    """(success rate, None where the env reports no success; mean return) of `collect_real`'s rows."""
    success = [r["success"] for r in rows]
    rate = None if None in success else float(np.mean(success))
    return rate, float(np.mean([r["return"] for r in rows]))


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.0f}%"


def choose_deployed(candidates: list[tuple[str, float | None, float]], episodes: int) -> dict[str, Any]:
    """The policy to deploy from (name, real success or None where the env reports none, real mean return) in the
    order trained: the highest success, then the highest return, then the later one; each with the number of real
    episodes behind it."""
    best = max(range(len(candidates)), key=lambda i: (candidates[i][1] or 0.0, candidates[i][2], i))
    name, success, ret = candidates[best]
    return {
        "deployed": name,
        "success": success,
        "return": ret,
        "candidates": [{"policy": n, "success": s, "return": r, "episodes": episodes} for n, s, r in candidates],
    }


def _world_model_config(cfg: ModelBasedConfig, data: Path, steps: int, recent: int) -> Any:
    from training.train_world_model import TrainWorldModelConfig, default_processes

    return TrainWorldModelConfig(
        data,
        out=cfg.out / "world_model",
        steps=steps,
        batch_size=cfg.world_model_batch_size,
        processes=cfg.world_model_processes or default_processes(cfg.world_model_batch_size),
        lr=cfg.world_model_lr,
        warmup_steps=min(100, cfg.world_model_first_steps // 10),
        init=cfg.world_model_init,
        model=cfg.world_model,
        self_context=cfg.self_context,
        reward_refit=cfg.reward_refit,
        self_context_start=cfg.world_model_first_steps // 2,
        recent_fraction=cfg.real_fraction if recent else 0.0,
        recent_episodes=recent,
        holdout_episodes=0,
        eval_every=0,
        checkpoint_every=10**9,
        seed=cfg.seed,
    )


def loop_policy_input_size(cfg: ModelBasedConfig, height: int) -> int:
    """The size the loop's policies look at: --policy-input-size, else the world model's network resolution (its
    saved architecture's with --world-model-init)."""
    from worldmodel.model import WorldModel

    wm = cfg.world_model if cfg.world_model_init is None else WorldModel.load_config(cfg.world_model_init)
    return cfg.policy_input_size or height // wm.downsample


def _init_policy(cfg: ModelBasedConfig, space: Any, resolution: tuple[int, int]) -> Any:
    """The actor-critic in --init-policy (None without one), checked against reality's observations and actions."""
    from training.actor_critic import ActorCritic

    if cfg.init_policy is None:
        return None
    if not (Path(cfg.init_policy) / "policy.safetensors").is_file():
        raise UserInputError(
            f"--init-policy {cfg.init_policy}: not a saved actor-critic policy (no policy.safetensors); give "
            "RUN/policy of `worldmodel behaviour-cloning`, `train-policy` or `model-based`"
        )
    agent = ActorCritic.load(cfg.init_policy)
    h, w = resolution
    net = agent.config
    if tuple(net.observation_shape) != (h, w, 3) or net.action_space != space.to_dict():
        raise UserInputError(
            f"--init-policy {cfg.init_policy}: it looks at {tuple(net.observation_shape)} and acts in "
            f"{net.action_space}; reality gives {(h, w, 3)} and {space.to_dict()}"
        )
    return agent


def model_based(cfg: ModelBasedConfig) -> dict[str, Any]:
    """Run the loop; returns the summary (also written to OUT/summary.json)."""

    from gymnasium.vector import AutoresetMode

    from envs.dream_env import DreamVectorEnv
    from training.actor_critic import ActorCritic, ActorCriticNetConfig, train_actor_critic
    from training.policies import resolve_policy
    from training.train_world_model import check_processes, train_world_model
    from training.world_model_checkpoints import check_init
    from training.worlds import make_real_env
    from worldmodel.action_space import ActionSpace
    from worldmodel.dataset import DatasetWriter, TrajectoryDataset

    sizes = (cfg.iterations, cfg.real_episodes, cfg.world_model_first_steps, cfg.policy_steps, cfg.num_envs)
    if min(*sizes, cfg.policy_frames) < 1 or cfg.final_policy_steps < 0:
        raise UserInputError(
            "--iterations, --real-episodes, --world-model-first-steps, --policy-steps, --num-envs and "
            "--policy-frames must be positive"
        )
    if cfg.world_model_processes is not None:
        check_processes(
            cfg.world_model_batch_size, cfg.world_model_processes, "--world-model-batch-size", "--world-model-processes"
        )
    kwargs = parse_env_kwargs(cfg.env_kwargs)
    if cfg.init_data is not None and not (Path(cfg.init_data) / "dataset.json").is_file():
        raise UserInputError(f"--init-data {cfg.init_data}: not a trajectory dataset (no dataset.json)")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with open_run(out, cfg, overwrite=cfg.overwrite, tensorboard=True) as run:
        try:
            env = make_real_env(
                cfg.reality, cfg.episode_steps, kwargs, {"env_id": cfg.reality, "frames": "render"}, cfg.resolution
            )
        except UserInputError:
            raise
        except (TypeError, ValueError) as e:  # an env refusing its options
            raise UserInputError(f"--env-kwargs {cfg.env_kwargs}: the environment refuses them ({e})") from e
        h, w = cfg.resolution
        space = ActionSpace.from_gym(env.action_space)
        data = out / "data"
        init = None
        if cfg.init_data is not None:
            init = TrajectoryDataset(cfg.init_data)
            if init.action_space != space or tuple(init.resolution) != (h, w):
                raise UserInputError(
                    f"--init-data {cfg.init_data}: holds {init.action_space.to_dict()} at "
                    f"{init.resolution}, reality has {space.to_dict()} at {(h, w)}"
                )
        start = _init_policy(cfg, space, (h, w))
        if cfg.world_model_init is not None:
            check_init(cfg.world_model_init, (h, w), space.to_dict(), "--world-model-init", "reality")
        run.start()  # reality, the data and the starting policy are fine: the run is accepted
        if init is not None:
            shutil.copytree(cfg.init_data, data)
        writer = DatasetWriter(
            data,
            space,
            (h, w),
            source={"env_id": cfg.reality, "env_kwargs": kwargs, "frames": "observation"},
            append=True,
        )
        free_episodes = len(writer.index["episodes"])
        input_size = loop_policy_input_size(cfg, h)
        agent = (
            start
            if start is not None
            else ActorCritic(
                ActorCriticNetConfig(
                    (h, w, 3),
                    space.to_dict(),
                    cfg.channels,
                    cfg.hidden,
                    input_size=None if input_size == h else input_size,
                    frames=cfg.policy_frames,
                )
            )
        ).to(cfg.device)

        def collect(policy: Any, name: str, it: int) -> list[dict[str, Any]]:
            """--real-episodes real episodes of `policy`, recorded as iteration `it`'s."""
            meta = {"env_id": cfg.reality, "policy": name, "world": "reality", "iteration": it}
            return collect_real(env, writer, policy, cfg.real_episodes, cfg.seed + 10_000 * it, cfg.episode_steps, meta)

        real_steps, history = 0, []
        for it in range(cfg.iterations):
            t0 = time.time()
            first = it == 0 and start is None
            policy = resolve_policy(cfg.initial_policy, env, seed=cfg.seed) if first else agent
            name = cfg.initial_policy if first else ("init_policy" if it == 0 else f"policy_iter_{it - 1}")
            rows = collect(policy, name, it)
            real_steps += sum(r["steps"] for r in rows)
            t_collect = time.time() - t0
            real_eps = len(writer.index["episodes"]) - free_episodes
            steps = cfg.world_model_first_steps + it * cfg.world_model_steps
            wm_cfg = _world_model_config(cfg, data, steps, real_eps if free_episodes else 0)
            model_dir = train_world_model(wm_cfg)
            t_model = time.time() - t0 - t_collect
            LOG.info("world model: trained to step %d in %.1f s (%d processes)", steps, t_model, wm_cfg.processes)
            dream = DreamVectorEnv(
                model_dir,
                data,
                num_envs=cfg.num_envs,
                max_steps=cfg.imagined_horizon,
                device=cfg.device,
                autoreset_mode=AutoresetMode.SAME_STEP,
                uncertainty_penalty=cfg.uncertainty_penalty,
                snap_to_data=cfg.snap_to_data,
            )
            summary = train_actor_critic(agent, dream, cfg.policy_steps, cfg.hp, cfg.seed + it, progress=True)
            agent.train()
            extra = {
                "trained_in": {"model": str(model_dir), "iteration": it, "real_steps": real_steps},
                "hp": asdict(cfg.hp),
            }
            agent.eval().save(out / f"policy_iter_{it}", extra=extra)
            success, ret = measured(rows)
            row = {
                "iteration": it,
                "real_steps": real_steps,
                "collected_with": name,
                "collected_return": ret,
                "collected_success": success,
                "imagined_return": summary["mean_return"],
                "imagined_steps_per_second": summary["steps_per_second"],
                "seconds": {
                    "collect": round(t_collect, 1),
                    "world_model": round(t_model, 1),
                    "policy": round(time.time() - t0 - t_collect - t_model, 1),
                },
            }
            history.append(row)
            run.log_metrics(step=real_steps, **{k: v for k, v in row.items() if k != "seconds" and v is not None})
            LOG.info(
                "iteration %d: %d real steps so far; collected with %s: return %.2f, success %s; imagined return %.2f",
                it,
                real_steps,
                name,
                ret,
                _percent(success),
                row["imagined_return"],
            )
        final = None
        if cfg.final_policy_steps > 0:
            torch.manual_seed(cfg.seed + 1)
            fresh = _init_policy(cfg, space, (h, w))  # from the starting policy again, or from scratch
            agent = (fresh if fresh is not None else ActorCritic(agent.config)).to(cfg.device)
            t0 = time.time()
            summary = train_actor_critic(
                agent, dream, cfg.final_policy_steps, cfg.hp, cfg.seed + cfg.iterations, progress=True
            )
            final = {
                "imagined_steps": summary["steps"],
                "imagined_return": summary["mean_return"],
                "imagined_steps_per_second": summary["steps_per_second"],
                "seconds": round(time.time() - t0, 1),
            }
            LOG.info(
                "final policy: %d imagined steps on the last world model, imagined return %.2f",
                summary["steps"],
                summary["mean_return"],
            )
        choice = None
        if cfg.deploy == "best_real":
            last = "final_policy" if final is not None else f"policy_iter_{cfg.iterations - 1}"
            rows = collect(agent, last, cfg.iterations)
            real_steps += sum(r["steps"] for r in rows)
            candidates = [(h["collected_with"], h["collected_success"], h["collected_return"]) for h in history[1:]]
            candidates.append((last, *measured(rows)))
            choice = choose_deployed(candidates, cfg.real_episodes)
            LOG.info(
                "deployed %s: success %s, return %.2f in its %d real episodes (%s)",
                choice["deployed"],
                _percent(choice["success"]),
                choice["return"],
                cfg.real_episodes,
                ", ".join(f"{c['policy']} {_percent(c['success'])} / {c['return']:.2f}" for c in choice["candidates"]),
            )
            if choice["deployed"] != last:
                agent = ActorCritic.load(out / choice["deployed"], device=cfg.device)
        agent.eval().save(
            out / "policy",
            extra={
                "trained_in": {
                    "model": str(out / "world_model" / "model"),
                    "iterations": cfg.iterations,
                    "real_steps": real_steps,
                    "fresh_on_final_model": final is not None,
                    "init_policy": None if cfg.init_policy is None else str(cfg.init_policy),
                    "deployed": "last" if choice is None else choice["deployed"],
                }
            },
        )
        result = {
            "real_steps": real_steps,
            "free_episodes": free_episodes,
            "iterations": history,
            "final_policy": final,
            "deploy": choice,
            "policy": str(out / "policy"),
            "world_model": str(out / "world_model" / "model"),
            "data": str(data),
        }
        write_json(out / "summary.json", result)
    return result
