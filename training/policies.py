"""Policies: one protocol and one resolver for every kind of policy the commands accept.

**The protocol** is Stable-Baselines3's, so the policies users bring work unchanged:

    predict(obs, state=None, episode_start=None, deterministic=False) -> (action, state)

- `obs` is one observation (uint8 [H,W,3]) or a batch [B,H,W,3]; the action is one action or a
  batch ([B] for Discrete, [B,D] for Box) to match.
- `episode_start` is a bool [B] marking the observations that begin an episode; policies with
  memory (sticky, noisy) restart it there. None means "no episode has started" (the memory goes on).
- `deterministic=True` takes the most likely action; False samples it, as in training. Callers in
  this project always pass it explicitly: SB3 defaults to False.
- `state` is returned unchanged (None): no policy here is recurrent.
- `reads_env` (an optional attribute, False when absent) marks a policy that acts from its env's state, not
  from `obs` (the expert): rollouts then run its episodes one env at a time; every other policy is asked
  for all of a batch's episodes at once (`training.rollouts.true_episodes`).

**The resolver** `resolve_policy(spec, env=...)` turns a name or path into such an object; collect,
validate, render, model-based and the demo all use it, so every command accepts the same kinds:

| spec | policy |
|---|---|
| `random` | uniform random actions |
| `sticky` | a random action held with probability `hold_prob` at each step (moves a lot) |
| `expert` (or `oracle`) | SceneNav's shortest-path planner; it reads the map, so it needs a SceneEnv |
| `noisy:EPS:SPEC` | SPEC, with a uniform random action instead at a fraction EPS of the steps |
| a directory with `policy.json` | a policy saved by `train-policy`, `behaviour-cloning` or a twin PPO run |
| a `.zip` file | a Stable-Baselines3 PPO/A2C model (`model.save(...)`); its weights are read without unpickling |
| `module:attr` | an object with `predict`; a class, built as `attr(action_space, seed)`; a callable `obs -> action` |

`seed` seeds every kind: the random kinds' own generators, and a saved network's sampled actions, which
come from its own torch stream (`SeededSampling`), so a policy resolved with the same seed samples the same
actions from the same observations in every run and every world.

A saved policy is a directory: policy.json (format, algorithm, network config) and
policy.safetensors (the state dict). SB3 policies are saved the same way (their state dict, not
SB3's pickled zip) and rebuilt from the stored policy_kwargs and spaces.
"""

from __future__ import annotations

import importlib
import inspect
import zipfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from training.actor_critic import POLICY_CONFIG, POLICY_FORMAT, POLICY_WEIGHTS, ActorCritic
from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError, read_json_in
from wmcore.tensors import load_tensors, save_tensors

SPEC_HELP = (
    "random, sticky, expert (SceneNav: the map-reading planner), noisy:EPS:SPEC, a saved policy directory, "
    "an SB3 .zip, or module:attr"
)
"""The policy kinds every command accepts (its --policy help)."""


@runtime_checkable
class Policy(Protocol):
    """Anything with SB3's `predict` (see the module docstring for the convention)."""

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]: ...


def _batch(obs: Any) -> tuple[np.ndarray, bool]:
    """obs as a batch, and whether it was a single observation."""
    o = np.asarray(obs)
    return (o[None], True) if o.ndim == 3 else (o, False)


def _starts(episode_start: Any, n: int) -> np.ndarray:
    return np.zeros(n, bool) if episode_start is None else np.asarray(episode_start, bool).reshape(n)


class RandomPolicy:
    """Uniform random actions from `action_space`, seeded."""

    def __init__(self, action_space: Any, seed: int = 0):
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        o, single = _batch(obs)
        acts = np.stack([np.asarray(self.action_space.sample()) for _ in range(len(o))])
        return (acts[0] if single else acts), None


class StickyPolicy:
    """A random action held at each step with probability `hold_prob` (per batch element): the
    body moves a lot, which a world model needs to learn motion."""

    def __init__(self, action_space: Any, seed: int = 0, hold_prob: float = 0.75):
        if not 0.0 <= hold_prob <= 1.0:
            raise UserInputError(f"hold probability {hold_prob}: use a value in [0, 1]")
        self.action_space, self.hold_prob = action_space, hold_prob
        self.action_space.seed(seed)
        self.rng = np.random.default_rng(seed)
        self.held: np.ndarray | None = None

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        o, single = _batch(obs)
        n = len(o)
        if self.held is None or len(self.held) != n:
            self.held = np.stack([np.asarray(self.action_space.sample()) for _ in range(n)])
        change = (self.rng.random(n) > self.hold_prob) | _starts(episode_start, n)
        for i in np.flatnonzero(change):
            self.held[i] = self.action_space.sample()
        acts = self.held.copy()
        return (acts[0] if single else acts), None


