"""Living with nerfstudio 1.1.5 inside this project: a clear error when it is missing, no
downloads, and checkpoints read without unpickling arbitrary objects.

nerfstudio is an optional extra (`make install-nerfstudio`); everything here imports it lazily so
the core install never needs it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmcore.errors import UserInputError

LOG = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the nerfstudio backend with `make install-nerfstudio` (or `pip install -c constraints.txt "
    "-e '.[nerfstudio]'` then `pip install --no-deps nerfstudio==1.1.5 viser==0.2.7`); see README, "
    "'NeRF scenes'"
)


def require_nerfstudio() -> None:
    """Import nerfstudio's trainer once, turning a missing package into a UserInputError."""
    if importlib.util.find_spec("nerfstudio") is None:
        raise UserInputError(
            f"--method nerfacto and nerfstudio runs need nerfstudio, which is not installed: {INSTALL_HINT}"
        )
    try:
        import nerfstudio.engine.trainer  # noqa: F401
    except ImportError as e:
        hint = ""
        if "torchvision" in str(e) or "nms" in str(e):
            hint = (
                " (torchvision does not load: on a CPU-only machine install a CPU build of torchvision "
                "matching your torch, see README)"
            )
        raise UserInputError(f"nerfstudio is installed but does not import: {e}{hint}; {INSTALL_HINT}") from e


class LPIPSUnavailable(nn.Module):
    """Stands in for torchmetrics' LPIPS: building the real one loads torchvision's pretrained AlexNet,
    whose weights would be downloaded. Only nerfstudio's own eval images use LPIPS (never our metrics),
    and there it reads as NaN."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float("nan"))


@contextlib.contextmanager
def lpips_without_download() -> Iterator[None]:
    """While nerfstudio builds a model, LPIPS is `LPIPSUnavailable`, so building a model never
    downloads anything nor needs torchvision."""
    import torchmetrics.image.lpip as lpip

    real = lpip.LearnedPerceptualImagePatchSimilarity
    lpip.LearnedPerceptualImagePatchSimilarity = LPIPSUnavailable
    try:
        yield
    finally:
        lpip.LearnedPerceptualImagePatchSimilarity = real


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A nerfstudio checkpoint (`step-*.ckpt`) read with `weights_only=True`: tensors, numbers and
    the numpy scalars nerfstudio's schedulers store, never arbitrary objects. (nerfstudio 1.1.5's
    own loader calls torch.load without it, which torch >= 2.6 refuses for these files.)"""
    import numpy as np

    path = Path(path)
    safe = [np._core.multiarray.scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.int64))]
    try:
        with torch.serialization.safe_globals(safe):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError on bad files
        raise UserInputError(
            f"{path}: not a readable nerfstudio checkpoint ({e}); re-export it with ns-train "
            "or pick another step-*.ckpt"
        ) from e
    if not isinstance(ckpt, dict) or "pipeline" not in ckpt:
        raise UserInputError(
            f"{path}: not a nerfstudio checkpoint (no 'pipeline' state); pick a step-*.ckpt "
            "from the run's nerfstudio_models/"
        )
    return ckpt
