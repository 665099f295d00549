"""`worldmodel evaluate-world-model MODEL DATASET`: fidelity on held-out episodes.

Writes metrics.json (next-frame PSNR/SSIM, PSNR by horizon for the model, copy-last-frame and
shuffled-action rollouts, action sensitivity, reward/termination accuracy and F1), psnr_horizon.png
and rollouts.mp4 (real | imagined, side by side) into the run directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import tyro

from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError, require_at_least
from wmcore.rundir import open_run

LOG = logging.getLogger("worldmodel.evaluate")


@dataclass
class EvaluateWorldModelConfig:
    """Evaluate a trained world model on episodes it was not trained on."""

    model: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="MODEL")]]
    """Model directory (RUN/model from train-world-model)."""
    dataset: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="DATASET")]]
    """Trajectory dataset with held-out episodes (e.g. collected with another seed)."""
    out: Path = Path("runs/eval_world_model")
    """Run directory for metrics.json, psnr_horizon.png, rollouts.mp4, config and log."""
    holdout_episodes: int = 0
    """Evaluate only the last N episodes (the ones train-world-model held out); 0: all episodes."""
    horizons: tuple[int, ...] = (1, 5, 10, 15)
    """Autoregressive horizons reported (the rollout runs to the largest)."""
    segments: int = 64
    """Segments (start points) evaluated, spread evenly over the episodes."""
    batch_size: int = 16
    """Segments imagined in parallel."""
    num_steps: int | None = None
    """Denoising steps (None: the model's default)."""
    sampler: Literal["euler", "heun"] | None = None
    """Sampler (None: the model's default)."""
    video_examples: int = 4
    """Rollouts shown in the video (0: no video)."""
    fps: int = 8
    """Video frame rate."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    seed: int = 0
    """Seed of the sampling noise."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


def check_evaluate_config(cfg: EvaluateWorldModelConfig) -> None:
    """Every option checked before the model and data are loaded."""
    if not cfg.horizons or min(cfg.horizons) < 1:
        raise UserInputError(
            f"--horizons {' '.join(map(str, cfg.horizons))}: give one or more horizons of 1 or more steps"
        )
    require_at_least(
        ("--segments", cfg.segments, 1),
        ("--batch-size", cfg.batch_size, 1),
        ("--holdout-episodes", cfg.holdout_episodes, 0),
        ("--video-examples", cfg.video_examples, 0),
        ("--fps", cfg.fps, 1),
    )
    if cfg.num_steps is not None and cfg.num_steps < 1:
        raise UserInputError(f"--num-steps {cfg.num_steps}: give 1 or more denoising steps")


def plot_psnr(metrics: dict[str, Any], path: Path) -> None:
    """PSNR against horizon: the model with true and shuffled actions, and copying the last frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hs = [int(h) for h in metrics["psnr_by_horizon"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("psnr_by_horizon", "world model (true actions)"),
        ("shuffled_actions_psnr_by_horizon", "world model (shuffled actions)"),
        ("copy_last_psnr_by_horizon", "copy last frame"),
    ):
        if key in metrics:
            ax.plot(hs, [metrics[key][str(h)] for h in hs], marker="o", label=label)
    ax.set_xlabel("horizon (steps)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_video(real: torch.Tensor, pred: torch.Tensor, path: Path, fps: int, scale: int = 4) -> None:
    """real, pred uint8 [N, T, H, W, 3] -> mp4 with rows of (real | imagined), upscaled for viewing."""
    from wmcore.media import write_video as write_mp4

    n, t, h, w, _ = real.shape
    gap = np.full((h, 2, 3), 255, np.uint8)
    frames = []
    for i in range(t):
        rows = [np.concatenate([real[j, i].numpy(), gap, pred[j, i].numpy()], axis=1) for j in range(n)]
        grid = np.concatenate(rows, axis=0)
        frames.append(grid.repeat(scale, 0).repeat(scale, 1))
    write_mp4(path, frames, fps=fps)


def evaluate_world_model(cfg: EvaluateWorldModelConfig) -> dict[str, Any]:
    """Evaluate, write the artifacts, and return the metrics."""
    from worldmodel.dataset import TrajectoryDataset
    from worldmodel.evaluation import evaluate
    from worldmodel.model import WorldModel

    check_evaluate_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    with open_run(cfg.out, cfg, overwrite=cfg.overwrite, tensorboard=True) as run:
        model = WorldModel.from_pretrained(cfg.model)
        dataset = TrajectoryDataset(cfg.dataset)
        if dataset.resolution != model.config.resolution or dataset.action_space != model.config.space:
            raise UserInputError(
                f"{cfg.dataset}: dataset ({dataset.resolution}, {dataset.action_space.to_dict()}) "
                f"does not match the model ({model.config.resolution}, {model.config.action_space})"
            )
        episodes = dataset.split(cfg.holdout_episodes)[1] if cfg.holdout_episodes else dataset.episodes
        run.start()  # every input checked: the run is accepted
        t0 = time.time()
        metrics = evaluate(
            model,
            episodes,
            horizons=cfg.horizons,
            segments=cfg.segments,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            num_steps=cfg.num_steps,
            keep_examples=cfg.video_examples,
            method=cfg.sampler,
        )
        examples = metrics.pop("examples", None)
        metrics["seconds"] = time.time() - t0
        metrics["parameters"] = model.num_parameters()
        write_json(cfg.out / "metrics.json", metrics)
        plot_psnr(metrics, cfg.out / "psnr_horizon.png")
        if examples is not None:
            write_video(*examples, cfg.out / "rollouts.mp4", cfg.fps)
        run.log_metrics(**{k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        LOG.info(
            "next-frame PSNR %.2f dB (copy-last %.2f); h10 %.2f (copy-last %.2f); action sensitivity "
            "h5 %.2f dB; wrote %s",
            metrics["next_frame_psnr"],
            metrics["copy_last_psnr"],
            metrics.get("psnr_h10", float("nan")),
            metrics.get("copy_last_psnr_h10", float("nan")),
            metrics.get("action_sensitivity_db_h5", float("nan")),
            cfg.out,
        )
    return metrics


if __name__ == "__main__":  # e.g. `accelerate launch -m training.evaluate_world_model ...`
    import sys

    from training.cli import main

    sys.exit(main(["evaluate-world-model", *sys.argv[1:]]))
