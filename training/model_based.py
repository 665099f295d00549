"""`worldmodel model-based SCENE`: the model-based RL loop, counting real steps.

Each iteration: collect real steps in the SceneEnv (random actions first, then the current policy,
sampling), append them to one dataset, train the world model further on it (train-world-model
resumes from its checkpoint, so the model keeps learning across iterations), then train the same
policy further in imagination (the batched actor-critic). The return of the real episodes collected
with the policy is the honest score: it never saw the world model's rewards.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro

from training.actor_critic import PPOHyperparameters
from training.train_world_model import TrainWorldModelConfig
from wmcore.atomic import write_json
from wmcore.errors import UserInputError
from wmcore.rundir import RunDir

LOG = logging.getLogger("worldmodel.model_based")


@dataclass
class ModelBasedConfig:
    """Alternate real data collection, world-model training and policy training in imagination."""

    scene: tyro.conf.Positional[Path]
    """Scene directory (the real environment: a SceneEnv over it)."""
    out: Path = Path("runs/model_based")
    """Run directory: data/, world_model/, policy/, summary.json, config, log, metrics."""
    iterations: int = 5
    """Collect / train model / train policy rounds."""
    real_steps: int = 500
    """Real SceneEnv steps collected per iteration (whole episodes; the last may run over)."""
    env_kwargs: str = '{"width": 64, "height": 64, "max_steps": 100}'
    """JSON SceneEnv options (the observation size is the world model's resolution)."""
    world_model_steps: int = 500
    """World-model optimisation steps added per iteration."""
    world_model_context: int = 4
    """World model: frames of context L."""
    world_model_channels: tuple[int, ...] = (32, 64, 64)
    """World model: UNet channels per level (and of the reward model)."""
    world_model_batch_size: int = 8
    """World model: segments per optimisation step."""
    policy_steps: int = 10_000
    """Imagined steps of policy training per iteration."""
    num_envs: int = 16
    """Imagined rollouts stepped together."""
    imagined_max_steps: int = 50
    """Imagined episodes are truncated after this many steps."""
    hp: PPOHyperparameters = field(default_factory=PPOHyperparameters)
    """Actor-critic PPO hyperparameters."""
    channels: tuple[int, int, int] = (32, 64, 64)
    """Actor-critic CNN channels."""
    hidden: int = 256
    """Actor-critic hidden width."""
    seed: int = 0
    """Seed of the real episodes, the policy and the world model."""


def collect_real(recorder: Any, policy: Any, steps: int, seed: int) -> list[float]:
    """Run whole episodes through a RecordEpisodes-wrapped SceneEnv until `steps` real steps; their returns."""
    returns, n, ep = [], 0, 0
    while n < steps:
        obs, _ = recorder.reset(seed=seed + ep)
        done, ret = False, 0.0
        while not done:
            a = recorder.action_space.sample() if policy is None else policy.predict(obs, deterministic=False)[0]
            obs, r, te, tr, _ = recorder.step(a)
            done, ret, n = te or tr, ret + float(r), n + 1
        returns.append(ret)
        ep += 1
    return returns


def model_based(cfg: ModelBasedConfig) -> dict[str, Any]:
    """Run the loop; returns the summary (also written to OUT/summary.json)."""
    from gymnasium.vector import AutoresetMode

    from envs.dream_env import DreamVectorEnv
    from envs.scene_env import SceneEnv
    from training.actor_critic import ActorCritic, ActorCriticNetConfig, train_actor_critic
    from training.collect import RecordEpisodes
    from training.train_world_model import train_world_model
    from worldmodel.action_space import ActionSpace
    from worldmodel.dataset import TrajectoryDataset

    if not Path(cfg.scene).exists():
        raise UserInputError(f"{cfg.scene}: no such scene; pass a Scene directory from `worldmodel reconstruct`")
    try:
        kwargs = json.loads(cfg.env_kwargs)
    except json.JSONDecodeError as e:
        raise UserInputError(f"--env-kwargs {cfg.env_kwargs!r} is not valid JSON ({e})") from e
    if min(cfg.iterations, cfg.real_steps, cfg.world_model_steps, cfg.policy_steps) < 1:
        raise UserInputError("--iterations, --real-steps, --world-model-steps and --policy-steps must be positive")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with RunDir(out, cfg) as run:
        env = SceneEnv(cfg.scene, **kwargs)
        if len(env.observation_space.shape) != 3:
            raise UserInputError(f"--env-kwargs {cfg.env_kwargs}: the SceneEnv must observe RGB only (no depth/state)")
        env.action_space.seed(cfg.seed)
        h, w, _ = env.observation_space.shape
        space = ActionSpace.from_gym(env.action_space)
        agent = ActorCritic(ActorCriticNetConfig((h, w, 3), space.to_dict(), channels=cfg.channels, hidden=cfg.hidden))
        real_total, history = 0, []
        for it in range(cfg.iterations):
            t0 = time.time()
            recorder = RecordEpisodes(env, out / "data", (h, w), source={"scene": str(cfg.scene), **kwargs},
                                      append=it > 0, frames="observation")
            real = collect_real(recorder, agent if it > 0 else None, cfg.real_steps, cfg.seed + 10_000 * it)
            real_total = TrajectoryDataset(out / "data").total_steps
            wm_cfg = TrainWorldModelConfig(
                out / "data",
                out=out / "world_model",
                steps=cfg.world_model_steps * (it + 1),
                batch_size=cfg.world_model_batch_size,
                context=cfg.world_model_context,
                block_out_channels=cfg.world_model_channels,
                reward_channels=cfg.world_model_channels,
                holdout_episodes=0,
                eval_every=10**9,
                seed=cfg.seed,
            )
            model_dir = train_world_model(wm_cfg)  # resumes from the previous iteration's checkpoint
            dream = DreamVectorEnv(
                model_dir,
                out / "data",
                num_envs=cfg.num_envs,
                max_steps=cfg.imagined_max_steps,
                autoreset_mode=AutoresetMode.SAME_STEP,
            )
            summary = train_actor_critic(agent, dream, cfg.policy_steps, cfg.hp, cfg.seed + it, progress=True)
            agent.eval().save(out / "policy", extra={"trained_in": {"model": str(model_dir), "iteration": it}})
            row = {
                "iteration": it,
                "real_steps": real_total,
                "collected_return": float(np.mean(real)),
                "collected_with": "random" if it == 0 else "policy",
                "imagined_return": summary["mean_return"],
                "imagined_steps_per_second": summary["steps_per_second"],
                "seconds": time.time() - t0,
            }
            history.append(row)
            run.log_metrics(step=real_total, **row)
            LOG.info(
                "iteration %d: %d real steps so far, real return %.3f (%s), imagined return %.3f",
                it,
                real_total,
                row["collected_return"],
                row["collected_with"],
                row["imagined_return"],
            )
        result = {
            "real_steps": real_total,
            "iterations": history,
            "policy": str(out / "policy"),
            "world_model": str(out / "world_model" / "model"),
        }
        write_json(out / "summary.json", result)
    return result
