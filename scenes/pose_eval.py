"""Camera-pose accuracy of a reconstruction of a synthetic capture, against its true poses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from scenes.example_capture import load_example_capture
from scenes.nerfstudio_io import read_transforms
from scenes.normalize import umeyama_sim3
from scenes.scene_meta import SceneMeta
from scenes.synthetic_room import SyntheticRoom


def _centres(scene_dir: Path, capture_dir: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Reconstructed camera centres (metres, scene frame) and the true ones of the same frames."""
    meta = SceneMeta.read(scene_dir)
    posed = read_transforms(meta.transforms_path(scene_dir))
    sources = json.loads((scene_dir / "ingest.json").read_text())["source_frames"]
    idx = []
    for p in posed.image_paths:
        m = re.search(r"frame_(\d+)", Path(p).name)
        if m is None:
            raise ValueError(f"{p}: not a frame extracted from the capture video")
        idx.append(sources[int(m.group(1))])
    truth = load_example_capture(capture_dir)
    true_c = truth.cam_to_world[idx, :3, 3]
    est_c = posed.cam_to_world[:, :3, 3] * meta.metric_scale
    return est_c, true_c, len(truth.cam_to_world)


def scene_to_truth(scene_dir: str | Path, capture_dir: str | Path) -> np.ndarray:
    """The Sim(3) [4,4] taking the Scene's metric frame to the synthetic room's true frame."""
    est_c, true_c, _ = _centres(Path(scene_dir), capture_dir)
    return umeyama_sim3(est_c, true_c)


def pose_accuracy(scene_dir: str | Path, capture_dir: str | Path) -> dict[str, Any]:
    """Align the reconstructed camera centres to the true ones with a Sim(3) (Umeyama) and report
    the errors relative to the room's extent (its diagonal), plus the metric-scale error."""
    est_c, true_c, num_frames = _centres(Path(scene_dir), capture_dir)
    T = umeyama_sim3(est_c, true_c)
    err = np.linalg.norm(est_c @ T[:3, :3].T + T[:3, 3] - true_c, axis=1)
    room = SyntheticRoom.load(capture_dir)
    extent = float(np.linalg.norm(np.asarray(room.room_max) - np.asarray(room.room_min)))
    return {
        "num_compared": len(est_c),
        "num_frames": num_frames,
        "extent_m": extent,
        "mean_centre_error_m": float(err.mean()),
        "max_centre_error_m": float(err.max()),
        "max_centre_error_frac": float(err.max() / extent),
        "mean_centre_error_frac": float(err.mean() / extent),
        "metric_scale_error": float(abs(np.cbrt(np.linalg.det(T[:3, :3])) - 1.0)),
    }
