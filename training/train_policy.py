"""`worldmodel train-policy MODEL DATASET`: train a policy entirely in imagination.

The environment is a DreamVectorEnv (the world model, started from contexts drawn from the
dataset); every step is one batched world-model call. Two algorithms:

- `actor-critic` (default): our PPO/GAE actor-critic (training/actor_critic.py) acting on the
  batch as tensors — the fastest path;
- `ppo`: Stable-Baselines3 PPO with CnnPolicy through envs.sb3.SB3VecEnv.

Both save RUN/policy (policy.json + policy.safetensors, no pickle); `training.policies.load_policy`
rebuilds a policy object whose `predict(obs)` runs unchanged in reality and in the twin.
`worldmodel train-policy-scene` (training/train_policy_scene.py) trains SB3 PPO model-free in a
SceneEnv instead, with the same `train_sb3_ppo`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import torch
import tyro

from training.actor_critic import PPOHyperparameters
from wmcore.atomic import write_json
from wmcore.errors import UserInputError
from wmcore.rundir import RunDir, open_run

if TYPE_CHECKING:
    from training.train_policy_scene import Checkpoints, TrainPolicySceneConfig

LOG = logging.getLogger("worldmodel.train_policy")


@dataclass
class TrainPolicyConfig:
    """Train a policy in a world model's imagination."""

    model: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="MODEL")]]
    """World model directory (RUN/model from train-world-model)."""
    dataset: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="DATASET")]]
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
    snap_to_data: bool = False
    """Show the policy, at every imagined step, the dataset's frame nearest to the model's sample, by
    worldmodel.frame_memory, as `model-based --snap-to-data` does."""
    hp: PPOHyperparameters = field(default_factory=PPOHyperparameters)
    """PPO hyperparameters (both algorithms)."""
    channels: tuple[int, int, int] = (32, 64, 64)
    """actor-critic: CNN channels."""
    hidden: int = 256
    """Features after the CNN (actor-critic hidden width; SB3 features_dim)."""
    frames: int = 1
    """actor-critic: the policy sees this many latest observations, stacked (2: whether its last step moved it)."""
    device: str = "cpu"
    """Torch device of the world model and the policy."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    seed: int = 0
    """Seed of the policy initialisation, the imagined starts and the sampling noise."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


def train_policy(cfg: TrainPolicyConfig) -> Path:
    """Train and save RUN/policy; returns its path.

    Under `accelerate launch` / torchrun with N processes (actor-critic only), each process imagines
    total_steps / N steps from its own starts and the gradients are averaged (data parallel)."""
    from accelerate import Accelerator
    from gymnasium.vector import AutoresetMode

    from envs.dream_env import DreamVectorEnv

    for name, value in (
        ("--total-steps", cfg.total_steps),
        ("--num-envs", cfg.num_envs),
        ("--max-steps", cfg.max_steps),
        ("--hp.rollout-steps", cfg.hp.rollout_steps),
        ("--hidden", cfg.hidden),
        ("--frames", cfg.frames),
    ):
        if value < 1:
            raise UserInputError(f"{name} {value}: must be positive")
    if cfg.frames > 1 and cfg.algorithm != "actor-critic":
        raise UserInputError(
            f"--frames {cfg.frames}: stacked observations are the actor-critic's; use --algorithm actor-critic "
            "(SB3 PPO here sees one frame)"
        )
    if cfg.denoising_steps is not None and cfg.denoising_steps < 1:
        raise UserInputError(f"--denoising-steps {cfg.denoising_steps}: give 1 or more")
    cfg.hp.check(sb3=cfg.algorithm == "ppo")
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
    with open_run(out, cfg, overwrite=cfg.overwrite, console=main, enabled=main, tensorboard=True) as run:
        env = DreamVectorEnv(
            cfg.model,
            cfg.dataset,
            num_envs=cfg.num_envs,
            max_steps=cfg.max_steps,
            device=device,
            denoising_steps=cfg.denoising_steps,
            autoreset_mode=AutoresetMode.SAME_STEP,
            snap_to_data=cfg.snap_to_data,
        )
        if run is not None:
            run.start()  # the model and data load: the run is accepted
        source = {"model": str(cfg.model), "dataset": str(cfg.dataset)}
        t0 = time.time()
        if cfg.algorithm == "actor-critic":
            summary = _train_actor_critic(cfg, env, run, out / "policy", source, accelerator, device)
        else:
            summary = train_sb3_ppo(cfg, env, run, out / "policy", source)
        # every process leaves its process group before exiting: gloo's threads torn down at interpreter exit
        # aborted a torchrun process after its work was done
        accelerator.end_training()
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
        frames=cfg.frames,
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


def train_sb3_ppo(
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
    from stable_baselines3.common.logger import Logger
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
    # The run's own metrics are the log: SB3's default logger would leave an empty folder in /tmp every run.
    model.set_logger(Logger(None, []))
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
if __name__ == "__main__":  # e.g. `accelerate launch -m training.train_policy ...` or torchrun
    import sys

    from training.cli import main

    sys.exit(main(["train-policy", *sys.argv[1:]]))
