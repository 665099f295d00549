"""SceneEnv: an agent — a camera rig on a body — moving through a reconstructed Scene.

A ground robot by default (position on the floor plane, heading, camera at a fixed height), or a
free-flying body. Moves are checked against the scene's occupancy with the body radius, in
sub-steps no longer than half a voxel, so the body never passes through an obstacle. Distances
are metres and durations seconds of the capture's metric scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.navgrid import NavGrid
from envs.tasks import Explore, PointNav, Task
from scenes.preview import look_at
from scenes.scene import Scene
from wmcore.errors import UserInputError

# Discrete actions: (forward m, left m, up m, turn-left rad) in units of step_length / turn_angle.
_DISCRETE = {
    "forward": (1, 0, 0, 0), "turn_left": (0, 0, 0, 1), "turn_right": (0, 0, 0, -1),
    "backward": (-1, 0, 0, 0), "strafe_left": (0, 1, 0, 0), "strafe_right": (0, -1, 0, 0),
    "up": (0, 0, 1, 0), "down": (0, 0, -1, 0),
}


@dataclass
class SceneEnvConfig:
    """The body, its camera, its actions and the task."""

    width: int = 64
    """Observation width in pixels."""
    height: int = 64
    """Observation height in pixels."""
    hfov_deg: float = 70.0
    """Horizontal field of view of the camera, degrees."""
    body: Literal["ground", "flying"] = "ground"
    """A ground robot on the floor plane, or a free-flying body (adds up/down)."""
    actions: Literal["discrete", "continuous"] = "discrete"
    """Discrete moves, or a Box of linear and angular velocity (and vertical velocity when flying)."""
    extended_actions: bool = False
    """Discrete: add backward and strafing to forward / turn left / turn right."""
    step_length: float = 0.25
    """Discrete: metres per move."""
    turn_angle_deg: float = 15.0
    """Discrete: degrees per turn."""
    control_dt: float = 0.5
    """Continuous: seconds per step (velocities are integrated over it)."""
    max_linear_speed: float = 0.5
    """Continuous: metres per second at action 1."""
    max_angular_speed_deg: float = 60.0
    """Continuous: degrees per second at action 1."""
    camera_height: float = 1.4
    """Camera height above the floor, metres (the start height when flying)."""
    body_radius: float = 0.2
    """Radius of the body for collisions, metres."""
    task: Literal["pointnav", "explore"] = "pointnav"
    """Point-goal navigation or exploration."""
    goal: tuple[float, float] | None = None
    """PointNav: one fixed goal (x, y metres, scene frame) for every episode, which an RGB-only policy
    can learn to find; None samples a new goal each episode (give the policy `state` to see it)."""
    max_steps: int = 200
    """Episodes are truncated after this many steps."""
    depth: bool = False
    """Add a depth image (metres) to the observation (a Dict space)."""
    state: bool = False
    """Add the agent state (x, y, z, cos/sin heading, task state) to the observation (a Dict space)."""
    render_size: int = 256
    """Height of the frame `render()` returns (first person beside the top-down map)."""
    device: str = "cpu"
    """Torch device the scene renders on."""


class SceneEnv(gym.Env):
    """Gymnasium environment over a Scene directory or a 3DGS .ply."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, scene: str | Path | Scene, render_mode: str | None = None,
                 config: SceneEnvConfig | None = None, **overrides: Any):
        cfg = config or SceneEnvConfig()
        names = {f.name for f in fields(SceneEnvConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"SceneEnv got unknown options {unknown}; valid: {sorted(names)}")
        self.cfg = cfg = SceneEnvConfig(**{**{f: getattr(cfg, f) for f in names}, **overrides})
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.render_mode = render_mode
        self.scene = scene if isinstance(scene, Scene) else Scene.load(scene, device=cfg.device)
        goal = None if cfg.goal is None else (float(cfg.goal[0]), float(cfg.goal[1]))
        self.task: Task = PointNav(fixed_goal=goal) if cfg.task == "pointnav" else Explore()
        self._build_spaces()
        self._K = self._intrinsics(cfg.width, cfg.height)
        s = self.scene
        voxel = float(getattr(s.occupancy, "voxel_size", 0.05))
        self._substep = 0.5 * voxel
        # The lowest body sphere clears the (dilated, voxelised) floor by a few voxels.
        lo_z = s.floor_z + cfg.body_radius + 3 * voxel
        self._levels = np.unique(np.linspace(min(lo_z, s.floor_z + cfg.camera_height),
                                             s.floor_z + cfg.camera_height, 3)) - (s.floor_z + cfg.camera_height)
        # Plan (and sample starts and goals) with one cell of margin over the collision radius, so
        # paths between free cells never graze an obstacle.
        cell = max(voxel, 0.05)
        self.grid = NavGrid(s.is_free, s.bounds_min, s.bounds_max,
                            s.floor_z + cfg.camera_height + self._levels, cfg.body_radius, cell, margin_cells=1)
        if isinstance(self.task, Explore):
            self.task.bind(s.raycast, math.radians(cfg.hfov_deg), s.floor_z + cfg.camera_height)
        self.pos = np.zeros(3)
        self.heading = 0.0
        self._steps = 0
        self._trajectory: list[np.ndarray] = []

    # ------------------------------------------------------------------ spaces
    def _build_spaces(self) -> None:
        cfg = self.cfg
        names = ["forward", "turn_left", "turn_right"]
        if cfg.extended_actions:
            names += ["backward", "strafe_left", "strafe_right"]
        if cfg.body == "flying":
            names += ["up", "down"]
        self.action_names = names
        if cfg.actions == "discrete":
            self.action_space = spaces.Discrete(len(names))
        else:
            dim = 3 if cfg.body == "flying" else 2  # linear, angular (, vertical)
            self.action_space = spaces.Box(-1.0, 1.0, (dim,), np.float32)
        rgb = spaces.Box(0, 255, (cfg.height, cfg.width, 3), np.uint8)
        if not (cfg.depth or cfg.state):
            self.observation_space = rgb
            return
        parts: dict[str, spaces.Space] = {"rgb": rgb}
        if cfg.depth:
            parts["depth"] = spaces.Box(0.0, np.inf, (cfg.height, cfg.width, 1), np.float32)
        if cfg.state:
            k = 3 if cfg.task == "pointnav" else 1
            parts["state"] = spaces.Box(-np.inf, np.inf, (5 + k,), np.float32)
        self.observation_space = spaces.Dict(parts)

    def _intrinsics(self, w: int, h: int) -> np.ndarray:
        f = (w / 2) / math.tan(math.radians(self.cfg.hfov_deg) / 2)
        return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float32)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start, heading = self.task.reset(self.grid, self.np_random)
        self.pos = np.array([start[0], start[1], self.scene.floor_z + self.cfg.camera_height])
        self.heading = heading
        self._steps = 0
        self._trajectory = [self.pos.copy()]
        if isinstance(self.task, Explore):
            self.task.observe(self.pos, self.heading)
        return self._observe(), self._info(False, {})

    def step(self, action):
        self._check_action(action)
        move, turn = self._decode(action)
        collided = self._move(move)
        self.heading = float((self.heading + turn + np.pi) % (2 * np.pi) - np.pi)
        self._steps += 1
        self._trajectory.append(self.pos.copy())
        reward, terminated, task_info = self.task.step(self.pos, self.heading, collided)
        truncated = not terminated and self._steps >= self.cfg.max_steps
        return self._observe(), float(reward), bool(terminated), bool(truncated), self._info(collided, task_info)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        size = self.cfg.render_size
        w = int(round(size * self.cfg.width / self.cfg.height))
        rgb, _ = self.scene.render(self._c2w()[None], self._intrinsics(w, size)[None], w, size, depth=False)
        first = (rgb[0].cpu().numpy() * 255 + 0.5).astype(np.uint8)
        return np.concatenate([first, np.full((size, 4, 3), 255, np.uint8), self._top_down(size)], 1)

    # ------------------------------------------------------------------ internals
    def _check_action(self, action: Any) -> None:
        a = np.asarray(action)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(f"action {action!r} contains NaN or inf")
        if not self.action_space.contains(a.astype(self.action_space.dtype) if a.dtype.kind == "f"
                                          and isinstance(self.action_space, spaces.Box) else action):
            raise ValueError(f"action {action!r} is outside the action space {self.action_space}")

    def _decode(self, action: Any) -> tuple[np.ndarray, float]:
        """World-frame displacement (metres) and heading change (radians) of an action."""
        cfg = self.cfg
        if cfg.actions == "discrete":
            fwd, left, up, turn = _DISCRETE[self.action_names[int(action)]]
            fwd, left, up = fwd * cfg.step_length, left * cfg.step_length, up * cfg.step_length
            turn = turn * math.radians(cfg.turn_angle_deg)
        else:
            a = np.asarray(action, np.float64)
            fwd = a[0] * cfg.max_linear_speed * cfg.control_dt
            turn = a[1] * math.radians(cfg.max_angular_speed_deg) * cfg.control_dt
            up = a[2] * cfg.max_linear_speed * cfg.control_dt if cfg.body == "flying" else 0.0
            left = 0.0
        c, s = math.cos(self.heading), math.sin(self.heading)
        return np.array([fwd * c - left * s, fwd * s + left * c, up]), turn

    def _move(self, delta: np.ndarray) -> bool:
        """Advance along `delta` in sub-steps; stop before the first sub-step that collides."""
        dist = float(np.linalg.norm(delta))
        if dist == 0.0:
            return False
        n = int(math.ceil(dist / self._substep))
        ts = np.arange(1, n + 1) / n
        centres = self.pos[None] + ts[:, None] * delta[None]
        pts = centres[:, None, :] + np.stack([np.zeros_like(self._levels), np.zeros_like(self._levels),
                                              self._levels], 1)[None]
        if self.cfg.body == "flying":
            pts = centres[:, None, :]
        free = self.scene.is_free(pts.reshape(-1, 3), self.cfg.body_radius).reshape(n, -1).all(1)
        blocked = np.flatnonzero(~free)
        if len(blocked) == 0:
            self.pos = centres[-1]
            return False
        if blocked[0] > 0:
            self.pos = centres[blocked[0] - 1]
        return True

    def _c2w(self) -> np.ndarray:
        fwd = np.array([math.cos(self.heading), math.sin(self.heading), 0.0])
        return look_at(self.pos, self.pos + fwd).astype(np.float32)

    def _observe(self):
        cfg = self.cfg
        rgb, depth = self.scene.render(self._c2w()[None], self._K[None], cfg.width, cfg.height, depth=cfg.depth)
        img = (rgb[0].cpu().numpy() * 255 + 0.5).astype(np.uint8)
        if not (cfg.depth or cfg.state):
            return img
        obs: dict[str, np.ndarray] = {"rgb": img}
        if cfg.depth:
            obs["depth"] = depth[0].cpu().numpy()[..., None].astype(np.float32)
        if cfg.state:
            obs["state"] = np.concatenate([self.pos.astype(np.float32),
                                           np.array([math.cos(self.heading), math.sin(self.heading)], np.float32),
                                           self.task.state(self.pos, self.heading)]).astype(np.float32)
        return obs

    def _info(self, collided: bool, task_info: dict[str, Any]) -> dict[str, Any]:
        return {"collided": collided, "position": self.pos.copy(), "heading": self.heading,
                "steps": self._steps, **task_info}

    def _top_down(self, size: int) -> np.ndarray:
        """The navigation map (free white, obstacles dark), trajectory, goal and agent."""
        free = self.grid.free.T[::-1]  # rows: y (north up), cols: x
        h, w = free.shape
        scale = size / h
        img = np.where(free[..., None], 235, 60).astype(np.uint8).repeat(3, 2)
        img = cv2.resize(img, (max(1, int(round(w * scale))), size), interpolation=cv2.INTER_NEAREST)

        def px(p: np.ndarray) -> tuple[int, int]:
            ij = (np.asarray(p[:2]) - self.grid.origin) / self.grid.cell
            return int(ij[0] * scale), int((h - ij[1]) * scale)

        pts = np.array([px(p) for p in self._trajectory], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, (40, 120, 255), 1, cv2.LINE_AA)
        goal = getattr(self.task, "goal", None)
        if goal is not None:
            cv2.circle(img, px(goal), max(2, int(self.task.success_radius / self.grid.cell * scale)),
                       (0, 180, 0), 2, cv2.LINE_AA)
        a = px(self.pos)
        tip = px(self.pos + 0.4 * np.array([math.cos(self.heading), math.sin(self.heading), 0]))
        cv2.arrowedLine(img, a, tip, (220, 30, 30), 2, cv2.LINE_AA, tipLength=0.4)
        return img


def make_scene_env(scene: str | Path, **kwargs: Any) -> SceneEnv:
    """Entry point for `gymnasium.make("worldmodel/SceneNav-v0", scene=...)`."""
    if not Path(scene).exists():
        raise UserInputError(f"{scene}: no such scene; pass a Scene directory from `worldmodel reconstruct` "
                             "or a 3DGS .ply")
    return SceneEnv(scene, **kwargs)
