"""Capture input → a folder of images ready for structure-from-motion.

A video is decoded once with OpenCV; it is split into N evenly spaced windows of frames and the
sharpest frame of each window (highest variance of the Laplacian) is kept, so the selection is
both well spread over the capture and free of the worst motion blur. A photo folder is listed
and copied (downscaled where needed) into the work directory, so the work directory is
self-contained and every image obeys the size limit.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from wmcore.atomic import atomic_path
from wmcore.errors import UserInputError

LOG = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MIN_IMAGES = 3


def sharpness(image_bgr: np.ndarray, max_side: int = 640) -> float:
    """Variance of the Laplacian of the grey image, measured at a fixed size so that frames of
    one video compare fairly; blur lowers it."""
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    scale = max_side / max(grey.shape[:2])
    if scale < 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _fit(image: np.ndarray, max_size: int) -> np.ndarray:
    """Downscale so the longer side is at most `max_size` (0 or less: keep the size)."""
    h, w = image.shape[:2]
    if max_size <= 0 or max(h, w) <= max_size:
        return image
    s = max_size / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _write_image(path: Path, image: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix.lower() in (".jpg", ".jpeg") else []
    with atomic_path(path) as tmp:
        ok, buf = cv2.imencode(path.suffix, image, params)
        if not ok:
            raise OSError(f"{path}: OpenCV could not encode the image")
        tmp.write_bytes(buf.tobytes())


def _count_frames(video: Path) -> int:
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def extract_frames(
    video: str | Path, out_dir: str | Path, num_frames: int = 150, max_size: int = 1600, ext: str = ".jpg"
) -> tuple[list[Path], list[int]]:
    """Pick the sharpest frame in each of `num_frames` evenly spaced windows of `video` and write
    them to `out_dir` as frame_00000.jpg, … (time order, which sequential matching relies on).

    Returns the written paths and the source frame index of each.
    """
    video, out_dir = Path(video), Path(out_dir)
    if not video.is_file():
        raise UserInputError(f"{video}: video file not found; check the path")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise UserInputError(
            f"{video}: OpenCV cannot decode this video; re-encode it "
            "(e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) or pass a folder of frames"
        )
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if total <= 0:  # some containers do not report a count: count by decoding once
        cap.release()
        total = _count_frames(video)
        cap = cv2.VideoCapture(str(video))
    if total <= 0:
        raise UserInputError(f"{video}: no decodable frames; re-encode the video or pass a folder of frames")
    n = max(1, min(num_frames, total))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("frame_*"):
        old.unlink()

    paths: list[Path] = []
    sources: list[int] = []
    best: tuple[float, int, np.ndarray] | None = None
    window = 0

    def flush() -> None:
        if best is not None:
            path = out_dir / f"frame_{len(paths):05d}{ext}"
            _write_image(path, _fit(best[2], max_size))
            paths.append(path)
            sources.append(best[1])

    i = 0
    with tqdm(total=total, desc="decoding video", unit="frame", leave=False, disable=None) as bar:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            w = min(i * n // total, n - 1)  # windows are contiguous in time
            if w != window:
                flush()
                best, window = None, w
            score = sharpness(frame)
            if best is None or score > best[0]:
                best = (score, i, frame)
            i += 1
            bar.update(1)
        flush()
    cap.release()
    if i == 0:
        raise UserInputError(f"{video}: no decodable frames; re-encode the video or pass a folder of frames")
    if len(paths) < MIN_IMAGES:
        raise UserInputError(
            f"{video}: only {len(paths)} frame(s) could be selected (need at least "
            f"{MIN_IMAGES}); use a longer video or a larger num_frames"
        )
    LOG.info("selected %d of %d frames from %s", len(paths), i, video)
    return paths, sources


def list_images(folder: str | Path) -> list[Path]:
    """The jpg/jpeg/png files directly in `folder` (any case), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"{folder}: not a folder of photos")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(
            f"{folder}: no .jpg/.jpeg/.png images found; pass a folder of photos, "
            "a video, a transforms.json or a COLMAP model"
        )
    if len(files) < MIN_IMAGES:
        raise UserInputError(
            f"{folder}: only {len(files)} image(s) found, at least {MIN_IMAGES} overlapping "
            "photos are needed for camera poses (20 or more are better)"
        )
    return files


def import_images(files: list[Path], out_dir: str | Path, max_size: int = 1600) -> list[Path]:
    """Copy `files` into `out_dir` (same names), downscaling those larger than `max_size`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in tqdm(files, desc="importing photos", unit="image", leave=False, disable=None):
        dst = out_dir / src.name
        image = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if image is None:
            raise UserInputError(f"{src}: not a readable image; remove it from the folder or re-save it")
        if max_size > 0 and max(image.shape[:2]) > max_size:
            _write_image(dst, _fit(image, max_size))
        elif src.resolve() != dst.resolve():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        written.append(dst)
    return written
