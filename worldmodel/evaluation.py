"""Fidelity of a world model on held-out episodes: next-frame and autoregressive PSNR/SSIM against
the copy-last-frame baseline, action sensitivity, and reward/termination accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from wmcore.metrics import psnr, ssim
from worldmodel.dataset import Episode
from worldmodel.model import WorldModel
from worldmodel.segments import SegmentSampler


def _unit(frames: torch.Tensor) -> torch.Tensor:
    return frames.float() / 255.0


def rollout(
    model: WorldModel,
    frames: torch.Tensor,
    actions: torch.Tensor,
    horizon: int,
    generator: torch.Generator | None = None,
    num_steps: int | None = None,
    texts: list[str] | None = None,
    method: str | None = None,
) -> torch.Tensor:
    """Imagine `horizon` frames from the first L real frames, feeding back predictions.

    frames uint8 [B, >=L, H, W, 3]; actions [B, L+horizon-1, ...]; returns uint8 [B, horizon, H, W, 3].
    `num_steps` and `method` (the sampler) default to the model's. The frames come back on the device
    `frames` came from; the context stays on the model's while it rolls."""
    L = model.config.context
    ctx = frames[:, :L].to(model.device)
    out = []
    for h in range(horizon):
        nxt = model.sample_next(
            ctx, actions[:, h : h + L], generator=generator, num_steps=num_steps, texts=texts, method=method
        )
        out.append(nxt)
        ctx = torch.cat([ctx[:, 1:], nxt[:, None]], dim=1)
    return torch.stack(out, dim=1).to(frames.device)


def derangement(n: int) -> torch.Tensor:
    """A fixed permutation with no fixed point (shift by one), so every row gets another's actions."""
    return torch.roll(torch.arange(n), 1)


def _mse_from_psnr(p: torch.Tensor) -> torch.Tensor:
    return 10.0 ** (-p / 10.0)


def gain_interval(
    model_mse: torch.Tensor, copy_mse: torch.Tensor, horizons: tuple[int, ...], samples: int = 2000, seed: int = 0
) -> dict[str, list[float]]:
    """Paired bootstrap 95% interval, per horizon, of the model's PSNR gain over copy-last: segments [n, H]
    resampled together for both, each side's PSNR computed from its mean squared error as reported."""
    rng = np.random.default_rng(seed)
    m, c = model_mse.double().numpy(), copy_mse.double().numpy()
    idx = rng.integers(len(m), size=(samples, len(m)))
    out = {}
    for h in horizons:
        gain = 10 * np.log10(c[idx, h - 1].mean(1) / m[idx, h - 1].mean(1))
        out[str(h)] = [float(np.percentile(gain, 2.5)), float(np.percentile(gain, 97.5))]
    return out


