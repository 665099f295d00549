"""Imagined rollouts: DreamEnv (single) and DreamVectorEnv (a native batched VectorEnv).

reset draws the initial context — L frames and the L-1 actions between them — from a trajectory
dataset (real episodes or SceneEnv recordings), seeded; step samples the next frame, reward and
termination from the world model, once per step for the whole batch. Observation and action
spaces are those of the environment the model was trained on (RGB uint8 frames), so one policy
object runs in both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from wmcore.errors import UserInputError
from worldmodel.action_space import ActionSpace
from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel


def gym_action_space(space: ActionSpace) -> spaces.Space:
    """The Gymnasium space of a stored action space."""
    if space.is_discrete:
        return spaces.Discrete(space.n)
    return spaces.Box(
        np.asarray(space.low, np.float32).reshape(space.shape),
        np.asarray(space.high, np.float32).reshape(space.shape),
        dtype=np.float32,
    )


class DreamCore:
    """Batched imagination state shared by DreamEnv and DreamVectorEnv: context buffers, episode
    counters and the model call."""

    def __init__(
        self,
        model: str | Path | WorldModel,
        dataset: str | Path | TrajectoryDataset,
        num_envs: int,
        max_steps: int,
        device: str,
        denoising_steps: int | None,
        snap_to_data: bool = False,
    ):
        """`snap_to_data` replaces every imagined frame by the nearest frame of `dataset`
        (worldmodel.frame_memory): the model picks where the rollout goes, the data what it looks like."""
        from wmcore.errors import UserValueError

        for name, value in (("num_envs", num_envs), ("max_steps", max_steps)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise UserValueError(f"DreamEnv {name}={value!r}: give a whole number of 1 or more")
        if denoising_steps is not None and (not isinstance(denoising_steps, (int, np.integer)) or denoising_steps < 1):
            raise UserValueError(f"DreamEnv denoising_steps={denoising_steps!r}: give 1 or more, or None")
        self.model = model if isinstance(model, WorldModel) else _load_model(model, device)
        self.dataset = dataset if isinstance(dataset, TrajectoryDataset) else TrajectoryDataset(dataset)
        cfg = self.model.config
        self.space = ActionSpace.from_dict(cfg.action_space)
        if self.dataset.action_space != self.space or tuple(self.dataset.resolution) != tuple(cfg.resolution):
            raise UserInputError(
                f"{self.dataset.path}: dataset (actions {self.dataset.action_space.to_dict()}, resolution "
                f"{self.dataset.resolution}) does not match the model (actions {self.space.to_dict()}, "
                f"resolution {tuple(cfg.resolution)}); use the dataset the model was trained on"
            )
        self.L = int(cfg.context)
        starts = [(e, t) for e, ep in enumerate(self.dataset.episodes) for t in range(self.L - 1, ep.steps)]
        if not starts:
            raise UserInputError(
                f"{self.dataset.path}: no episode has the {self.L} frames of context the model "
                "needs; record longer episodes"
            )
        self.starts = starts
        self.n = num_envs
        self.max_steps = max_steps
        self.denoising_steps = denoising_steps
        h, w = cfg.resolution
        self.frames = torch.zeros(num_envs, self.L, h, w, 3, dtype=torch.uint8)
        act_shape = () if self.space.is_discrete else self.space.shape
        self.actions = torch.zeros(
            (num_envs, self.L) + act_shape, dtype=torch.long if self.space.is_discrete else torch.float32
        )
        self.steps = np.zeros(num_envs, np.int64)
        self.generator = torch.Generator(device=self.model.device)
        self.spread = np.full(num_envs, np.nan)
        self.memory = None
        self.snap_distance = np.full(num_envs, np.nan)
        if snap_to_data:
            self.snap_to(self.dataset)

    def snap_to(self, dataset: str | Path | TrajectoryDataset | None) -> None:
        """Snap every imagined frame to the nearest frame of `dataset` from now on (None: stop). Give the model's
        training data: snapping to the episodes a rollout is compared with would show it the answers."""
        from worldmodel.frame_memory import FrameMemory

        if dataset is None:
            self.memory = None
            return
        data = dataset if isinstance(dataset, TrajectoryDataset) else TrajectoryDataset(dataset)
        if not data.episodes:
            raise UserInputError(f"{data.path}: no episodes to snap imagined frames to; give the model's training data")
        if tuple(data.resolution) != tuple(self.model.config.resolution):
            raise UserInputError(
                f"{data.path}: frames of {tuple(data.resolution)} cannot stand in for the model's "
                f"{tuple(self.model.config.resolution)}; snap to the model's training data"
            )
        self.memory = FrameMemory.from_dataset(data, self.model.config.downsample)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def reset_envs(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        """Fill the context of envs `idx` from random dataset positions."""
        for i in idx:
            e, t = self.starts[rng.integers(len(self.starts))]
            ep = self.dataset.episodes[e]
            self.set_context(int(i), ep.frames[t - self.L + 1 : t + 1], ep.actions[t - self.L + 1 : t])

    def set_context(self, i: int, frames: np.ndarray, actions: np.ndarray) -> None:
        """Start env `i` from given frames uint8 [L,H,W,3] and the L-1 actions between them — for
        rollouts matched to a real episode (validation, side-by-side videos)."""
        frames = np.asarray(frames)
        if frames.shape != tuple(self.frames.shape[1:]) or len(actions) != self.L - 1:
            raise ValueError(
                f"context must be frames {list(self.frames.shape[1:])} and {self.L - 1} actions, got "
                f"{list(frames.shape)} and {len(actions)}"
            )
        self.frames[i] = torch.from_numpy(np.array(frames, np.uint8))
        self.actions[i, : self.L - 1] = torch.as_tensor(np.asarray(actions)).to(self.actions.dtype)
        self.steps[i] = 0

    def step(
        self, actions: np.ndarray, spread: bool = False, spread_envs: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every env: (observations, rewards, terminated, truncated).

        `spread=True` also draws a second sample of every next frame from the same context (one batched
        call of up to twice the size) and stores the RMS difference of the two, in 0-255 pixel units, in
        `self.spread` [num_envs]: how unsure the model is here. `spread_envs` limits the second sample to
        the first that many envs (the rest get NaN), for callers that need the spread's mean, not every env's.
        With a frame memory (`snap_to_data`), the spread is the model's own (before snapping), every next frame
        is the stored frame nearest to the sample, and `self.snap_distance` [num_envs] the RMS distance to it;
        reward and termination are predicted on the snapped frame."""
        a = torch.as_tensor(np.asarray(actions), dtype=self.actions.dtype).reshape(self.actions[:, -1].shape)
        self.actions[:, -1] = a
        if spread:
            k = self.n if spread_envs is None else max(0, min(self.n, int(spread_envs)))
            both = self.model.sample_next(
                torch.cat([self.frames, self.frames[:k]]),
                torch.cat([self.actions, self.actions[:k]]),
                generator=self.generator,
                num_steps=self.denoising_steps,
            )
            nxt, alt = both[: self.n], both[self.n :]
            self.spread = np.full(self.n, np.nan)
            self.spread[:k] = (nxt[:k].float() - alt.float()).pow(2).mean((1, 2, 3)).sqrt().cpu().numpy()
        else:
            nxt = self.model.sample_next(
                self.frames, self.actions, generator=self.generator, num_steps=self.denoising_steps
            )
        if self.memory is not None:
            nxt, distance = self.memory.nearest(nxt)
            self.snap_distance = distance.numpy()
        reward, term = self.model.predict_reward_termination(self.frames, self.actions, nxt)
        nxt = nxt.cpu()
        self.frames = torch.cat([self.frames[:, 1:], nxt[:, None]], 1)
        self.actions = torch.cat([self.actions[:, 1:], torch.zeros_like(self.actions[:, :1])], 1)
        self.steps += 1
        terminated = term.cpu().numpy().astype(bool)
        truncated = ~terminated & (self.steps >= self.max_steps)
        return nxt.numpy(), reward.cpu().numpy().astype(np.float32), terminated, truncated

    def observations(self) -> np.ndarray:
        return self.frames[:, -1].numpy()

    def check_actions(self, actions: Any, space: spaces.Space) -> None:
        a = np.asarray(actions)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(f"actions {actions!r} contain NaN or inf")
        if not space.contains(a.astype(space.dtype) if isinstance(space, spaces.Box) else a):
            raise ValueError(f"actions {actions!r} are outside the action space {space}")


