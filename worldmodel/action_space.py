"""The action space stored with datasets and models: discrete (n actions) or a continuous box.

Serialised explicitly to JSON so neither a dataset nor a model needs Gymnasium (or pickle) to
know what an action is; `check` turns an action that does not fit into a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wmcore.errors import UserInputError


@dataclass(frozen=True)
class ActionSpace:
    """`kind` is "discrete" (integers 0..n-1) or "box" (float vectors of `shape` in [low, high])."""

    kind: str
    n: int = 0
    shape: tuple[int, ...] = ()
    low: tuple[float, ...] = field(default_factory=tuple)
    high: tuple[float, ...] = field(default_factory=tuple)

    @staticmethod
    def discrete(n: int) -> ActionSpace:
        return ActionSpace(kind="discrete", n=int(n))

    @staticmethod
    def box(low: Any, high: Any) -> ActionSpace:
        low_a, high_a = np.asarray(low, np.float32), np.asarray(high, np.float32)
        if low_a.ndim != 1 or low_a.shape != high_a.shape:
            raise UserInputError(
                f"box action space needs 1-D low/high of equal shape, got {low_a.shape}, "
                f"{high_a.shape}; flatten the action space first"
            )
        return ActionSpace(kind="box", shape=tuple(low_a.shape), low=tuple(low_a.tolist()), high=tuple(high_a.tolist()))

    @staticmethod
    def from_gym(space: Any) -> ActionSpace:
        """Convert a Gymnasium Discrete or 1-D Box space (duck-typed: no Gymnasium import)."""
        if hasattr(space, "n") and not hasattr(space, "low"):
            if int(getattr(space, "start", 0)) != 0:
                raise UserInputError(
                    f"Discrete action space with start={space.start} is not supported; "
                    "wrap the env so actions start at 0"
                )
            return ActionSpace.discrete(int(space.n))
        if hasattr(space, "low") and hasattr(space, "high"):
            low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
            return ActionSpace.box(low.reshape(-1), high.reshape(-1))
        raise UserInputError(f"unsupported action space {space!r}: only Discrete and Box are supported")

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ActionSpace:
        kind = d.get("kind")
        if kind == "discrete":
            return ActionSpace.discrete(int(d["n"]))
        if kind == "box":
            return ActionSpace.box(d["low"], d["high"])
        raise UserInputError(f"unknown action space kind {kind!r} (expected 'discrete' or 'box')")

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "discrete":
            return {"kind": "discrete", "n": self.n}
        return {"kind": "box", "shape": list(self.shape), "low": list(self.low), "high": list(self.high)}

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    @property
    def dim(self) -> int:
        """Size of one action vector (1 for discrete: one integer)."""
        return 1 if self.is_discrete else int(np.prod(self.shape))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int64) if self.is_discrete else np.dtype(np.float32)

    def check(self, actions: torch.Tensor | np.ndarray, lead: int, what: str = "actions") -> None:
        """Raise UserInputError unless `actions` has `lead` leading dims and fits this space."""
        a = torch.as_tensor(actions)
        if self.is_discrete:
            if a.dim() != lead or a.is_floating_point() and not torch.equal(a, a.round()):
                raise UserInputError(
                    f"{what}: expected integer actions of shape {list(a.shape[:lead])} "
                    f"for Discrete({self.n}), got shape {list(a.shape)} dtype {a.dtype}"
                )
            if a.numel() and (int(a.min()) < 0 or int(a.max()) >= self.n):
                raise UserInputError(
                    f"{what}: action values must lie in 0..{self.n - 1} for Discrete({self.n}), "
                    f"got min {int(a.min())} max {int(a.max())}"
                )
        else:
            if a.dim() != lead + 1 or a.shape[-1] != self.dim:
                raise UserInputError(
                    f"{what}: expected shape [..., {self.dim}] with {lead} leading dims for "
                    f"Box{self.shape}, got {list(a.shape)}"
                )
            if a.numel() and not torch.isfinite(a.float()).all():
                raise UserInputError(f"{what}: continuous actions contain NaN or inf")

    def normalise(self, actions: torch.Tensor) -> torch.Tensor:
        """Box actions scaled to [-1, 1] where bounds are finite (unbounded dims pass through)."""
        low = torch.tensor(self.low, dtype=torch.float32, device=actions.device)
        high = torch.tensor(self.high, dtype=torch.float32, device=actions.device)
        finite = torch.isfinite(low) & torch.isfinite(high) & (high > low)
        span = torch.where(finite, high - low, torch.ones_like(low))
        centre = torch.where(finite, (high + low) / 2, torch.zeros_like(low))
        scale = torch.where(finite, span / 2, torch.ones_like(low))
        return (actions.float() - centre) / scale
