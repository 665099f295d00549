"""Stable-Baselines3 adapter for DreamVectorEnv: SB3 sees a VecEnv of `num_envs` environments,
while every step stays one batched world-model call.

Uses the SAME_STEP autoreset semantics SB3 expects: a finished env is reset within the step and
its last observation is passed as info["terminal_observation"].
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from envs.dream_env import DreamVectorEnv


class SB3DreamVecEnv(VecEnv):
    """Wrap a DreamVectorEnv (made with autoreset_mode SAME_STEP) for SB3 algorithms."""

    def __init__(self, env: DreamVectorEnv):
        if env.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError("SB3DreamVecEnv needs a DreamVectorEnv with autoreset_mode=SAME_STEP")
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        self._returns = np.zeros(env.num_envs)
        self._lengths = np.zeros(env.num_envs, np.int64)

    def reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        self._returns[:] = 0
        self._lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        self._returns += reward
        self._lengths += 1
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            infos[i] = {"terminal_observation": info["final_obs"][i], "TimeLimit.truncated": bool(
                truncated[i] and not terminated[i]), "episode": {"r": float(self._returns[i]),
                                                                 "l": int(self._lengths[i])}}
            self._returns[i] = 0
            self._lengths[i] = 0
        return obs, reward, done, infos

    def close(self) -> None:
        self.env.close()

    def seed(self, seed: int | None = None):
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.env, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self.env, method_name)(*args, **kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)
