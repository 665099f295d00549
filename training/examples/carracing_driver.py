"""A noisy scripted driver for CarRacing-v3, for collecting world-model data where the car moves.

Uniformly random actions barely move the car (gas and brake cancel out), so the frames hardly
change and a world model learns little about the actions. This driver steers toward the grey
track seen ahead of the car, speeds up on straights and slows into bends, and now and then takes
a random action for a few steps, so the data holds driving along the track at speed, leaving it,
and coming back (without the excursions it scores about 570 in 500 steps):

    worldmodel collect CarRacing-v3 --policy training.examples.carracing_driver:Driver \
        --frames observation --episodes 40 --max-steps 800 --out data/carracing_train
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOOK_AHEAD_ROWS = slice(40, 62)
"""Rows of the 96x96 observation ahead of the car (the car sits at rows ~66-77, columns 45-50)."""
CAR_COLUMN = 48.0


def track_centre(obs: np.ndarray) -> float | None:
    """Mean column of the grey track pixels ahead of the car, or None when none are seen."""
    band = obs[LOOK_AHEAD_ROWS].astype(np.int16)
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    grey = (abs(r - g) < 12) & (abs(g - b) < 12) & (r > 80) & (r < 135)
    cols = np.nonzero(grey)[1]
    return float(cols.mean()) if len(cols) > 20 else None


class Driver:
    """[steer, gas, brake]: follow the track; 3% of the steps start a random excursion of 4-15 steps.
    A policy in the project's sense (`predict`, built as `Driver(action_space, seed)`), for one car."""

    def __init__(self, action_space: Any, seed: int = 0):
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)
        self.excursion, self.action = 0, None

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        o = np.asarray(obs)
        if o.ndim == 4:
            return np.stack([self._act(x) for x in o]), None
        return self._act(o), None

    def _act(self, obs: np.ndarray) -> np.ndarray:
        rng = self.rng
        if self.excursion > 0:
            self.excursion -= 1
            return self.action
        if rng.random() < 0.03:
            self.excursion = int(rng.integers(4, 16))
            steer, gas = rng.uniform(-1, 1), rng.uniform(0, 0.6)
            brake = rng.uniform(0, 0.3) * (rng.random() < 0.3)  # brake 30% of the time
            self.action = np.array([steer, gas, brake], np.float32)
            return self.action
        centre = track_centre(obs)
        if centre is None:  # lost: random steering, coast
            return np.array([rng.uniform(-1, 1), 0.05, 0.0], np.float32)
        offset = centre - CAR_COLUMN
        steer = np.clip(offset / 12.0 + rng.normal(0, 0.15), -1, 1)
        gas = 0.35 if abs(offset) < 8 else 0.05  # speed up on straights, coast into bends
        brake = 0.2 if abs(offset) > 16 else 0.0  # and brake in sharp ones
        sp = self.action_space
        return np.array([steer, gas, brake], np.float32).clip(sp.low, sp.high)
