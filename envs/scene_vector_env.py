"""SceneVectorEnv: N agents in one reconstructed place, one render call per step.

A native `gymnasium.vector.VectorEnv` over one Scene with N bodies: every step decodes all
actions, checks every body's sub-steps against the scene's occupancy in one `is_free` call,
renders all N cameras in one `scene.render` call (our CPU rasterizer takes a batch of cameras;
gsplat does on CUDA; a scene without batched rendering may loop inside its own `render`), and
computes rewards and terminations as arrays (Explore's seen-maps are updated body by body). The
logic is `envs.scene_bodies.SceneBodies`, the same code SceneEnv runs with one body, so N SceneEnvs
seeded `seed, seed + 1, ...` produce the same episodes as one SceneVectorEnv reset with `seed`.

    vec = gymnasium.make_vec("worldmodel/SceneNav-v0", num_envs=32, vectorization_mode="vector_entry_point",
                             scene="runs/demo/scene")

Options are SceneEnvConfig's. Autoreset: NEXT_STEP (Gymnasium's default: an env that ended
restarts on the next `step`, ignoring its action) or SAME_STEP (it restarts within the step; the
last observation and info are in info["final_obs"] / info["final_info"]), as SB3 expects.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from envs.scene_bodies import SceneBodies, check_scene_path
from envs.scene_config import SceneEnvConfig, check_actions, resolve_config, start_option


class SceneVectorEnv(VectorEnv):
    """`num_envs` bodies in one Scene, stepped together (see the module docstring).

    `reset(seed=s)` seeds body i with s + i (a list gives one seed per body; None keeps each body's
    generator going); `options={"start": starts}` places the bodies at starts [N, 3] (x, y metres,
    heading radians; one triple for all) instead of sampling. Observations are batched numpy arrays,
    or torch tensors on the scene's device with `observation_device="scene"`. Infos hold arrays with
    `_key` masks, as Gymnasium's SyncVectorEnv builds them from SceneEnv's infos.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        scene: Any,
        num_envs: int = 1,
        render_mode: str | None = None,
        config: SceneEnvConfig | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **overrides: Any,
    ):
        self.cfg = cfg = resolve_config(config, overrides, "SceneVectorEnv")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode DISABLED is not supported; use NEXT_STEP or SAME_STEP")
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.num_envs = int(num_envs)
        self.bodies = SceneBodies(scene, cfg, self.num_envs, track=render_mode == "rgb_array")
        self.scene, self.grid, self.tasks = self.bodies.scene, self.bodies.grid, self.bodies.tasks
        self.single_observation_space = self.bodies.observation_space
        self.single_action_space = self.bodies.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.rngs: list[np.random.Generator] | None = None
        self._all = np.arange(self.num_envs)
        self._done = np.zeros(self.num_envs, bool)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        seeds = [int(seed) + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else seed
        seeds = [None] * self.num_envs if seeds is None else list(seeds)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"reset got {len(seeds)} seeds for {self.num_envs} envs; give one int or a list of {self.num_envs}"
            )
        old = self.rngs or [None] * self.num_envs
        self.rngs = [gym.utils.seeding.np_random(s)[0] if s is not None or r is None else r for s, r in zip(seeds, old)]
        self._np_random = self.rngs[0]
        self.bodies.reset(self._all, self.rngs, start_option(options, self.num_envs))
        self._done[:] = False
        everyone = np.ones(self.num_envs, bool)
        info: dict[str, Any] = {}
        _put(info, "collided", np.zeros(self.num_envs, bool), self._all, everyone)
        self._body_info(info, everyone)
        return self.bodies.observe(), info

    def step(self, actions):
        if self.rngs is None:
            raise gym.error.ResetNeeded("call reset before step")
        check_actions(actions, self.action_space)
        actions = np.asarray(actions)
        n = self.num_envs
        restart = self._done if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros(n, bool)
        if restart.any():  # NEXT_STEP: the envs that ended last step restart now; their actions are ignored
            self.bodies.reset(np.flatnonzero(restart), [self.rngs[k] for k in np.flatnonzero(restart)])
        stepping = np.flatnonzero(~restart)
        reward, terminated, truncated = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
        step_info: dict[str, np.ndarray] = {"collided": np.zeros(0, bool)}
        if len(stepping):
            r, te, tr, step_info = self.bodies.step(stepping, actions[stepping])
            reward[stepping], terminated[stepping], truncated[stepping] = r, te, tr
        done = terminated | truncated
        obs = self.bodies.observe()
        info: dict[str, Any] = {}
        stepped = ~restart  # the envs whose step info stands at the top level
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            ended = np.flatnonzero(done)
            final: dict[str, Any] = {}
            for key, value in step_info.items():
                _put(final, key, value, stepping, done)
            self._body_info(final, done)
            info["final_obs"] = np.full(n, None, dtype=object)
            for k in ended:
                info["final_obs"][k] = _index(obs, k)
            info["_final_obs"], info["final_info"], info["_final_info"] = done.copy(), final, done.copy()
            self.bodies.reset(ended, [self.rngs[k] for k in ended])
            obs = self.bodies.observe()
            stepped = ~done  # the ended envs report their reset's info, as a reset does
        collided = np.zeros(n, bool)
        collided[stepping] = step_info.pop("collided")
        _put(info, "collided", collided & stepped, self._all, np.ones(n, bool))
        for key, value in step_info.items():
            _put(info, key, value, stepping, stepped)
        self._body_info(info, np.ones(n, bool))
        self._done = done
        return obs, reward, terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        """rgb_array: one frame per env (first person beside the top-down map), as SyncVectorEnv gives."""
        if self.render_mode != "rgb_array":
            return None
        return tuple(self.bodies.frame(k) for k in self._all)

    def _body_info(self, info: dict[str, Any], keep: np.ndarray) -> None:
        b = self.bodies
        for key, value in (("position", b.pos), ("heading", b.heading), ("steps", b.steps)):
            _put(info, key, value, self._all, keep)


def _put(info: dict[str, Any], key: str, values: np.ndarray, idx: np.ndarray, keep: np.ndarray) -> None:
    """info[key] and its `_key` mask from the values [M] of envs `idx`, kept for those where `keep`
    [N] holds, zero elsewhere: the layout SyncVectorEnv builds from single envs' infos. A key that
    no env keeps is left out, as there."""
    n = len(keep)
    mask = np.zeros(n, bool)
    mask[idx] = True
    mask &= keep
    if not mask.any():
        return
    values = np.asarray(values)
    full = np.zeros((n, *values.shape[1:]), values.dtype)
    full[idx] = values
    out = info.get(key, np.zeros_like(full))
    out[mask] = full[mask]
    info[key], info[f"_{key}"] = out, info.get(f"_{key}", np.zeros(n, bool)) | mask


def _index(obs: Any, k: int) -> Any:
    """Env k's observation out of a batch (a copy)."""
    if isinstance(obs, dict):
        return {key: _index(v, k) for key, v in obs.items()}
    return obs[k].clone() if hasattr(obs, "clone") else obs[k].copy()


def make_scene_vector_env(scene: Any, num_envs: int = 1, **kwargs: Any) -> SceneVectorEnv:
    """Vector entry point of `worldmodel/SceneNav-v0` and `worldmodel/SceneExplore-v0`:
    `gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", scene=...)`."""
    check_scene_path(scene)
    return SceneVectorEnv(scene, num_envs=num_envs, **kwargs)
