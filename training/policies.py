"""Policy objects shared by train-policy, validate and render: saving and loading trained
policies without pickle, and resolving a policy by name.

Every policy here has `predict(obs, deterministic=True) -> (action, None)` taking one observation
[H,W,3] or a batch [B,H,W,3], like Stable-Baselines3's, so one object runs in the DreamEnv and in
the ground-truth environment.

A saved policy is a directory: policy.json (format, algorithm, network config) and
policy.safetensors (the state dict). SB3 PPO policies are saved the same way (their state dict,
not SB3's pickled zip) and rebuilt from the stored policy_kwargs and spaces.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.actor_critic import POLICY_CONFIG, POLICY_FORMAT, POLICY_WEIGHTS, ActorCritic
from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError
from wmcore.tensors import load_tensors, save_tensors


class RandomPolicy:
    """Uniform random actions from `action_space`, seeded."""

    def __init__(self, action_space: Any, seed: int = 0):
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        obs = np.asarray(obs)
        if obs.ndim == 3:
            return np.asarray(self.action_space.sample()), None
        return np.stack([self.action_space.sample() for _ in range(len(obs))]), None


class CallablePolicy:
    """Adapts a callable observation -> action (a scripted or user policy) to `predict`."""

    def __init__(self, fn: Any):
        self.fn = fn

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        obs = np.asarray(obs)
        if obs.ndim == 3:
            return np.asarray(self.fn(obs)), None
        return np.stack([np.asarray(self.fn(o)) for o in obs]), None


def save_sb3_policy(
    model: Any, path: str | Path, policy_kwargs: dict[str, Any], extra: dict[str, Any] | None = None
) -> Path:
    """Save an SB3 PPO model's policy as policy.json + policy.safetensors (no pickle)."""
    from worldmodel.action_space import ActionSpace

    pol = model.policy
    path = Path(path)
    meta = {
        "format": POLICY_FORMAT,
        "algorithm": "sb3-ppo",
        "policy_kwargs": policy_kwargs,
        "observation_shape": list(pol.observation_space.shape),
        "action_space": ActionSpace.from_gym(pol.action_space).to_dict(),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        tmp.mkdir()
        write_json(tmp / POLICY_CONFIG, meta)
        save_tensors(tmp / POLICY_WEIGHTS, _unique_tensors(pol.state_dict()), metadata={"format": POLICY_FORMAT})
    return path


def _load_sb3_policy(path: Path, meta: dict[str, Any], device: str) -> Any:
    from gymnasium import spaces
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    from envs.dream_env import gym_action_space
    from worldmodel.action_space import ActionSpace

    obs_space = spaces.Box(0, 255, tuple(meta["observation_shape"]), np.uint8)
    act_space = gym_action_space(ActionSpace.from_dict(meta["action_space"]))
    policy = ActorCriticCnnPolicy(obs_space, act_space, lambda _: 0.0, **meta["policy_kwargs"])
    tensors = load_tensors(path / POLICY_WEIGHTS)
    if set(tensors) != set(_unique_tensors(policy.state_dict())):
        raise UserInputError(f"{path}: weights do not match {POLICY_CONFIG}; re-save the policy")
    policy.load_state_dict(tensors, strict=False)  # the skipped keys alias loaded ones
    return policy.to(device).eval()


def _unique_tensors(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One name per storage: SB3's CnnPolicy shares its feature extractor under three names, and
    safetensors refuses aliased tensors."""
    seen: set[int] = set()
    out = {}
    for k, v in state_dict.items():
        if v.data_ptr() not in seen or v.numel() == 0:
            seen.add(v.data_ptr())
            out[k] = v
    return out


def load_policy(path: str | Path, device: str = "cpu") -> Any:
    """A policy saved by `worldmodel train-policy` (either algorithm)."""
    path = Path(path)
    cfg = path / POLICY_CONFIG
    if not cfg.is_file():
        raise UserInputError(
            f"{path}: not a saved policy ({POLICY_CONFIG} missing); give RUN/policy written by "
            "`worldmodel train-policy`"
        )
    try:
        meta = json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise UserInputError(f"{cfg}: invalid JSON ({e})") from e
    if meta.get("format") != POLICY_FORMAT:
        raise UserInputError(f"{cfg}: not a worldmodel policy (format {meta.get('format')!r})")
    if meta["algorithm"] == "actor-critic":
        return ActorCritic.load(path, device)
    if meta["algorithm"] == "sb3-ppo":
        return _load_sb3_policy(path, meta, device)
    raise UserInputError(f"{cfg}: unknown algorithm {meta['algorithm']!r}")


def resolve_policy(spec: str, action_space: Any, seed: int = 0, device: str = "cpu") -> Any:
    """`random`, a saved policy directory, or `module:callable` (a callable observation -> action, or an
    object with predict). `oracle` needs the ground-truth env and is resolved by the caller."""
    if spec == "random":
        return RandomPolicy(action_space, seed)
    if Path(spec).exists():
        return load_policy(spec, device)
    if ":" in spec:
        module, name = spec.split(":", 1)
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise UserInputError(f"policy {spec!r}: cannot import {name} from {module} ({e})") from e
        return obj if hasattr(obj, "predict") else CallablePolicy(obj)
    raise UserInputError(f"policy {spec!r}: use 'random', 'oracle', a saved policy directory, or 'module:callable'")


def act(policy: Any, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
    """Batched actions [B] or [B,D] for observations [B,H,W,3]."""
    with torch.no_grad():
        a, _ = policy.predict(obs, deterministic=deterministic)
    return np.asarray(a)
