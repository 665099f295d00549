"""`worldmodel train-policy-scene SCENE`: SB3 PPO (CnnPolicy) trained model-free in a SceneEnv.

The place is the twin (a Scene directory from `worldmodel reconstruct`) — its steps are free — or
reality's room (`room:DIR`), where every step counts. Bodies are stepped together in a SceneVectorEnv
(one render call per step); checkpoints saved along the run (`--checkpoint-every`) are policies in the
project's saved format, each evaluated on held-out starts into `learning_curve.json`: the graded family
`validate` judges, and the learning curve BENCHMARKS quotes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import tyro

from envs.scene_config import SceneEnvConfig
from training.actor_critic import PPOHyperparameters
from training.train_policy import train_sb3_ppo
from wmcore.atomic import write_json
from wmcore.errors import UserInputError
from wmcore.rundir import open_run

LOG = logging.getLogger("worldmodel.train_policy_scene")


@dataclass
class TrainPolicySceneConfig:
    """Train SB3 PPO (CnnPolicy) in a Scene — the twin, or reality's room — through SceneVectorEnv."""

    scene: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="SCENE")]]
    """Scene directory (from `worldmodel reconstruct`), nerfstudio run, 3DGS .ply, or room:DIR (the true room of
    a synthetic capture: model-free training in reality, every step counted)."""
    env: SceneEnvConfig = field(default_factory=SceneEnvConfig)
    """The body, camera and task (envs.scene_config.SceneEnvConfig), e.g. the demo's: --env.width 40
    --env.height 40 --env.max-steps 50 --env.goal X Y. RGB observations only (CnnPolicy); the scene renders on
    --device."""
    out: Path = Path("runs/policy-scene")
    """Run directory: policy/, checkpoints/step_NNNNNN/, learning_curve.json, summary.json, config.json,
    log.txt, metrics.jsonl."""
    total_steps: int = 100_000
    """Environment steps in the twin, summed over the bodies."""
    num_envs: int = 16
    """Bodies stepped together (one render call per step for all of them)."""
    checkpoint_every: int = 0
    """Save the policy as OUT/checkpoints/step_NNNNNN/ (N: environment steps trained on) at the start and
    then at the first update boundary at or after every multiple of this many steps, and at the end; each
    loads with `training.policies.load_policy`. 0: only OUT/policy."""
    eval_episodes: int = 0
    """Evaluate every checkpoint (and the final policy) on this many episodes from held-out
    seeds (eval_seed, eval_seed + 1, ...): success rate with its 95% Wilson interval in learning_curve.json."""
    eval_seed: int = 1_000_000
    """First seed of the evaluation episodes (training resets from seed, seed + 1, ...)."""
    eval_deterministic: bool = False
    """Evaluate the most likely action; by default actions are sampled, as in training and in `validate`."""
    max_minutes: float | None = None
    """Stop training after this many minutes (checkpoints' evaluation not counted), then save and evaluate."""
    hp: PPOHyperparameters = field(
        default_factory=lambda: PPOHyperparameters(rollout_steps=64, epochs=4, minibatches=4, ent_coef=0.01)
    )
    """PPO hyperparameters (rollout_steps: steps per body between updates)."""
    hidden: int = 256
    """Features after SB3's CNN (features_dim)."""
    device: str = "cpu"
    """Torch device of the scene's renderer and the policy."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    seed: int = 0
    """Seed of the policy initialisation and of the training episodes."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


