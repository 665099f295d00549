"""`worldmodel collect ENV_ID`: record episodes from any Gymnasium environment into a trajectory dataset.

Frames come from `env.render()` (render_mode="rgb_array") resized to the model resolution, so any
pixel or non-pixel env works. `RecordEpisodes` is the same recorder as a gymnasium.Wrapper for
use inside your own loop. `ENV_ID` of the form `minari:DATASET_ID` imports a Minari dataset instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro
from tqdm import tqdm

from envs.options import EnvKwargs, parse_env_kwargs
from envs.wrappers import resize_frame
from wmcore.errors import UserInputError
from wmcore.rundir import open_run

LOG = logging.getLogger("worldmodel.collect")
APPEND_HINT = "--append to add episodes to that dataset"


@dataclass
class CollectConfig:
    """Record episodes from a Gymnasium environment with a policy."""

    env_id: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="ENV_ID")]]
    """Gymnasium id (e.g. ALE/Breakout-v5, CarRacing-v3, CartPole-v1) or minari:DATASET_ID to import."""
    out: Path = Path("runs/dataset")
    """Output directory: the dataset plus this run's config.json, log.txt and metrics.jsonl."""
    episodes: int = 20
    """Number of episodes to record."""
    max_steps: int = 1000
    """Steps per episode before it is cut (recorded as truncated)."""
    resolution: tuple[int, int] = (64, 64)
    """Frame height and width stored (frames are resized with area interpolation)."""
    policy: str = "sticky"
    """The policy that acts (any kind `training.policies.resolve_policy` takes): "random", "sticky" (a
    random action held for several steps: moves a lot), "expert" (worldmodel/SceneNav-v0: the
    shortest-path planner, which reads the map, so the data holds arrivals), "noisy:EPS:SPEC" (SPEC with
    random actions at a fraction EPS of the steps, e.g. noisy:0.3:expert), a saved policy directory, an
    SB3 .zip, or "module:attr"."""
    hold_prob: float = 0.75
    """Sticky policy: probability of repeating the previous action at each step."""
    deterministic: bool = False
    """Learned policies take their most likely action instead of sampling one."""
    env_kwargs: EnvKwargs = field(default_factory=dict)
    """JSON dict of keyword arguments for gymnasium.make, e.g. '{"repeat_action_probability": 0.0}'."""
    text: str | None = None
    """Optional text stored with every episode (for text-conditioned models)."""
    seed: int = 0
    """Seed of the environment resets and the policy."""
    append: bool = False
    """Add episodes to an existing dataset in `out` instead of refusing to overwrite it."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished; a directory holding files
    worldmodel did not write is never replaced)."""
    frames: str = "render"
    """"render": store env.render() resized to `resolution` (any env); "observation": store the RGB
    observations themselves (pixel envs such as worldmodel/SceneNav-v0, whose observation space a
    world model trained on the data must reproduce)."""
    action_repeat: int = 1
    """Apply each action for this many environment steps (rewards summed, the last frame stored), as
    Atari's frameskip does: a world model trained on the data predicts that many steps at once, so the
    actions' effect per step is larger. Stored with the dataset; `validate` wraps the real env alike."""


def _recorder_base():
    import gymnasium as gym

    return gym.Wrapper


