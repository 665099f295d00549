"""The model configuration: everything needed to rebuild a WorldModel, stored as JSON beside its weights."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from wmcore.errors import UserInputError
from worldmodel.action_space import ActionSpace

CONFIG_FORMAT = "worldmodel.WorldModel"
_INT_FIELDS = (
    "context",
    "downsample",
    "layers_per_block",
    "norm_num_groups",
    "action_embed_dim",
    "cross_attention_dim",
    "num_steps",
    "reward_pool",
)
_FLOAT_FIELDS = (
    "sigma_data",
    "sigma_min",
    "sigma_max",
    "rho",
    "train_sigma_mean",
    "train_sigma_std",
    "context_noise",
)


@dataclass
class WorldModelConfig:
    """Architecture and sampling settings of a WorldModel."""

    resolution: tuple[int, int] = (64, 64)
    """Frame height and width in pixels (frames are RGB uint8)."""
    action_space: dict[str, Any] = field(default_factory=lambda: {"kind": "discrete", "n": 4})
    """Serialised ActionSpace: {"kind": "discrete", "n": N} or
    {"kind": "box", "low": [...], "high": [...]}."""
    context: int = 4
    """L: number of past frames (and actions) the next frame is conditioned on."""
    downsample: int = 1
    """The networks work on frames area-averaged by this factor (a 40x40 observation is 20x20 to them at 2) and
    the predicted frames are enlarged back by repetition: each step costs about downsample² less, so the same
    minutes buy more training and more imagined steps. Policies that look at frames at the same reduced
    size (training.actor_critic's `input_size`) lose nothing by it."""
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    """UNet channels per resolution level (each level halves the resolution)."""
    layers_per_block: int = 1
    """ResNet blocks per UNet level."""
    norm_num_groups: int = 8
    """Groups of the adaptive group norms."""
    action_embed_dim: int = 64
    """Width of each per-step action embedding (discrete) or the action MLP's hidden layer (continuous)."""
    text_encoder: str | None = None
    """Sub-directory of the model directory holding a transformers text encoder and tokenizer, or None."""
    cross_attention_dim: int = 0
    """Hidden size of the text encoder (set from it); 0 without text conditioning."""
    sigma_data: float = 0.5
    """EDM: standard deviation of the data (pixels scaled to [-1, 1])."""
    sigma_min: float = 0.002
    """EDM: smallest noise level of the sampling schedule."""
    sigma_max: float = 5.0
    """EDM: largest noise level of the sampling schedule (DIAMOND uses 5)."""
    rho: float = 7.0
    """EDM: Karras schedule curvature."""
    train_sigma_mean: float = -0.4
    """EDM training: mean of log(sigma) (log-normal noise-level distribution)."""
    train_sigma_std: float = 1.2
    """EDM training: standard deviation of log(sigma)."""
    context_noise: float = 0.0
    """Training only: Gaussian noise of a level drawn uniformly from [0, context_noise] (pixels in
    [-1, 1]) is added to the context frames, and the level conditions the network (as in GameNGen);
    sampling uses level 0. The model learns to correct a slightly wrong context, so errors compound
    less along imagined rollouts. 0: off (and no extra weights)."""
    predict_delta: bool = True
    """Denoise the change from the last context frame instead of the frame itself (output layer
    zero-initialised): static pixels need no learning, so training spends its steps on what moves;
    False denoises the frame itself, as DIAMOND does."""
    warp: bool = False
    """Predict the next frame as the last one moved by a flow that a small network reads from the context and
    the actions (`worldmodel.warp`), and denoise only the rest: the view's texture is carried along rather than
    regenerated, which a small network at a low resolution does badly. Needs predict_delta."""
    num_steps: int = 3
    """Default number of denoising steps when sampling."""
    sampler: str = "euler"
    """Default sampler: "euler" (diffusers EDMEulerScheduler) or "heun" (2nd order, ~2x the network calls)."""
    reward_channels: tuple[int, ...] = (32, 64, 64)
    """Channels of the reward/termination CNN (stride-2 conv per entry)."""
    reward_pool: int = 4
    """The reward CNN's features are average-pooled to a reward_pool x reward_pool grid before the head:
    where things are in the frame (the goal ahead or behind, the ball near the paddle) decides the
    reward, and a global average (1) throws that away."""
    reward_loss: str = "huber"
    """How the reward head is fitted: "huber" (smooth L1: robust to rare large rewards, but where the reward is not
    visible in the frames — CarRacing's +3.3 per track tile — it settles toward the median, so imagination pays
    nothing for staying on the track) or "mse" (the mean reward of what the frames show, which returns need)."""
    still_head: bool = False
    """Also learn the chance that the next frame equals the last one (a still step: a body pressed against a
    wall, a car at rest) with a small classifier on the context at full resolution (the reward CNN's channels),
    and sample it: a still step copies the last frame exactly instead of denoising one. At a small network
    resolution diffusion imagines a blocked step as motion (benchmarks/log/2026-12-06-imagination-diagnosis.md),
    so a policy trained in imagination learns that driving into a wall pays."""

    def __post_init__(self) -> None:
        self._check_types()
        self.resolution = tuple(int(v) for v in self.resolution)  # type: ignore[assignment]
        self.block_out_channels = tuple(int(v) for v in self.block_out_channels)
        self.reward_channels = tuple(int(v) for v in self.reward_channels)
        h, w = self.resolution
        if min(h, w) < 1 or not self.block_out_channels or min(self.block_out_channels + self.reward_channels) < 1:
            raise UserInputError(
                f"resolution {self.resolution}, block_out_channels {self.block_out_channels} and reward_channels "
                f"{self.reward_channels} must be non-empty and positive"
            )
        for name in ("layers_per_block", "norm_num_groups", "action_embed_dim", "num_steps", "reward_pool"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.sigma_min < self.sigma_max or self.sigma_data <= 0 or self.rho <= 0:
            raise UserInputError(
                f"need 0 < sigma_min < sigma_max, sigma_data > 0 and rho > 0; got sigma_min {self.sigma_min}, "
                f"sigma_max {self.sigma_max}, sigma_data {self.sigma_data}, rho {self.rho}"
            )
        if self.downsample < 1 or h % self.downsample or w % self.downsample:
            raise UserInputError(
                f"downsample {self.downsample}: use a whole number >= 1 that divides the resolution {h}x{w}"
            )
        down = 2 ** (len(self.block_out_channels) - 1)
        if (h // self.downsample) % down or (w // self.downsample) % down:
            raise UserInputError(
                f"resolution {h}x{w} / downsample {self.downsample} must be divisible by {down} for "
                f"{len(self.block_out_channels)} UNet levels; change the resolution, downsample or block_out_channels"
            )
        if self.warp and not self.predict_delta:
            raise UserInputError(
                "warp needs predict_delta: the denoiser predicts what the warped last frame leaves wrong"
            )
        if self.context_noise < 0:
            raise UserInputError(f"context_noise must be >= 0, got {self.context_noise}")
        if self.context < 1:
            raise UserInputError(f"context must be >= 1, got {self.context}")
        if self.sampler not in ("euler", "heun"):
            raise UserInputError(f"sampler must be 'euler' or 'heun', got {self.sampler!r}")
        if self.reward_loss not in ("huber", "mse"):
            raise UserInputError(f"reward_loss must be 'huber' or 'mse', got {self.reward_loss!r}")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise UserInputError(
                f"block_out_channels {self.block_out_channels} must be multiples of "
                f"norm_num_groups={self.norm_num_groups}"
            )
        ActionSpace.from_dict(self.action_space)

    def _check_types(self) -> None:
        """Each field of the type it is declared with (a config.json edited by hand can hold anything)."""
        import math

        def bad(name: str, want: str) -> UserInputError:
            return UserInputError(f"{name} must be {want}, got {getattr(self, name)!r}")

        for name in _INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise bad(name, "a whole number")
        for name in _FLOAT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(name, "a finite number")
        for name, n in (("resolution", 2), ("block_out_channels", None), ("reward_channels", None)):
            v = getattr(self, name)
            if (
                not isinstance(v, (list, tuple))
                or (n is not None and len(v) != n)
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in v)
            ):
                raise bad(name, f"a list of {n or 'some'} whole numbers")
        if not isinstance(self.action_space, dict):
            raise bad("action_space", 'an object such as {"kind": "discrete", "n": 4}')
        if self.text_encoder is not None and not isinstance(self.text_encoder, str):
            raise bad("text_encoder", "a folder name or null")
        for name in ("predict_delta", "still_head", "warp"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false")
        if not isinstance(self.sampler, str):
            raise bad("sampler", "'euler' or 'heun'")
        if not isinstance(self.reward_loss, str):
            raise bad("reward_loss", "'huber' or 'mse'")

    @property
    def network_resolution(self) -> tuple[int, int]:
        """(H, W) of the frames the networks see: the resolution divided by `downsample`."""
        return self.resolution[0] // self.downsample, self.resolution[1] // self.downsample

    @property
    def space(self) -> ActionSpace:
        return ActionSpace.from_dict(self.action_space)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["resolution"] = list(self.resolution)
        d["block_out_channels"] = list(self.block_out_channels)
        d["reward_channels"] = list(self.reward_channels)
        return {"format": CONFIG_FORMAT, **d}

    @staticmethod
    def from_dict(d: dict[str, Any], source: str = "config") -> WorldModelConfig:
        if not isinstance(d, dict):
            raise UserInputError(f"{source}: not a WorldModel config (a JSON object is expected)")
        d = dict(d)
        if d.pop("format", None) != CONFIG_FORMAT:
            raise UserInputError(f"{source}: not a WorldModel config (missing format {CONFIG_FORMAT!r})")
        names = {f.name for f in dataclasses.fields(WorldModelConfig)}
        unknown = set(d) - names
        if unknown:
            raise UserInputError(f"{source}: unknown config fields {sorted(unknown)}; written by a newer version?")
        d.setdefault("reward_pool", 1)  # models saved before the field existed pooled globally
        try:
            return WorldModelConfig(**d)
        except UserInputError as e:
            raise UserInputError(f"{source}: {e}") from e
        except (TypeError, ValueError, KeyError) as e:
            raise UserInputError(f"{source}: a value has the wrong type or is missing ({e})") from e

    def differences(self, other: WorldModelConfig) -> list[str]:
        """Fields whose values differ (for 'checkpoint from another config' errors)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]]
