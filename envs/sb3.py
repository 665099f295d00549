"""Stable-Baselines3 adapter for our native vector envs: SB3 sees a VecEnv of `num_envs`
environments, while every step stays one batched call (one world-model call in DreamVectorEnv,
one render call in SceneVectorEnv).

    from stable_baselines3 import PPO
    PPO("CnnPolicy", SB3VecEnv(SceneVectorEnv(scene, num_envs=16, autoreset_mode="SameStep"))).learn(100_000)

It needs the SAME_STEP autoreset semantics SB3 expects: a finished env is reset within the step
and its last observation is passed on as info["terminal_observation"], with SB3's "episode"
(return, length) and, where the env reports "success", "is_success" (SB3 logs its rate).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv


class SB3VecEnv(VecEnv):
    """Wrap a Gymnasium VectorEnv made with autoreset_mode SAME_STEP (DreamVectorEnv,
    SceneVectorEnv) for SB3 algorithms; torch observations are brought to numpy for SB3."""

    def __init__(self, env: VectorEnv):
        mode = getattr(env, "autoreset_mode", None) or env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"SB3VecEnv needs a vector env with autoreset_mode SAME_STEP, got {type(env).__name__} with {mode}; "
                "make it with autoreset_mode='SameStep'"
            )
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        self._returns = np.zeros(env.num_envs)
        self._lengths = np.zeros(env.num_envs, np.int64)

    def reset(self) -> Any:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        self._returns[:] = 0
        self._lengths[:] = 0
        return _numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        self._returns += reward
        self._lengths += 1
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        success = info.get("final_info", {}).get("success")
        for i in np.flatnonzero(done):
            infos[i] = {
                "terminal_observation": _numpy(info["final_obs"][i]),
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "episode": {"r": float(self._returns[i]), "l": int(self._lengths[i])},
            }
            if success is not None:
                infos[i]["is_success"] = bool(success[i])
            self._returns[i] = 0
            self._lengths[i] = 0
        return _numpy(obs), np.asarray(reward, np.float32), done, infos

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


SB3DreamVecEnv = SB3VecEnv
"""The adapter's earlier name (it served DreamVectorEnv alone)."""


def _numpy(obs: Any) -> Any:
    """Observations as numpy arrays (torch tensors, on any device, are copied to the host)."""
    if isinstance(obs, dict):
        return {k: _numpy(v) for k, v in obs.items()}
    return obs.cpu().numpy() if hasattr(obs, "cpu") else obs