class RecordEpisodes(_recorder_base()):
    """gymnasium.Wrapper writing every finished episode (frames from render()) to a DatasetWriter.

    An episode left unfinished at reset() or close() is stored with its last step marked truncated.
    """

    def __init__(
        self,
        env: Any,
        out: str | Path,
        resolution: tuple[int, int] = (64, 64),
        text: str | None = None,
        source: dict[str, Any] | None = None,
        append: bool = False,
        frames: str = "render",
        meta: dict[str, Any] | None = None,
    ):
        """`meta` is stored with every episode (see worldmodel.dataset.Episode.meta); assign
        `recorder.meta` between episodes to change it (e.g. the policy of the next episodes)."""
        from worldmodel.action_space import ActionSpace
        from worldmodel.dataset import DatasetWriter

        super().__init__(env)
        if frames not in ("render", "observation"):
            raise UserInputError(f"frames={frames!r}: use 'render' or 'observation'")
        self.frames = frames
        if frames == "observation":
            space = env.observation_space
            rgb = space["rgb"] if hasattr(space, "spaces") and "rgb" in space.spaces else space
            if getattr(rgb, "shape", None) != (int(resolution[0]), int(resolution[1]), 3) or rgb.dtype != np.uint8:
                raise UserInputError(
                    f"frames='observation' needs uint8 RGB observations of {resolution[0]}x{resolution[1]} "
                    f"(so a world model trained on them has the env's observation space), got {rgb}"
                )
        elif getattr(env, "render_mode", None) != "rgb_array":
            raise UserInputError(
                f"RecordEpisodes needs an env made with render_mode='rgb_array', got "
                f"{getattr(env, 'render_mode', None)!r}"
            )
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.space = ActionSpace.from_gym(env.action_space)
        self.writer = DatasetWriter(out, self.space, self.resolution, source=source, append=append)
        self.text = text
        self.meta = meta
        self.episode_ids: list[str] = []
        self._buf: dict[str, list] | None = None

    def _frame(self, obs: Any) -> np.ndarray:
        """The frame to store: the observation itself (SceneEnv and other pixel envs, so a world
        model sees what the policy sees), or the resized render()."""
        if self.frames == "observation":
            return np.asarray(obs["rgb"] if isinstance(obs, dict) else obs, np.uint8)
        return resize_frame(self.env.render(), self.resolution)

    def reset(self, **kwargs: Any):
        self._flush(cut=True)
        obs, info = self.env.reset(**kwargs)
        self._buf = {
            "frames": [self._frame(obs)],
            "actions": [],
            "rewards": [],
            "terminated": [],
            "truncated": [],
            "poses": [_pose(info)],
            "goal": info.get("goal") if isinstance(info, dict) else None,
        }
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._buf is None:
            raise UserInputError("RecordEpisodes.step called before reset()")
        b = self._buf
        b["frames"].append(self._frame(obs))
        b["actions"].append(np.asarray(action))
        b["rewards"].append(float(reward))
        b["terminated"].append(bool(terminated))
        b["truncated"].append(bool(truncated))
        b["poses"].append(_pose(info))
        if isinstance(info, dict) and info.get("goal") is not None:
            b["goal"] = info["goal"]
        if terminated or truncated:
            self._flush(cut=False)
        return obs, reward, terminated, truncated, info

    def _flush(self, cut: bool) -> None:
        b, self._buf = self._buf, None
        if b is None or not b["actions"]:
            return
        if cut and not b["terminated"][-1]:
            b["truncated"][-1] = True
        poses = None if any(p is None for p in b["poses"]) else np.stack(b["poses"])
        self.episode_ids.append(
            self.writer.add(
                np.stack(b["frames"]),
                np.stack(b["actions"]),
                b["rewards"],
                b["terminated"],
                b["truncated"],
                text=self.text,
                meta=self.meta,
                poses=poses,
                goal=b["goal"],
            )
        )

    def close(self) -> None:
        self._flush(cut=True)
        super().close()


def _pose(info: Any) -> np.ndarray | None:
    """(x, y, heading) of the body from a SceneEnv-style info, or None where the env reports no pose."""
    if not isinstance(info, dict) or "position" not in info or "heading" not in info:
        return None
    pos = np.asarray(info["position"], np.float64).reshape(-1)
    return np.array([pos[0], pos[1], float(info["heading"])], np.float32)


