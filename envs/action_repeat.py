"""Action repeat: each agent step applies the action for several environment steps.

A world model trained on data collected through this wrapper predicts `repeat` environment steps
per imagined step, so a policy trained in that dream must be deployed on the real environment
wrapped the same way. Unlike gymnasium's MaxAndSkipObservation (made for Atari's flicker) the
observation is the last one, not a max over the last two, so it fits any environment.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class ActionRepeat(gym.Wrapper):
    """Repeat each action `repeat` times, summing the rewards; stop early when the episode ends.

    The info dict is the last inner step's, with "action_repeat_steps" (how many inner steps ran).
    `render()` shows the last inner frame, the one the returned observation belongs to.
    """

    def __init__(self, env: gym.Env, repeat: int):
        if int(repeat) != repeat or repeat < 1:
            raise ValueError(f"action repeat must be an integer >= 1, got {repeat!r}")
        super().__init__(env)
        self.repeat = int(repeat)

    def step(self, action: Any):
        total, steps = 0.0, 0
        while steps < self.repeat:
            obs, reward, terminated, truncated, info = self.env.step(action)
            total, steps = total + float(reward), steps + 1
            if terminated or truncated:
                break
        info = dict(info, action_repeat_steps=steps)
        return obs, total, terminated, truncated, info


def make_rgb_env(
    env_id: str, max_steps: int, action_repeat: int = 1, env_kwargs: dict[str, Any] | None = None
) -> gym.Env:
    """gym.make(env_id, **env_kwargs) with render_mode="rgb_array", `max_steps` agent steps per episode
    (each of `action_repeat` environment steps), wrapped in ActionRepeat when it is above 1. The env's
    own keyword arguments stay in a dict, so they may use any name (SceneNav's max_steps)."""
    env = gym.make(env_id, render_mode="rgb_array", max_episode_steps=max_steps * action_repeat, **(env_kwargs or {}))
    return ActionRepeat(env, action_repeat) if action_repeat > 1 else env
