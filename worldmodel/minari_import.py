"""Import a Minari dataset (optional dependency) into the trajectory format.

Pixel observations ([H,W,3] uint8, or a dict holding one under "pixels"/"image"/"rgb") are
resized to the model resolution; datasets without pixel observations cannot train a pixel model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wmcore.errors import UserInputError
from worldmodel.action_space import ActionSpace
from worldmodel.dataset import DatasetWriter


def _pixels(obs, dataset_id: str) -> np.ndarray:
    if isinstance(obs, dict):
        for key in ("pixels", "image", "rgb"):
            if key in obs:
                return np.asarray(obs[key])
        raise UserInputError(f"minari dataset {dataset_id}: dict observations without a pixels/image/rgb entry")
    arr = np.asarray(obs)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise UserInputError(
            f"minari dataset {dataset_id}: observations of shape {list(arr.shape)} are not "
            "RGB frames; a pixel world model needs image observations"
        )
    return arr


def import_minari(dataset_id: str, out: str | Path, resolution: tuple[int, int], append: bool = False) -> Path:
    """Copy every episode of a locally available Minari dataset into `out`."""
    try:
        import minari
    except ImportError as e:
        raise UserInputError(
            'importing a Minari dataset needs minari: `pip install -c constraints.txt "minari[hdf5]"`'
        ) from e
    import cv2

    try:
        ds = minari.load_dataset(dataset_id)
    except Exception as e:  # minari raises several types for a missing local dataset
        raise UserInputError(
            f"minari dataset {dataset_id!r} is not available locally ({e}); download it with `minari download` first"
        ) from e
    h, w = resolution
    writer = DatasetWriter(
        out, ActionSpace.from_gym(ds.action_space), (h, w), source={"minari": dataset_id}, append=append
    )
    for ep in ds.iterate_episodes():
        frames = _pixels(ep.observations, dataset_id)
        frames = np.stack([cv2.resize(f.astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        writer.add(frames, ep.actions, ep.rewards, ep.terminations, ep.truncations)
    return Path(out)
