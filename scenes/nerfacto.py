"""nerfacto through nerfstudio's own trainer and config classes, on the posed images our ingest
writes (a nerfstudio transforms.json in the normalised frame, z up, cameras in a unit sphere).

The dataparser is told to leave that frame alone (no re-orientation, centring or scaling), so the
model frame is our normalised frame (its `dataparser_transforms.json` then holds just our own
normalisation, the transforms.json's `applied_transform`, as nerfstudio maps from the original data). Held-out
images are nerfstudio's `interval` split, every `test_every`-th image by file name, as the splat
method holds out every 8th. On CPU the model uses nerfstudio's pure-torch implementation
(`--pipeline.model.implementation torch`), without mixed precision; on CUDA, tiny-cuda-nn when it
is installed (nerfstudio falls back to torch otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenes.posed import PosedImages

LOG = logging.getLogger(__name__)


@dataclass
class NerfactoConfig:
    """How nerfacto is trained (nerfstudio's nerfacto defaults otherwise)."""

    iterations: int = 5000
    """Training steps (nerfstudio's default is 30,000, which takes days on a CPU: see BENCHMARKS.md, *NeRF*)."""
    time_budget: float = 0.0
    """Stop training after this many seconds of training (0: run all iterations)."""
    rays_per_batch: int = 1024
    """Rays per training step (nerfstudio's default is 4,096; fewer keeps CPU steps short)."""
    eval_chunk: int = 4096
    """Rays rendered at once when evaluating and rendering (nerfstudio's default, 32,768, needs more memory
    than a CPU machine may have: BENCHMARKS.md, *NeRF*)."""
    max_size: int = 128
    """Longest image side for held-out evaluation and previews (as the splat method's max_size)."""
    test_every: int = 8
    """Every this many images (by file name) is held out, when there are at least twice as many."""
    eval_every: int = 0
    """Also evaluate on the held-out images every this many steps (0: only at the end)."""
    seed: int = 0
    """nerfstudio's machine seed."""


@dataclass
class NerfactoResult:
    run_dir: Path
    """The nerfstudio run: config.yml, dataparser_transforms.json, nerfstudio_models/step-*.ckpt."""
    model: Any
    """The trained nerfstudio model, in eval mode."""
    metrics: dict[str, Any]
    """Final held-out PSNR/SSIM, steps, seconds, train and eval image counts."""
    test_indices: list[int]
    """Indices into the posed images that nerfstudio held out."""


def held_out(posed: PosedImages, test_every: int) -> list[int]:
    """The images nerfstudio's `interval` split holds out: every `test_every`-th by sorted file name."""
    if test_every <= 0 or len(posed) < 2 * test_every:
        return []
    order = np.argsort([Path(p).name for p in posed.image_paths], kind="stable")
    return sorted(int(i) for rank, i in enumerate(order) if rank % test_every == 0)


def trainer_config(data_dir: Path, out_dir: Path, cfg: NerfactoConfig, device: str, num_images: int) -> Any:
    """nerfstudio's `nerfacto` method config, adapted: our frame kept as is, CPU-friendly batch and
    chunk sizes, nerfstudio's own evaluation and viewer off (we evaluate in metres, they would
    render full images with LPIPS)."""
    from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
    from nerfstudio.configs.base_config import LocalWriterConfig, LoggingConfig, MachineConfig, ViewerConfig
    from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.engine.optimizers import AdamOptimizerConfig
    from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
    from nerfstudio.engine.trainer import TrainerConfig
    from nerfstudio.models.nerfacto import NerfactoModelConfig
    from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

    never = 1 << 30
    split = "interval" if cfg.test_every > 0 and num_images >= 2 * cfg.test_every else "all"
    cuda = device.startswith("cuda")
    return TrainerConfig(
        method_name="nerfacto",
        experiment_name="nerfstudio",
        timestamp="run",
        output_dir=out_dir,
        data=data_dir,
        max_num_iterations=cfg.iterations,
        mixed_precision=cuda,
        steps_per_save=never,
        steps_per_eval_batch=never,
        steps_per_eval_image=never,
        steps_per_eval_all_images=never,
        save_only_latest_checkpoint=True,
        vis="tensorboard",
        machine=MachineConfig(device_type="cuda" if cuda else "cpu", seed=cfg.seed),
        logging=LoggingConfig(local_writer=LocalWriterConfig(enable=False)),
        viewer=ViewerConfig(quit_on_train_completion=True),
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                data=data_dir,
                dataparser=NerfstudioDataParserConfig(
                    data=data_dir,
                    orientation_method="none",
                    center_method="none",
                    auto_scale_poses=False,
                    scale_factor=1.0,
                    downscale_factor=1,
                    eval_mode=split,
                    eval_interval=cfg.test_every,
                    load_3D_points=False,
                ),
                train_num_rays_per_batch=cfg.rays_per_batch,
                eval_num_rays_per_batch=cfg.rays_per_batch,
            ),
            model=NerfactoModelConfig(
                eval_num_rays_per_chunk=cfg.eval_chunk,
                average_init_density=0.01,
                implementation="tcnn" if cuda else "torch",
                camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"),
            ),
        ),
        optimizers={
            "proposal_networks": {
                "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=200000),
            },
            "fields": {
                "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=200000),
            },
            "camera_opt": {
                "optimizer": AdamOptimizerConfig(lr=1e-3, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=5000),
            },
        },
    )


