"""Gaussian-splat optimisation from posed images: Adam per parameter group, L1 + D-SSIM loss,
pluggable densification, held-out evaluation on every 8th image (PSNR, SSIM)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from tqdm import tqdm

from scenes.posed import PosedImages
from scenes.rasterize import rasterization
from scenes.splats import activated, init_from_points
from scenes.strategy import DefaultStrategy
from wmcore.errors import UserInputError, require_at_least
from wmcore.metrics import psnr, ssim

LOG = logging.getLogger(__name__)


@dataclass
class SplatTrainConfig:
    """How the splats are optimised."""

    iterations: int = 3000
    """Optimisation steps (one camera per step)."""
    max_size: int = 128
    """Longest image side used for training and evaluation, in pixels (images are downscaled)."""
    sh_degree: int = 3
    """Final spherical-harmonic degree of the colours (0..3)."""
    sh_degree_interval: int = 500
    """Raise the active SH degree by one every this many steps."""
    ssim_lambda: float = 0.2
    """Weight of the D-SSIM term; L1 gets 1 - ssim_lambda."""
    init_opacity: float = 0.1
    """Opacity of the Gaussians created at the SfM points."""
    means_lr: float = 1.6e-4
    """Learning rate of the means, times the scene scale; decays exponentially to 1% at the end."""
    scales_lr: float = 5e-3
    quats_lr: float = 1e-3
    opacities_lr: float = 5e-2
    sh0_lr: float = 2.5e-3
    shN_lr: float = 2.5e-3 / 20
    test_every: int = 8
    """Every this many images (sorted by name) is held out for evaluation."""
    eval_every: int = 1000
    """Evaluate on the held-out images every this many steps (and at the end)."""
    min_points: int = 50
    """Fewer SfM points than this is an error: the capture did not reconstruct."""
    strategy: DefaultStrategy = field(
        default_factory=lambda: DefaultStrategy(
            refine_start_iter=200, refine_stop_iter=2000, refine_every=100, reset_every=1500, max_gaussians=30_000
        )
    )
    """Densification and pruning."""
    seed: int = 0
    """Seed for initialisation, camera order and splitting."""

    def check(self) -> None:
        """Refuse settings that cannot train (before any ingest work)."""
        require_at_least(
            ("--train.iterations", self.iterations, 1),
            ("--train.max-size", self.max_size, 8),
            ("--train.sh-degree-interval", self.sh_degree_interval, 1),
            ("--train.test-every", self.test_every, 0),
            ("--train.eval-every", self.eval_every, 1),
            ("--train.min-points", self.min_points, 0),
        )
        if not 0 <= self.sh_degree <= 3:
            raise UserInputError(f"--train.sh-degree {self.sh_degree}: give 0, 1, 2 or 3")
        lrs = (self.means_lr, self.scales_lr, self.quats_lr, self.opacities_lr, self.sh0_lr, self.shN_lr)
        values = (self.ssim_lambda, self.init_opacity, *lrs)
        if not all(math.isfinite(v) for v in values) or not 0 <= self.ssim_lambda <= 1:
            raise UserInputError("--train: learning rates must be finite and --train.ssim-lambda in [0, 1]")
        if not 0 < self.init_opacity < 1:
            raise UserInputError(f"--train.init-opacity {self.init_opacity}: give a value between 0 and 1")


@dataclass
class TrainResult:
    params: dict[str, torch.Tensor]
    """Trained parameters (detached), in the layout of `scenes.splats`."""
    sh_degree: int
    metrics: dict[str, float]
    """Final held-out PSNR/SSIM, the number of Gaussians, train and eval image counts, seconds."""
    test_indices: list[int]


def load_images(posed: PosedImages, max_size: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """All images as float [N,H,W,3] at a common downscaled size, with intrinsics scaled to match."""
    w0, h0 = int(posed.widths[0]), int(posed.heights[0])
    s = min(1.0, max_size / max(w0, h0))
    w, h = max(1, round(w0 * s)), max(1, round(h0 * s))
    imgs, Ks = [], []
    for path, K, wi, hi in zip(posed.image_paths, posed.Ks, posed.widths, posed.heights):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise UserInputError(f"{path}: image cannot be read; check the file or remove it from the capture")
        img = cv2.cvtColor(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        imgs.append(torch.from_numpy(img))
        K = np.array(K, dtype=np.float64)
        K[0] *= w / float(wi)
        K[1] *= h / float(hi)
        Ks.append(torch.from_numpy(K).float())
    return torch.stack(imgs).float() / 255.0, torch.stack(Ks), w, h


def split_train_test(n: int, test_every: int) -> tuple[list[int], list[int]]:
    test = list(range(0, n, test_every)) if test_every > 0 and n >= 2 * test_every else []
    train = [i for i in range(n) if i not in set(test)]
    return train, test


KEEP_BEST_MARGIN_DB = 0.5
"""A final held-out PSNR this far below the best evaluated one writes the best state instead."""


def scheduled_strategy(strategy: DefaultStrategy, iterations: int) -> DefaultStrategy:
    """The densification schedule fitted to a run of `iterations` steps, as 3DGS does: refinement (and
    with it the opacity resets, which only happen while refining) stops by half the run, so the last
    reset is followed by at least half the run to recover; a run whose last step is a reset would
    write a nearly transparent scene. A copy; `strategy` itself is left as configured."""
    import dataclasses

    stop = min(strategy.refine_stop_iter, iterations // 2)
    if stop < strategy.refine_stop_iter:
        LOG.info(
            "densification stops at step %d (half the run of %d), not %d; opacity resets every %d before it",
            stop,
            iterations,
            strategy.refine_stop_iter,
            strategy.reset_every,
        )
    return dataclasses.replace(strategy, refine_stop_iter=stop, state={})


def scene_scale_of(c2w: torch.Tensor) -> float:
    centres = c2w[:, :3, 3]
    return float((centres - centres.mean(0)).norm(dim=-1).max()) * 1.1 or 1.0


def render_splats(
    params: dict[str, torch.Tensor],
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    sh_degree: int,
    render_mode: str = "RGB",
    backgrounds: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    a = activated(params)
    return rasterization(
        a["means"],
        a["quats"],
        a["scales"],
        a["opacities"],
        a["colors"],
        viewmats,
        Ks,
        width,
        height,
        sh_degree=sh_degree,
        render_mode=render_mode,
        backgrounds=backgrounds,
    )


def train_splats(
    posed: PosedImages,
    cfg: SplatTrainConfig,
    device: str = "cpu",
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Optimise Gaussians to the posed images; `on_eval(step, metrics)` receives each evaluation."""
    if len(posed.points) < cfg.min_points:
        raise UserInputError(
            f"only {len(posed.points)} sparse points to start from (need {cfg.min_points}): SfM found too "
            "few in the capture (too little texture or overlap — capture more views of the scene), or the "
            "posed dataset's point cloud is nearly empty; lower --train.min-points to start from these"
        )
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    images, Ks, w, h = load_images(posed, cfg.max_size)
    c2w = torch.as_tensor(posed.cam_to_world, dtype=torch.float32)
    viewmats = torch.linalg.inv(c2w)
    train_idx, test_idx = split_train_test(len(posed), cfg.test_every)
    images, Ks, viewmats = images.to(device), Ks.to(device), viewmats.to(device)
    scene_scale = scene_scale_of(c2w)

    params = {
        k: torch.nn.Parameter(v.to(device))
        for k, v in init_from_points(
            posed.points, posed.points_rgb, cfg.sh_degree, cfg.init_opacity, seed=cfg.seed
        ).items()
    }
    lrs = {
        "means": cfg.means_lr * scene_scale,
        "scales": cfg.scales_lr,
        "quats": cfg.quats_lr,
        "opacities": cfg.opacities_lr,
        "sh0": cfg.sh0_lr,
        "shN": cfg.shN_lr,
    }
    optimizers = {k: torch.optim.Adam([params[k]], lr=lr, eps=1e-15) for k, lr in lrs.items()}
    means_decay = 0.01 ** (1.0 / max(1, cfg.iterations))
    strategy = scheduled_strategy(cfg.strategy, cfg.iterations)
    strategy.state.clear()

    def evaluate(step: int) -> dict[str, float]:
        idx = test_idx or train_idx
        with torch.no_grad():
            ps, ss = [], []
            for i in idx:
                out, _, _ = render_splats(params, viewmats[i : i + 1], Ks[i : i + 1], w, h, cfg.sh_degree)
                out = out.clamp(0, 1)
                ps.append(float(psnr(out, images[i : i + 1])[0]))
                ss.append(float(ssim(out, images[i : i + 1])[0]))
        m = {
            "psnr": float(np.mean(ps)),
            "ssim": float(np.mean(ss)),
            "num_gaussians": params["means"].shape[0],
            "held_out": bool(test_idx),
        }
        LOG.info(
            "step %d: %s PSNR %.2f dB, SSIM %.4f, %d Gaussians",
            step,
            "held-out" if test_idx else "train",
            m["psnr"],
            m["ssim"],
            m["num_gaussians"],
        )
        if on_eval:
            on_eval(step, m)
        return m

    t0 = time.perf_counter()
    best: tuple[int, dict[str, float], dict[str, torch.Tensor]] | None = None
    order = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(cfg.seed))
    bar = tqdm(range(1, cfg.iterations + 1), desc="splats", dynamic_ncols=True, mininterval=1.0)
    metrics: dict[str, float] = {}
    for step in bar:
        i = train_idx[int(order[(step - 1) % len(order)])]
        sh = min(cfg.sh_degree, (step - 1) // max(1, cfg.sh_degree_interval))
        out, _, info = render_splats(params, viewmats[i : i + 1], Ks[i : i + 1], w, h, sh)
        info["means2d"].retain_grad()
        gt = images[i : i + 1]
        l1 = (out - gt).abs().mean()
        loss = (1 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * (1 - ssim(out, gt).mean())
        loss.backward()
        strategy.step_post_backward(params, optimizers, step, info, scene_scale, gen)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        for g in optimizers["means"].param_groups:
            g["lr"] *= means_decay
        if step % 50 == 0:
            bar.set_postfix(
                loss=f"{loss.item():.4f}", gs=params["means"].shape[0], it_s=f"{step / (time.perf_counter() - t0):.1f}"
            )
        if step % cfg.eval_every == 0 or step == cfg.iterations:
            metrics = evaluate(step)
            if best is None or metrics["psnr"] > best[1]["psnr"]:
                best = (step, dict(metrics), {k: v.detach().clone() for k, v in params.items()})
    if best is not None and metrics["psnr"] < best[1]["psnr"] - KEEP_BEST_MARGIN_DB:
        # The last evaluated state is markedly worse than an earlier one (a late opacity reset, a
        # divergence): write the best state, and say so.
        LOG.warning(
            "held-out PSNR fell from %.2f dB at step %d to %.2f dB at the end; keeping the state of step %d",
            best[1]["psnr"],
            best[0],
            metrics["psnr"],
            best[0],
        )
        params = best[2]
        metrics = {**best[1], "final_psnr": metrics["psnr"], "kept_step": best[0]}
    metrics["best_psnr"], metrics["best_step"] = (best[1]["psnr"], best[0]) if best else (float("nan"), 0)
    metrics["train_seconds"] = time.perf_counter() - t0
    metrics["train_images"] = len(train_idx)
    metrics["test_images"] = len(test_idx)
    metrics["iterations"] = cfg.iterations
    metrics["train_width"], metrics["train_height"] = w, h
    if not math.isfinite(metrics.get("psnr", float("nan"))):
        raise RuntimeError("optimisation diverged (PSNR is not finite)")
    return TrainResult({k: v.detach() for k, v in params.items()}, cfg.sh_degree, metrics, test_idx)
