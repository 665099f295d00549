"""Would a bump signal teach the world model when the body is blocked? Twin data like the demo's (the noisy
expert and a sticky random walk, 40x40, 50 steps) recorded with or without a red 2-pixel border on frames that
follow a collision, a world model trained on each the same way, and the blocked-vs-free forward-step figure of
`collision_hallucination.py` for both.

    python benchmarks/imagination/bump_signal.py SCENE GOAL_X GOAL_Y OUT STEPS
"""

import sys
from pathlib import Path

import numpy as np
import torch
from collision_hallucination import blocked_vs_free  # beside this script, on sys.path when it runs

from envs.scene_env import SceneEnv
from training.policies import act, resolve_policy
from training.train_world_model import TrainWorldModelConfig, train_world_model
from worldmodel.action_space import ActionSpace
from worldmodel.config import WorldModelConfig
from worldmodel.dataset import DatasetWriter

scene, gx, gy, out, steps = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(2)


def bumped(obs: np.ndarray, collided: bool) -> np.ndarray:
    if not collided:
        return obs
    obs = obs.copy()
    obs[:2], obs[-2:], obs[:, :2], obs[:, -2:] = (255, 0, 0), (255, 0, 0), (255, 0, 0), (255, 0, 0)
    return obs


def record(mode: str) -> Path:
    env = SceneEnv(scene, width=40, height=40, max_steps=50, goal=(gx, gy))
    path = out / mode / "data"
    writer = DatasetWriter(path, ActionSpace.from_gym(env.action_space), (40, 40), source={"frames": "observation"})
    for k, (spec, n) in enumerate((("noisy:0.3:expert", 80), ("sticky", 80))):
        policy = resolve_policy(spec, env, seed=k)
        for e in range(n):
            obs, _ = env.reset(seed=100_000 * k + e)
            frames, acts, rews, terms, truncs = [obs], [], [], [], []
            for t in range(50):
                a = act(policy, np.asarray(obs)[None], False, episode_start=[t == 0])[0]
                obs, r, term, trunc, info = env.step(a)
                if mode == "bump":
                    obs = bumped(obs, bool(info["collided"]))
                frames.append(obs), acts.append(a), rews.append(r), terms.append(term), truncs.append(trunc)
                if term or trunc:
                    break
            truncs[-1] = truncs[-1] or not terms[-1]
            writer.add(np.stack(frames), np.array(acts), np.array(rews), np.array(terms), np.array(truncs))
    return path


for mode in ("plain", "bump"):
    data = record(mode)
    arch = WorldModelConfig(block_out_channels=(16, 32, 32), reward_channels=(16, 32, 32), downsample=2)
    model_dir = train_world_model(
        TrainWorldModelConfig(
            data,
            out=out / mode / "wm",
            steps=steps,
            batch_size=16,
            lr=1e-3,
            model=arch,
            self_context=0.25,
            self_context_start=steps // 2,
            holdout_episodes=0,
            eval_every=0,
            checkpoint_every=10**9,
        )
    )
    print(mode, blocked_vs_free(model_dir, data), flush=True)
