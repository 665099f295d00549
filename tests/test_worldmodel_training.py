"""Training with accelerate (incl. two CPU processes), SIGKILL-safe resume, and evaluation artifacts."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_world_model
from test_worldmodel_dataset import make_dataset

from training.train_world_model import TrainWorldModelConfig, train_world_model
from wmcore.errors import UserInputError
from wmcore.tensors import load_tensors
from worldmodel.config import WorldModelConfig

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--model.block-out-channels",
    "16",
    "32",
    "--model.reward-channels",
    "8",
    "--model.action-embed-dim",
    "8",
    "--model.context",
    "2",
    "--batch-size",
    "4",
    "--warmup-steps",
    "2",
    "--log-every",
    "1",
    "--eval-every",
    "0",
    "--threads",
    "1",
]


def tiny_cfg(data: Path, out: Path, model: dict | None = None, **kw) -> TrainWorldModelConfig:
    arch = WorldModelConfig(block_out_channels=(16, 32), reward_channels=(8,), action_embed_dim=8, context=2)
    base = dict(
        model=dataclasses.replace(arch, **(model or {})),
        batch_size=4,
        warmup_steps=2,
        log_every=1,
        eval_every=0,
        threads=1,
    )
    return TrainWorldModelConfig(data, out=out, **{**base, **kw})


def env() -> dict[str, str]:
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `cmd` from the repository root with the tests' environment; stdout and stderr captured as text."""
    return subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("wm") / "squares", episodes=4, steps=30)


def test_training_reduces_the_loss_and_writes_a_loadable_model(data, tmp_path):
    from worldmodel.model import WorldModel

    model_dir = train_world_model(
        tiny_cfg(data, tmp_path / "run", steps=40, lr=2e-3, eval_every=20, eval_segments=4, checkpoint_every=20)
    )
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["diffusion_loss"] for r in rows if "diffusion_loss" in r]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert all(r["steps_per_second"] > 0 for r in rows if "steps_per_second" in r)
    assert any(r.get("event") == "eval" and "next_frame_psnr" in r for r in rows)
    assert list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents*"))
    m = WorldModel.from_pretrained(model_dir)
    frames = torch.zeros(1, 2, 16, 16, 3, dtype=torch.uint8)
    assert m.sample_next(frames, torch.zeros(1, 2, dtype=torch.long)).shape == (1, 16, 16, 3)
    # a checkpoint from another model config is refused, naming the difference
    with pytest.raises(UserInputError, match="block_out_channels"):
        train_world_model(tiny_cfg(data, tmp_path / "run", steps=45, model={"block_out_channels": (8, 16)}))


def test_own_context_puts_the_models_prediction_in_the_last_context_frame(data):
    from training.train_world_model import own_context
    from worldmodel.dataset import TrajectoryDataset
    from worldmodel.segments import SegmentSampler

    ds = TrajectoryDataset(data)
    model = tiny_world_model(resolution=ds.resolution, action_space=ds.action_space.to_dict())
    torch.nn.init.normal_(model.unet.conv_out.weight, std=0.05)  # as if trained: not a copy of the last frame
    b = SegmentSampler(ds.episodes, 2, 2).batch([0, 5, 9, 20])
    frames, actions = own_context(model, b["frames"], b["actions"], 2, torch.Generator().manual_seed(3))
    assert frames.shape == b["frames"][:, 1:].shape and torch.equal(actions, b["actions"][:, 1:])
    assert torch.equal(frames[2:], b["frames"][2:, 1:])  # rows past `count` are the real segment
    assert torch.equal(frames[:2, 0], b["frames"][:2, 1]) and torch.equal(frames[:2, 2], b["frames"][:2, 3])
    own = model.sample_next(b["frames"][:2, :2], b["actions"][:2, :2], generator=torch.Generator().manual_seed(3))
    assert torch.equal(frames[:2, 1], own) and not torch.equal(own, b["frames"][:2, 2])


