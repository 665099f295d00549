"""Trajectory datasets: one directory per dataset, episodes stored for fast random access.

Layout (version 1)::

    DATASET/
      dataset.json                  index: resolution, action space, episodes (id, steps, text, meta)
      episodes/ep_000000.frames.npy uint8 [N+1, H, W, 3]  (observations o_0 .. o_N)
      episodes/ep_000000.safetensors actions [N] (int64) or [N, D] (float32), rewards [N] float32,
                                     terminated [N] bool, truncated [N] bool; optionally
                                     poses [N+1, 3] float32 (x, y metres, heading radians of the body
                                     at each frame, in the recording env's frame) and goal [2] float32

Step t takes action a_t in frame o_t and yields reward r_t, terminated_t, truncated_t and o_{t+1}.
Frames are raw .npy opened with `np.load(mmap_mode="r", allow_pickle=False)`: zero-copy,
memory-mapped random access (datasets larger than memory work, segment reads touch only their
pages) and no pickle. The small per-step arrays go in one safetensors file per episode (no pickle,
checked header). Every file is written atomically, the index last, so a killed `collect` never
leaves a half-written episode in the index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError, read_json_in
from wmcore.tensors import load_tensors, save_tensors
from worldmodel.action_space import ActionSpace

FORMAT = "worldmodel.trajectories"
VERSION = 1
INDEX = "dataset.json"


@dataclass
class Episode:
    """One episode: `frames` is a read-only memory map [N+1,H,W,3]; the rest are in memory."""

    id: str
    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    text: str | None = None
    meta: dict[str, Any] | None = None
    """Where the episode came from, as its recorder wrote it (e.g. {"env_id": ..., "policy": ...}): lets a
    user count the real steps in a dataset or pick the demonstrations in it."""
    poses: np.ndarray | None = None
    """[N+1, 3] (x, y metres, heading radians) of the body at each frame, in the recording env's frame, where
    the env reports them (SceneEnv and reality do); None otherwise. `worldmodel view` draws them."""
    goal: np.ndarray | None = None
    """[2] the episode's goal (x, y metres, same frame), where the env reports one."""

    @property
    def steps(self) -> int:
        return len(self.actions)


