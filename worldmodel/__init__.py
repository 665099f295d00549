"""Action-conditioned video-diffusion world models, trajectory datasets and fidelity metrics.

Public names are imported lazily, so `import worldmodel.dataset` does not import diffusers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ActionSpace": "worldmodel.action_space",
    "WorldModelConfig": "worldmodel.config",
    "WorldModel": "worldmodel.model",
    "DatasetWriter": "worldmodel.dataset",
    "TrajectoryDataset": "worldmodel.dataset",
    "Episode": "worldmodel.dataset",
    "SegmentSampler": "worldmodel.segments",
    "evaluate": "worldmodel.evaluation",
    "rollout": "worldmodel.evaluation",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'worldmodel' has no attribute {name!r}")
