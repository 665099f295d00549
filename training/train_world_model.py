"""`worldmodel train-world-model DATASET`: train a WorldModel with HF accelerate.

One loop (CleanRL style) that runs unchanged on CPU, one GPU, or many through `accelerate launch`.
Every batch is drawn from a generator seeded by (seed, step, micro-batch, rank), so a resumed run
sees exactly the batches and noise it would have seen: the checkpoint holds the step, weights,
EMA weights and optimiser state (safetensors + JSON, no pickle), written atomically.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import tyro

from training.world_model_checkpoints import load_checkpoint, load_initial_weights, save_checkpoint, starting_config
from wmcore.errors import UserInputError, require_at_least
from wmcore.local_ranks import inside_launched_job, run_ranks, usable_cores
from wmcore.rundir import RunDir, open_run
from worldmodel.config import WorldModelConfig
from worldmodel.reward_refit import RewardRefitConfig

LOG = logging.getLogger("worldmodel.train")


@dataclass
class TrainWorldModelConfig:
    """Train an action-conditioned diffusion world model on a trajectory dataset."""

    dataset: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="DATASET")]]
    """Trajectory dataset directory (from `worldmodel collect`)."""
    out: Path = Path("runs/world_model")
    """Run directory: checkpoints/, model/ (EMA weights), tensorboard/, config, log, metrics. Re-running
    with the same `out` resumes from its last checkpoint."""
    steps: int = 2000
    """Optimiser steps to train for."""
    batch_size: int = 8
    """Segments per micro-batch: split among --processes; per process under `accelerate launch`."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimiser step."""
    lr: float = 3e-4
    """Peak AdamW learning rate."""
    warmup_steps: int = 100
    """Linear warm-up steps, then cosine decay to lr * min_lr_ratio."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of `lr`."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient-norm clipping threshold."""
    ema_decay: float = 0.999
    """Final decay of the exponential moving average of the weights (the saved model uses the EMA); the decay
    warms up as min(ema_decay, (1 + step) / (10 + step)) so short runs are not dominated by the initial
    weights."""
    motion_weight: float = 25.0
    """Extra loss weight on pixels that change from the last context frame to the target (0: plain EDM
    loss). When few pixels move (Atari) it is what makes the model learn the actions' effect (BENCHMARKS.md,
    *World model*: Breakout with and without it)."""
    motion_per_sample: bool = False
    """Normalise the motion weights within each transition rather than over the batch, so transitions where
    nothing moves (a body pressed against a wall) are not down-weighted by up to 1 + motion_weight."""
    mixed_precision: str = "no"
    """"no", "bf16" or "fp16" (passed to accelerate; fp16 needs a GPU)."""
    init: Path | None = None
    """Start from the weights of this saved world model (e.g. `assets/world_model_rooms`, pretrained on procedural
    rooms by `pretrain-world-model`) instead of random ones; its config.json is the architecture (--model.* is
    not used) and the dataset must have its resolution and actions. A run that resumes its checkpoints
    continues from them instead."""
    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """The world model's architecture and sampling settings (worldmodel.config.WorldModelConfig, written as the
    model's config.json); its resolution and action space are the dataset's, its text settings follow
    --text-encoder."""
    recent_fraction: float = 0.0
    """Fraction of each batch drawn from the newest `recent_episodes` episodes (DIAMOND: 0.7 of the newest
    quarter), so what the current policy collected weighs more; 0: uniform over all segments."""
    recent_episodes: int = 0
    """How many of the dataset's last (training) episodes count as recent for `recent_fraction`."""
    self_context: float = 0.0
    """Fraction of each batch whose last context frame is the model's own prediction of it (sampled
    without gradient from the real frames before it), so that it learns to continue from frames like
    the ones its rollouts feed it (scheduled sampling, against errors compounding); 0: off. Costs one
    sampling call on that fraction of the batch per step."""
    self_context_start: int = 1000
    """First step at which `self_context` applies (before it, the predictions are mostly noise)."""
    reward_refit: RewardRefitConfig = field(default_factory=RewardRefitConfig)
    """After training, refit the saved model's reward and termination model on its own imagined
    rollouts (worldmodel.reward_refit), so that it stays right on imagined frames; off while its steps are 0."""
    termination_weight: float | None = None
    """Loss weight of terminal steps in the termination BCE; None: sqrt(non-terminal / terminal steps)
    of the training episodes. Terminal steps are rare (at most one per episode), and unweighted the
    model learns never to end an episode."""
    text_encoder: Path | None = None
    """Local directory of a CLIP text model or T5 encoder (+ tokenizer) for text conditioning; None: no
    text."""
    holdout_episodes: int = 1
    """Last episodes of the dataset held out for periodic evaluation."""
    eval_every: int = 500
    """Evaluate next-frame PSNR on held-out episodes every N steps (0: never)."""
    eval_segments: int = 32
    """Held-out segments per periodic evaluation."""
    checkpoint_every: int = 200
    """Write a resumable checkpoint every N steps (and at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (older ones are deleted after a newer one is complete)."""
    log_every: int = 10
    """Log losses and steps/s every N steps."""
    max_minutes: float | None = None
    """Stop (with a checkpoint and a saved model) after this wall-clock time; None: run all steps."""
    threads: int | None = None
    """torch CPU threads per process (None: torch's default; with --processes, the usable cores shared out)."""
    processes: int = 1
    """Data-parallel CPU processes to spawn (wmcore.local_ranks), each on batch_size / processes segments of
    every batch: the same steps on batches of the same size, about twice as fast with 2 on the 2-core CPU, where
    one process keeps about one core busy (BENCHMARKS.md, *World model*). 1: this process alone, on the GPU
    when there is one. Leave it 1 under `accelerate launch`, which starts the processes itself."""
    compile: bool = False
    """Run the denoiser UNet through torch.compile: the first step waits for compilation, and on a CPU
    the later steps gain little, as the convolutions' backward dominates there (BENCHMARKS.md, *Speed*)."""
    seed: int = 0
    """Seed of the initial weights, batches and noise."""
    overwrite: bool = False
    """Start afresh in `out` even when it holds a previous run (replaced once this one has finished;
    without it, a run with checkpoints is resumed and any other non-empty `out` is refused)."""