class DatasetWriter:
    """Append episodes to a dataset directory (creating it); the index is rewritten atomically."""

    def __init__(
        self,
        path: str | Path,
        action_space: ActionSpace,
        resolution: tuple[int, int],
        source: dict[str, Any] | None = None,
        append: bool = False,
    ):
        self.path = Path(path)
        self.action_space = action_space
        self.resolution = (int(resolution[0]), int(resolution[1]))
        index_path = self.path / INDEX
        if index_path.exists():
            if not append:
                raise UserInputError(
                    f"{self.path}: a dataset already exists there; choose a new directory "
                    "or pass append=True (--append) to add episodes to it"
                )
            existing = TrajectoryDataset(self.path)
            if existing.action_space != action_space or existing.resolution != self.resolution:
                raise UserInputError(
                    f"{self.path}: cannot append, it holds {existing.action_space.to_dict()} at "
                    f"{existing.resolution}, not {action_space.to_dict()} at {self.resolution}"
                )
            self.index = existing.index
        else:
            self.index = {
                "format": FORMAT,
                "version": VERSION,
                "height": self.resolution[0],
                "width": self.resolution[1],
                "action_space": action_space.to_dict(),
                "source": source or {},
                "episodes": [],
            }

    def add(
        self,
        frames: np.ndarray,
        actions: Any,
        rewards: Any,
        terminated: Any,
        truncated: Any,
        text: str | None = None,
        meta: dict[str, Any] | None = None,
        poses: Any = None,
        goal: Any = None,
    ) -> str:
        """Write one episode (frames [N+1,H,W,3] uint8, per-step arrays of length N, optional JSON `meta`
        about where it came from, optional `poses` [N+1, 3] (x, y, heading) of the body at each frame and
        the episode's `goal` (x, y)); returns its id."""
        frames = np.asarray(frames)
        n = len(rewards)
        try:
            meta = json.loads(json.dumps(meta)) if meta else None
        except (TypeError, ValueError) as e:
            raise UserInputError(f"episode meta {meta!r} is not plain JSON ({e})") from e
        h, w = self.resolution
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (h, w, 3):
            raise UserInputError(
                f"episode frames must be uint8 [N+1,{h},{w},3] for this dataset, got "
                f"{frames.dtype} {list(frames.shape)}; resize frames to {h}x{w} RGB"
            )
        if n == 0:
            raise UserInputError("empty episode (0 steps): an episode needs at least one step")
        if frames.shape[0] != n + 1:
            raise UserInputError(
                f"episode has {frames.shape[0]} frames for {n} steps; expected N+1 = {n + 1} "
                "(the reset observation plus one per step)"
            )
        acts = np.asarray(actions, dtype=self.action_space.dtype)
        if not self.action_space.is_discrete:
            acts = acts.reshape(n, -1)
        self.action_space.check(acts, lead=1, what="episode actions")
        arrays = {
            "actions": acts,
            "rewards": np.asarray(rewards, np.float32),
            "terminated": np.asarray(terminated, bool),
            "truncated": np.asarray(truncated, bool),
        }
        for k, v in arrays.items():
            if len(v) != n:
                raise UserInputError(f"episode {k} has length {len(v)}, expected {n} (one per step)")
        if not np.isfinite(arrays["rewards"]).all():
            raise UserInputError("episode rewards contain NaN or inf; fix the reward source before recording")
        if poses is not None:
            poses = np.asarray(poses, np.float32)
            if poses.shape != (n + 1, 3) or not np.isfinite(poses).all():
                raise UserInputError(
                    f"episode poses must be finite [N+1, 3] = [{n + 1}, 3] (x, y, heading per frame), got "
                    f"{list(poses.shape)}"
                )
            arrays["poses"] = poses
        if goal is not None:
            goal = np.asarray(goal, np.float32).reshape(-1)[:2]
            if goal.shape != (2,) or not np.isfinite(goal).all():
                raise UserInputError(f"episode goal must be finite (x, y), got {goal!r}")
            arrays["goal"] = goal
        ep_id = f"ep_{len(self.index['episodes']):06d}"
        (self.path / "episodes").mkdir(parents=True, exist_ok=True)  # created by the first episode only
        with atomic_path(self.path / "episodes" / f"{ep_id}.frames.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(frames), allow_pickle=False)
        save_tensors(
            self.path / "episodes" / f"{ep_id}.safetensors",
            {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
        )
        entry: dict[str, Any] = {"id": ep_id, "steps": n, "text": text}
        if meta:
            entry["meta"] = meta
        self.index["episodes"].append(entry)
        write_json(self.path / INDEX, self.index)
        return ep_id


class TrajectoryDataset:
    """A dataset directory opened for reading; validates every episode on open (headers only)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        index_path = self.path / INDEX
        missing = f"no {INDEX} found; record one with `worldmodel collect` or point to a dataset directory"
        self.index = read_json_in(self.path, INDEX, missing, "not valid JSON ({error}); re-create the dataset")
        if not isinstance(self.index, dict) or self.index.get("format") != FORMAT:
            raise UserInputError(
                f"{index_path}: not a worldmodel trajectory dataset (format "
                f"{self.index.get('format') if isinstance(self.index, dict) else None!r}, expected {FORMAT!r})"
            )
        try:
            self.action_space = ActionSpace.from_dict(self.index["action_space"])
            self.resolution = (int(self.index["height"]), int(self.index["width"]))
            entries = self.index["episodes"]
            if not isinstance(entries, list):
                raise TypeError(f"'episodes' is {type(entries).__name__}, not a list")
        except KeyError as e:
            raise UserInputError(
                f"{index_path}: missing key {e}; re-create the dataset with `worldmodel collect`"
            ) from e
        except (TypeError, ValueError, AttributeError) as e:
            raise UserInputError(
                f"{index_path}: a value has the wrong type ({e}); re-create the dataset with `worldmodel collect`"
            ) from e
        if min(self.resolution) < 1:
            raise UserInputError(f"{index_path}: height and width must be positive, got {self.resolution}")
        if not entries:
            raise UserInputError(f"{self.path}: dataset has no episodes; record some with `worldmodel collect`")
        self.episodes = [self._open(e) for e in entries]

    def _open(self, entry: dict[str, Any]) -> Episode:
        try:
            ep_id, n = str(entry["id"]), int(entry["steps"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserInputError(
                f"{self.path / INDEX}: episode entry {entry!r} needs an 'id' and an integer 'steps' ({e}); "
                "re-create the dataset with `worldmodel collect`"
            ) from e
        frames_path = self.path / "episodes" / f"{ep_id}.frames.npy"
        if n <= 0:
            raise UserInputError(f"{self.path}: episode {ep_id} is empty (0 steps); remove it from {INDEX}")
        try:
            frames = np.load(frames_path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError as e:
            raise UserInputError(f"{frames_path}: missing; the dataset is incomplete, re-record it") from e
        except ValueError as e:
            raise UserInputError(f"{frames_path}: unreadable or truncated .npy ({e}); re-record this episode") from e
        h, w = self.resolution
        if frames.dtype != np.uint8 or frames.shape != (n + 1, h, w, 3):
            raise UserInputError(
                f"{frames_path}: frames are {frames.dtype} {list(frames.shape)}, but the index "
                f"says uint8 [{n + 1},{h},{w},3]; all episodes must share the dataset "
                "resolution (re-record or resize this episode)"
            )
        t = load_tensors(self.path / "episodes" / f"{ep_id}.safetensors")
        arrays = {k: t[k].numpy() for k in ("actions", "rewards", "terminated", "truncated") if k in t}
        if len(arrays) != 4 or any(len(v) != n for v in arrays.values()):
            raise UserInputError(
                f"{self.path}/episodes/{ep_id}.safetensors: expected actions, rewards, "
                f"terminated, truncated of length {n}"
            )
        if not np.isfinite(arrays["rewards"]).all():
            bad = int(np.flatnonzero(~np.isfinite(arrays["rewards"]))[0])
            raise UserInputError(
                f"{self.path}: episode {ep_id} has a NaN/inf reward at step {bad}; fix or drop this episode"
            )
        self.action_space.check(arrays["actions"], lead=1, what=f"{self.path}: episode {ep_id} actions")
        poses = t["poses"].numpy() if "poses" in t and tuple(t["poses"].shape) == (n + 1, 3) else None
        goal = t["goal"].numpy() if "goal" in t and tuple(t["goal"].shape) == (2,) else None
        return Episode(
            id=ep_id, frames=frames, text=entry.get("text"), meta=entry.get("meta"), poses=poses, goal=goal, **arrays
        )

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def total_steps(self) -> int:
        return sum(e.steps for e in self.episodes)

    def split(self, holdout: int) -> tuple[list[Episode], list[Episode]]:
        """(train, held-out): the last `holdout` episodes are held out."""
        if holdout < 0 or holdout >= len(self.episodes):
            raise UserInputError(
                f"{self.path}: cannot hold out {holdout} of {len(self.episodes)} episodes; "
                "record more episodes or lower --holdout-episodes"
            )
        return self.episodes[: len(self.episodes) - holdout], self.episodes[len(self.episodes) - holdout :]
