"""Densification strategies: pluggable objects acting on a dict of parameters and their
optimisers, as gsplat's `DefaultStrategy` (the adaptive density control of the 3DGS paper).

gsplat's own strategies depend on private helpers whose shapes change between releases (the
`radii` layout changed in 1.5), so this is an equivalent that works on CPU and CUDA tensors alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from scenes.rasterize.reference import unit_quat_to_rotmat

Params = dict[str, torch.nn.Parameter]
Optimizers = dict[str, torch.optim.Optimizer]


@dataclass
class DefaultStrategy:
    """Clone small and split large Gaussians with high screen-space gradients; prune transparent
    and oversized ones; periodically reset opacities."""

    prune_opa: float = 0.005
    """Gaussians with opacity below this are pruned."""
    grow_grad2d: float = 0.0002
    """Mean screen-space gradient (in NDC-scaled pixels) above which a Gaussian grows."""
    grow_scale3d: float = 0.01
    """Gaussians smaller than this (times the scene scale) are duplicated; larger ones split."""
    prune_scale3d: float = 0.1
    """Gaussians larger than this (times the scene scale) are pruned after the first reset."""
    refine_start_iter: int = 500
    """First step at which densification runs."""
    refine_stop_iter: int = 15_000
    """Densification stops after this step."""
    refine_every: int = 100
    """Densify every this many steps."""
    reset_every: int = 3000
    """Reset opacities every this many steps."""
    max_gaussians: int = 0
    """Upper bound on the number of Gaussians (0: none); growth keeps the highest gradients."""
    state: dict[str, Any] = field(default_factory=dict, repr=False)

    def step_post_backward(
        self,
        params: Params,
        optimizers: Optimizers,
        step: int,
        info: dict[str, Any],
        scene_scale: float,
        generator: torch.Generator | None = None,
    ) -> None:
        """Call after `loss.backward()` and before `optimizer.step()`; `info` is the rasterizer's
        meta with `means2d` whose gradient was retained."""
        if step >= self.refine_stop_iter:
            return
        self._accumulate(params, info)
        if step > self.refine_start_iter and step % self.refine_every == 0:
            self._grow(params, optimizers, scene_scale, generator)
            self._prune(params, optimizers, step, scene_scale)
            self.state.clear()
        if step > 0 and step % self.reset_every == 0:
            reset_opacities(params, optimizers, 2 * self.prune_opa)

    def _accumulate(self, params: Params, info: dict[str, Any]) -> None:
        n = params["means"].shape[0]
        if "grad2d" not in self.state or self.state["grad2d"].shape[0] != n:
            dev = params["means"].device
            self.state["grad2d"] = torch.zeros(n, device=dev)
            self.state["count"] = torch.zeros(n, device=dev)
        grad = info["means2d"].grad
        if grad is None:
            return
        grad = grad.detach().clone()
        grad[..., 0] *= info["width"] / 2.0 * info["n_cameras"]
        grad[..., 1] *= info["height"] / 2.0 * info["n_cameras"]
        radii = info["radii"]
        if radii.dim() == 3:  # gsplat >= 1.5 returns per-axis radii
            radii = radii.max(-1).values
        sel = radii > 0
        gs_ids = torch.where(sel)[1]
        self.state["grad2d"].index_add_(0, gs_ids, grad[sel].norm(dim=-1))
        self.state["count"].index_add_(0, gs_ids, torch.ones_like(gs_ids, dtype=torch.float32))

    @torch.no_grad()
    def _grow(
        self, params: Params, optimizers: Optimizers, scene_scale: float, generator: torch.Generator | None
    ) -> None:
        grads = self.state["grad2d"] / self.state["count"].clamp_min(1)
        high = grads > self.grow_grad2d
        if self.max_gaussians:
            room = self.max_gaussians - params["means"].shape[0]
            if room <= 0:
                return
            if int(high.sum()) > room:  # each grown Gaussian adds one
                keep = torch.topk(torch.where(high, grads, -1.0), room).indices
                high = torch.zeros_like(high)
                high[keep] = True
        small = torch.exp(params["scales"]).max(-1).values <= self.grow_scale3d * scene_scale
        dup = high & small
        split_mask = high & ~small
        if dup.any():
            duplicate(params, optimizers, dup)
            split_mask = torch.cat(
                [split_mask, torch.zeros(int(dup.sum()), dtype=torch.bool, device=split_mask.device)]
            )
        if split_mask.any():
            split(params, optimizers, split_mask, generator)

    @torch.no_grad()
    def _prune(self, params: Params, optimizers: Optimizers, step: int, scene_scale: float) -> None:
        prune = torch.sigmoid(params["opacities"]) < self.prune_opa
        if step > self.reset_every:
            prune |= torch.exp(params["scales"]).max(-1).values > self.prune_scale3d * scene_scale
        if prune.any() and not prune.all():
            remove(params, optimizers, prune)


def _update(
    params: Params,
    optimizers: Optimizers,
    param_fn: Callable[[str, torch.Tensor], torch.Tensor],
    state_fn: Callable[[str, torch.Tensor], torch.Tensor],
    names: list[str] | None = None,
) -> None:
    """Replace parameters (all, or `names`) by param_fn(name, p) and their per-element optimiser
    state by state_fn(key, v), keeping the optimisers pointing at the new parameters."""
    for name in names or list(params):
        old = params[name]
        new = torch.nn.Parameter(param_fn(name, old.data), requires_grad=old.requires_grad)
        params[name] = new
        opt = optimizers.get(name)
        if opt is None:
            continue
        for group in opt.param_groups:
            for i, p in enumerate(group["params"]):
                if p is not old:
                    continue
                st = opt.state.pop(p, {})
                for k, v in st.items():
                    if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == old.shape[0]:
                        st[k] = state_fn(k, v)
                group["params"][i] = new
                opt.state[new] = st


def duplicate(params: Params, optimizers: Optimizers, mask: torch.Tensor) -> None:
    """Append a copy of every selected Gaussian (fresh optimiser state for the copies)."""
    idx = torch.where(mask)[0]
    _update(
        params, optimizers, lambda _, p: torch.cat([p, p[idx]]), lambda _, v: torch.cat([v, torch.zeros_like(v[idx])])
    )


def split(params: Params, optimizers: Optimizers, mask: torch.Tensor, generator: torch.Generator | None = None) -> None:
    """Replace every selected Gaussian by two smaller ones sampled inside it (3DGS: scale / 1.6)."""
    sel = torch.where(mask)[0]
    rest = torch.where(~mask)[0]
    scales = torch.exp(params["scales"][sel])
    q = params["quats"][sel]
    rot = unit_quat_to_rotmat(q / q.norm(dim=-1, keepdim=True))
    noise = torch.randn((2, len(sel), 3), generator=generator, device=scales.device)
    offsets = torch.einsum("nij,bnj->bni", rot, scales[None] * noise)

    def param_fn(name: str, p: torch.Tensor) -> torch.Tensor:
        if name == "means":
            new = (p[sel][None] + offsets).reshape(-1, 3)
        elif name == "scales":
            new = torch.log(scales / 1.6).repeat(2, 1)
        else:
            new = p[sel].repeat((2,) + (1,) * (p.dim() - 1))
        return torch.cat([p[rest], new])

    _update(
        params,
        optimizers,
        param_fn,
        lambda _, v: torch.cat([v[rest], torch.zeros((2 * len(sel),) + v.shape[1:], dtype=v.dtype, device=v.device)]),
    )


def remove(params: Params, optimizers: Optimizers, mask: torch.Tensor) -> None:
    keep = torch.where(~mask)[0]
    _update(params, optimizers, lambda _, p: p[keep], lambda _, v: v[keep])


def reset_opacities(params: Params, optimizers: Optimizers, value: float) -> None:
    """Clamp opacities to at most `value` and clear their optimiser state."""
    logit = math.log(value / (1 - value))
    _update(params, optimizers, lambda _, p: p.clamp_max(logit), lambda _, v: torch.zeros_like(v), names=["opacities"])
