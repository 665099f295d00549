"""Pluggable SceneEnv tasks: what an episode asks of the agent and how it is rewarded.

A task sees the environment's state after each move and returns (reward, terminated, info); it
samples its own start (and goal) in free, reachable space from the episode's generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from envs.navgrid import NavGrid


class Task(Protocol):
    def reset(self, grid: NavGrid, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """Start position (x, y) in metres and heading (radians)."""

    def step(self, pos: np.ndarray, heading: float, collided: bool) -> tuple[float, bool, dict[str, Any]]:
        """Reward, terminated and info after a move."""

    def state(self, pos: np.ndarray, heading: float) -> np.ndarray:
        """Task-specific part of the agent state (e.g. the goal in the body frame)."""


@dataclass
class PointNav:
    """Reach a goal: reward = geodesic progress − step cost (− collision penalty), a bonus and
    termination on arrival."""

    success_radius: float = 0.4
    """Arrival distance in metres."""
    success_bonus: float = 10.0
    step_cost: float = 0.01
    collision_penalty: float = 0.05
    min_goal_distance: float = 1.5
    """Goals are sampled at least this far (geodesic, metres) from the start."""
    fixed_goal: tuple[float, float] | None = None
    """The same goal (x, y metres) in every episode, so an RGB-only policy can learn where it is
    from what it sees ("go to the door"); None samples a new goal each episode."""

    def reset(self, grid: NavGrid, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        self.grid = grid
        fixed = self.fixed_goal is not None
        if fixed:
            anchor = self._checked_fixed_goal(grid)
            if getattr(self, "_field_grid", None) is not grid:  # the fixed goal's field, once per grid
                self._fixed_field, self._field_grid = grid.geodesic_from(anchor), grid
            field = self._fixed_field
        else:
            anchor = grid.sample_free(rng)
            field = grid.geodesic_from(anchor)
        comp = grid.labels[grid.cell_of(anchor)]
        # the other end (goal, or start for a fixed goal) at least min_goal_distance away along free space
        for attempt in range(100):
            other = grid.sample_free(rng, comp)
            d = field[grid.cell_of(other)]
            if np.isfinite(d) and (d >= self.min_goal_distance or attempt == 99):
                break
        start, self.goal = (other, anchor) if fixed else (anchor, other)
        self._dist_field = field if fixed else grid.geodesic_from(self.goal)
        self._prev = self.distance(start)
        return start, float(rng.uniform(-np.pi, np.pi))

    def _checked_fixed_goal(self, grid: NavGrid) -> np.ndarray:
        goal = np.asarray(self.fixed_goal, np.float64)
        ij = np.floor((goal - grid.origin) / grid.cell).astype(int)
        inside = bool(np.all(ij >= 0) and np.all(ij < grid.shape))
        if not inside or not grid.free[ij[0], ij[1]]:
            hi = grid.origin + np.array(grid.shape) * grid.cell
            raise ValueError(
                f"goal {tuple(self.fixed_goal)} is not in the scene's free floor space "
                f"(x {grid.origin[0]:.2f}..{hi[0]:.2f}, y {grid.origin[1]:.2f}..{hi[1]:.2f} m, "
                f"clear of obstacles by the body radius); pick another goal"
            )
        return goal

    @property
    def distance_field(self) -> np.ndarray:
        """Geodesic distance (metres) from every navigation cell to this episode's goal; inf where unreachable."""
        return self._dist_field

    def distance(self, pos: np.ndarray) -> float:
        """Geodesic distance to the goal; from a cell the grid counts blocked (the body can touch
        one), through its nearest free neighbour; never less than the straight-line distance."""
        i, j = self.grid.cell_of(pos)
        euclid = float(np.linalg.norm(pos[:2] - self.goal))
        d = float(self._dist_field[i, j])
        if not np.isfinite(d):
            near = self._dist_field[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
            d = float(near.min()) + self.grid.cell if np.isfinite(near).any() else euclid
        return max(d, euclid)

    def waypoint(self, pos: np.ndarray, lookahead: int = 6) -> np.ndarray:
        """A point `lookahead` cells down the geodesic field from `pos` (the goal when closer):
        steering at it follows a shortest free path."""
        g, f = self.grid, self._dist_field
        i, j = g.cell_of(pos)
        for _ in range(lookahead):
            near = f[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
            if not np.isfinite(near).any() or near.min() >= f[i, j]:
                break
            di, dj = np.unravel_index(int(np.argmin(near)), near.shape)
            i, j = max(0, i - 1) + int(di), max(0, j - 1) + int(dj)
            if f[i, j] <= self.success_radius / 2:
                return self.goal.copy()
        return g.centre_of((i, j))

    def step(self, pos: np.ndarray, heading: float, collided: bool) -> tuple[float, bool, dict[str, Any]]:
        d = self.distance(pos)
        success = float(np.linalg.norm(pos[:2] - self.goal)) <= self.success_radius
        reward = (self._prev - d) - self.step_cost - (self.collision_penalty if collided else 0.0)
        if success:
            reward += self.success_bonus
        self._prev = d
        return reward, success, {"success": success, "distance_to_goal": d, "goal": self.goal.copy()}

    def state(self, pos: np.ndarray, heading: float) -> np.ndarray:
        """Goal distance and bearing in the body frame (cos, sin)."""
        v = self.goal - pos[:2]
        bearing = np.arctan2(v[1], v[0]) - heading
        return np.array([np.linalg.norm(v), np.cos(bearing), np.sin(bearing)], np.float32)


@dataclass
class Explore:
    """Reward for newly seen floor cells: the cells inside the field of view up to the first
    obstacle (2D ray casting at camera height)."""

    reward_per_m2: float = 1.0
    """Reward for each square metre of newly seen floor."""
    view_range: float = 4.0
    """How far the agent sees, in metres."""
    num_rays: int = 24
    collision_penalty: float = 0.05

    def reset(self, grid: NavGrid, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        self.grid = grid
        self.seen = np.zeros(grid.shape, bool)
        return grid.sample_free(rng), float(rng.uniform(-np.pi, np.pi))

    def bind(self, raycast, hfov: float, z: float) -> None:
        """The environment supplies its raycast, field of view and camera height."""
        self._raycast, self._hfov, self._z = raycast, hfov, z

    def observe(self, pos: np.ndarray, heading: float) -> int:
        """Mark the cells in view; returns how many were new."""
        angles = heading + np.linspace(-self._hfov / 2, self._hfov / 2, self.num_rays)
        dirs = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], 1)
        origins = np.tile([pos[0], pos[1], self._z], (self.num_rays, 1))
        hits = self._raycast(origins, dirs, self.view_range)
        steps = np.arange(0.0, 1.0, self.grid.cell / (2 * self.view_range))
        pts = origins[:, None, :2] + dirs[:, None, :2] * (hits[:, None, None] * steps[None, :, None])
        ij = np.floor((pts.reshape(-1, 2) - self.grid.origin) / self.grid.cell).astype(int)
        ok = (ij[:, 0] >= 0) & (ij[:, 1] >= 0) & (ij[:, 0] < self.grid.shape[0]) & (ij[:, 1] < self.grid.shape[1])
        ij = ij[ok]
        before = int(self.seen.sum())
        self.seen[ij[:, 0], ij[:, 1]] = True
        return int(self.seen.sum()) - before

    def step(self, pos: np.ndarray, heading: float, collided: bool) -> tuple[float, bool, dict[str, Any]]:
        new = self.observe(pos, heading)
        reward = new * self.grid.cell**2 * self.reward_per_m2 - (self.collision_penalty if collided else 0.0)
        return (
            reward,
            False,
            {"new_cells": new, "seen_m2": float(self.seen.sum() * self.grid.cell**2), "success": False},
        )

    def state(self, pos: np.ndarray, heading: float) -> np.ndarray:
        return np.array([self.seen.mean()], np.float32)
