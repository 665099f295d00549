"""The example capture: a video of the synthetic room rendered along its camera loop, with its
true cameras and the room's description, written and read as one directory; and the command that
regenerates the committed copy (`python -m scenes.synthetic OUT_DIR [NUM_FRAMES]`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scenes.synthetic_room import EXAMPLE_DIR, SyntheticRoom
from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError


class ExampleCapture(NamedTuple):
    """A rendered capture with its true cameras."""

    video: Path
    """The capture video (capture.mp4)."""
    cam_to_world: np.ndarray
    """True camera-to-world poses [n,4,4], OpenCV convention, metres, world z up."""
    K: np.ndarray
    """Pinhole intrinsics [3,3] shared by every frame (pixel centres at half-integers)."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""


def write_example_capture(
    out_dir: str | os.PathLike,
    num_frames: int = 120,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    seed: int = 0,
    supersample: int = 2,
    room: SyntheticRoom | None = None,
) -> ExampleCapture:
    """Render `room` (default: `SyntheticRoom.default(seed)`) along its camera loop and write
    `capture.mp4` (H.264, checked to decode with OpenCV), `true_poses.json` and `scene_spec.json`
    into `out_dir` (atomically, as one directory)."""
    import cv2
    import imageio.v2 as imageio
    from tqdm import tqdm

    room = room or SyntheticRoom.default(seed)
    c2w = room.camera_path(num_frames)
    K = room.intrinsics(width, height)
    out = Path(out_dir)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        writer = imageio.get_writer(
            str(tmp / "capture.mp4"),
            fps=fps,
            codec="libx264",
            quality=None,
            pixelformat="yuv420p",
            macro_block_size=8,
            output_params=["-crf", "16", "-preset", "slow"],
        )
        with writer:
            for pose in tqdm(c2w, desc="render example", unit="frame", disable=None):
                writer.append_data(room.render(pose, K, width, height, supersample)[0])
        cap = cv2.VideoCapture(str(tmp / "capture.mp4"))
        decoded = 0
        while cap.read()[0]:
            decoded += 1
        cap.release()
        if decoded != num_frames:
            raise RuntimeError(f"OpenCV decoded {decoded} of {num_frames} frames of the written video")
        frames = [
            {"index": i, "c2w": p.tolist(), "K": K.tolist(), "width": width, "height": height}
            for i, p in enumerate(c2w)
        ]
        write_json(
            tmp / "true_poses.json",
            {
                "convention": "camera-to-world, OpenCV camera (x right, y down, z forward), world z up, metres; "
                "K with pixel centres at half-integers",
                "video": "capture.mp4",
                "fps": fps,
                "width": width,
                "height": height,
                "K": K.tolist(),
                "frames": frames,
            },
        )
        write_json(tmp / "scene_spec.json", room.to_spec())
    return ExampleCapture(out / "capture.mp4", c2w, K, width, height)


def load_example_capture(capture_dir: str | os.PathLike = EXAMPLE_DIR) -> ExampleCapture:
    """The video path and true cameras of a capture written by `write_example_capture`."""
    d = Path(capture_dir)
    path = d / "true_poses.json"
    remedy = f"regenerate it with: python -m scenes.synthetic {d}"
    if not path.is_file() or not (d / "capture.mp4").is_file():
        raise UserInputError(f"{d}: no example capture (capture.mp4 + true_poses.json); {remedy}")
    try:
        meta = json.loads(path.read_text())
        c2w = np.array([f["c2w"] for f in meta["frames"]], np.float64)
        K = np.array(meta["K"], np.float64)
        width, height = int(meta["width"]), int(meta["height"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserInputError(f"{path}: malformed ({e!r}); {remedy}") from e
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or K.shape != (3, 3):
        raise UserInputError(f"{path}: poses must be [n,4,4] and K [3,3]; {remedy}")
    return ExampleCapture(d / "capture.mp4", c2w, K, width, height)


def main(argv: list[str] | None = None) -> int:
    """`python -m scenes.synthetic OUT_DIR [NUM_FRAMES]`: regenerate the example capture."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m scenes.synthetic OUT_DIR [NUM_FRAMES]", file=sys.stderr)
        return 2
    cap = write_example_capture(args[0], num_frames=int(args[1]) if len(args) == 2 else 120)
    print(f"wrote {cap.video.parent}: {len(cap.cam_to_world)} frames at {cap.width}x{cap.height}")
    return 0
