"""`worldmodel render`: rollout videos a browser plays (H.264 MP4, yuv420p) and a GIF.

Three kinds:

- `scene`: a policy in the SceneEnv, each frame its render() (first person beside the top-down map);
- `imagined`: a policy in the DreamEnv (the world model's frames);
- `compare`: a dataset episode's actions replayed in the world model from its first L frames,
  ground truth on the left, imagination on the right — where does the model drift?

Every frame carries a caption with the step, the action and the reward (true / imagined in compare).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch

from envs.options import EnvKwargs, parse_env_kwargs
from wmcore.atomic import write_json
from wmcore.errors import UserInputError
from wmcore.rundir import open_run

LOG = logging.getLogger("worldmodel.render")


@dataclass
class RenderConfig:
    """Render rollouts to video.mp4 and video.gif."""

    kind: Literal["scene", "imagined", "compare"] = "compare"
    """What to render (see the module docstring)."""
    scene: Path | None = None
    """kind=scene: the Scene directory (the twin), or room:DIR for the true room of a synthetic capture (reality)."""
    model: Path | None = None
    """kind=imagined/compare: the world model directory."""
    dataset: Path | None = None
    """kind=imagined/compare: the model's trajectory dataset (imagined starts; compare's episodes)."""
    policy: str = "random"
    """kind=scene/imagined: any kind `training.policies.resolve_policy` takes (random, sticky, expert -- scene
    only --, noisy:EPS:SPEC, a saved policy directory, an SB3 .zip, module:attr)."""
    episodes: int = 1
    """kind=scene/imagined: episodes rendered one after another."""
    episode: int = 0
    """kind=compare: index of the dataset episode replayed."""
    max_steps: int = 50
    """Steps per episode at most."""
    env_kwargs: EnvKwargs = field(default_factory=dict)
    """kind=scene: JSON SceneEnv options (width/height default to 64)."""
    scale: int = 4
    """Integer upscaling of small model frames (nearest neighbour) so captions fit."""
    fps: int = 8
    """Frames per second of the video and the GIF."""
    out: Path = Path("runs/render")
    """Run directory: video.mp4, video.gif, config.json, log.txt, metrics.jsonl."""
    denoising_steps: int | None = None
    """Denoising steps per imagined frame (None: the model's default)."""
    snap_to: Path | None = None
    """kind=imagined/compare: show, at every imagined step, the nearest frame of this dataset (the model's training
    data, as `validate --snap-to-data` and `model-based --snap-to-data` do); None: the model's own frames."""
    device: str = "cpu"
    """Torch device of the world model and the policy."""
    seed: int = 0
    """Seed of the episode starts, the policy and the sampling noise."""
    deterministic: bool = False
    """Take the policy's most likely action instead of sampling it (as `validate`)."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


def caption(frame: np.ndarray, text: str, scale: int = 1) -> np.ndarray:
    """The frame (upscaled `scale` times, nearest) under a black band holding `text`."""
    img = np.asarray(frame, np.uint8)
    if scale > 1:
        img = img.repeat(scale, 0).repeat(scale, 1)
    w = img.shape[1]
    font = 0.4 if w >= 200 else 0.3
    band = np.zeros((18, w, 3), np.uint8)
    cv2.putText(band, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([band, img], 0))


def _action_text(a: Any, names: list[str] | None) -> str:
    a = np.asarray(a)
    if a.ndim == 0 and names is not None:
        return names[int(a)]
    return np.array2string(a, precision=2, separator=",") if a.ndim else str(int(a))


def render_scene(cfg: RenderConfig) -> list[np.ndarray]:
    from envs.reality import make_place_env
    from training.policies import act, resolve_policy

    if cfg.scene is None:
        raise UserInputError(
            "--kind scene needs --scene: a Scene directory from `worldmodel reconstruct`, or "
            "room:DIR for the true room of a synthetic capture"
        )
    kwargs = parse_env_kwargs(cfg.env_kwargs)
    env = make_place_env(str(cfg.scene), render_mode="rgb_array", **{"max_steps": cfg.max_steps, **kwargs})
    policy = resolve_policy(cfg.policy, env, seed=cfg.seed, device=cfg.device)
    frames = []
    for ep in range(cfg.episodes):
        obs, _ = env.reset(seed=cfg.seed + ep)
        frames.append(caption(env.render(), f"episode {ep} step 0"))
        total = 0.0
        for t in range(cfg.max_steps):
            a = act(policy, np.asarray(obs)[None], cfg.deterministic, episode_start=[t == 0])[0]
            obs, r, term, trunc, info = env.step(a)
            total += r
            done = " SUCCESS" if info.get("success") else ""
            frames.append(
                caption(
                    env.render(),
                    f"ep {ep} step {t + 1} {_action_text(a, env.action_names)} r {r:+.2f} R {total:+.2f}{done}",
                )
            )
            if term or trunc:
                break
    return frames


def render_imagined(cfg: RenderConfig) -> list[np.ndarray]:
    from envs.dream_env import DreamEnv
    from training.policies import act, resolve_policy

    env = DreamEnv(
        _need(cfg.model, "model"),
        _need(cfg.dataset, "dataset"),
        max_steps=cfg.max_steps,
        device=cfg.device,
        denoising_steps=cfg.denoising_steps,
    )
    env.core.snap_to(cfg.snap_to)
    if cfg.policy in ("expert", "oracle"):
        raise UserInputError(
            f"policy {cfg.policy!r} reads the true state and cannot act in imagination; use --kind scene"
        )
    policy = resolve_policy(cfg.policy, env, seed=cfg.seed, device=cfg.device)
    frames = []
    for ep in range(cfg.episodes):
        obs, _ = env.reset(seed=cfg.seed + ep)
        frames.append(caption(obs, f"imagined ep {ep} step 0", cfg.scale))
        total = 0.0
        for t in range(cfg.max_steps):
            a = act(policy, obs[None], cfg.deterministic, episode_start=[t == 0])[0]
            obs, r, term, trunc, _ = env.step(a)
            total += r
            frames.append(
                caption(obs, f"ep {ep} t {t + 1} a {_action_text(a, None)} r {r:+.2f} R {total:+.2f}", cfg.scale)
            )
            if term or trunc:
                break
    return frames


def render_compare(cfg: RenderConfig) -> list[np.ndarray]:
    """True episode | imagined replay of its actions, from its first L frames."""
    from envs.dream_env import DreamCore

    core = DreamCore(
        _need(cfg.model, "model"), _need(cfg.dataset, "dataset"), 1, cfg.max_steps, cfg.device, cfg.denoising_steps
    )
    core.snap_to(cfg.snap_to)
    episodes = core.dataset.episodes
    if not 0 <= cfg.episode < len(episodes):
        raise UserInputError(f"--episode {cfg.episode}: the dataset has episodes 0..{len(episodes) - 1}")
    ep, L = episodes[cfg.episode], core.L
    if ep.steps < L:
        raise UserInputError(f"--episode {cfg.episode} has {ep.steps} steps; the model needs {L} frames of context")
    core.seed(cfg.seed)
    core.set_context(0, ep.frames[:L], ep.actions[: L - 1])
    gap = np.full((ep.frames.shape[1], 2, 3), 255, np.uint8)
    frames = [
        caption(np.concatenate([ep.frames[t], gap, ep.frames[t]], 1), f"context {t}  true | imagined", cfg.scale)
        for t in range(L)
    ]
    total_true = total_imag = 0.0
    for t in range(L - 1, min(ep.steps, L - 1 + cfg.max_steps)):
        a = np.asarray(ep.actions[t])
        nxt, r, _, _ = core.step(a[None])
        total_true += float(ep.rewards[t])
        total_imag += float(r[0])
        text = f"t {t + 1} a {_action_text(a, None)} r true {ep.rewards[t]:+.2f} imag {r[0]:+.2f}"
        frames.append(caption(np.concatenate([ep.frames[t + 1], gap, nxt[0]], 1), text, cfg.scale))
    LOG.info("compare: episode %d, return true %.3f vs imagined %.3f", cfg.episode, total_true, total_imag)
    return frames


def _need(path: Path | None, what: str) -> Path:
    if path is None or not Path(path).exists():
        raise UserInputError(f"--{what} {path}: not found; this kind of video needs the world model's {what}")
    return Path(path)


def render(cfg: RenderConfig) -> Path:
    """Write OUT/video.mp4 and OUT/video.gif; returns the MP4's path."""
    from wmcore.media import write_gif, write_video

    for name, value in (
        ("--scale", cfg.scale),
        ("--fps", cfg.fps),
        ("--max-steps", cfg.max_steps),
        ("--episodes", cfg.episodes),
    ):
        if value < 1:
            raise UserInputError(f"{name} {value}: must be positive")
    if cfg.denoising_steps is not None and cfg.denoising_steps < 1:
        raise UserInputError(f"--denoising-steps {cfg.denoising_steps}: give 1 or more")
    if cfg.kind == "scene":
        from envs.options import parse_env_kwargs

        parse_env_kwargs(cfg.env_kwargs)
        if cfg.scene is None:
            raise UserInputError("--kind scene needs --scene (a Scene directory, or room:DIR)")
    else:
        _need(cfg.model, "model")
        _need(cfg.dataset, "dataset")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with open_run(out, cfg, overwrite=cfg.overwrite) as run:
        try:
            frames = {"scene": render_scene, "imagined": render_imagined, "compare": render_compare}[cfg.kind](cfg)
        except UserInputError:
            raise
        except (TypeError, ValueError) as e:  # an env refusing its options
            if cfg.kind != "scene":
                raise
            raise UserInputError(f"--env-kwargs {cfg.env_kwargs}: the environment refuses them ({e})") from e
        run.start()  # the frames are rendered: the run is accepted
        write_video(out / "video.mp4", frames, fps=cfg.fps)
        write_gif(out / "video.gif", frames, cfg.fps)
        run.log_metrics(frames=len(frames), height=frames[0].shape[0], width=frames[0].shape[1])
        write_json(out / "video.json", {"kind": cfg.kind, "frames": len(frames), "fps": cfg.fps})
        LOG.info("wrote %s and %s (%d frames)", out / "video.mp4", out / "video.gif", len(frames))
    return out / "video.mp4"