def _load_model(path: str | Path, device: str) -> WorldModel:
    if not Path(path).exists():
        raise UserInputError(
            f"{path}: no such world model; give a directory written by "
            "`worldmodel train-world-model` (RUN/model) or WorldModel.save_pretrained"
        )
    return WorldModel.from_pretrained(path, device=device)


class DreamVectorEnv(VectorEnv):
    """`num_envs` imagined rollouts advanced by one batched world-model call per step."""

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        model: str | Path | WorldModel,
        dataset: str | Path | TrajectoryDataset,
        num_envs: int = 1,
        max_steps: int = 200,
        device: str = "cpu",
        denoising_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        uncertainty_penalty: float = 0.0,
        snap_to_data: bool = False,
    ):
        """`uncertainty_penalty` λ > 0 subtracts λ × the RMS difference of two sampled next frames (pixels in
        [0, 1]) from every imagined reward, as MOPO penalises model uncertainty: a policy is then paid less
        for reaching states the model is unsure of (twice the model calls per step). `snap_to_data` shows
        the policy, at every step, the dataset's frame nearest to the model's sample (DreamCore); info
        carries its RMS distance as "snap_distance"."""
        self.core = DreamCore(model, dataset, num_envs, max_steps, device, denoising_steps, snap_to_data)
        if uncertainty_penalty < 0:
            raise ValueError(f"uncertainty_penalty {uncertainty_penalty}: use 0 (off) or more")
        self.uncertainty_penalty = float(uncertainty_penalty)
        self.num_envs = num_envs
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode DISABLED is not supported; use NEXT_STEP or SAME_STEP")
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        h, w = self.core.model.config.resolution
        self.single_observation_space = spaces.Box(0, 255, (h, w, 3), np.uint8)
        self.single_action_space = gym_action_space(self.core.space)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._done = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if isinstance(seed, list):
            seed = seed[0]
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
            self.core.seed(seed)
        elif not hasattr(self, "_np_random") or self._np_random is None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random()
            self.core.seed(int(self._np_random.integers(2**31)))
        self.core.reset_envs(np.arange(self.num_envs), self.np_random)
        self._done[:] = False
        return self.core.observations().copy(), {}

    def step(self, actions):
        self.core.check_actions(actions, self.action_space)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._done.any():
            # Envs that ended last step restart now; their action is ignored (Gymnasium's NEXT_STEP).
            restarting = self._done.copy()
        else:
            restarting = np.zeros(self.num_envs, bool)
        penalise = self.uncertainty_penalty > 0
        obs, reward, terminated, truncated = self.core.step(actions, spread=penalise)
        info: dict[str, Any] = {}
        every = np.ones(self.num_envs, bool)  # Gymnasium's vector infos: a value and a mask of the envs that have it
        if self.core.memory is not None:
            info["snap_distance"], info["_snap_distance"] = self.core.snap_distance.copy(), every
        if penalise:
            info["uncertainty"], info["_uncertainty"] = self.core.spread / 255.0, every
            reward = reward - self.uncertainty_penalty * info["uncertainty"].astype(np.float32)
        if restarting.any():
            self.core.reset_envs(np.flatnonzero(restarting), self.np_random)
            obs = self.core.observations().copy()
            reward[restarting], terminated[restarting], truncated[restarting] = 0.0, False, False
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = done.copy()
            self.core.reset_envs(np.flatnonzero(done), self.np_random)
            obs = self.core.observations().copy()
        self._done = done
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return np.concatenate(list(self.core.observations()), 1)


class DreamEnv(gym.Env):
    """A single imagined rollout, for code that wants a plain `gymnasium.Env`."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        model: str | Path | WorldModel,
        dataset: str | Path | TrajectoryDataset,
        max_steps: int = 200,
        device: str = "cpu",
        denoising_steps: int | None = None,
        render_mode: str | None = None,
        snap_to_data: bool = False,
    ):
        """`snap_to_data`: see DreamCore."""
        self.core = DreamCore(model, dataset, 1, max_steps, device, denoising_steps, snap_to_data)
        self.render_mode = render_mode
        h, w = self.core.model.config.resolution
        self.observation_space = spaces.Box(0, 255, (h, w, 3), np.uint8)
        self.action_space = gym_action_space(self.core.space)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.core.seed(seed if seed is not None else int(self.np_random.integers(2**31)))
        self.core.reset_envs(np.array([0]), self.np_random)
        return self.core.observations()[0].copy(), {}

    def step(self, action):
        self.core.check_actions(action, self.action_space)
        obs, reward, terminated, truncated = self.core.step(np.asarray(action)[None])
        return obs[0].copy(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}

    def render(self) -> np.ndarray | None:
        return self.core.observations()[0].copy() if self.render_mode == "rgb_array" else None
