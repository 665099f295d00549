"""safetensors save/load: atomic writes and clear errors on truncated or foreign files."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from wmcore.atomic import atomic_path
from wmcore.errors import UserInputError


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Write `tensors` to `path` as safetensors, atomically."""
    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata=metadata)
    return Path(path)


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupt file raises UserInputError."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found (expected a .safetensors file written by worldmodel)")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserInputError(
            f"{path}: not a readable safetensors file ({e}); it may be truncated or corrupt — "
            "re-create it or restore it from a good copy"
        ) from e
