"""Train a fresh actor-critic in imagination (DreamVectorEnv over MODEL and DATA), evaluating it in reality (the
example room, 40 episodes from seeds 5000+) after every STEPS/EVALS imagined steps; the success rate with its
Wilson interval.

    python benchmarks/imagination/train_policy_in_imagination.py --model MODEL --data DATA --steps 60000 --evals 2

It also prints the share of real steps that push forward into something without moving (`--frames 2` lets the
policy see its last step's effect).
"""

import argparse
import time

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from envs.dream_env import DreamVectorEnv
from envs.reality import make_room_env
from training.actor_critic import ActorCritic, ActorCriticNetConfig, PPOHyperparameters, train_actor_critic
from training.rollouts import true_episodes
from training.stats import wilson_interval
from worldmodel.action_space import ActionSpace

p = argparse.ArgumentParser()
p.add_argument("--model")
p.add_argument("--data")
p.add_argument("--steps", type=int, default=40000)
p.add_argument("--envs", type=int, default=64)
p.add_argument("--horizon", type=int, default=15)
p.add_argument("--input", type=int, default=20)
p.add_argument("--denoise", type=int, default=None)
p.add_argument("--lr", type=float, default=5e-4)
p.add_argument("--out", default="/work/exp/ac")
p.add_argument("--rollout", type=int, default=16)
p.add_argument("--ent", type=float, default=0.01)
p.add_argument("--penalty", type=float, default=0.0)
p.add_argument("--epochs", type=int, default=4)
p.add_argument("--eval", type=int, default=40)
p.add_argument("--evals", type=int, default=1)
p.add_argument("--init", default=None)
p.add_argument(
    "--frames", type=int, default=1, help="observations the policy sees, stacked (2: it sees a blocked step)"
)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.manual_seed(a.seed)
env = DreamVectorEnv(
    a.model,
    a.data,
    num_envs=a.envs,
    max_steps=a.horizon,
    denoising_steps=a.denoise,
    autoreset_mode=AutoresetMode.SAME_STEP,
    uncertainty_penalty=a.penalty,
)
obs_shape = env.single_observation_space.shape
agent = ActorCritic(
    ActorCriticNetConfig(
        obs_shape, ActionSpace.from_gym(env.single_action_space).to_dict(), input_size=a.input, frames=a.frames
    )
)
if a.init:
    agent = ActorCritic.load(a.init)
hp = PPOHyperparameters(
    learning_rate=a.lr, rollout_steps=a.rollout, epochs=a.epochs, minibatches=4, clip=0.2, ent_coef=a.ent
)
room = make_room_env(width=40, height=40, max_steps=50, goal=(-2.2, -0.8))


def evaluate(tag):
    agent.eval()
    er = true_episodes(room, agent, [5000 + i for i in range(a.eval)], 50)
    s = sum(e["success"] for e in er)
    moved = [np.linalg.norm(np.diff(e["poses"][:, :2], axis=0), axis=1) > 1e-6 for e in er]
    pushes = np.mean(np.concatenate([~m & (e["actions"] == 0) for m, e in zip(moved, er)]))
    print(
        tag,
        "reality",
        s,
        "of",
        a.eval,
        [round(v, 3) for v in wilson_interval(s, a.eval)],
        round(float(np.mean([e["rewards"].sum() for e in er])), 2),
        f"blocked pushes {pushes:.0%} of steps",
        flush=True,
    )
    agent.train()


per = a.steps // a.evals
t = time.time()
for k in range(a.evals):
    summ = train_actor_critic(agent, env, per, hp, a.seed * 100 + k, progress=False)
    print("train", k, {x: round(v, 2) for x, v in summ.items()}, round(time.time() - t), flush=True)
    evaluate(f"after {(k + 1) * per}")
agent.eval().save(a.out)
