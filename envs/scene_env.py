"""SceneEnv: an agent — a camera rig on a body — moving through a reconstructed Scene.

A ground robot by default (position on the floor plane, heading, camera at a fixed height), or a
free-flying body. Moves are checked against the scene's occupancy with the body radius, in
sub-steps no longer than half a voxel, so the body never passes through an obstacle. Distances
are metres and durations seconds of the capture's metric scale.

The motion, collision, action decoding, rendering and task logic live in one class, `SceneBodies`
(`envs.scene_bodies`; the options in `envs.scene_config.SceneEnvConfig`):
N bodies in one Scene, advanced together with array maths, one `is_free` call for every body's
sub-steps and one `render` call for every camera. `SceneEnv` is that with one body;
`envs.scene_vector_env.SceneVectorEnv` is that with N, so the two cannot drift apart and the same
seeds give the same episodes in both.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.scene_bodies import SCENE_INTERFACE, SceneBodies, check_scene_path, load_scene
from envs.scene_config import SceneEnvConfig, check_actions, resolve_config, start_option

__all__ = [
    "SCENE_INTERFACE",
    "SceneBodies",
    "SceneEnv",
    "SceneEnvConfig",
    "check_actions",
    "check_scene_path",
    "load_scene",
    "make_scene_env",
    "resolve_config",
    "start_option",
]


class SceneEnv(gym.Env):
    """Gymnasium environment over a Scene directory, a 3DGS .ply, or a scene object: one body.

    Options in `SceneEnvConfig` (keywords or `config=`). `reset(seed=..., options={"start": (x, y,
    heading)})` places the body instead of sampling its start (see SceneEnvConfig). The step logic is
    `SceneBodies` with one body, the same code SceneVectorEnv runs for N.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, scene: Any, render_mode: str | None = None, config: SceneEnvConfig | None = None, **overrides: Any
    ):
        self.cfg = cfg = resolve_config(config, overrides, "SceneEnv")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.render_mode = render_mode
        self.bodies = SceneBodies(scene, cfg, 1, track=render_mode == "rgb_array")
        self.scene, self.grid, self.task = self.bodies.scene, self.bodies.grid, self.bodies.tasks[0]
        self.action_names = self.bodies.action_names
        self.action_space, self.observation_space = self.bodies.action_space, self.bodies.observation_space
        self._one = np.zeros(1, np.int64)

    @property
    def pos(self) -> np.ndarray:
        """Body position (x, y, z) in metres (a copy)."""
        return self.bodies.pos[0].copy()

    @property
    def heading(self) -> float:
        """Body heading in radians, counter-clockwise from +x."""
        return float(self.bodies.heading[0])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.bodies.reset(self._one, [self.np_random], start_option(options, 1))
        return self._first(self.bodies.observe()), {"collided": False, **self.bodies.info(0)}

    def step(self, action):
        check_actions(action, self.action_space)
        reward, terminated, truncated, info = self.bodies.step(self._one, np.asarray(action)[None])
        info = {k: (v[0].item() if v.ndim == 1 else v[0]) for k, v in info.items()}
        info = {"collided": info.pop("collided"), **self.bodies.info(0), **info}
        return self._first(self.bodies.observe()), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self) -> np.ndarray | None:
        return self.bodies.frame(0) if self.render_mode == "rgb_array" else None

    @staticmethod
    def _first(obs: Any) -> Any:
        return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]


def make_scene_env(scene: Any, **kwargs: Any) -> SceneEnv:
    """Entry point for `gymnasium.make("worldmodel/SceneNav-v0", scene=...)`."""
    check_scene_path(scene)
    return SceneEnv(scene, **kwargs)
