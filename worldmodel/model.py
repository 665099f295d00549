"""WorldModel: an action-conditioned EDM diffusion model on pixels plus a reward/termination model.

The next frame is denoised by a diffusers UNet whose input is the noisy next frame stacked (as
channels) with the last L clean frames; the noise level is the timestep embedding and the last L
actions are added to it through `class_embed_type="identity"`, so they modulate every ResNet's
group norm (`resnet_time_scale_shift="scale_shift"`). With text, the UNet is a
UNet2DConditionModel and the episode text enters by cross-attention. With `config.warp` the last frame
is first moved by a flow the small `worldmodel.warp.FlowNet` predicts, and the UNet also reads that
warped frame and denoises the change from it.

Action convention: `actions[:, i]` is taken in `frames[:, i]`; `actions[:, -1]` is the action whose
effect `sample_next` predicts.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel, UNet2DModel
from torch import nn

from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError, read_json_in
from wmcore.tensors import load_tensors, save_tensors
from worldmodel.conditioning import ActionEncoder
from worldmodel.config import WorldModelConfig
from worldmodel.reward_model import RewardTerminationModel, StillModel
from worldmodel.sampling import make_scheduler, sample
from worldmodel.text import TextEncoder
from worldmodel.warp import FlowNet, warp

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STILL_TOLERANCE = 2
"""A step is still when no pixel of its next frame differs from the last context frame by more than this (of
255): exact for rendered worlds, and tolerant of a codec's last bit."""
NOISE_EMBED_SCALE = 250.0
"""c_noise = log(sigma)/4 spans about [-1.6, 0.4]; scaled so the sinusoidal timestep embedding resolves it."""


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]."""
    return frames.float().div(127.5).sub(1.0).movedim(-1, -3)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [..., 3, H, W] in [-1, 1] -> uint8 [..., H, W, 3]."""
    return x.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).movedim(-3, -1)


def still_steps(frames: torch.Tensor) -> torch.Tensor:
    """bool [B]: whether the last frame of each segment uint8 [B, L+1, H, W, 3] is still (equals the one before it,
    within STILL_TOLERANCE)."""
    return (frames[:, -1].int() - frames[:, -2].int()).abs().amax((1, 2, 3)) <= STILL_TOLERANCE


