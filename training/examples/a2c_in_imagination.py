"""Train your own policy in imagination: a CleanRL-style A2C on a DreamVectorEnv, in one file.

Every `env.step` advances all `num_envs` imagined rollouts with one batched world-model call; the
policy is an ordinary torch module acting on the batch of RGB frames. The trained network then
acts in the real environment the world model was learned from (see the end of the file).

    python -m training.examples.a2c_in_imagination runs/wm/model runs/data --total-steps 20000
    python -m training.examples.a2c_in_imagination MODEL DATASET --scene runs/scene  # + true-env check
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import tyro
from gymnasium.vector import AutoresetMode
from torch import nn
from torch.distributions import Categorical
from tqdm import tqdm

from envs.dream_env import DreamVectorEnv


@dataclass
class Args:
    model: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="MODEL")]]
    """World model directory (RUN/model from `worldmodel train-world-model`)."""
    dataset: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="DATASET")]]
    """The dataset the model was trained on (imagined episodes start from its frames)."""
    scene: Path | None = None
    """If given, evaluate the trained policy in a SceneEnv over this Scene afterwards."""
    total_steps: int = 20_000
    """Imagined steps, summed over the batch."""
    num_envs: int = 16
    """Imagined rollouts stepped together."""
    n_steps: int = 8
    """Steps per rollout before each update (n-step returns)."""
    max_steps: int = 50
    """Imagined episode length limit."""
    lr: float = 7e-4
    """RMSprop learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    seed: int = 0
    """Seed of everything."""


class Agent(nn.Module):
    """A small CNN with policy and value heads, for uint8 frames [B,H,W,3] and Discrete(n) actions."""

    def __init__(self, h: int, w: int, n_actions: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 8, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(), nn.Flatten()
        )
        with torch.no_grad():
            flat = self.net(torch.zeros(1, 3, h, w)).shape[1]
        self.fc = nn.Sequential(nn.Linear(flat, 128), nn.ReLU())
        self.pi, self.v = nn.Linear(128, n_actions), nn.Linear(128, 1)

    def forward(self, obs: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        x = self.fc(self.net(obs.float().div(255).permute(0, 3, 1, 2)))
        return Categorical(logits=self.pi(x)), self.v(x).squeeze(-1)


def main(args: Args) -> None:
    torch.manual_seed(args.seed)
    env = DreamVectorEnv(
        args.model,
        args.dataset,
        num_envs=args.num_envs,
        max_steps=args.max_steps,
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    h, w, _ = env.single_observation_space.shape
    agent = Agent(h, w, int(env.single_action_space.n))
    opt = torch.optim.RMSprop(agent.parameters(), lr=args.lr, alpha=0.99, eps=1e-5)

    obs = torch.as_tensor(env.reset(seed=args.seed)[0])
    ep_return, finished = np.zeros(args.num_envs), []
    start, step = time.time(), 0
    for _ in tqdm(range(args.total_steps // (args.num_envs * args.n_steps)), desc="a2c", unit="update"):
        log_probs, values, rewards, dones, entropies = [], [], [], [], []
        for _ in range(args.n_steps):
            dist, value = agent(obs)
            action = dist.sample()
            next_obs, reward, term, trunc, _ = env.step(action.numpy())
            ep_return += reward
            for i in np.flatnonzero(term | trunc):
                finished.append(ep_return[i])
                ep_return[i] = 0.0
            log_probs.append(dist.log_prob(action))
            entropies.append(dist.entropy())
            values.append(value)
            rewards.append(torch.as_tensor(reward))
            dones.append(torch.as_tensor(term | trunc, dtype=torch.float32))
            obs = torch.as_tensor(next_obs)
            step += args.num_envs

        # n-step returns, bootstrapped from the value of the last observation.
        with torch.no_grad():
            ret = agent(obs)[1]
        returns = []
        for r, d in zip(reversed(rewards), reversed(dones)):
            ret = r + args.gamma * ret * (1 - d)
            returns.insert(0, ret)
        returns, values = torch.stack(returns), torch.stack(values)
        advantage = returns - values
        loss = (
            -(torch.stack(log_probs) * advantage.detach()).mean()
            + 0.5 * advantage.pow(2).mean()
            - args.ent_coef * torch.stack(entropies).mean()
        )
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
        opt.step()
    recent = np.mean(finished[-50:]) if finished else float("nan")
    print(f"{step} imagined steps, {step / (time.time() - start):.0f} steps/s, recent imagined return {recent:.3f}")

    if args.scene is not None:
        # The same network acts in the real scene: identical observation and action spaces.
        from envs.scene_env import SceneEnv

        real = SceneEnv(args.scene, width=w, height=h, max_steps=args.max_steps)
        total = []
        for ep in range(5):
            o, _ = real.reset(seed=1000 + ep)
            done, ret_ = False, 0.0
            while not done:
                with torch.no_grad():
                    a = int(agent(torch.as_tensor(o)[None])[0].probs.argmax())
                o, r, te, tr, _ = real.step(a)
                done, ret_ = te or tr, ret_ + r
            total.append(ret_)
        print(f"true return in the scene over 5 episodes: {np.mean(total):.3f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
