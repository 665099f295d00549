"""SceneBodies: N bodies in one Scene, advanced together with array maths — motion with sub-stepped
collision checks against the occupancy, one render call for every camera, rewards and terminations as
arrays. SceneEnv is this with one body, SceneVectorEnv with N. Also where a scene comes from
(`load_scene`, `check_scene_path`)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from envs.navgrid import NavGrid
from envs.scene_config import SceneEnvConfig, action_table, build_spaces, intrinsics
from envs.tasks import Explore, PointNav, Task
from wmcore.errors import UserInputError

SCENE_INTERFACE = ("render", "is_free", "raycast", "floor_z", "bounds_min", "bounds_max")
"""What a scene object must have: `scenes.scene.Scene`, a NeRF scene, or any stand-in (a ray-cast
room, a test double) with the same methods and attributes. `occupancy.voxel_size` is optional."""


def load_scene(scene: Any, device: str) -> Any:
    """A scene object from a path (Scene directory, nerfstudio run, 3DGS .ply) or from "room:DIR" (the true
    room of a synthetic capture: reality for the bundled example), or `scene` itself when it already has
    the Scene interface."""
    if isinstance(scene, (str, os.PathLike)) and str(scene).startswith("room:"):
        from scenes.room_scene import RoomScene

        return RoomScene.load(str(scene)[5:])
    if isinstance(scene, (str, os.PathLike)):
        from scenes.scene import Scene

        return Scene.load(scene, device=device)
    missing = [a for a in SCENE_INTERFACE if not hasattr(scene, a)]
    if missing:
        raise TypeError(
            f"scene {type(scene).__name__} lacks {missing} of the Scene interface {list(SCENE_INTERFACE)}; "
            "pass a Scene directory, a .ply, or an object with those"
        )
    return scene


def check_scene_path(scene: Any) -> None:
    """The registered entry points' check: a path that does not exist is a UserInputError."""
    if isinstance(scene, (str, os.PathLike)) and str(scene).startswith("room:"):
        if not (Path(str(scene)[5:]) / "scene_spec.json").is_file():
            raise UserInputError(
                f"{scene}: no scene_spec.json in {str(scene)[5:]}; room:DIR names a synthetic "
                "capture directory such as room:assets/example_room"
            )
        return
    if isinstance(scene, (str, os.PathLike)) and not Path(scene).exists():
        raise UserInputError(
            f"{scene}: no such scene; pass a Scene directory from `worldmodel reconstruct` or a 3DGS .ply"
        )