def evaluate(
    model: WorldModel,
    episodes: Sequence[Episode],
    horizons: Sequence[int] = (1, 5, 10, 15),
    segments: int = 64,
    batch_size: int = 16,
    seed: int = 0,
    num_steps: int | None = None,
    reward_transitions: int = 1024,
    keep_examples: int = 4,
    method: str | None = None,
) -> dict[str, Any]:
    """Metrics dict (JSON-ready) plus "examples": real and predicted frames [n, L+H, H, W, 3] for videos
    (absent when keep_examples is 0). `num_steps` and `method` (the sampler) default to the model's.

    PSNR is reported two ways per horizon: `psnr` is the PSNR of the mean squared error over all
    evaluated frames (well defined when some frames do not change at all, e.g. a paused Atari game,
    where the copy-last baseline is exact), and `frame_mean_psnr` is the mean of per-frame PSNRs
    (wmcore.metrics.psnr, which caps an exact frame at 100 dB, so it is dominated by such frames).
    """
    L, H = model.config.context, max(horizons)
    sampler = SegmentSampler(episodes, L, H)
    idx = sampler.evenly_spaced(segments)
    generator = torch.Generator().manual_seed(seed)
    kinds = ("model", "copy", "shuffled")
    psnr_sum = {k: torch.zeros(H) for k in kinds}
    mse_sum = {k: torch.zeros(H) for k in kinds}
    ssim_sum = {k: torch.zeros(H) for k in ("model", "copy")}
    n, unchanged = 0, 0
    seg_mse: dict[str, list[torch.Tensor]] = {"model": [], "copy": []}
    examples_real, examples_pred = [], []
    for start in tqdm(range(0, len(idx), batch_size), desc="evaluate", unit="batch", leave=False):
        b = sampler.batch(idx[start : start + batch_size])
        frames, actions = b["frames"], b["actions"]
        texts = sampler.texts(b["episode"]) if model.text_encoder is not None else None
        truth = _unit(frames[:, L:])
        pred = rollout(model, frames, actions, H, generator, num_steps, texts, method)
        # shuffled: every segment rolled out with another segment's actions (identical when B == 1)
        perm = derangement(len(frames))
        shuffled = (
            rollout(model, frames, actions[perm], H, generator, num_steps, texts, method) if len(frames) > 1 else pred
        )
        outputs = {
            "model": _unit(pred),
            "copy": _unit(frames[:, L - 1 : L]).expand_as(truth),
            "shuffled": _unit(shuffled),
        }
        for k, x in outputs.items():
            p = psnr(x, truth)
            psnr_sum[k] += p.sum(0)
            mse_sum[k] += _mse_from_psnr(p).sum(0)
            if k in seg_mse:
                seg_mse[k].append(_mse_from_psnr(p))
            if k == "copy":
                unchanged += int((p[:, 0] >= 99.99).sum())
            if k in ssim_sum:
                ssim_sum[k] += ssim(x, truth).sum(0)
        n += len(frames)
        if len(examples_real) < keep_examples:
            take = keep_examples - len(examples_real)
            examples_real.extend(frames[:take])
            examples_pred.extend(torch.cat([frames[:, :L], pred], 1)[:take])

    def by_h(t: torch.Tensor) -> dict[str, float]:
        return {str(h): float(t[h - 1]) for h in range(1, H + 1)}

    agg = {k: 10 * torch.log10(1.0 / (mse_sum[k] / n)) for k in kinds}
    frame_mean = {k: psnr_sum[k] / n for k in kinds}
    metrics: dict[str, Any] = {
        "segments": n,
        "context": L,
        "num_steps": num_steps or model.config.num_steps,
        "sampler": method or model.config.sampler,
        "next_frame_psnr": float(agg["model"][0]),
        "copy_last_psnr": float(agg["copy"][0]),
        "next_frame_frame_mean_psnr": float(frame_mean["model"][0]),
        "copy_last_frame_mean_psnr": float(frame_mean["copy"][0]),
        "next_frame_ssim": float(ssim_sum["model"][0] / n),
        "copy_last_ssim": float(ssim_sum["copy"][0] / n),
        "psnr_by_horizon": by_h(agg["model"]),
        "copy_last_psnr_by_horizon": by_h(agg["copy"]),
        "shuffled_actions_psnr_by_horizon": by_h(agg["shuffled"]),
        "action_sensitivity_db_by_horizon": by_h(agg["model"] - agg["shuffled"]),
        "frame_mean_psnr_by_horizon": by_h(frame_mean["model"]),
        "copy_last_frame_mean_psnr_by_horizon": by_h(frame_mean["copy"]),
        "frame_mean_action_sensitivity_db_by_horizon": by_h(frame_mean["model"] - frame_mean["shuffled"]),
        "ssim_by_horizon": by_h(ssim_sum["model"] / n),
        "copy_last_ssim_by_horizon": by_h(ssim_sum["copy"] / n),
        "unchanged_next_frame_fraction": unchanged / n,
    }
    metrics["psnr_gain_ci95_by_horizon"] = gain_interval(
        torch.cat(seg_mse["model"]), torch.cat(seg_mse["copy"]), horizons, seed=seed
    )
    for h in horizons:
        metrics[f"psnr_h{h}"] = float(agg["model"][h - 1])
        metrics[f"copy_last_psnr_h{h}"] = float(agg["copy"][h - 1])
        metrics[f"action_sensitivity_db_h{h}"] = float(agg["model"][h - 1] - agg["shuffled"][h - 1])
    metrics.update(reward_metrics(model, episodes, reward_transitions, batch_size=64))
    if examples_real:
        metrics["examples"] = (torch.stack(examples_real), torch.stack(examples_pred))
    return metrics


def reward_metrics(
    model: WorldModel,
    episodes: Sequence[Episode],
    transitions: int,
    batch_size: int = 64,
    deadband: float = 0.1,
) -> dict[str, float]:
    """Reward MAE and sign accuracy (|r| < deadband counts as zero); termination accuracy and F1."""
    L = model.config.context
    sampler = SegmentSampler(episodes, L, 1)
    idx = sampler.evenly_spaced(transitions)
    preds, trues, tpred, ttrue = [], [], [], []
    for start in range(0, len(idx), batch_size):
        b = sampler.batch(idx[start : start + batch_size])
        r, t = model.predict_reward_termination(b["frames"][:, :L], b["actions"], b["frames"][:, L])
        preds.append(r.cpu())
        tpred.append(t.cpu())
        trues.append(b["rewards"][:, -1])
        ttrue.append(b["terminated"][:, -1])
    r_pred, r_true = torch.cat(preds).numpy(), torch.cat(trues).numpy()
    t_pred, t_true = torch.cat(tpred).numpy(), torch.cat(ttrue).numpy()

    def sign(x: np.ndarray) -> np.ndarray:
        return np.where(np.abs(x) < deadband, 0, np.sign(x))

    tp = float((t_pred & t_true).sum())
    precision = tp / max(float(t_pred.sum()), 1.0)
    recall = tp / max(float(t_true.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "reward_transitions": int(len(r_true)),
        "reward_mae": float(np.abs(r_pred - r_true).mean()),
        "reward_sign_accuracy": float((sign(r_pred) == sign(r_true)).mean()),
        "nonzero_rewards": int((np.abs(r_true) >= deadband).sum()),
        "termination_accuracy": float((t_pred == t_true).mean()),
        "termination_f1": f1,
        "terminations": int(t_true.sum()),
    }
