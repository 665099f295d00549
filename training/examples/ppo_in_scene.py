"""Train your own policy in the reconstructed scene: Stable-Baselines3 PPO on SceneVectorEnv.

SceneVectorEnv steps N bodies in the one Scene — the vector form of `worldmodel/SceneNav-v0`:
point-goal navigation with first-person RGB observations and discrete moves — rendering all N
cameras in one call per step; `envs.sb3.SB3VecEnv` hands that batch to SB3 as it is. This script
trains PPO's CnnPolicy on it, then compares the policy's success rate with the scripted
shortest-path oracle and a random policy on the same held-out seeds.

    python -m training.examples.ppo_in_scene runs/demo/scene --total-steps 20000
    python -m training.examples.ppo_in_scene runs/demo/scene --size 40 --max-steps 50 --goal 1.8 1.48

(`worldmodel train-policy-scene` is the same loop as a command, with checkpoints and a learning curve.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import gymnasium as gym
import tyro
from stable_baselines3 import PPO

import envs  # noqa: F401  (registers worldmodel/SceneNav-v0 and its vector entry point)
from envs.oracle import ShortestPathPolicy, rollout_success
from envs.sb3 import SB3VecEnv


@dataclass
class Args:
    scene: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="SCENE")]]
    """Scene directory from `worldmodel reconstruct` (or scenes.truth_scene)."""
    total_steps: int = 20_000
    """Environment steps of PPO, summed over the bodies."""
    num_envs: int = 16
    """Bodies in the SceneVectorEnv (one render call per step for all of them)."""
    size: int = 64
    """Observation width and height in pixels (SB3's CnnPolicy needs at least 36)."""
    max_steps: int = 100
    """Episode length limit."""
    goal: tuple[float, float] | None = None
    """One fixed goal (x, y metres in the scene) that an RGB policy can learn; None: a new goal each episode."""
    eval_episodes: int = 10
    """Evaluation episodes per policy."""
    seed: int = 0
    """Seed of PPO and of the environments."""


def main(args: Args) -> None:
    kwargs = {
        "scene": str(args.scene),
        "width": args.size,
        "height": args.size,
        "max_steps": args.max_steps,
        "goal": args.goal,
    }
    vec = gym.make_vec(
        "worldmodel/SceneNav-v0",
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        **kwargs,
    )
    model = PPO(
        "CnnPolicy", SB3VecEnv(vec), n_steps=64, batch_size=256, n_epochs=4, ent_coef=0.01, seed=args.seed, verbose=0
    )
    start = time.time()
    model.learn(args.total_steps, progress_bar=True)
    print(f"{model.num_timesteps} steps, {model.num_timesteps / (time.time() - start):.1f} steps/s")

    env = gym.make("worldmodel/SceneNav-v0", **kwargs).unwrapped
    policies = {
        "ppo": lambda obs: int(model.predict(obs, deterministic=False)[0]),
        "random": lambda obs: int(env.action_space.sample()),
        "oracle": ShortestPathPolicy(env),
    }
    for name, policy in policies.items():
        success = rollout_success(env, policy, args.eval_episodes, seed=10_000)
        print(f"{name:>7}: success rate {success.mean():.2f} over {args.eval_episodes} episodes")


if __name__ == "__main__":
    main(tyro.cli(Args))