def _standalone(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The env kwargs as stored with the dataset: a scene path made absolute, so the dataset does not
    depend on the folder `collect` ran from."""
    out = dict(env_kwargs)
    if isinstance(out.get("scene"), str):
        out["scene"] = str(Path(out["scene"]).resolve())
    return out


def check_collect_config(cfg: CollectConfig) -> dict[str, Any]:
    """Every option checked before an environment is made; returns the parsed --env-kwargs."""
    env_kwargs = parse_env_kwargs(cfg.env_kwargs)
    if cfg.episodes < 1:
        raise UserInputError(f"--episodes {cfg.episodes}: record at least 1 episode")
    if cfg.max_steps < 1:
        raise UserInputError(f"--max-steps {cfg.max_steps}: give 1 or more steps per episode")
    if cfg.action_repeat < 1:
        raise UserInputError(f"--action-repeat {cfg.action_repeat}: use 1 (no repeat) or more")
    if len(cfg.resolution) != 2 or min(cfg.resolution) < 8 or max(cfg.resolution) > 4096:
        raise UserInputError(f"--resolution {cfg.resolution}: give a height and width from 8 to 4096 pixels")
    if cfg.frames not in ("render", "observation"):
        raise UserInputError(f"--frames {cfg.frames!r}: use 'render' or 'observation'")
    if not 0.0 <= cfg.hold_prob <= 1.0:
        raise UserInputError(f"--hold-prob {cfg.hold_prob}: a probability, in [0, 1]")
    if cfg.append and cfg.overwrite:
        raise UserInputError("--append and --overwrite: pass one (add to the dataset, or replace it)")
    return env_kwargs


def collect(cfg: CollectConfig) -> Path:
    """Run the policy for `cfg.episodes` episodes and record them; returns the dataset directory."""
    env_kwargs = check_collect_config(cfg)
    if cfg.env_id.startswith("minari:"):
        from worldmodel.minari_import import import_minari

        with open_run(cfg.out, cfg, resume=cfg.append, overwrite=cfg.overwrite, resume_hint=APPEND_HINT) as run:
            run.start()
            return import_minari(cfg.env_id.split(":", 1)[1], cfg.out, cfg.resolution, append=cfg.append)
    import gymnasium as gym

    import envs  # noqa: F401  (registers the worldmodel/* environments, and ALE when installed)
    from envs.action_repeat import make_rgb_env
    from training.policies import act, resolve_policy

    if cfg.append and not (Path(cfg.out) / "dataset.json").is_file():
        raise UserInputError(f"--append: {cfg.out} holds no dataset (no dataset.json) to add episodes to")
    with open_run(
        cfg.out, cfg, resume=cfg.append, overwrite=cfg.overwrite, resume_hint=APPEND_HINT, tensorboard=True
    ) as run:
        try:
            env = make_rgb_env(cfg.env_id, cfg.max_steps, cfg.action_repeat, env_kwargs)
        except gym.error.Error as e:
            raise UserInputError(f"cannot make environment {cfg.env_id!r}: {e}") from e
        except (TypeError, ValueError) as e:
            raise UserInputError(f"--env-kwargs {cfg.env_kwargs}: {cfg.env_id} refuses them ({e})") from e
        source = {
            "env_id": cfg.env_id,
            "env_kwargs": _standalone(env_kwargs),
            "policy": cfg.policy,
            "seed": cfg.seed,
            "frames": cfg.frames,
            "action_repeat": cfg.action_repeat,
        }
        env = RecordEpisodes(
            env,
            cfg.out,
            cfg.resolution,
            text=cfg.text,
            source=source,
            append=cfg.append,
            frames=cfg.frames,
            meta={"env_id": cfg.env_id, "policy": cfg.policy}
            | ({"scene": str(env_kwargs["scene"])} if isinstance(env_kwargs.get("scene"), (str, Path)) else {}),
        )
        env.action_space.seed(cfg.seed)
        policy = resolve_policy(cfg.policy, env, seed=cfg.seed, hold_prob=cfg.hold_prob)
        run.start()  # every input checked: the run is accepted
        t0, steps = time.time(), 0
        for ep in tqdm(range(cfg.episodes), desc="collect", unit="ep"):
            obs, _ = env.reset(seed=cfg.seed + ep)
            done, ret, n, start = False, 0.0, 0, True
            while not done:
                a = act(policy, np.asarray(obs)[None], cfg.deterministic, episode_start=[start])[0]
                obs, r, term, trunc, _ = env.step(a)
                done, ret, n, start = term or trunc, ret + float(r), n + 1, False
            steps += n
            run.log_metrics(episode=ep, steps=n, episode_return=ret, steps_per_second=steps / (time.time() - t0))
        env.close()
        LOG.info(
            "recorded %d episodes, %d steps into %s (%.1f steps/s)",
            cfg.episodes,
            steps,
            cfg.out,
            steps / (time.time() - t0),
        )
    return cfg.out


if __name__ == "__main__":  # e.g. `accelerate launch -m training.collect ...`
    import sys

    from training.cli import main

    sys.exit(main(["collect", *sys.argv[1:]]))