class SceneBodies:
    """N bodies in one Scene and everything a step does to them, as arrays over the bodies.

    Shared by SceneEnv (N = 1) and SceneVectorEnv (N bodies): action decoding, sub-stepped moves
    with one vectorised collision query for all bodies, one batched render for all cameras,
    PointNav rewards from vectorised geodesic-field lookups (Explore's ray-cast bookkeeping runs
    per body), starts, observations and infos. Each body has its own task object (its goal, what it
    has seen); the random generators belong to the environments, which pass them to `reset`.
    """

    def __init__(self, scene: Any, cfg: SceneEnvConfig, num_bodies: int, track: bool = False):
        if num_bodies < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_bodies}")
        self.cfg, self.n = cfg, int(num_bodies)
        self.scene = s = load_scene(scene, cfg.device)
        goal = None if cfg.goal is None else (float(cfg.goal[0]), float(cfg.goal[1]))
        self.tasks: list[Task] = [
            PointNav(fixed_goal=goal, collision_penalty=cfg.collision_penalty)
            if cfg.task == "pointnav"
            else Explore(collision_penalty=cfg.collision_penalty)
            for _ in range(self.n)
        ]
        self.pointnav = cfg.task == "pointnav"
        self.action_names, self.action_space, self.observation_space = build_spaces(cfg)
        k = cfg.supersample
        self.Ks = np.repeat(intrinsics(cfg.hfov_deg, k * cfg.width, k * cfg.height)[None], self.n, 0)
        self._table = action_table(cfg, self.action_names)
        voxel = float(getattr(getattr(s, "occupancy", None), "voxel_size", 0.05))
        self.substep = 0.5 * voxel
        eye = s.floor_z + cfg.camera_height
        # The lowest body sphere clears the (dilated, voxelised) floor by a few voxels.
        lo_z = s.floor_z + cfg.body_radius + 3 * voxel
        self.levels = np.unique(np.linspace(min(lo_z, eye), eye, 3)) - eye
        # A ground body is checked as spheres at these heights under its camera; a flying one at the camera.
        self._offsets = (
            np.stack([0 * self.levels, 0 * self.levels, self.levels], 1) if cfg.body == "ground" else np.zeros((1, 3))
        )
        # Plan (and sample starts and goals) with one cell of margin over the collision radius, so
        # paths between free cells never graze an obstacle.
        self.grid = NavGrid(
            s.is_free, s.bounds_min, s.bounds_max, eye + self.levels, cfg.body_radius, max(voxel, 0.05), margin_cells=1
        )
        for t in self.tasks:
            if isinstance(t, Explore):
                t.bind(s.raycast, math.radians(cfg.hfov_deg), eye)
        self.pos = np.zeros((self.n, 3))
        self.pos[:, 2] = eye
        self.heading = np.zeros(self.n)
        self.steps = np.zeros(self.n, np.int64)
        self.prev = np.zeros(self.n)  # PointNav: geodesic distance before the move
        self.goals = np.zeros((self.n, 2))
        self._fields: np.ndarray | None = None  # PointNav: per-body geodesic fields [N,nx,ny], or one shared [nx,ny]
        self.track = track
        self.trajectories: list[list[np.ndarray]] = [[] for _ in range(self.n)]

    # ------------------------------------------------------------------ episodes
    def reset(self, idx: np.ndarray, rngs: list[np.random.Generator], starts: np.ndarray | None = None) -> None:
        """New episodes for bodies `idx`, each drawn from its generator; `starts` [len(idx), 3]
        (x, y, heading) places them instead of the sampled start."""
        idx = np.asarray(idx, np.int64)
        if starts is not None:
            self.check_starts(starts)
        for j, (k, rng) in enumerate(zip(idx, rngs)):
            start, heading = self.tasks[k].reset(self.grid, rng)
            if starts is not None:
                start, heading = starts[j, :2], (float(starts[j, 2]) + np.pi) % (2 * np.pi) - np.pi
            self.pos[k] = (start[0], start[1], self.scene.floor_z + self.cfg.camera_height)
            self.heading[k] = heading
            self.steps[k] = 0
            if self.track:
                self.trajectories[k] = [self.pos[k].copy()]
            if isinstance(self.tasks[k], Explore):
                self.tasks[k].observe(self.pos[k], self.heading[k])
        if self.pointnav:
            self._bind_fields(idx)
            self.prev[idx] = self.geodesic(idx)

    def check_starts(self, starts: np.ndarray) -> None:
        """ValueError naming the first start where the body does not fit (or that is not a number)."""
        bad = ~np.all(np.isfinite(starts), 1)
        eye = self.scene.floor_z + self.cfg.camera_height
        centres = np.concatenate([np.nan_to_num(starts[:, :2]), np.full((len(starts), 1), eye)], 1)
        bad |= ~self.fits(centres)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            lo, hi = self.grid.origin, self.grid.origin + np.array(self.grid.shape) * self.grid.cell
            raise ValueError(
                f"start {tuple(float(v) for v in starts[k])} (x, y metres, heading radians) is not free: a body of "
                f"radius {self.cfg.body_radius} m there touches an obstacle or lies outside the scene "
                f"(x {lo[0]:.2f}..{hi[0]:.2f}, y {lo[1]:.2f}..{hi[1]:.2f} m); pick a point in the free floor space"
            )

    def _bind_fields(self, idx: np.ndarray) -> None:
        """Keep the PointNav tasks' geodesic fields (and goals) where the vectorised lookup reads them."""
        for k in idx:
            self.goals[k] = self.tasks[k].goal
        if self.cfg.goal is not None:  # one goal: every task holds the same field
            self._fields = self.tasks[int(idx[0])].distance_field
            return
        if self._fields is None or self._fields.ndim != 3:
            self._fields = np.full((self.n, *self.grid.shape), np.inf)
        for k in idx:
            self._fields[k] = self.tasks[k].distance_field

    def geodesic(self, idx: np.ndarray) -> np.ndarray:
        """PointNav: geodesic distance [len(idx)] of bodies `idx` to their goals — one gather from the
        geodesic fields; never less than the straight-line distance. A body on a cell the grid counts
        blocked (it may touch one) goes through its task's neighbour rule, one by one."""
        g, p = self.grid, self.pos[idx, :2]
        ij = np.floor((p - g.origin) / g.cell).astype(np.int64)
        i, j = np.clip(ij[:, 0], 0, g.shape[0] - 1), np.clip(ij[:, 1], 0, g.shape[1] - 1)
        d = self._fields[i, j] if self._fields.ndim == 2 else self._fields[idx, i, j]
        for m in np.flatnonzero(~np.isfinite(d)):
            d[m] = self.tasks[idx[m]].distance(self.pos[idx[m]])
        return np.maximum(d, np.sqrt(((p - self.goals[idx]) ** 2).sum(1)))

    # ------------------------------------------------------------------ steps
    def step(self, idx: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance bodies `idx` by their actions: (reward, terminated, truncated, info arrays)."""
        move, turn = self.decode(idx, actions)
        collided = self.move(idx, move)
        self.heading[idx] = (self.heading[idx] + turn + np.pi) % (2 * np.pi) - np.pi
        self.steps[idx] += 1
        if self.track:
            for k in idx:
                self.trajectories[k].append(self.pos[k].copy())
        reward, terminated, task_info = self.task_step(idx, collided)
        truncated = ~terminated & (self.steps[idx] >= self.cfg.max_steps)
        return reward, terminated, truncated, {"collided": collided, **task_info}

    def decode(self, idx: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World-frame displacements [M,3] (metres) and heading changes [M] (radians) of actions."""
        cfg = self.cfg
        if cfg.actions == "discrete":
            fwd, left, up, turn = self._table[np.asarray(actions, np.int64).reshape(-1)].T
        else:
            a = np.asarray(actions, np.float64).reshape(len(idx), -1)
            fwd = a[:, 0] * (cfg.max_linear_speed * cfg.control_dt)
            turn = a[:, 1] * (math.radians(cfg.max_angular_speed_deg) * cfg.control_dt)
            up = a[:, 2] * (cfg.max_linear_speed * cfg.control_dt) if cfg.body == "flying" else np.zeros(len(idx))
            left = np.zeros(len(idx))
        c, s = np.cos(self.heading[idx]), np.sin(self.heading[idx])
        return np.stack([fwd * c - left * s, fwd * s + left * c, up], 1), turn

    def move(self, idx: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Advance bodies `idx` along `delta` [M,3] in sub-steps of at most half a voxel, all bodies'
        sub-steps in one `is_free` query; each stops before its first sub-step that collides.
        Returns collided [M]."""
        dist = np.sqrt((delta**2).sum(1))
        n = np.ceil(dist / self.substep).astype(np.int64)  # sub-steps per body (0: no move)
        collided = np.zeros(len(idx), bool)
        if n.sum() == 0:
            return collided
        owner = np.repeat(np.arange(len(idx)), n)
        first = np.cumsum(n) - n  # index of each body's first sub-step
        t = np.arange(len(owner)) - first[owner] + 1  # 1..n within a body
        centres = self.pos[idx][owner] + (t / n[owner])[:, None] * delta[owner]
        free = self.fits(centres)
        blocked_at = np.where(free, np.iinfo(np.int64).max, t)
        moving = np.flatnonzero(n > 0)
        hit = np.minimum.reduceat(blocked_at, first[moving])  # first blocked sub-step (1-based), per moving body
        stop = np.where(hit == np.iinfo(np.int64).max, n[moving], hit - 1)  # sub-steps completed
        collided[moving] = hit != np.iinfo(np.int64).max
        went = moving[stop > 0]
        self.pos[idx[went]] = centres[first[went] + stop[stop > 0] - 1]
        return collided

    def fits(self, centres: np.ndarray) -> np.ndarray:
        """True [M] where a body with its camera at each of `centres` [M,3] touches no obstacle (one query)."""
        pts = (centres[:, None, :] + self._offsets[None]).reshape(-1, 3)
        return self.scene.is_free(pts, self.cfg.body_radius).reshape(len(centres), -1).all(1)

    def task_step(self, idx: np.ndarray, collided: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        """Rewards, terminations and task infos of bodies `idx` after their moves: PointNav as
        arrays; Explore body by body (each ray-casts its own view into its own seen-map)."""
        if self.pointnav:
            t = self.tasks[0]
            d = self.geodesic(idx)
            success = np.sqrt(((self.pos[idx, :2] - self.goals[idx]) ** 2).sum(1)) <= t.success_radius
            reward = (self.prev[idx] - d) - t.step_cost - t.collision_penalty * collided + t.success_bonus * success
            self.prev[idx] = d
            return reward, success, {"success": success, "distance_to_goal": d, "goal": self.goals[idx].copy()}
        out = [self.tasks[k].step(self.pos[k], self.heading[k], bool(c)) for k, c in zip(idx, collided)]
        info = {key: np.array([o[2][key] for o in out]) for key in out[0][2]} if out else {}
        return np.array([o[0] for o in out], np.float64), np.array([o[1] for o in out], bool), info

    # ------------------------------------------------------------------ observations
    def cameras(self, idx: np.ndarray | None = None) -> np.ndarray:
        """OpenCV camera-to-world [M,4,4] of bodies `idx` (all by default): level, facing the heading."""
        idx = np.arange(self.n) if idx is None else idx
        c, s = np.cos(self.heading[idx]), np.sin(self.heading[idx])
        c2w = np.zeros((len(idx), 4, 4), np.float32)
        c2w[:, 0, 0], c2w[:, 1, 0] = s, -c  # x: right = forward × up
        c2w[:, 2, 1] = -1.0  # y: down
        c2w[:, 0, 2], c2w[:, 1, 2] = c, s  # z: forward
        c2w[:, :3, 3], c2w[:, 3, 3] = self.pos[idx], 1.0
        return c2w

    def observe(self, idx: np.ndarray | None = None) -> Any:
        """Observations of bodies `idx` (all by default) from one render call: RGB uint8 [M,H,W,3], or a dict
        with depth [M,H,W,1] and state [M,D]; numpy, or torch on the scene's device (`observation_device`)."""
        cfg = self.cfg
        k = cfg.supersample
        idx = np.arange(self.n) if idx is None else np.asarray(idx, np.int64)
        rgb, depth = self.scene.render(self.cameras(idx), self.Ks[idx], k * cfg.width, k * cfg.height, depth=cfg.depth)
        if k > 1:  # each observed pixel is the mean of its k x k rendered ones
            rgb = block_mean(torch.as_tensor(rgb), k)
            depth = block_mean(torch.as_tensor(depth)[..., None], k)[..., 0] if depth is not None else None
        img = (torch.as_tensor(rgb) * 255 + 0.5).to(torch.uint8)
        to_host = cfg.observation_device == "numpy"
        if to_host:
            img = img.cpu().numpy()
        if not (cfg.depth or cfg.state):
            return img
        obs: dict[str, Any] = {"rgb": img}
        if cfg.depth:
            d = torch.as_tensor(depth)[..., None].to(torch.float32)
            obs["depth"] = d.cpu().numpy() if to_host else d
        if cfg.state:
            state = np.concatenate(
                [
                    self.pos[idx].astype(np.float32),
                    np.stack([np.cos(self.heading[idx]), np.sin(self.heading[idx])], 1).astype(np.float32),
                    np.stack([self.tasks[j].state(self.pos[j], self.heading[j]) for j in idx]),
                ],
                1,
            ).astype(np.float32)
            obs["state"] = state if to_host else torch.from_numpy(state).to(img.device)
        return obs

    def info(self, k: int) -> dict[str, Any]:
        """Body k's part of every info: collided is the step's (False after a reset)."""
        return {"position": self.pos[k].copy(), "heading": float(self.heading[k]), "steps": int(self.steps[k])}

    def frame(self, k: int) -> np.ndarray:
        """`render()` of body k: a larger first-person view beside the top-down map."""
        size = self.cfg.render_size
        w = int(round(size * self.cfg.width / self.cfg.height))
        rgb, _ = self.scene.render(
            self.cameras(np.array([k])), intrinsics(self.cfg.hfov_deg, w, size)[None], w, size, depth=False
        )
        first = (torch.as_tensor(rgb[0]).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        return np.concatenate([first, np.full((size, 4, 3), 255, np.uint8), self.top_down(k, size)], 1)

    def top_down(self, k: int, size: int) -> np.ndarray:
        """The navigation map (free white, obstacles dark), body k's trajectory, goal and pose."""
        grid = self.grid
        free = grid.free.T[::-1]  # rows: y (north up), cols: x
        h, w = free.shape
        scale = size / h
        img = np.where(free[..., None], 235, 60).astype(np.uint8).repeat(3, 2)
        img = cv2.resize(img, (max(1, int(round(w * scale))), size), interpolation=cv2.INTER_NEAREST)

        def px(p: np.ndarray) -> tuple[int, int]:
            ij = (np.asarray(p[:2]) - grid.origin) / grid.cell
            return int(ij[0] * scale), int((h - ij[1]) * scale)

        pts = np.array([px(p) for p in self.trajectories[k]], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, (40, 120, 255), 1, cv2.LINE_AA)
        task = self.tasks[k]
        if getattr(task, "goal", None) is not None:
            cv2.circle(
                img, px(task.goal), max(2, int(task.success_radius / grid.cell * scale)), (0, 180, 0), 2, cv2.LINE_AA
            )
        pos, heading = self.pos[k], float(self.heading[k])
        tip = px(pos + 0.4 * np.array([math.cos(heading), math.sin(heading), 0]))
        cv2.arrowedLine(img, px(pos), tip, (220, 30, 30), 2, cv2.LINE_AA, tipLength=0.4)
        return img


def block_mean(images: torch.Tensor, k: int) -> torch.Tensor:
    """[N, kH, kW, C] -> [N, H, W, C]: the mean of each k x k block."""
    n, h, w, c = images.shape
    return images.reshape(n, h // k, k, w // k, k, c).mean((2, 4))