class WorldModel(nn.Module):
    """Diffusion next-frame model + reward/termination model; see the module docstring for the API."""

    def __init__(self, config: WorldModelConfig, text_encoder: TextEncoder | None = None):
        super().__init__()
        self.config = config
        c = config
        space = c.space
        n_levels = len(c.block_out_channels)
        temb = c.block_out_channels[0] * 4
        self.action_encoder = ActionEncoder(space, c.context, c.action_embed_dim, temb)
        # the context-noise level joins the action vector; zero-initialised, so level 0 starts neutral
        self.context_noise_embed = nn.Linear(1, temb) if c.context_noise > 0 else None
        if self.context_noise_embed is not None:
            nn.init.zeros_(self.context_noise_embed.weight)
            nn.init.zeros_(self.context_noise_embed.bias)
        common = dict(
            sample_size=c.network_resolution[0],
            in_channels=3 * (c.context + 1 + int(c.warp)),
            out_channels=3,
            block_out_channels=c.block_out_channels,
            layers_per_block=c.layers_per_block,
            norm_num_groups=c.norm_num_groups,
            class_embed_type="identity",
            resnet_time_scale_shift="scale_shift",
            flip_sin_to_cos=True,
            freq_shift=0,
        )
        if c.text_encoder:
            if text_encoder is None:
                raise UserInputError(
                    "config names a text encoder but none was given; load the model with "
                    "WorldModel.from_pretrained(dir), which loads dir/text_encoder"
                )
            c.cross_attention_dim = text_encoder.hidden_size
            self.unet: nn.Module = UNet2DConditionModel(
                down_block_types=("DownBlock2D",) * (n_levels - 1) + ("CrossAttnDownBlock2D",),
                up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (n_levels - 1),
                mid_block_type="UNetMidBlock2DCrossAttn",
                cross_attention_dim=c.cross_attention_dim,
                attention_head_dim=8,
                **common,
            )
        else:
            self.unet = UNet2DModel(
                down_block_types=("DownBlock2D",) * n_levels,
                up_block_types=("UpBlock2D",) * n_levels,
                add_attention=False,
                **common,
            )
        self.flow_net = FlowNet(space, c.context, c.action_embed_dim) if c.warp else None
        if c.predict_delta:
            nn.init.zeros_(self.unet.conv_out.weight)
            nn.init.zeros_(self.unet.conv_out.bias)
        self.text_encoder = text_encoder
        self.reward_model = RewardTerminationModel(
            space, c.context, c.reward_channels, c.action_embed_dim, c.reward_pool
        )
        self.still_model = (
            StillModel(space, c.context, c.reward_channels, c.action_embed_dim, c.reward_pool) if c.still_head else None
        )
        self.scheduler = make_scheduler(c.sigma_min, c.sigma_max, c.sigma_data, c.rho)
        self.autocast_bf16 = False
        self.__dict__["_network"] = self.unet  # not a submodule: an alias (or compiled wrapper) of self.unet

    # ----------------------------------------------------------------- helpers
    def _unit(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [..., H, W, 3] -> float [..., 3, h, w] in [-1, 1] at the networks' resolution."""
        x = to_unit(frames)
        k = self.config.downsample
        if k == 1:
            return x
        return F.avg_pool2d(x.flatten(0, -4), k).unflatten(0, x.shape[:-3])

    def configure_inference(
        self,
        channels_last: bool = False,
        bf16: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
    ) -> None:
        """Speed options for sampling: channels_last memory format, bf16 autocast, torch.compile.

        `compile_mode` is torch.compile's mode; "reduce-overhead" replays CUDA graphs, which is what
        pays for small batches on a GPU, where kernel launches rather than arithmetic set the pace."""
        if channels_last:
            self.unet.to(memory_format=torch.channels_last)
        self.autocast_bf16 = bf16
        self.compile_network(compile, compile_mode)

    def compile_network(self, compile: bool = True, mode: str | None = None) -> None:
        """Run the UNet through torch.compile (for sampling and training alike); the weights and their
        names stay those of `self.unet`, so checkpoints do not change."""
        if mode is not None and not compile:
            raise ValueError(f"compile mode {mode!r} given with compile=False")
        self.__dict__["_network"] = torch.compile(self.unet, mode=mode) if compile else self.unet

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights that belong to this model (the frozen text encoder is saved on its own)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("text_encoder.")}

    def num_parameters(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {
            "denoiser": count(self.unet)
            + count(self.action_encoder)
            + (count(self.context_noise_embed) if self.context_noise_embed is not None else 0),
            **({"flow": count(self.flow_net)} if self.flow_net is not None else {}),
            "reward_termination": count(self.reward_model),
            **({"still": count(self.still_model)} if self.still_model is not None else {}),
        }

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def _check_inputs(self, frames: torch.Tensor, actions: torch.Tensor, n_frames: int) -> None:
        h, w = self.config.resolution
        if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8:
            raise UserInputError(
                f"frames must be a uint8 torch tensor [B,{n_frames},{h},{w},3], "
                f"got {type(frames).__name__} {getattr(frames, 'dtype', '')}"
            )
        if frames.dim() != 5 or tuple(frames.shape[1:]) != (n_frames, h, w, 3):
            raise UserInputError(
                f"frames must have shape [B,{n_frames},{h},{w},3] for this model "
                f"(context L={self.config.context}, resolution {h}x{w}), got {list(frames.shape)}"
            )
        self.config.space.check(actions, lead=2, what="actions")
        if actions.shape[:2] != (frames.shape[0], self.config.context):
            raise UserInputError(
                f"actions must have leading shape [{frames.shape[0]},{self.config.context}] "
                f"(one per context frame), got {list(actions.shape)}"
            )

    def _text_states(self, texts: list[str] | None, batch: int) -> torch.Tensor | None:
        if self.text_encoder is None:
            return None
        texts = texts if texts is not None else [""] * batch
        if len(texts) != batch:
            raise UserInputError(f"got {len(texts)} texts for a batch of {batch}")
        return self.text_encoder(texts).to(self.device)

    def _denoiser(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        text_states: torch.Tensor | None,
        context_level: torch.Tensor | None = None,
        base: torch.Tensor | None = None,
    ):
        """Returns F(x_scaled, sigma): the UNet on [noisy next frame, L context frames (, the warped last frame)].

        `context_level` [B]: the noise level added to the context (training with context_noise; None: 0).
        `base` [B,3,h,w]: the last frame moved by the flow net (config.warp)."""
        emb = self.action_encoder(actions)
        if self.context_noise_embed is not None:
            level = context_level if context_level is not None else emb.new_zeros(emb.shape[0])
            emb = emb + self.context_noise_embed(level[:, None].to(emb.dtype) / self.config.context_noise)

        def network(x_scaled: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            t = 0.25 * torch.log(sigma.float()) * NOISE_EMBED_SCALE
            parts = [x_scaled.to(context.dtype), context] + ([base.to(context.dtype)] if base is not None else [])
            inp = torch.cat(parts, dim=1)
            if text_states is None:
                return self._network(inp, t, class_labels=emb).sample
            return self._network(inp, t, encoder_hidden_states=text_states, class_labels=emb).sample

        return network

    # ----------------------------------------------------------------- training losses
    def diffusion_loss(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        texts: list[str] | None = None,
        generator: torch.Generator | None = None,
        motion_weight: float = 0.0,
        motion_per_sample: bool = False,
        across_ranks: bool = False,
    ) -> torch.Tensor:
        """EDM denoising loss for frames uint8 [B,L+1,H,W,3] and actions [B,L,...].

        `motion_weight` > 0 up-weights the pixels that change between the last context frame and the
        target (by 1 + motion_weight): in games like Breakout under 1% of pixels move, and without it
        the loss barely sees the paddle and ball that the actions control. The weights are normalised
        over the batch, so transitions where little moves weigh less than those where much does;
        `motion_per_sample` normalises them within each transition instead, so every transition counts
        the same (a body blocked by a wall, whose view does not change, as much as one that moves).
        `across_ranks`: this batch is one equal share of a data-parallel batch (torch.distributed initialised), and
        the weights are normalised over the whole of it, so the ranks' averaged gradients are the whole batch's.
        With `config.warp` the flow net's photometric error (its warped last frame against the target) is
        added: the flow is fitted by it alone, the denoiser reads the warped frame detached."""
        c = self.config
        x = self._unit(frames)
        b = x.shape[0]
        context, target = x[:, :-1].flatten(1, 2), x[:, -1]
        base, flow_loss = None, 0.0
        if self.flow_net is not None:  # the flow is fitted by its warp's own error; the denoiser does the rest
            moved = warp(x[:, -2], self.flow_net(context, actions))
            flow_loss = (moved - target).pow(2).mean()
            base = moved.detach()
        if c.predict_delta:
            target = target - (base if base is not None else x[:, -2])
        gen_dev = generator.device if generator is not None else x.device
        log_sigma = torch.randn(b, generator=generator, device=gen_dev) * c.train_sigma_std + c.train_sigma_mean
        sigma = log_sigma.exp().to(x.device)
        noise = torch.randn(target.shape, generator=generator, device=gen_dev).to(x.device)
        s = sigma.view(b, 1, 1, 1)
        noisy = target + noise * s
        level = None
        if c.context_noise > 0:
            level = (torch.rand(b, generator=generator, device=gen_dev) * c.context_noise).to(x.device)
            eps = torch.randn(context.shape, generator=generator, device=gen_dev).to(x.device)
            context = context + eps * level.view(b, 1, 1, 1)
        # EDM preconditioning from the scheduler that sampling uses (one definition of c_in, c_skip, c_out); the
        # loss weight 1/c_out² makes the error that of the raw network output, of unit scale at every sigma.
        out = self._denoiser(context, actions, self._text_states(texts, b), level, base)(
            self.scheduler.precondition_inputs(noisy, s), sigma
        )
        denoised = self.scheduler.precondition_outputs(noisy, out.float(), s)
        sd = c.sigma_data
        err = (denoised - target) ** 2 * ((s**2 + sd**2) / (s * sd) ** 2)
        if motion_weight <= 0:
            return err.mean() + flow_loss
        changed = (x[:, -1] - x[:, -2]).abs().amax(1, keepdim=True) > 0.04
        weight = 1.0 + motion_weight * changed.float()
        if motion_per_sample:
            return (err * weight / weight.mean((1, 2, 3), keepdim=True)).mean() + flow_loss
        norm = weight.mean()
        if across_ranks:
            norm = norm.detach().clone()
            torch.distributed.all_reduce(norm)
            norm = norm / torch.distributed.get_world_size()
        return (err * weight).mean() / norm + flow_loss

    def reward_loss(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        termination_weight: float = 1.0,
    ) -> torch.Tensor:
        """Reward regression (config.reward_loss: smooth L1 or squared error) + termination BCE for frames uint8
        [B,L+1,...] (clean next frame); terminal steps weigh `termination_weight` in the BCE."""
        reward, logit = self.reward_model(self._unit(frames).flatten(1, 2), actions)
        pos_weight = torch.tensor(float(termination_weight), device=logit.device)
        fit = F.mse_loss if self.config.reward_loss == "mse" else F.smooth_l1_loss
        return fit(reward, rewards.float()) + F.binary_cross_entropy_with_logits(
            logit, terminated.float(), pos_weight=pos_weight
        )

    def still_logits(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Logit [B] that the step from frames uint8 [B, L, H, W, 3] under actions[:, -1] is still."""
        if self.still_model is None:
            raise ValueError("this model has no still head (config.still_head is false)")
        return self.still_model(to_unit(frames.to(self.device)).flatten(1, 2), actions.to(self.device))

    def still_loss(self, frames: torch.Tensor, actions: torch.Tensor, still: torch.Tensor) -> torch.Tensor:
        """BCE of the still head for the context frames[:, :-1] of segments uint8 [B, L+1, ...] against `still` [B]
        (whether each step truly was; see `still_steps`)."""
        return F.binary_cross_entropy_with_logits(self.still_logits(frames[:, :-1], actions), still.float())

    def forward(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        texts: list[str] | None = None,
        generator: torch.Generator | None = None,
        motion_weight: float = 0.0,
        termination_weight: float = 1.0,
        motion_per_sample: bool = False,
        still: torch.Tensor | None = None,
        across_ranks: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training losses (total, diffusion, the heads': reward/termination and still) for one batch of L+1 frames.

        `still` [B] says which steps truly were still (default: `still_steps(frames)`; pass the real frames'
        when the context holds the model's own predictions). Every loss goes through forward so
        DistributedDataParallel sees every parameter used; `across_ranks` as in `diffusion_loss`."""
        diffusion = self.diffusion_loss(
            frames, actions, texts, generator, motion_weight, motion_per_sample, across_ranks
        )
        heads = self.reward_loss(frames, actions, rewards, terminated, termination_weight)
        if self.still_model is not None:
            heads = heads + self.still_loss(frames, actions, still_steps(frames) if still is None else still)
        return diffusion + heads, diffusion.detach(), heads.detach()

    # ----------------------------------------------------------------- public inference API
    @torch.inference_mode()
    def sample_next(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        num_steps: int | None = None,
        texts: list[str] | None = None,
        method: str | None = None,
    ) -> torch.Tensor:
        """Next frames uint8 [B,H,W,3] from frames uint8 [B,L,H,W,3] and actions [B,L] or [B,L,D].

        With a still head, each step is first drawn still or not by its predicted chance; a still step's next
        frame is its last frame, exactly."""
        c = self.config
        self._check_inputs(frames, actions, c.context)
        device = self.device
        still = None
        if self.still_model is not None:
            p = torch.sigmoid(self.still_logits(frames, actions).float())
            gen_dev = generator.device if generator is not None else device
            still = torch.rand(p.shape, generator=generator, device=gen_dev).to(device) < p
        x = self._unit(frames.to(device)).flatten(1, 2)
        if self.autocast_bf16:
            x = x.to(torch.bfloat16)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
            base = None
            if self.flow_net is not None:
                base = warp(x[:, -3:].float(), self.flow_net(x, actions.to(device)).float())
            network = self._denoiser(x, actions.to(device), self._text_states(texts, frames.shape[0]), base=base)
            h, w = c.network_resolution
            out = sample(
                network,
                make_scheduler(c.sigma_min, c.sigma_max, c.sigma_data, c.rho),
                (frames.shape[0], 3, h, w),
                num_steps or c.num_steps,
                method or c.sampler,
                generator=generator,
                device=device,
            )
        if c.predict_delta:
            out = out + (base if base is not None else x[:, -3:]).float()
        if c.downsample > 1:
            out = F.interpolate(out.float(), scale_factor=c.downsample, mode="nearest")
        out = to_uint8(out)
        if still is not None:
            out[still] = frames[:, -1].to(device)[still]
        return out

    @torch.inference_mode()
    def predict_reward_termination(
        self, frames: torch.Tensor, actions: torch.Tensor, next_frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward [B] float and terminated [B] bool for the step from frames[:, -1] under actions[:, -1]
        to next_frames [B,H,W,3] (real or from `sample_next`)."""
        self._check_inputs(frames, actions, self.config.context)
        device = self.device
        allf = torch.cat([frames.to(device), next_frames[:, None].to(device)], dim=1)
        reward, logit = self.reward_model(self._unit(allf).flatten(1, 2), actions.to(device))
        return reward.float(), logit > 0

    def step(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        num_steps: int | None = None,
        texts: list[str] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step: (next frames uint8 [B,H,W,3], reward [B], terminated [B] bool)."""
        nxt = self.sample_next(frames, actions, generator=generator, num_steps=num_steps, texts=texts)
        reward, term = self.predict_reward_termination(frames, actions, nxt)
        return nxt, reward, term

    # ----------------------------------------------------------------- persistence
    def save_pretrained(self, path: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Write config.json + model.safetensors (+ text_encoder/) atomically; an existing copy survives
        a failed save. `state_dict` overrides the weights (e.g. EMA weights)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.mkdir()
            write_json(tmp / CONFIG, self.config.to_dict())
            save_tensors(
                tmp / WEIGHTS,
                state_dict if state_dict is not None else self.trainable_state_dict(),
                metadata={"format": "worldmodel.WorldModel"},
            )
            if self.text_encoder is not None:
                self.text_encoder.save(tmp / self.config.text_encoder)
        return path

    @staticmethod
    def load_config(path: str | Path) -> WorldModelConfig:
        missing = (
            f"not a saved WorldModel ({CONFIG} missing); give the directory written by save_pretrained / "
            "train-world-model (e.g. RUN/model)"
        )
        data = read_json_in(path, CONFIG, missing)
        return WorldModelConfig.from_dict(data, source=str(Path(path) / CONFIG))

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> WorldModel:
        path = Path(path)
        config = cls.load_config(path)
        text = TextEncoder(path / config.text_encoder) if config.text_encoder else None
        model = cls(config, text_encoder=text)
        model.load_weights(load_tensors(path / WEIGHTS), source=str(path / WEIGHTS))
        return model.to(device).eval()

    def load_weights(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        """Strict load with a clear error when the weights come from another config."""
        own = self.trainable_state_dict()
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        shapes = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
        if missing or unexpected or shapes:
            detail = (
                f"missing {missing[:3]}"
                if missing
                else f"unexpected {unexpected[:3]}"
                if unexpected
                else f"shape of {shapes[0]} is {list(tensors[shapes[0]].shape)}, "
                f"model expects {list(own[shapes[0]].shape)}"
            )
            raise UserInputError(
                f"{source}: weights do not match this model config ({detail}); the checkpoint "
                "was written with another config — use its own config.json"
            )
        self.load_state_dict(tensors, strict=False)
