"""Few-step EDM samplers. The model is a denoiser D(x, sigma); the caller owns the loop (as in diffusers).

Euler steps are taken by diffusers' EDMEulerScheduler; Heun (2nd order) reuses its Karras sigmas
and preconditioning. Both are deterministic given the generator that draws the initial noise.

The schedule ends ..., sigma_min, 0. Heun's steps into sigma_min and into 0 are first order: its
correction there evaluates the denoiser at sigma_min and divides the result by sigma_min, which
multiplies any error of a few-step denoised estimate by (sigma - sigma_min) / (2 sigma_min), e.g.
70x on the step 0.28 -> 0.002 of a 3-step schedule (what that did to a trained model's rollouts is
in BENCHMARKS.md, *CarRacing*); EDM's many-step schedules never take such a jump. Even with an exact
denoiser, Heun only beats Euler from about 10 steps: with 3-5 its correction at the end of the first,
long step overshoots (tests/test_worldmodel_sampling.py), so Euler is the few-step default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import EDMEulerScheduler

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(noisy x [B,C,H,W], sigma [B]) -> raw network output F (EDM preconditioned, epsilon form)."""


def make_scheduler(sigma_min: float, sigma_max: float, sigma_data: float, rho: float) -> EDMEulerScheduler:
    return EDMEulerScheduler(
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        sigma_data=sigma_data,
        rho=rho,
        sigma_schedule="karras",
        prediction_type="epsilon",
        final_sigmas_type="zero",
    )


def sample(
    network: Denoiser,
    scheduler: EDMEulerScheduler,
    shape: tuple[int, ...],
    num_steps: int,
    method: str = "euler",
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw x ~ N(0, sigma_max^2) and denoise it in `num_steps` steps; returns the clean sample."""
    scheduler.set_timesteps(num_steps, device=device)
    sigmas = scheduler.sigmas.to(device)
    x = torch.randn(shape, generator=generator, device=device if generator is None else generator.device)
    x = x.to(device) * sigmas[0]

    def denoise(x_: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.expand(x_.shape[0])
        out = network(scheduler.precondition_inputs(x_, sigma), s)
        return scheduler.precondition_outputs(x_, out.float(), sigma)

    if method == "euler":
        for i, t in enumerate(scheduler.timesteps):
            out = network(scheduler.scale_model_input(x, t), sigmas[i].expand(x.shape[0]))
            x = scheduler.step(out.float(), t, x, generator=generator).prev_sample
        return x
    if method != "heun":
        raise ValueError(f"unknown sampler {method!r}")
    for i in range(num_steps):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - denoise(x, s)) / s
        x_next = x + d * (s_next - s)
        if s_next > sigmas[-2]:  # second order except into sigma_min and 0
            d_next = (x_next - denoise(x_next, s_next)) / s_next
            x_next = x + (d + d_next) / 2 * (s_next - s)
        x = x_next
    return x