class SeededSampling:
    """A loaded network policy whose sampled actions come from its own random stream, seeded: torch's
    generators are swapped in for each `predict` and out after it, so two runs that resolve a policy with the
    same seed sample the same actions whatever else drew from torch in between (the process's generators are
    left as they were). Every other attribute is the policy's."""

    def __init__(self, policy: Any, seed: int, device: str = "cpu"):
        self.policy = policy
        dev = torch.device(device)
        self._cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=self._cuda):  # seeds only the generators it forks
            torch.random.default_generator.manual_seed(seed)
            for d in self._cuda:
                with torch.cuda.device(d):
                    torch.cuda.manual_seed(seed)
            self._state = self._get()

    def _get(self) -> tuple[torch.Tensor, ...]:
        return (torch.get_rng_state(), *(torch.cuda.get_rng_state(d) for d in self._cuda))

    def predict(self, *args: Any, **kwargs: Any) -> tuple[np.ndarray, Any]:
        with torch.random.fork_rng(devices=self._cuda):
            torch.set_rng_state(self._state[0])
            for d, st in zip(self._cuda, self._state[1:]):
                torch.cuda.set_rng_state(st, d)
            out = self.policy.predict(*args, **kwargs)
            self._state = self._get()
        return out

    def __getattr__(self, name: str) -> Any:
        if name == "policy":  # not yet set (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.policy, name)


class NoisyPolicy:
    """`base`, with a uniform random action instead at a fraction `eps` of the steps: a graded
    family from one policy (eps 0 is the policy itself, 1 is random)."""

    def __init__(self, base: Any, action_space: Any, eps: float, seed: int = 0):
        if not 0.0 <= eps <= 1.0:
            raise UserInputError(f"noise {eps}: the fraction of random actions must be in [0, 1]")
        self.base, self.action_space, self.eps = base, action_space, float(eps)
        self.reads_env = bool(getattr(base, "reads_env", False))
        self.action_space.seed(seed)
        self.rng = np.random.default_rng(seed)

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        o, single = _batch(obs)
        acts = np.array(act(self.base, o, deterministic, episode_start), copy=True)
        for i in np.flatnonzero(self.rng.random(len(o)) < self.eps):
            acts[i] = self.action_space.sample()
        return (acts[0] if single else acts), None


class CallablePolicy:
    """Adapts a callable observation -> action (a scripted or user policy) to `predict`."""

    def __init__(self, fn: Any):
        self.fn = fn

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        o, single = _batch(obs)
        acts = np.stack([np.asarray(self.fn(x)) for x in o])
        return (acts[0] if single else acts), None


# ---------------------------------------------------------------------- saved policies
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


def _sb3_policy(observation_shape: tuple[int, ...], action_space: Any, policy_kwargs: dict[str, Any]) -> Any:
    from gymnasium import spaces
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    obs_space = spaces.Box(0, 255, tuple(observation_shape), np.uint8)
    return ActorCriticCnnPolicy(obs_space, action_space, lambda _: 0.0, **policy_kwargs)


def _load_sb3_policy(path: Path, meta: dict[str, Any], device: str) -> Any:
    from envs.dream_env import gym_action_space
    from worldmodel.action_space import ActionSpace

    act_space = gym_action_space(ActionSpace.from_dict(meta["action_space"]))
    policy = _sb3_policy(meta["observation_shape"], act_space, meta["policy_kwargs"])
    tensors = load_tensors(path / POLICY_WEIGHTS)
    if set(tensors) != set(_unique_tensors(policy.state_dict())):
        raise UserInputError(f"{path}: weights do not match {POLICY_CONFIG}; re-save the policy")
    policy.load_state_dict(tensors, strict=False)  # the skipped keys alias loaded ones
    return policy.to(device).eval()


