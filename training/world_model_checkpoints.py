"""Where a world-model run's weights come from and go: resumable checkpoints (weights, their EMA, the optimiser
state and the step, written atomically under RUN/checkpoints/step_NNNNNNNN with the newest `keep` kept; loading
refuses a checkpoint of another model configuration, naming the difference), and the saved model a run starts
from (`--init`, e.g. one pretrained on procedural rooms)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError
from wmcore.tensors import load_tensors, save_tensors
from worldmodel.config import WorldModelConfig


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    model: Any,
    ema: dict[str, torch.Tensor],
    optimizer: Any,
    model_config: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoints/step_N atomically, then point checkpoints/latest.json at it."""
    opt_state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    name = f"step_{step:08d}"
    with atomic_path(ckpt_root / name) as tmp:
        tmp.mkdir()
        save_tensors(tmp / "model.safetensors", model.trainable_state_dict())
        save_tensors(tmp / "ema.safetensors", ema)
        save_tensors(tmp / "optimizer.safetensors", tensors)
        write_json(
            tmp / "state.json",
            {
                "step": step,
                "model_config": model_config,
                "optimizer_param_groups": opt_state["param_groups"],
                "optimizer_scalars": scalars,
            },
        )
    write_json(ckpt_root / "latest.json", {"step": step, "checkpoint": name})
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir() and p.name != name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return ckpt_root / name


def load_checkpoint(ckpt_root: Path, model: Any, optimizer: Any, model_config: dict[str, Any]):
    """Returns (step, ema) from the latest checkpoint, or None when there is none."""
    latest = ckpt_root / "latest.json"
    if not latest.is_file():
        return None
    try:
        name = json.loads(latest.read_text())["checkpoint"]
        state = json.loads((ckpt_root / name / "state.json").read_text())
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise UserInputError(
            f"{latest}: unreadable checkpoint pointer or state ({e}); delete {ckpt_root} to start afresh or restore it"
        ) from e
    stored = WorldModelConfig.from_dict(state["model_config"])  # fields added later take their defaults
    diff = WorldModelConfig.from_dict(model_config).differences(stored)
    if diff:
        raise UserInputError(
            f"{ckpt_root / name}: checkpoint was written with another model config "
            f"({'; '.join(diff)}); use the same settings or a new --out directory"
        )
    model.load_weights(load_tensors(ckpt_root / name / "model.safetensors"), str(ckpt_root / name))
    ema = load_tensors(ckpt_root / name / "ema.safetensors")
    flat = load_tensors(ckpt_root / name / "optimizer.safetensors")
    per: dict[int, dict[str, Any]] = {}
    for key, v in list(flat.items()) + list(state["optimizer_scalars"].items()):
        pid, k = key.split(".", 1)
        per.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": per, "param_groups": state["optimizer_param_groups"]})
    return int(state["step"]), ema


def check_init(init: Path, resolution: tuple[int, int], action_space: dict | None, flag: str, against: str):
    """The config of the saved world model `init` a run starts from, once it is known to be one that sees
    `resolution` frames (and acts in `action_space`, when given); every error is one line naming `flag`."""
    from worldmodel.model import WEIGHTS, WorldModel

    if not (Path(init) / WEIGHTS).is_file():
        raise UserInputError(
            f"{flag} {init}: not a saved world model (no {WEIGHTS}); give RUN/model of train-world-model or "
            "pretrain-world-model, e.g. assets/world_model_rooms"
        )
    pre = WorldModel.load_config(init)
    if tuple(pre.resolution) != tuple(resolution) or action_space not in (None, pre.action_space):
        raise UserInputError(
            f"{flag} {init}: the model sees {tuple(pre.resolution)} frames and acts in {pre.action_space}; "
            f"{against} gives {tuple(resolution)}" + ("" if action_space is None else f" and {action_space}")
        )
    return pre


def starting_config(
    model: WorldModelConfig, dataset: Any, init: Path | None, text_encoder: Path | None
) -> WorldModelConfig:
    """The architecture a run builds: `init`'s (a saved model it starts from, which must see the dataset's frames
    and actions; `model.still_head` adds a still head it lacks, `model.warp` a flow net, `model.reward_loss`
    applies) or `model` with the dataset's resolution and action space and the text settings of `text_encoder`."""
    if init is not None:
        pre = check_init(init, dataset.resolution, dataset.action_space.to_dict(), "--init", str(dataset.path))
        if pre.text_encoder or text_encoder:
            raise UserInputError(
                f"--init {init}: starting a text-conditioned model from saved weights is not supported"
            )
        # how the heads are fitted is this run's choice; a still head is added where `init` lacks one
        return replace(
            pre,
            still_head=pre.still_head or model.still_head,
            warp=pre.warp or model.warp,
            reward_loss=model.reward_loss,
        )
    return replace(
        model,
        resolution=dataset.resolution,
        action_space=dataset.action_space.to_dict(),
        text_encoder="text_encoder" if text_encoder else None,
        cross_attention_dim=0,
    )


def load_initial_weights(model: Any, init: Path) -> None:
    """Load the weights of the saved model `init` into `model` (built from `starting_config`); a still head or
    flow net that `init` lacks keeps its fresh initialisation, and the denoiser's first layer gains zero weights
    for the warped frame it then reads, so the grown model predicts what `init` did until it is trained."""
    from worldmodel.model import WEIGHTS

    weights = Path(init) / WEIGHTS
    tensors = load_tensors(weights)
    own = model.trainable_state_dict()
    fresh = {k: v for k, v in own.items() if k.startswith(("still_model.", "flow_net."))}
    key = "unet.conv_in.weight"
    grows = getattr(model, "flow_net", None) is not None and key in tensors
    if grows and tensors[key].shape[1] + 3 == own[key].shape[1]:
        grown = torch.zeros_like(own[key])
        grown[:, : tensors[key].shape[1]] = tensors[key]
        tensors = {**tensors, key: grown}
    model.load_weights({**fresh, **tensors}, source=str(weights))
