"""Observation adapters: any Gymnasium env seen the way a world model trained on its frames sees it."""

from __future__ import annotations

from typing import Any

import numpy as np

from wmcore.errors import UserInputError


def resize_frame(frame: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    """RGB uint8 [h,w,3] -> [H,W,3] with area interpolation (keeps thin objects like paddles visible)."""
    import cv2

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise UserInputError(
            f"the environment rendered a frame of shape {list(frame.shape)}; expected RGB "
            "[H,W,3] — create it with render_mode='rgb_array'"
        )
    h, w = resolution
    if frame.shape[:2] == (h, w):
        return frame.astype(np.uint8)
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA).astype(np.uint8)


class RenderedObservation:
    """A Gymnasium env observed through render() resized to `resolution`, as `collect` records it by
    default: a world model trained on those frames and a policy trained in it see the env alike."""

    def __init__(self, env: Any, resolution: tuple[int, int]):
        from gymnasium import spaces

        self.env, self.resolution = env, resolution
        self.action_space = env.action_space
        self.observation_space = spaces.Box(0, 255, (*resolution, 3), np.uint8)
        self.unwrapped = env.unwrapped

    def _obs(self) -> np.ndarray:
        return resize_frame(self.env.render(), self.resolution)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        _, info = self.env.reset(seed=seed, options=options)
        return self._obs(), info

    def step(self, action: Any):
        _, r, term, trunc, info = self.env.step(action)
        return self._obs(), r, term, trunc, info