def check_train_config(cfg: TrainWorldModelConfig) -> None:
    """Every option checked before anything is loaded or written."""
    if cfg.mixed_precision not in ("no", "bf16", "fp16"):
        raise UserInputError(f"--mixed-precision {cfg.mixed_precision!r}: use no, bf16 or fp16")
    if not 0.0 <= cfg.self_context <= 1.0:
        raise UserInputError(f"--self-context {cfg.self_context}: a fraction of the batch, in [0, 1]")
    if not 0.0 <= cfg.recent_fraction <= 1.0:
        raise UserInputError(f"--recent-fraction {cfg.recent_fraction}: a fraction of the batch, in [0, 1]")
    require_at_least(
        ("--steps", cfg.steps, 1),
        ("--batch-size", cfg.batch_size, 1),
        ("--grad-accum", cfg.grad_accum, 1),
        ("--warmup-steps", cfg.warmup_steps, 0),
        ("--holdout-episodes", cfg.holdout_episodes, 0),
        ("--eval-every", cfg.eval_every, 0),
        ("--eval-segments", cfg.eval_segments, 1),
        ("--checkpoint-every", cfg.checkpoint_every, 1),
        ("--keep-checkpoints", cfg.keep_checkpoints, 1),
        ("--log-every", cfg.log_every, 1),
        ("--recent-episodes", cfg.recent_episodes, 0),
        ("--self-context-start", cfg.self_context_start, 0),
    )
    for name, value in (
        ("--lr", cfg.lr),
        ("--min-lr-ratio", cfg.min_lr_ratio),
        ("--weight-decay", cfg.weight_decay),
        ("--grad-clip", cfg.grad_clip),
        ("--ema-decay", cfg.ema_decay),
        ("--motion-weight", cfg.motion_weight),
    ):
        if not math.isfinite(value) or value < 0:
            raise UserInputError(f"{name} {value}: give a finite number, 0 or more")
    if cfg.lr == 0 or cfg.ema_decay >= 1:
        raise UserInputError("--lr must be above 0 and --ema-decay below 1")
    cfg.reward_refit.check()
    if cfg.termination_weight is not None and not (
        math.isfinite(cfg.termination_weight) and cfg.termination_weight > 0
    ):
        raise UserInputError(f"--termination-weight {cfg.termination_weight}: give a finite weight above 0")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise UserInputError(f"--max-minutes {cfg.max_minutes}: give a time above 0")
    if cfg.text_encoder is not None and not Path(cfg.text_encoder).is_dir():
        raise UserInputError(f"--text-encoder {cfg.text_encoder}: no such folder; give a local text-model folder")
    if not (Path(cfg.dataset) / "dataset.json").is_file():
        raise UserInputError(f"{cfg.dataset}: no dataset.json found; record a dataset with `worldmodel collect`")
    check_processes(cfg.batch_size, cfg.processes)
    if cfg.processes > 1 and inside_launched_job():
        raise UserInputError(f"--processes {cfg.processes} under a launcher (WORLD_SIZE is set): leave it 1")


