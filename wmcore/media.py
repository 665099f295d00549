"""Images and videos for people to look at: PNG, browser-playable H.264 MP4 and looping GIF,
all written atomically. One writer for every package (previews, evaluations, rollout videos)."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from wmcore.atomic import atomic_path


def to_uint8(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float images in [0, 1] → uint8."""
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, rgb, format="png")
    return Path(path)


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int = 15) -> Path:
    """An H.264 MP4 (yuv420p, so browsers play it); frames are padded to even sizes."""
    path = Path(path)
    h, w = frames[0].shape[:2]
    with atomic_path(path) as tmp:
        tmp_mp4 = tmp.with_suffix(".mp4")  # ffmpeg picks the container from the suffix
        try:
            with imageio.get_writer(
                tmp_mp4,
                fps=fps,
                codec="libx264",
                quality=8,
                pixelformat="yuv420p",
                macro_block_size=1,
                ffmpeg_log_level="error",
            ) as writer:
                for f in frames:
                    writer.append_data(np.pad(np.asarray(f, np.uint8), ((0, h % 2), (0, w % 2), (0, 0))))
            os.replace(tmp_mp4, tmp)
        finally:
            if tmp_mp4.exists():
                tmp_mp4.unlink()
    return path


def write_gif(path: str | os.PathLike, frames: list[np.ndarray], fps: int = 10) -> Path:
    """An endlessly looping GIF."""
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return Path(path)
