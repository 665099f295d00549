"""Frame selection from video and photo-folder import."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from scenes.capture import extract_frames, import_images, list_images, sharpness
from wmcore.errors import UserInputError

W, H = 96, 64


def _texture(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (H // 4, W // 4, 3), dtype=np.uint8)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_NEAREST)


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


def test_sharpest_frame_of_each_window_is_chosen(tmp_path):
    # 5 windows of 6 frames; in each, one frame is sharp and the others are blurred copies.
    n_windows, per = 5, 6
    rng = np.random.default_rng(0)
    sharp_idx, frames = [], []
    for w in range(n_windows):
        base = _texture(w)
        k = int(rng.integers(per))
        sharp_idx.append(w * per + k)
        for j in range(per):
            frames.append(base if j == k else cv2.GaussianBlur(base, (0, 0), 1.0 + j % 3))
    video = tmp_path / "clip.avi"
    _write_video(video, frames)
    paths, sources = extract_frames(video, tmp_path / "frames", num_frames=n_windows, max_size=48)
    assert sources == sharp_idx
    assert [p.name for p in paths] == [f"frame_{i:05d}.jpg" for i in range(n_windows)]
    first = cv2.imread(str(paths[0]))
    assert first.shape == (32, 48, 3)  # downscaled to max_size, aspect kept


def test_more_frames_requested_than_the_video_has(tmp_path):
    video = tmp_path / "short.avi"
    _write_video(video, [_texture(i) for i in range(4)])
    paths, sources = extract_frames(video, tmp_path / "frames", num_frames=100)
    assert sources == [0, 1, 2, 3] and len(paths) == 4


def test_sharpness_drops_with_blur():
    img = _texture(3)
    assert sharpness(img) > 2 * sharpness(cv2.GaussianBlur(img, (0, 0), 2.0))


def test_list_and_import_photos(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for i, name in enumerate(["b.JPG", "a.png", "c.jpeg"]):
        cv2.imwrite(str(src / name), cv2.resize(_texture(i), (400, 300)))
    (src / "notes.txt").write_text("not an image")
    files = list_images(src)
    assert [f.name for f in files] == ["a.png", "b.JPG", "c.jpeg"]
    out = import_images(files, tmp_path / "images", max_size=200)
    assert [cv2.imread(str(p)).shape for p in out] == [(150, 200, 3)] * 3
    kept = import_images(files, tmp_path / "same", max_size=0)
    assert all(p.read_bytes() == f.read_bytes() for p, f in zip(kept, files))


def test_unreadable_photo_is_named(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"{i}.png"), _texture(i))
    (src / "3.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserInputError, match="3.jpg"):
        import_images(list_images(src), tmp_path / "images")