def check_processes(
    batch_size: int, processes: int, batch_flag: str = "--batch-size", processes_flag: str = "--processes"
) -> None:
    """The batch must split evenly among the data-parallel processes (callers name their own flags)."""
    if processes < 1 or batch_size % processes:
        raise UserInputError(f"{processes_flag} {processes}: give a divisor of {batch_flag} {batch_size}")


def default_processes(batch_size: int) -> int:
    """--processes for callers that leave it to the machine: 1 when a GPU trains; on a CPU the most processes,
    one per usable core at most, that share the batch evenly with at least 4 segments each (2 on the 2-core CPU
    with the loop's 16)."""
    if torch.cuda.is_available():
        return 1
    most = max(1, min(usable_cores(), batch_size // 4))
    return max(n for n in range(1, most + 1) if batch_size % n == 0)


def own_context(
    model: Any,
    frames: torch.Tensor,
    actions: torch.Tensor,
    count: int,
    generator: torch.Generator | None = None,
    texts: list[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training segments from segments one frame longer: frames [B,L+2,...] and actions [B,L+1,...]
    give their last L+1 frames and L actions, where in the first `count` rows the last context frame
    is the model's own prediction of it, sampled from the L real frames before it."""
    L = model.config.context
    out = frames[:, 1:].clone()
    if count > 0:
        pred = model.sample_next(
            frames[:count, :L], actions[:count, :L], generator=generator, texts=None if texts is None else texts[:count]
        )
        out[:count, L - 1] = pred.to(out.device)
    return out, actions[:, 1:]


def refit_saved_model(cfg: TrainWorldModelConfig, episodes: list[Any], term_weight: float, run: Any) -> None:
    """Refit the reward model of the saved (EMA) model on its imagined rollouts and save it again."""
    from worldmodel.model import WorldModel
    from worldmodel.reward_refit import refit_reward_model

    model = WorldModel.from_pretrained(cfg.out / "model", device="cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    figures = refit_reward_model(model, episodes, cfg.reward_refit, term_weight, seed=cfg.seed)
    model.save_pretrained(cfg.out / "model")
    run.log_metrics(event="reward_refit", seconds=time.time() - t0, **figures)


def termination_weight(episodes: list[Any]) -> float:
    """sqrt(non-terminal / terminal steps), 1 when there are none: halfway (in log terms) between
    ignoring the rare class and balancing it fully, which makes a model end episodes too eagerly."""
    steps = sum(int(ep.steps) for ep in episodes)
    ends = sum(int(np.asarray(ep.terminated).sum()) for ep in episodes)
    return float(np.sqrt((steps - ends) / ends)) if ends else 1.0


def lr_at(step: int, cfg: TrainWorldModelConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


# ------------------------------------------------------------------ training
def train_world_model(cfg: TrainWorldModelConfig) -> Path:
    """Train (or resume) and return the directory of the saved EMA model."""
    check_train_config(cfg)
    if cfg.processes > 1:
        run_ranks(_train_process, (cfg,), cfg.processes, cfg.threads)
        return cfg.out / "model"
    return _train_process(cfg)


def _train_process(cfg: TrainWorldModelConfig) -> Path:
    """One process's training: alone, or one rank of a launched or spawned job."""
    from accelerate import Accelerator

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # cpu=True (no GPU, or --processes): accelerate then runs launched or spawned ranks as MULTI_CPU (gloo)
    # data parallel.
    accelerator = Accelerator(
        cpu=cfg.processes > 1 or not torch.cuda.is_available(),
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        log_with="tensorboard",
        project_dir=str(cfg.out),
    )
    main = accelerator.is_main_process
    resume = not cfg.overwrite and (Path(cfg.out) / "checkpoints" / "latest.json").is_file()
    # Checkpoints are finished work: a failed run keeps them (and says why in log.txt) to resume from.
    with open_run(
        cfg.out, cfg, resume=resume, overwrite=cfg.overwrite, keep_on_failure=True, console=main, enabled=main
    ) as run:
        return _train(cfg, accelerator, run)


def _train(cfg: TrainWorldModelConfig, accelerator: Any, run: RunDir | None) -> Path:
    """The training loop of `train_world_model`, inside its opened (not yet started) run directory."""
    from tqdm import tqdm

    from worldmodel.dataset import TrajectoryDataset
    from worldmodel.evaluation import evaluate
    from worldmodel.model import WorldModel, still_steps
    from worldmodel.segments import SegmentSampler
    from worldmodel.text import TextEncoder

    main = run is not None
    dataset = TrajectoryDataset(cfg.dataset)
    train_eps, held_eps = dataset.split(cfg.holdout_episodes)
    # self_context needs the frame before each segment, to predict its last context frame from
    sampler = SegmentSampler(train_eps, cfg.model.context, 2 if cfg.self_context > 0 else 1)
    term_weight = cfg.termination_weight or termination_weight(train_eps)
    model_config = starting_config(cfg.model, dataset, cfg.init, cfg.text_encoder)
    torch.manual_seed(cfg.seed)
    text = TextEncoder(cfg.text_encoder) if cfg.text_encoder else None
    model = WorldModel(model_config, text_encoder=text)
    if cfg.init is not None:
        load_initial_weights(model, cfg.init)
    mc_dict = model.config.to_dict()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt_root = cfg.out / "checkpoints"
    start, ema = 0, {k: v.detach().clone().float() for k, v in model.trainable_state_dict().items()}
    # --overwrite starts afresh: the previous run's checkpoints are replaced, not resumed from.
    resumed = None if cfg.overwrite else load_checkpoint(ckpt_root, model, optimizer, mc_dict)
    if resumed is not None:
        start, ema = resumed
    if main:  # every input checked: the run is accepted
        run.start(resume_step=start if resumed is not None else None)
        if resumed is not None:
            LOG.info("resumed from %s at step %d", ckpt_root, start)
    accelerator.wait_for_everyone()
    model.compile_network(cfg.compile)
    ddp_model, optimizer = accelerator.prepare(model, optimizer)
    ema = {k: v.to(accelerator.device) for k, v in ema.items()}  # beside the weights it follows
    if main:
        counts = model.num_parameters()
        LOG.info(
            "parameters: %s; %d train segments in %d episodes, %d held out",
            counts,
            len(sampler),
            len(train_eps),
            len(held_eps),
        )
        run.log_metrics(
            step=start,
            event="start",
            resumed=resumed is not None,
            processes=accelerator.num_processes,
            **counts,
        )
    accelerator.init_trackers("tensorboard")
    rank = accelerator.process_index

    saved_at = [start if resumed is not None else -1]

    def save_model_and_checkpoint(step: int) -> None:
        saved_at[0] = step
        if main:
            save_checkpoint(ckpt_root, step, model, ema, optimizer, mc_dict, cfg.keep_checkpoints)
            model.save_pretrained(cfg.out / "model", state_dict=ema)
        accelerator.wait_for_everyone()

    def periodic_eval(step: int) -> None:
        if main:
            ema_model = WorldModel(model.config, text_encoder=text).to(accelerator.device)
            ema_model.load_weights(ema, "EMA")
            ema_model.eval()
            m = evaluate(
                ema_model,
                held_eps,
                horizons=(1,),
                segments=cfg.eval_segments,
                seed=cfg.seed,
                reward_transitions=256,
            )
            vals = {
                k: m[k]
                for k in (
                    "next_frame_psnr",
                    "copy_last_psnr",
                    "action_sensitivity_db_h1",
                    "reward_mae",
                    "termination_f1",
                )
            }
            LOG.info("step %d eval: %s", step, {k: round(v, 3) for k, v in vals.items()})
            run.log_metrics(step=step, event="eval", **vals)
            accelerator.log({f"eval/{k}": v for k, v in vals.items()}, step=step)
        accelerator.wait_for_everyone()

    model.train()
    batch = cfg.batch_size // cfg.processes  # this process's share of every batch
    t0, last_t, last_step = time.time(), time.time(), start
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train", disable=not main)
    done = start
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        for micro in range(cfg.grad_accum):
            rng = np.random.default_rng(_seed(cfg.seed, step, micro, rank))
            gen = torch.Generator().manual_seed(_seed(cfg.seed, step, micro, rank, 1))
            b = sampler.batch(sampler.sample_indices(batch, rng, cfg.recent_fraction, cfg.recent_episodes))
            texts = sampler.texts(b["episode"]) if text is not None else None
            frames, actions = b["frames"], b["actions"]
            still = still_steps(frames)  # from the real frames, before any context frame is the model's own
            if cfg.self_context > 0:
                own = round(cfg.self_context * batch) if step >= cfg.self_context_start else 0
                frames, actions = own_context(model, frames, actions, own, gen, texts)
            dev = accelerator.device
            with accelerator.accumulate(ddp_model):
                loss, diff_loss, heads_loss = ddp_model(
                    frames.to(dev),
                    actions.to(dev),
                    b["rewards"][:, -1].to(dev),
                    b["terminated"][:, -1].to(dev),
                    texts=texts,
                    generator=gen,
                    motion_weight=cfg.motion_weight,
                    termination_weight=term_weight,
                    motion_per_sample=cfg.motion_per_sample,
                    still=still.to(dev),
                    across_ranks=accelerator.num_processes > 1,  # the motion weights' norm: the whole batch's
                )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in model.trainable_state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].lerp_(v.detach().float(), 1 - decay)
                else:
                    ema[k].copy_(v)
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.time()
            sps = (done - last_step) / max(now - last_t, 1e-9)
            last_t, last_step = now, done
            vals = {
                "loss": loss.item(),
                "diffusion_loss": diff_loss.item(),
                "heads_loss": heads_loss.item(),  # reward/termination (+ still) heads
                "lr": lr_at(step, cfg),
                "steps_per_second": sps,
            }
            accelerator.log({f"train/{k}": v for k, v in vals.items()}, step=done)
            if main:
                run.log_metrics(step=done, **vals)
                bar.set_postfix(loss=f"{vals['loss']:.4f}", sps=f"{sps:.2f}")
            time_up = cfg.max_minutes is not None and (now - t0) / 60 > cfg.max_minutes
            flag = accelerator.reduce(torch.tensor(float(time_up), device=accelerator.device), "max")
            if flag.item() > 0:
                LOG.info("time budget of %.1f min reached at step %d", cfg.max_minutes, done)
                break
        if done % cfg.checkpoint_every == 0:
            save_model_and_checkpoint(done)
        if cfg.eval_every and done % cfg.eval_every == 0 and held_eps:
            periodic_eval(done)
    if saved_at[0] != done or not (cfg.out / "model").is_dir():
        save_model_and_checkpoint(done)
    accelerator.end_training()
    if main and cfg.reward_refit.steps > 0:
        refit_saved_model(cfg, train_eps, term_weight, run)
    if main:
        LOG.info("done at step %d in %.1f s; model in %s", done, time.time() - t0, cfg.out / "model")
        run.log_metrics(step=done, event="end", seconds=time.time() - t0)
    return cfg.out / "model"


if __name__ == "__main__":  # e.g. `accelerate launch -m training.train_world_model ...`
    import sys

    from training.cli import main

    sys.exit(main(["train-world-model", *sys.argv[1:]]))
