"""World-model speed on this machine: imagined frames/s (batch 1, 8, 32) and training steps/s.

Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_world_model.py --out bench_wm.json
     python benchmarks/bench_world_model.py --device cuda --variants fp32 bf16 bf16+compile \
         bf16+cudagraphs --train-variants fp32 bf16 bf16+compile --repeats 50
The machine's load average is recorded with the numbers: on a shared machine they are lower bounds.
A variant is options joined by "+": channels_last, bf16 (autocast), compile (torch.compile),
cudagraphs (torch.compile in "reduce-overhead" mode: CUDA graph replays; sampling only).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from wmcore.atomic import write_json
from worldmodel.config import WorldModelConfig
from worldmodel.model import WorldModel


@dataclass
class BenchConfig:
    """Benchmark settings."""

    resolution: int = 64
    """Frame size (square)."""
    batches: tuple[int, ...] = (1, 8, 32)
    """Sampling batch sizes."""
    num_steps: int = 3
    """Denoising steps per frame."""
    train_batch: int = 16
    """Training batch size."""
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    """UNet channels (the default WorldModelConfig)."""
    downsample: int = 1
    """The networks' resolution is the frame's divided by this (the demo: 2)."""
    warp: bool = False
    """With the flow net that warps the last frame (WorldModelConfig.warp)."""
    variants: tuple[str, ...] = ("fp32", "channels_last", "bf16")
    """Sampling variants: fp32, or options joined by "+" (channels_last, bf16, compile, cudagraphs)."""
    train_variants: tuple[str, ...] = ("fp32",)
    """Training-step variants: fp32, or options joined by "+" (channels_last, bf16, compile)."""
    device: str = "cpu"
    """Where to run: cpu or cuda."""
    repeats: int = 3
    """Timed repetitions (after warm-up calls that compile and record graphs)."""
    threads: int | None = None
    """torch threads (None: default)."""
    out: Path | None = None
    """Write the results as JSON here."""


OPTIONS = {"fp32", "channels_last", "bf16", "compile", "cudagraphs"}


def options(variant: str) -> set[str]:
    opts = set(variant.split("+")) - {"fp32"}
    if opts - OPTIONS:
        raise SystemExit(f"variant {variant!r}: unknown option(s) {sorted(opts - OPTIONS)}; use {sorted(OPTIONS)}")
    return opts


def timed(fn, repeats: int, device: torch.device) -> float:
    """Seconds per call: three warm-up calls (compilation, CUDA graph recording), then `repeats`
    timed calls; the device is synchronised before the clock is read."""
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t) / repeats


def main(cfg: BenchConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    r = cfg.resolution
    mcfg = WorldModelConfig(
        resolution=(r, r),
        block_out_channels=cfg.block_out_channels,
        num_steps=cfg.num_steps,
        downsample=cfg.downsample,
        warp=cfg.warp,
    )
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_avg_before": os.getloadavg(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        },
        "parameters": WorldModel(mcfg).num_parameters(),
        "config": mcfg.to_dict(),
        "sampling": {},
    }
    L = mcfg.context
    for variant in cfg.variants:
        opts = options(variant)
        torch._dynamo.reset()  # each variant compiles afresh: earlier ones would count toward the recompile limit
        model = WorldModel(mcfg).to(device).eval()
        model.configure_inference(
            channels_last="channels_last" in opts,
            bf16="bf16" in opts,
            compile=bool(opts & {"compile", "cudagraphs"}),
            compile_mode="reduce-overhead" if "cudagraphs" in opts else None,
        )
        for b in cfg.batches:
            frames = torch.randint(0, 256, (b, L, r, r, 3), dtype=torch.uint8, device=device)
            actions = torch.randint(0, 4, (b, L), device=device)
            g = torch.Generator(device).manual_seed(0)
            sec = timed(lambda: model.sample_next(frames, actions, generator=g), cfg.repeats, device)  # noqa: B023
            results["sampling"][f"{variant}_batch{b}"] = {
                "seconds_per_call": sec,
                "frames_per_second": b / sec,
            }
            print(f"sampling {variant} batch {b}: {b / sec:.1f} frames/s ({sec * 1000:.0f} ms/call)", flush=True)
    b = cfg.train_batch
    frames = torch.randint(0, 256, (b, L + 1, r, r, 3), dtype=torch.uint8, device=device)
    actions = torch.randint(0, 4, (b, L), device=device)
    rewards, ends = torch.zeros(b, device=device), torch.zeros(b, dtype=torch.bool, device=device)
    results["training"] = {}
    for variant in cfg.train_variants:
        opts = options(variant)
        if "cudagraphs" in opts:
            raise SystemExit("cudagraphs is a sampling variant; training steps use compile")
        torch.manual_seed(0)
        torch._dynamo.reset()
        model = WorldModel(mcfg).to(device).train()
        if "channels_last" in opts:
            model.unet.to(memory_format=torch.channels_last)
        model.compile_network("compile" in opts)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def train_step() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in opts):  # noqa: B023
                loss, _, _ = model(frames, actions, rewards, ends)  # noqa: B023
            loss.backward()
            opt.step()  # noqa: B023
            opt.zero_grad()  # noqa: B023

        sec = timed(train_step, cfg.repeats, device)
        results["training"][variant] = {
            "batch": b,
            "seconds_per_step": sec,
            "steps_per_second": 1 / sec,
            "samples_per_second": b / sec,
        }
        print(f"training {variant} batch {b}: {1 / sec:.2f} steps/s ({b / sec:.1f} samples/s)", flush=True)
    results["machine"]["load_avg_after"] = os.getloadavg()
    if cfg.out:
        write_json(cfg.out, results)
    print(json.dumps(results["parameters"]))
    return results


if __name__ == "__main__":
    main(tyro.cli(BenchConfig))
