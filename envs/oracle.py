"""A shortest-path policy for SceneEnv point-goal navigation: a scripted expert for collecting
successful trajectories and for validating rankings (it knows the map; a learned policy does not)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from envs.scene_env import SceneEnv
from envs.tasks import PointNav


class ShortestPathPolicy:
    """Turns toward a waypoint on the geodesic path and moves forward when roughly facing it.
    Works with SceneEnv's default discrete actions (forward, turn left, turn right)."""

    reads_env = True
    """It plans on the env's map from the body's pose, not from the observation: rollouts step it one env at a
    time (`training.rollouts.true_episodes`)."""

    def __init__(self, env: SceneEnv, tolerance_deg: float = 12.0, lookahead: int = 6):
        if not isinstance(env.task, PointNav) or env.cfg.actions != "discrete":
            raise ValueError("ShortestPathPolicy needs a SceneEnv with task='pointnav' and discrete actions")
        self.env = env
        self.tolerance = math.radians(tolerance_deg)
        self.lookahead = lookahead

    def predict(
        self, obs: Any = None, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        """The policy protocol (training.policies): the planner's action for the env's one body; the
        observation is not looked at."""
        if obs is not None and np.asarray(obs).ndim == 4:
            if len(obs) != 1:
                raise ValueError(f"ShortestPathPolicy drives one SceneEnv body; got a batch of {len(obs)}")
            return np.array([self(None)]), None
        return np.asarray(self(None)), None

    def __call__(self, obs=None) -> int:
        env = self.env
        target = env.task.waypoint(env.pos, self.lookahead)
        want = math.atan2(target[1] - env.pos[1], target[0] - env.pos[0])
        err = (want - env.heading + math.pi) % (2 * math.pi) - math.pi
        if abs(err) <= self.tolerance:
            return 0
        return 1 if err > 0 else 2


def rollout_success(env: SceneEnv, policy, episodes: int, seed: int = 0) -> np.ndarray:
    """Success flags of `episodes` episodes of `policy` (a callable obs -> action)."""
    out = []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        done, info = False, {}
        while not done:
            obs, _, term, trunc, info = env.step(policy(obs))
            done = term or trunc
        out.append(bool(info.get("success", False)))
    return np.array(out)
