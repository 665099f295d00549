"""`worldmodel train-policy MODEL DATASET`: train a policy entirely in imagination.

The environment is a DreamVectorEnv (the world model, started from contexts drawn from the
dataset); every step is one batched world-model call. Two algorithms:

- `actor-critic` (default): our PPO/GAE actor-critic (training/actor_critic.py) acting on the
  batch as tensors — the fastest path;
- `ppo`: Stable-Baselines3 PPO with CnnPolicy through envs.sb3.SB3DreamVecEnv.

Both save RUN/policy (policy.json + policy.safetensors, no pickle); `training.policies.load_policy`
rebuilds a policy object whose `predict(obs)` runs unchanged in the ground-truth environment.

`worldmodel train-policy-scene SCENE` trains SB3 PPO (CnnPolicy) in the twin instead: a
SceneVectorEnv over the reconstructed Scene (one render call per step for all bodies), with
checkpoints along the run (`--checkpoint-every`, each a saved policy: a graded family) and, with
`--eval-episodes`, each checkpoint's success on held-out seeds in a learning_curve.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import tyro

from training.actor_critic import PPOHyperparameters
from wmcore.atomic import write_json
from wmcore.errors import UserInputError
from wmcore.rundir import RunDir

LOG = logging.getLogger("worldmodel.train_policy")


@dataclass
class TrainPolicyConfig:
    """Train a policy in a world model's imagination."""

    model: tyro.conf.Positional[Path]
    """World model directory (RUN/model from train-world-model)."""
    dataset: tyro.conf.Positional[Path]
    """Trajectory dataset the imagined episodes start from (the one the model was trained on)."""
    out: Path = Path("runs/policy")
    """Run directory: policy/, summary.json, config.json, log.txt, metrics.jsonl."""
    algorithm: Literal["ppo", "actor-critic"] = "ppo"
    """Stable-Baselines3 PPO (CnnPolicy), or our batched PPO actor-critic that learns on the imagined
    tensors directly (faster; the one that runs data parallel)."""
    total_steps: int = 20_000
    """Imagined environment steps, summed over the batch."""
    num_envs: int = 16
    """Imagined rollouts advanced together (one world-model call per step for all of them)."""
    max_steps: int = 50
    """Imagined episodes are truncated after this many steps."""
    denoising_steps: int | None = None
    """Denoising steps per imagined frame (None: the model's default)."""
    hp: PPOHyperparameters = field(default_factory=PPOHyperparameters)
    """PPO hyperparameters (both algorithms)."""
    channels: tuple[int, int, int] = (32, 64, 64)
    """actor-critic: CNN channels."""
    hidden: int = 256
    """Features after the CNN (actor-critic hidden width; SB3 features_dim)."""
    device: str = "cpu"
    """Torch device of the world model and the policy."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    seed: int = 0
    """Seed of the policy initialisation, the imagined starts and the sampling noise."""


def train_policy(cfg: TrainPolicyConfig) -> Path:
    """Train and save RUN/policy; returns its path.

    Under `accelerate launch` / torchrun with N processes (actor-critic only), each process imagines
    total_steps / N steps from its own starts and the gradients are averaged (data parallel)."""
    from accelerate import Accelerator
    from gymnasium.vector import AutoresetMode

    from envs.dream_env import DreamVectorEnv

    if cfg.total_steps < 1 or cfg.num_envs < 1 or cfg.max_steps < 1 or cfg.hp.rollout_steps < 1:
        raise UserInputError("--total-steps, --num-envs, --max-steps and --hp.rollout-steps must be positive")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = Accelerator(cpu=not cfg.device.startswith("cuda"))
    if accelerator.num_processes > 1 and cfg.algorithm != "actor-critic":
        raise UserInputError(
            "--algorithm ppo (Stable-Baselines3) runs in one process; use actor-critic under accelerate launch"
        )
    device = str(accelerator.device) if cfg.device.startswith("cuda") else cfg.device
    torch.manual_seed(cfg.seed)  # the same initial policy in every process
    out = Path(cfg.out)
    main = accelerator.is_main_process
    with RunDir(out, cfg, console=main) if main else contextlib.nullcontext() as run:
        env = DreamVectorEnv(
            cfg.model,
            cfg.dataset,
            num_envs=cfg.num_envs,
            max_steps=cfg.max_steps,
            device=device,
            denoising_steps=cfg.denoising_steps,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        source = {"model": str(cfg.model), "dataset": str(cfg.dataset)}
        t0 = time.time()
        if cfg.algorithm == "actor-critic":
            summary = _train_actor_critic(cfg, env, run, out / "policy", source, accelerator, device)
        else:
            summary = _train_sb3_ppo(cfg, env, run, out / "policy", source)
        if not main:
            return out / "policy"
        summary.update(algorithm=cfg.algorithm, seconds=round(time.time() - t0, 2))
        write_json(out / "summary.json", summary)
        LOG.info(
            "%s: %d imagined steps, %.1f steps/s, mean imagined return %.3f; policy in %s",
            cfg.algorithm,
            summary["steps"],
            summary["steps_per_second"],
            summary["mean_return"],
            out / "policy",
        )
    return out / "policy"


def _train_actor_critic(
    cfg: TrainPolicyConfig, env, run: RunDir | None, dest: Path, source: dict, accelerator, device: str
) -> dict:
    from training.actor_critic import ActorCritic, ActorCriticNetConfig, train_actor_critic
    from worldmodel.action_space import ActionSpace

    net = ActorCriticNetConfig(
        observation_shape=tuple(env.single_observation_space.shape),
        action_space=ActionSpace.from_gym(env.single_action_space).to_dict(),
        channels=cfg.channels,
        hidden=cfg.hidden,
    )
    agent = ActorCritic(net).to(device)
    n, rank = accelerator.num_processes, accelerator.process_index
    summary = train_actor_critic(
        agent,
        env,
        cfg.total_steps // n,
        cfg.hp,
        cfg.seed + 1000 * rank,
        run,
        progress=accelerator.is_main_process,
        accelerator=accelerator,
    )
    # data parallel keeps every process's agent identical; check it rather than trust it
    checksum = torch.stack([p.detach().double().sum() for p in agent.parameters()]).sum().reshape(1).cpu()
    in_sync = bool(torch.allclose(accelerator.gather(checksum.to(accelerator.device)).cpu(), checksum, rtol=1e-9))
    if accelerator.is_main_process:
        agent.eval().save(dest, extra={"trained_in": source, "hp": asdict(cfg.hp), "processes": n})
    accelerator.wait_for_everyone()
    return {**summary, "processes": n, "steps_all_processes": summary["steps"] * n, "processes_in_sync": in_sync}


def _train_sb3_ppo(
    cfg: TrainPolicyConfig | TrainPolicySceneConfig,
    env,
    run: RunDir,
    dest: Path,
    source: dict,
    checkpoints: Checkpoints | None = None,
    max_seconds: float | None = None,
) -> dict:
    """SB3 PPO (CnnPolicy) on a SAME_STEP vector env (imagined or the twin); optionally saving
    `checkpoints` along the run and stopping after `max_seconds` of training."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    from envs.sb3 import SB3VecEnv
    from training.policies import save_sb3_policy

    hp = cfg.hp
    policy_kwargs = {"features_extractor_kwargs": {"features_dim": cfg.hidden}}
    batch = cfg.num_envs * hp.rollout_steps
    model = PPO(
        "CnnPolicy",
        SB3VecEnv(env),
        learning_rate=hp.learning_rate,
        n_steps=hp.rollout_steps,
        batch_size=max(2, batch // hp.minibatches),
        n_epochs=hp.epochs,
        gamma=hp.gamma,
        gae_lambda=hp.gae_lambda,
        clip_range=hp.clip,
        ent_coef=hp.ent_coef,
        vf_coef=hp.vf_coef,
        max_grad_norm=hp.max_grad_norm,
        seed=cfg.seed,
        device=cfg.device,
        policy_kwargs=policy_kwargs,
    )
    returns: list[float] = []

    def save(path: Path) -> Path:
        return save_sb3_policy(model, path, policy_kwargs, extra={"trained_in": source, "hp": asdict(hp)})

    class Log(BaseCallback):
        """Progress bar, and one metrics row per rollout (mean return, and success rate where the env
        reports it, of the episodes that ended); checkpoints between rollouts; the time limit."""

        def _on_training_start(self) -> None:
            self.t0, self.bar, self.ended = time.time(), tqdm(total=cfg.total_steps, desc="sb3-ppo", unit="step"), []
            self.success: list[bool] = []

        def _on_rollout_start(self) -> None:
            if checkpoints is not None:  # the policy as trained on num_timesteps steps
                checkpoints.maybe_save(save, self.num_timesteps)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            infos = [i for i in self.locals["infos"] if "episode" in i]
            self.ended += [i["episode"]["r"] for i in infos]
            self.success += [i["is_success"] for i in infos if "is_success" in i]
            return max_seconds is None or self.seconds() < max_seconds

        def seconds(self) -> float:
            """Training wall-clock, without the time checkpoints took (saving, evaluating)."""
            return time.time() - self.t0 - (checkpoints.seconds if checkpoints else 0.0)

        def _on_rollout_end(self) -> None:
            sps = self.num_timesteps / self.seconds()
            mean = float(np.mean(self.ended)) if self.ended else float("nan")
            returns.extend(self.ended)
            extra = {"success_rate": float(np.mean(self.success))} if self.success else {}
            run.log_metrics(
                step=self.num_timesteps,
                episode_return=mean,
                episodes=len(self.ended),
                steps_per_second=sps,
                seconds=round(self.seconds(), 2),
                **extra,
            )
            self.bar.set_postfix(
                ret=f"{mean:.3f}", sps=f"{sps:.0f}", **({"ok": f"{extra['success_rate']:.2f}"} if extra else {})
            )
            self.ended, self.success = [], []

        def _on_training_end(self) -> None:
            self.bar.close()

    log = Log()
    model.learn(cfg.total_steps, callback=log)
    steps = int(model.num_timesteps)
    seconds = log.seconds()
    save(dest)
    summary = {
        "steps": steps,
        "steps_per_second": steps / seconds,
        "training_seconds": round(seconds, 2),
        "episodes": len(returns),
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
    }
    if checkpoints is not None:
        summary.update(checkpoints.finish(save, steps, dest))
    return summary


# ---------------------------------------------------------------------- training in the twin
@dataclass
class TrainPolicySceneConfig:
    """Train SB3 PPO (CnnPolicy) in a Scene — the twin, or reality's room — through SceneVectorEnv."""

    scene: tyro.conf.Positional[Path]
    """Scene directory (from `worldmodel reconstruct`), nerfstudio run, 3DGS .ply, or room:DIR (the true room of
    a synthetic capture: model-free training in reality, every step counted)."""
    env_kwargs: str = "{}"
    """JSON SceneEnv options (envs.scene_env.SceneEnvConfig), e.g. the demo's task:
    '{"width": 40, "height": 40, "max_steps": 50, "goal": [x, y]}'. RGB observations only (CnnPolicy)."""
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
    """Evaluate every checkpoint (and the final policy) on this many episodes from held-out seeds
    (eval_seed, eval_seed + 1, ...): success rate with its 95% Wilson interval in learning_curve.json."""
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
    try:
        from training.stats import t_interval, wilson_interval
    except ImportError:  # before the statistics moved to their own module
        from training.validate import t_interval, wilson_interval

    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    returns, success, running = np.zeros(n), np.zeros(n, bool), np.ones(n, bool)
    while running.any():
        actions, _ = policy.predict(obs, deterministic=deterministic)
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
    check_scene_path(cfg.scene)
    try:
        kwargs = json.loads(cfg.env_kwargs)
    except json.JSONDecodeError as e:
        raise UserInputError(f"--env-kwargs {cfg.env_kwargs!r} is not valid JSON ({e})") from e
    if not isinstance(kwargs, dict):
        raise UserInputError(f"--env-kwargs {cfg.env_kwargs!r}: give a JSON object of SceneEnv options")
    if kwargs.get("depth") or kwargs.get("state") or min(kwargs.get("width", 64), kwargs.get("height", 64)) < 36:
        raise UserInputError(
            f"--env-kwargs {cfg.env_kwargs}: SB3's CnnPolicy takes RGB observations of at least "
            "36x36 pixels; drop depth/state and use width and height >= 36"
        )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with RunDir(out, cfg) as run:
        try:
            env = SceneVectorEnv(
                str(cfg.scene),
                num_envs=cfg.num_envs,
                autoreset_mode=AutoresetMode.SAME_STEP,
                **{"device": cfg.device, **kwargs},
            )
            env.reset(seed=cfg.seed)  # a goal outside the free space is refused here, not inside PPO
        except (TypeError, ValueError) as e:
            raise UserInputError(f"--env-kwargs {cfg.env_kwargs}: {e}") from e
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
        summary = _train_sb3_ppo(cfg, env, run, out / "policy", source, checkpoints, max_seconds)
        summary.update(algorithm="sb3-ppo", world="twin", scene=str(cfg.scene))
        write_json(out / "summary.json", summary)
        LOG.info(
            "sb3-ppo in the twin: %d steps, %.1f steps/s, mean return %.3f; policy in %s",
            summary["steps"],
            summary["steps_per_second"],
            summary["mean_return"],
            out / "policy",
        )
    return out / "policy"


if __name__ == "__main__":  # e.g. `accelerate launch -m training.train_policy ...` or torchrun
    import sys

    from training.cli import main

    sys.exit(main(["train-policy", *sys.argv[1:]]))