class Checkpoints:
    """Policies saved along a run, OUT/checkpoints/step_NNNNNN/, each evaluated by `evaluate` (a
    function of the saved directory) when given; rows in OUT/learning_curve.json, rewritten after
    every checkpoint so that a run stopped early keeps its curve."""

    def __init__(self, out: Path, every: int, width: int, evaluate: Any = None, meta: dict | None = None):
        self.out, self.every, self.width, self.evaluate = out, every, width, evaluate
        self.meta, self.rows, self.seconds, self.t0 = meta or {}, [], 0.0, None
        self.next = 0

    def maybe_save(self, save: Any, steps: int) -> None:
        if self.every > 0 and steps >= self.next:
            self._checkpoint(save, steps)
            self.next = (steps // self.every + 1) * self.every

    def finish(self, save: Any, steps: int, final: Path) -> dict[str, Any]:
        """The final checkpoint (when not saved already; without checkpoints, the final policy at
        `final` is evaluated); what the curve reached."""
        if (self.every > 0 or self.evaluate is not None) and (not self.rows or self.rows[-1]["steps"] != steps):
            self._checkpoint(save, steps, final)
        out: dict[str, Any] = {"checkpoints": [r["checkpoint"] for r in self.rows if r.get("checkpoint")]}
        if self.evaluate is not None:
            for level in (0.5, 0.9):
                hit = next((r for r in self.rows if r["eval"]["success_rate"] >= level), None)
                out[f"steps_to_{int(level * 100)}pct_success"] = hit["steps"] if hit else None
            out["final_eval"] = self.rows[-1]["eval"]
        self._write(out)
        return out

    def _checkpoint(self, save: Any, steps: int, final: Path | None = None) -> None:
        t = time.time()
        self.t0 = self.t0 or t  # the clock starts at the first checkpoint, the start of training
        path = self.out / "checkpoints" / f"step_{steps:0{self.width}d}" if self.every > 0 else final
        if self.every > 0:
            save(path)
        row: dict[str, Any] = {
            "steps": steps,
            "seconds": round(t - self.t0 - self.seconds, 2),
            "wall_seconds": round(t - self.t0, 2),
            "checkpoint": str(path.relative_to(self.out)) if self.every > 0 else None,
        }
        if self.evaluate is not None:
            row["eval"] = self.evaluate(path)
            LOG.info(
                "step %d: success %.2f (95%% CI %.2f-%.2f), return %.2f",
                steps,
                row["eval"]["success_rate"],
                *row["eval"]["success_ci95"],
                row["eval"]["mean_return"],
            )
        self.rows.append(row)
        self.seconds += time.time() - t
        self._write({})

    def _write(self, extra: dict[str, Any]) -> None:
        write_json(self.out / "learning_curve.json", {**self.meta, "rows": self.rows, **extra})


def evaluate_in_scene(policy: Any, env: Any, seed: int, deterministic: bool = False) -> dict[str, Any]:
    """One episode per body of a SceneVectorEnv (NEXT_STEP autoreset), body i from seed + i, all
    stepped together: success rate (95% Wilson interval) and mean return (95% t-interval)."""
    from training.stats import t_interval, wilson_interval

    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    returns, success, running = np.zeros(n), np.zeros(n, bool), np.ones(n, bool)
    first = np.ones(n, bool)
    while running.any():
        actions, _ = policy.predict(obs, episode_start=first, deterministic=deterministic)
        first = np.zeros(n, bool)
        obs, reward, terminated, truncated, info = env.step(np.asarray(actions).reshape(env.action_space.shape))
        returns += np.where(running, reward, 0.0)
        ended = running & (terminated | truncated)
        success |= ended & info.get("success", np.zeros(n, bool))
        running &= ~ended
    p, plo, phi = wilson_interval(int(success.sum()), n)
    m, mlo, mhi = t_interval(returns)
    return {"episodes": n, "success_rate": p, "success_ci95": [plo, phi], "mean_return": m, "return_ci95": [mlo, mhi]}


def train_policy_scene(cfg: TrainPolicySceneConfig) -> Path:
    """Train SB3 PPO in the twin and save OUT/policy (and checkpoints along the run); returns its path."""
    from gymnasium.vector import AutoresetMode

    from envs.scene_env import check_scene_path
    from envs.scene_vector_env import SceneVectorEnv
    from training.policies import load_policy

    if min(cfg.total_steps, cfg.num_envs, cfg.hp.rollout_steps) < 1 or min(cfg.checkpoint_every, cfg.eval_episodes) < 0:
        raise UserInputError(
            "--total-steps, --num-envs and --hp.rollout-steps must be positive, "
            "--checkpoint-every and --eval-episodes zero or more"
        )
    cfg.hp.check(sb3=True)
    check_scene_path(cfg.scene)
    env_cfg = replace(cfg.env, device=cfg.device)
    if env_cfg.depth or env_cfg.state or min(env_cfg.width, env_cfg.height) < 36:
        raise UserInputError(
            f"--env.width {env_cfg.width} --env.height {env_cfg.height} (depth {env_cfg.depth}, state "
            f"{env_cfg.state}): SB3's CnnPolicy takes RGB observations of at least 36x36 pixels; drop "
            "--env.depth/--env.state and use a width and height of 36 or more"
        )
    kwargs = {k: v for k, v in asdict(env_cfg).items() if k not in ("device", "observation_device")}
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with open_run(out, cfg, overwrite=cfg.overwrite, tensorboard=True) as run:
        try:
            env = SceneVectorEnv(
                str(cfg.scene),
                num_envs=cfg.num_envs,
                autoreset_mode=AutoresetMode.SAME_STEP,
                config=env_cfg,
            )
            env.reset(seed=cfg.seed)  # a goal outside the free space is refused here, not inside PPO
        except (TypeError, ValueError) as e:
            raise UserInputError(f"--env: {e}") from e
        run.start()  # the twin and its start states are fine: the run is accepted
        env_id = "worldmodel/SceneNav-v0" if env.cfg.task == "pointnav" else "worldmodel/SceneExplore-v0"
        source = {"scene": str(cfg.scene), "env_id": env_id, "env_kwargs": kwargs}
        evaluate = None
        if cfg.eval_episodes > 0:
            eval_env = SceneVectorEnv(env.scene, num_envs=cfg.eval_episodes, config=env.cfg)

            def evaluate(path: Path) -> dict[str, Any]:
                return evaluate_in_scene(
                    load_policy(path, device=cfg.device), eval_env, cfg.eval_seed, cfg.eval_deterministic
                )

        width = max(6, len(str(cfg.total_steps + cfg.num_envs * cfg.hp.rollout_steps)))
        meta = {
            "scene": str(cfg.scene),
            "env_kwargs": kwargs,
            "num_envs": cfg.num_envs,
            "eval": {"episodes": cfg.eval_episodes, "seed": cfg.eval_seed, "deterministic": cfg.eval_deterministic},
        }
        checkpoints = Checkpoints(out, cfg.checkpoint_every, width, evaluate, meta)
        max_seconds = None if cfg.max_minutes is None else 60 * cfg.max_minutes
        summary = train_sb3_ppo(cfg, env, run, out / "policy", source, checkpoints, max_seconds)
        world = "reality" if str(cfg.scene).startswith("room:") else "twin"  # room:DIR is a capture's true room
        summary.update(algorithm="sb3-ppo", world=world, scene=str(cfg.scene))
        write_json(out / "summary.json", summary)
        LOG.info(
            "sb3-ppo in %s: %d steps, %.1f steps/s, mean return %.3f; policy in %s",
            "reality" if world == "reality" else "the twin",
            summary["steps"],
            summary["steps_per_second"],
            summary["mean_return"],
            out / "policy",
        )
    return out / "policy"