def evaluate(model: Any, posed: PosedImages, idx: list[int], max_size: int) -> dict[str, float]:
    """Held-out PSNR/SSIM (wmcore.metrics, as for splats) of renders at `max_size`."""
    import torch

    from scenes.nerf_scene import render_model
    from scenes.train_splats import load_images
    from wmcore.metrics import psnr, ssim

    images, Ks, w, h = load_images(posed.subset(idx), max_size)
    model.eval()
    rgb, _ = render_model(model, posed.cam_to_world[idx], Ks.numpy(), w, h)
    rgb = rgb.clamp(0, 1)
    with torch.no_grad():
        return {"psnr": float(psnr(rgb, images).mean()), "ssim": float(ssim(rgb, images).mean())}


def train_nerfacto(
    posed: PosedImages,
    data_dir: Path,
    out_dir: Path,
    cfg: NerfactoConfig,
    device: str = "cpu",
    on_eval: Callable[[int, dict[str, Any]], None] | None = None,
) -> NerfactoResult:
    """Train nerfacto on `data_dir/transforms.json` (which describes `posed`) into `out_dir`."""
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
    from nerfstudio.engine.trainer import Trainer

    from scenes.nerfstudio_runtime import lpips_without_download, require_nerfstudio

    require_nerfstudio()
    config = trainer_config(Path(data_dir), Path(out_dir), cfg, device, len(posed))
    test_idx = held_out(posed, cfg.test_every)
    eval_idx = test_idx or list(range(0, len(posed), max(1, len(posed) // 8)))
    trainer = Trainer(config, local_rank=0, world_size=1)
    with lpips_without_download():
        trainer.setup()
    clock = {"train": 0.0, "since": time.perf_counter(), "step": 0}

    def run_eval(step: int) -> dict[str, Any]:
        clock["train"] += time.perf_counter() - clock["since"]
        m = {
            **evaluate(trainer.pipeline.model, posed, eval_idx, cfg.max_size),
            "held_out": bool(test_idx),
            "train_seconds": clock["train"],
        }
        LOG.info(
            "nerfacto step %d: %s PSNR %.2f dB, SSIM %.4f, %.0f s",
            step,
            "held-out" if test_idx else "train",
            m["psnr"],
            m["ssim"],
            m["train_seconds"],
        )
        if on_eval:
            on_eval(step, m)
        trainer.pipeline.train()
        clock["since"] = time.perf_counter()
        return m

    def after_step(step: int) -> None:
        clock["step"] = step + 1
        spent = clock["train"] + time.perf_counter() - clock["since"]
        if cfg.time_budget > 0 and spent >= cfg.time_budget:
            LOG.info("nerfacto: time budget of %.0f s reached after %d steps", cfg.time_budget, step + 1)
            trainer.stop_training = True
        elif cfg.eval_every > 0 and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.iterations:
            run_eval(step + 1)

    trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], after_step))
    config.save_config()
    trainer.train()
    metrics = run_eval(clock["step"])
    metrics.update(
        iterations=clock["step"],
        train_images=len(posed) - len(test_idx),
        test_images=len(test_idx),
        rays_per_batch=cfg.rays_per_batch,
        eval_max_size=cfg.max_size,
    )
    if not np.isfinite(metrics["psnr"]):
        raise RuntimeError("nerfacto diverged (held-out PSNR is not finite)")
    trainer.pipeline.model.eval()
    return NerfactoResult(config.get_base_dir(), trainer.pipeline.model, metrics, test_idx)


def finalize_run(run_dir: Path, build_dir: Path, final_dir: Path) -> None:
    """Rewrite the run's config.yml with the paths it will have once `build_dir` is renamed to
    `final_dir`, so nerfstudio's own tools (ns-viewer, ns-render) find its data and checkpoints."""
    import yaml

    from scenes.nerf_scene import CONFIG_FILE, load_run_config
    from wmcore.atomic import write_text

    build, final = Path(build_dir).resolve(), Path(final_dir).resolve()
    config = load_run_config(run_dir / CONFIG_FILE)

    def moved(p: Path) -> Path:
        return final / Path(p).resolve().relative_to(build)

    config.output_dir = moved(config.output_dir)
    config.data = config.pipeline.datamanager.data = moved(config.data)
    config.pipeline.datamanager.dataparser.data = moved(config.pipeline.datamanager.dataparser.data)
    write_text(run_dir / CONFIG_FILE, yaml.dump(config))
