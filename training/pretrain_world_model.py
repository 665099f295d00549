"""`worldmodel pretrain-world-model`: a world model pretrained on procedural rooms, never the example's.

A small diffusion world model trained for a few CPU minutes on one room's data learns the colours of that
room but not yet what a body's moves do to its view. This command records episodes in many procedural rooms
(`scenes.procedural_rooms`: random sizes, furniture and textures, the exact ray caster as renderer and
collider), half by the map-reading expert with random actions mixed in (arrivals, recoveries) and half by a
sticky random walk (walls, corners, blocked steps), and trains a world model on all of them. Its weights
start `train-world-model --init`, `model-based --world-model-init` and the demo's loop, which then spend
their steps on the room at hand. Goals are drawn per episode, so the reward model learned here means
nothing for another task: fine-tuning relearns it.

The weights the demo uses ship in `assets/world_model_rooms/` (see assets/README.md for the command).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs.scene_config import SceneEnvConfig
from wmcore.errors import UserInputError, require_at_least
from wmcore.rundir import open_run
from worldmodel.config import WorldModelConfig

LOG = logging.getLogger("worldmodel.pretrain_world_model")


@dataclass
class PretrainWorldModelConfig:
    """Record episodes in procedural rooms and train a world model on them, to start others from."""

    out: Path = Path("runs/pretrain_rooms")
    """Run directory: data/ (the episodes), world_model/ (its run; the model in world_model/model), summary.json."""
    rooms: int = 32
    """Procedural rooms (scenes.procedural_rooms.random_room(0 .. rooms-1))."""
    episodes_per_room: int = 16
    """Episodes recorded in each room."""
    expert_fraction: float = 0.5
    """Fraction of each room's episodes driven by the map-reading expert with 30% random actions; the rest by a
    sticky random walk."""
    env: SceneEnvConfig = field(default_factory=lambda: SceneEnvConfig(width=40, height=40, max_steps=50))
    """The body, camera and task (its goal is drawn per episode); the size must be that of the worlds the model
    will be fine-tuned on (the demo's: 40 x 40)."""
    steps: int = 12_000
    """World-model optimisation steps."""
    batch_size: int = 16
    """Segments per step."""
    processes: int = 1
    """Data-parallel CPU processes that train it, the batch split among them (train-world-model --processes):
    about twice as fast with 2 on a 2-core CPU, other weights than with 1 (assets/world_model_rooms: 1)."""
    lr: float = 1e-3
    """Peak learning rate."""
    model: WorldModelConfig = field(
        default_factory=lambda: WorldModelConfig(
            block_out_channels=(16, 32, 32), reward_channels=(16, 32, 32), downsample=2
        )
    )
    """Architecture (the demo's loop fine-tunes this one; its resolution and actions are the rooms')."""
    max_minutes: float | None = None
    """Stop training after this wall-clock time (with a saved model); None: all steps."""
    seed: int = 0
    """Seed of the episodes and the training."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


def record_rooms(cfg: PretrainWorldModelConfig, data: Path) -> int:
    """Record every room's episodes into the dataset `data`; returns the number of frames."""
    from envs.scene_env import SceneEnv
    from scenes.procedural_rooms import random_room
    from scenes.room_scene import RoomScene
    from training.collect import RecordEpisodes
    from training.policies import act, resolve_policy

    env_cfg = replace(cfg.env, goal=None, task="pointnav")
    n_expert = int(round(cfg.expert_fraction * cfg.episodes_per_room))
    frames = 0
    for r in tqdm(range(cfg.rooms), desc="recording rooms", unit="room"):
        env = SceneEnv(RoomScene(random_room(r)), config=env_cfg)
        rec = RecordEpisodes(env, data, (env_cfg.height, env_cfg.width), frames="observation", append=r > 0, meta={})
        for ep in range(cfg.episodes_per_room):
            spec = "noisy:0.3:expert" if ep < n_expert else "sticky"
            rec.meta = {"policy": spec, "world": f"procedural room {r}"}
            seed = cfg.seed + 1000 * r + ep
            policy = resolve_policy(spec, rec, seed=seed)
            obs, _ = rec.reset(seed=seed)
            done, t = False, 0
            while not done:
                obs, _, terminated, truncated, _ = rec.step(act(policy, obs[None], episode_start=[t == 0])[0])
                done, t = terminated or truncated, t + 1
            frames += t + 1
        rec.close()
    return frames


def pretrain_world_model(cfg: PretrainWorldModelConfig) -> Path:
    """Record the rooms, train the model; returns the saved model's directory (OUT/world_model/model)."""
    from training.train_world_model import TrainWorldModelConfig, check_processes, train_world_model
    from wmcore.atomic import write_json

    require_at_least(
        ("--rooms", cfg.rooms, 1),
        ("--episodes-per-room", cfg.episodes_per_room, 1),
        ("--steps", cfg.steps, 1),
        ("--batch-size", cfg.batch_size, 1),
    )
    check_processes(cfg.batch_size, cfg.processes)
    if not 0.0 <= cfg.expert_fraction <= 1.0 or not np.isfinite(cfg.lr) or cfg.lr <= 0:
        raise UserInputError(
            f"--expert-fraction {cfg.expert_fraction} must be in [0, 1] and --lr {cfg.lr} a finite rate above 0"
        )
    if cfg.env.actions != "discrete" or cfg.env.body != "ground":
        raise UserInputError("--env.actions discrete --env.body ground: the expert drives a ground body only")
    out = Path(cfg.out)
    with open_run(out, cfg, overwrite=cfg.overwrite) as run:
        run.start()
        t0 = time.time()
        frames = record_rooms(cfg, out / "data")
        t_record = time.time() - t0
        model = train_world_model(
            TrainWorldModelConfig(
                out / "data",
                out=out / "world_model",
                steps=cfg.steps,
                batch_size=cfg.batch_size,
                processes=cfg.processes,
                lr=cfg.lr,
                warmup_steps=min(100, cfg.steps // 10),
                model=cfg.model,
                self_context=0.25,
                self_context_start=cfg.steps // 2,
                holdout_episodes=min(8, cfg.rooms * cfg.episodes_per_room // 4),
                eval_every=max(1, cfg.steps // 4),
                checkpoint_every=1000,
                max_minutes=cfg.max_minutes,
                seed=cfg.seed,
            )
        )
        summary = {
            "rooms": cfg.rooms,
            "episodes": cfg.rooms * cfg.episodes_per_room,
            "frames": frames,
            "seconds": {"record": round(t_record, 1), "train": round(time.time() - t0 - t_record, 1)},
            "model": str(model),
        }
        write_json(out / "summary.json", summary)
        LOG.info("pretrained on %d frames of %d rooms: %s", frames, cfg.rooms, model)
    return model
