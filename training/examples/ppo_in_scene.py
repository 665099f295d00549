"""Train your own policy in the reconstructed scene: Stable-Baselines3 PPO on SceneEnv.

The SceneEnv is a plain Gymnasium env (`worldmodel/SceneNav-v0`): point-goal navigation with
first-person RGB observations and discrete moves. This script trains PPO's CnnPolicy on a few
copies of it, then compares the policy's success rate with the scripted shortest-path oracle
and a random policy on the same seeds.

    python -m training.examples.ppo_in_scene runs/demo/scene --total-steps 20000
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import tyro
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401  (registers worldmodel/SceneNav-v0)
from envs.oracle import ShortestPathPolicy, rollout_success


@dataclass
class Args:
    scene: tyro.conf.Positional[Path]
    """Scene directory from `worldmodel reconstruct` (or scenes.truth_scene)."""
    total_steps: int = 20_000
    """Environment steps of PPO."""
    num_envs: int = 4
    """SceneEnv copies stepped in turn (DummyVecEnv)."""
    size: int = 64
    """Observation width and height in pixels (SB3's CnnPolicy needs at least 36)."""
    max_steps: int = 100
    """Episode length limit."""
    eval_episodes: int = 10
    """Evaluation episodes per policy."""
    seed: int = 0
    """Seed of PPO and of the environments."""


def main(args: Args) -> None:
    kwargs = {"scene": str(args.scene), "width": args.size, "height": args.size, "max_steps": args.max_steps}
    venv = make_vec_env("worldmodel/SceneNav-v0", n_envs=args.num_envs, seed=args.seed, env_kwargs=kwargs)
    model = PPO("CnnPolicy", venv, n_steps=128, batch_size=128, n_epochs=4, ent_coef=0.01, seed=args.seed, verbose=0)
    start = time.time()
    model.learn(args.total_steps, progress_bar=True)
    print(f"{args.total_steps} steps, {args.total_steps / (time.time() - start):.1f} steps/s")

    env = gym.make("worldmodel/SceneNav-v0", **kwargs).unwrapped
    policies = {
        "ppo": lambda obs: int(model.predict(obs, deterministic=True)[0]),
        "random": lambda obs: int(env.action_space.sample()),
        "oracle": ShortestPathPolicy(env),
    }
    for name, policy in policies.items():
        success = rollout_success(env, policy, args.eval_episodes, seed=10_000)
        print(f"{name:>7}: success rate {success.mean():.2f} over {args.eval_episodes} episodes")


if __name__ == "__main__":
    main(tyro.cli(Args))