def test_training_with_self_context(data, tmp_path):
    model_dir = train_world_model(tiny_cfg(data, tmp_path / "run", steps=6, self_context=0.5, self_context_start=3))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["diffusion_loss"]) for r in rows if "diffusion_loss" in r)
    assert (model_dir / "model.safetensors").is_file()
    with pytest.raises(UserInputError, match="self-context"):
        train_world_model(tiny_cfg(data, tmp_path / "bad", steps=2, self_context=1.5))
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_resume_after_sigkill_matches_an_uninterrupted_run(data, tmp_path):
    args = [
        sys.executable,
        "-m",
        "training.train_world_model",
        str(data),
        "--steps",
        "40",
        "--checkpoint-every",
        "4",
        *TINY,
    ]
    proc = subprocess.Popen(
        [*args, "--out", str(tmp_path / "killed")],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    latest = tmp_path / "killed" / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while not latest.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(latest.read_text())["step"]
    assert 4 <= killed_at < 40, "the run must be killed mid-way"
    resumed = run([*args, "--out", str(tmp_path / "killed")])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {tmp_path / 'killed' / 'checkpoints'} at step {killed_at}" in resumed.stderr
    train_world_model(tiny_cfg(data, tmp_path / "straight", steps=40, checkpoint_every=4))

    def logged_steps(run: Path) -> list[int]:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["step"] for r in rows if "loss" in r]

    # the rows logged after the checkpoint and before the kill are dropped on resume: no step twice
    assert logged_steps(tmp_path / "killed") == logged_steps(tmp_path / "straight")
    for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors"):
        a = load_tensors(tmp_path / "killed" / "checkpoints" / "step_00000040" / name)
        b = load_tensors(tmp_path / "straight" / "checkpoints" / "step_00000040" / name)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{name}:{k}")