def load_sb3_zip(path: str | Path, observation_space: Any, action_space: Any, device: str = "cpu") -> Any:
    """The policy of a Stable-Baselines3 PPO/A2C `CnnPolicy` model saved with `model.save(...)`.

    SB3's own `PPO.load` unpickles the zip's `data` entry (arbitrary code); this reads only the
    weights (`policy.pth`, with torch's weights-only loader) and rebuilds the policy for the
    spaces of the environment it will act in, inferring the feature width from the weights."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z, z.open("policy.pth") as f:
            import io

            state = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError) as e:
        raise UserInputError(f"{path}: not a Stable-Baselines3 model zip with policy.pth ({e})") from e
    key = "features_extractor.linear.0.weight"
    if key not in state:
        raise UserInputError(
            f"{path}: only CnnPolicy models (PPO/A2C on image observations) load without unpickling; "
            "save your policy's state dict with training.policies.save_sb3_policy instead"
        )
    kwargs = {"features_extractor_kwargs": {"features_dim": int(state[key].shape[0])}}
    h, w, c = observation_space.shape  # SB3 trains image policies on channel-first views (VecTransposeImage)
    policy = _sb3_policy((c, h, w), action_space, kwargs)
    try:
        policy.load_state_dict(state)
    except RuntimeError as e:
        raise UserInputError(
            f"{path}: weights do not fit a CnnPolicy for {observation_space} / {action_space} ({e})"
        ) from e
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
    """A policy saved in this project's format (by train-policy, behaviour cloning or a twin PPO run)."""
    path = Path(path)
    cfg = path / POLICY_CONFIG
    missing = f"not a saved policy ({POLICY_CONFIG} missing); give RUN/policy written by `worldmodel train-policy`"
    meta = read_json_in(path, POLICY_CONFIG, missing)
    if not isinstance(meta, dict) or meta.get("format") != POLICY_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else f"a JSON {type(meta).__name__}"
        raise UserInputError(f"{cfg}: not a worldmodel policy (format {found!r})")
    if "net" in meta:  # the ActorCritic network, whichever algorithm trained it
        return ActorCritic.load(path, device)
    if meta.get("algorithm") == "sb3-ppo":
        return _load_sb3_policy(path, meta, device)
    raise UserInputError(f"{cfg}: unknown algorithm {meta.get('algorithm')!r}")


# ---------------------------------------------------------------------- the resolver
def resolve_policy(
    spec: str,
    env: Any = None,
    *,
    action_space: Any = None,
    observation_space: Any = None,
    seed: int = 0,
    device: str = "cpu",
    hold_prob: float = 0.75,
) -> Any:
    """The policy named by `spec` (see the module docstring's table) for `env`.

    `env` is the environment the policy will act in; only `expert` reads it (its map and the body's
    pose), the other kinds take its spaces. Without an env, pass `action_space` (and
    `observation_space` for an SB3 zip)."""
    if env is not None:
        action_space = getattr(env, "single_action_space", None) or env.action_space
        observation_space = getattr(env, "single_observation_space", None) or getattr(env, "observation_space", None)
    if action_space is None:
        raise ValueError("resolve_policy needs the env or its action_space")
    if spec == "random":
        return RandomPolicy(action_space, seed)
    if spec == "sticky":
        return StickyPolicy(action_space, seed, hold_prob)
    if spec in ("expert", "oracle"):
        from envs.oracle import ShortestPathPolicy
        from envs.scene_env import SceneEnv

        base = getattr(env, "unwrapped", env)
        if not isinstance(base, SceneEnv):
            raise UserInputError(
                f"policy {spec!r} plans on a SceneEnv's map (worldmodel/SceneNav-v0, PointNav, "
                f"discrete actions); it cannot act in {type(base).__name__}"
            )
        try:
            return ShortestPathPolicy(base)
        except ValueError as e:
            raise UserInputError(f"policy {spec!r}: {e}") from e
    if spec.startswith("noisy:"):
        parts = spec.split(":", 2)
        try:
            eps = float(parts[1])
        except (IndexError, ValueError):
            eps = float("nan")
        if len(parts) != 3 or not 0.0 <= eps <= 1.0:
            raise UserInputError(f"policy {spec!r}: write noisy:EPS:SPEC with EPS in [0, 1], e.g. noisy:0.3:expert")
        base = resolve_policy(
            parts[2],
            env,
            action_space=action_space,
            observation_space=observation_space,
            seed=seed + 1,
            device=device,
            hold_prob=hold_prob,
        )
        return NoisyPolicy(base, action_space, eps, seed)
    path = Path(spec)
    if path.suffix == ".zip" and path.is_file():
        if observation_space is None:
            raise ValueError("an SB3 zip needs the env or its observation_space")
        return SeededSampling(load_sb3_zip(path, observation_space, action_space, device), seed, device)
    if path.is_dir():
        return SeededSampling(load_policy(path, device), seed, device)
    if ":" in spec and not path.exists():
        module, name = spec.split(":", 1)
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise UserInputError(f"policy {spec!r}: cannot import {name} from {module} ({e})") from e
        if inspect.isclass(obj):
            obj = obj(action_space, seed)
        if isinstance(obj, Policy):
            return obj
        if callable(obj):
            return CallablePolicy(obj)
        raise UserInputError(f"policy {spec!r}: {name} is neither a policy (with predict), a class nor a callable")
    raise UserInputError(f"policy {spec!r}: not found; use {SPEC_HELP}")


def act(policy: Any, obs: np.ndarray, deterministic: bool = False, episode_start: Any = None) -> np.ndarray:
    """Batched actions [B] or [B,D] for observations [B,H,W,3] (no gradients)."""
    with torch.no_grad():
        a, _ = policy.predict(obs, episode_start=episode_start, deterministic=deterministic)
    return np.asarray(a)