def test_two_cpu_processes_torchrun_and_spawned(data, tmp_path):
    """Data parallel on two CPU processes (accelerate's MULTI_CPU, gloo); `accelerate launch --cpu` alone
    starts one process, so torchrun starts the two."""
    torchrun = Path(sys.executable).with_name("torchrun")
    out = run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "-m",
            "training.train_world_model",
            str(data),
            "--out",
            str(tmp_path / "ddp"),
            "--steps",
            "3",
            "--checkpoint-every",
            "3",
            *TINY,
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["processes"] == 2 and rows[-1]["event"] == "end" and rows[-1]["step"] == 3
    assert (tmp_path / "ddp" / "model" / "model.safetensors").is_file()

    # --processes 2 spawns the same two ranks from inside this process, each on half of every batch of 8:
    # the same training as torchrun's two of 4, weight for weight
    spawned = tiny_cfg(data, tmp_path / "spawned", steps=3, checkpoint_every=3, batch_size=8, processes=2)
    train_world_model(spawned)
    rows = [json.loads(line) for line in (tmp_path / "spawned" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["processes"] == 2 and rows[-1]["event"] == "end"
    a = load_tensors(tmp_path / "ddp" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "spawned" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_evaluate_writes_metrics_plot_and_video(data, tmp_path):
    from training.evaluate_world_model import EvaluateWorldModelConfig, evaluate_world_model

    model_dir = train_world_model(tiny_cfg(data, tmp_path / "run", steps=2))
    m = evaluate_world_model(
        EvaluateWorldModelConfig(
            model_dir,
            data,
            out=tmp_path / "eval",
            horizons=(1, 3),
            segments=6,
            batch_size=3,
            video_examples=2,
        )
    )
    for k in (
        "next_frame_psnr",
        "next_frame_ssim",
        "copy_last_psnr",
        "psnr_h3",
        "copy_last_psnr_h3",
        "action_sensitivity_db_h3",
        "reward_sign_accuracy",
        "termination_f1",
        "termination_accuracy",
    ):
        assert k in m
    assert m["segments"] == 6 and m["terminations"] >= 1
    # copy-last on the squares: only the moved square differs, so it is far above a random model's PSNR
    assert m["copy_last_psnr"] > m["next_frame_psnr"]
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["psnr_by_horizon"].keys() == {"1", "2", "3"}
    assert (tmp_path / "eval" / "psnr_horizon.png").read_bytes()[:4] == b"\x89PNG"
    import imageio.v2 as imageio

    frames = imageio.mimread(tmp_path / "eval" / "rollouts.mp4", memtest=False)
    assert len(frames) == 2 + 3 and frames[0].shape[1] >= 2 * 16 * 4


def test_evaluate_with_heun_and_no_video(data, tmp_path):
    """--sampler overrides the model's sampler (recorded in the metrics); --video-examples 0 skips the
    video instead of failing."""
    from training.evaluate_world_model import EvaluateWorldModelConfig, evaluate_world_model

    model_dir = train_world_model(tiny_cfg(data, tmp_path / "run", steps=2))
    kw = dict(horizons=(1, 2), segments=3, batch_size=3, video_examples=0)
    heun = evaluate_world_model(EvaluateWorldModelConfig(model_dir, data, out=tmp_path / "h", sampler="heun", **kw))
    euler = evaluate_world_model(EvaluateWorldModelConfig(model_dir, data, out=tmp_path / "e", **kw))
    assert heun["sampler"] == "heun" and euler["sampler"] == "euler"
    assert heun["next_frame_psnr"] != euler["next_frame_psnr"]
    assert not (tmp_path / "h" / "rollouts.mp4").exists() and (tmp_path / "h" / "metrics.json").is_file()


def test_cli_bad_dataset_exits_2_with_a_clear_message(tmp_path):
    out = run([sys.executable, "-m", "training.train_world_model", str(tmp_path / "nope")], timeout=120)
    assert out.returncode == 2 and "no dataset.json found" in out.stderr


def test_termination_weight_balances_rare_episode_ends_halfway():
    from types import SimpleNamespace

    import numpy as np

    from training.train_world_model import termination_weight

    def ep(n, end):
        return SimpleNamespace(steps=n, terminated=np.array([False] * (n - 1) + [end]))

    assert termination_weight([ep(50, True), ep(50, False)]) == pytest.approx(np.sqrt(99))
    assert termination_weight([ep(10, False)]) == 1.0  # nothing ever ends: no weighting


def train_cli(data: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m training.train_world_model` in its own process (accelerate's state is per process)."""
    cmd = [sys.executable, "-m", "training.train_world_model", str(data), "--out", str(out), *TINY, *args]
    return run(cmd, timeout=600)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_with_bf16_and_compile(data, tmp_path):
    """The same training loop on a GPU: accelerate places model and batches there, bf16 mixed
    precision and the compiled UNet learn, and the saved model samples on the GPU."""
    from worldmodel.model import WorldModel

    args = (
        "--steps",
        "60",
        "--lr",
        "2e-3",
        "--mixed-precision",
        "bf16",
        "--compile",
        "--eval-every",
        "60",
        "--eval-segments",
        "4",
    )
    out = train_cli(data, tmp_path / "run", *args)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["diffusion_loss"] for r in rows if "diffusion_loss" in r]
    assert all(math.isfinite(v) for v in losses) and sum(losses[-5:]) < 0.8 * sum(losses[:5])
    assert any(r.get("event") == "eval" and "next_frame_psnr" in r for r in rows)
    m = WorldModel.from_pretrained(tmp_path / "run" / "model", device="cuda")
    nxt, reward, term = m.step(torch.zeros(1, 2, 16, 16, 3, dtype=torch.uint8), torch.zeros(1, 2, dtype=torch.long))
    assert nxt.device.type == "cuda" and nxt.shape == (1, 16, 16, 3) and reward.shape == term.shape == (1,)


def test_reward_refit_on_imagined_rollouts(data, tmp_path):
    """The saved model's reward model is refitted on its own open-loop rollouts, labelled with the rewards
    and terminations that truly followed; the checkpoints keep the jointly trained one."""
    import numpy as np

    from worldmodel.dataset import TrajectoryDataset
    from worldmodel.model import WorldModel
    from worldmodel.reward_refit import RewardRefitConfig, imagined_transitions
    from worldmodel.segments import SegmentSampler

    refit = RewardRefitConfig(steps=5, rollouts=6, horizon=3, batch_size=4)
    model_dir = train_world_model(tiny_cfg(data, tmp_path / "run", steps=4, reward_refit=refit))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "reward_refit" and r["reward_refit_imagined"] == 18 for r in rows)
    saved = WorldModel.from_pretrained(model_dir)
    ckpt = load_tensors(sorted((tmp_path / "run" / "checkpoints").glob("step_*"))[-1] / "ema.safetensors")
    key = next(k for k in ckpt if k.startswith("reward_model.") and k.endswith("weight"))
    assert not torch.equal(saved.trainable_state_dict()[key], ckpt[key].to(saved.trainable_state_dict()[key].dtype))

    ds = TrajectoryDataset(data)
    tr = imagined_transitions(saved, ds.episodes, rollouts=6, horizon=3, seed=7)
    L = saved.config.context
    assert tr["frames"].shape[:2] == (18, L + 1) and tr["actions"].shape[:2] == (18, L)
    b = SegmentSampler(ds.episodes, L, 3).batch(
        SegmentSampler(ds.episodes, L, 3).sample_indices(6, np.random.default_rng(7))
    )
    assert torch.equal(tr["frames"][:6, :L], b["frames"][:, :L])  # the first step starts from real context
    for k in range(3):  # step k of every rollout carries the true reward, termination and actions of that step
        assert torch.equal(tr["rewards"][6 * k : 6 * k + 6], b["rewards"][:, L - 1 + k])
        assert torch.equal(tr["terminated"][6 * k : 6 * k + 6], b["terminated"][:, L - 1 + k])
        assert torch.equal(tr["actions"][6 * k : 6 * k + 6], b["actions"][:, k : k + L])
    with pytest.raises(UserInputError, match="imagined_fraction"):
        RewardRefitConfig(steps=1, imagined_fraction=2.0).check()


def test_reward_refit_on_real_transitions_alone_imagines_nothing(data, tmp_path, monkeypatch):
    """With imagined_fraction 0 the refit is a fresh reward model fitted on the data's own transitions: no rollout
    is imagined (the sampler is never called), and it fits them better than the head it replaces."""
    import numpy as np

    from worldmodel.dataset import TrajectoryDataset
    from worldmodel.model import WorldModel
    from worldmodel.reward_refit import RewardRefitConfig, refit_reward_model
    from worldmodel.segments import SegmentSampler

    model = WorldModel.from_pretrained(train_world_model(tiny_cfg(data, tmp_path / "run", steps=2)))
    episodes = TrajectoryDataset(data).episodes
    sampler = SegmentSampler(episodes, model.config.context, 1)
    b = sampler.batch(sampler.sample_indices(64, np.random.default_rng(3)))

    def loss() -> float:
        with torch.no_grad():
            return float(model.reward_loss(b["frames"], b["actions"], b["rewards"][:, -1], b["terminated"][:, -1]))

    def no_imagining(*args, **kwargs):
        raise AssertionError("imagined a frame")

    monkeypatch.setattr(model, "sample_next", no_imagining)
    before, old_head = loss(), model.reward_model
    figures = refit_reward_model(
        model, episodes, RewardRefitConfig(steps=150, batch_size=16, imagined_fraction=0.0), 1.0
    )
    assert figures["reward_refit_imagined"] == 0 and model.reward_model is not old_head
    assert loss() < 0.5 * before, (loss(), before)
