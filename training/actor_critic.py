"""A small CNN actor-critic trained by PPO with GAE directly on a DreamVectorEnv's batch.

Learning in imagination (DIAMOND / Dreamer style): every environment step is one batched
world-model call for all `num_envs` rollouts, and the policy acts on the whole batch as one
tensor, so the only per-step cost besides the world model is one small CNN forward pass.

The trained `ActorCritic` is a plain policy object: `predict(obs) -> (action, None)` takes one
RGB uint8 observation [H,W,3] or a batch [B,H,W,3] (like Stable-Baselines3), so the same object
runs in the DreamEnv and in the ground-truth environment.

With `frames` > 1 the network sees the latest observations stacked along channels (newest last), so
it can tell whether its last step moved it: a push into a wall leaves the view unchanged, which one
frame cannot show. `predict` keeps the earlier observations itself and restarts them where
`episode_start` marks a new episode (the first observation stands in for the ones before it).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal
from tqdm import tqdm

from training.augment import augment
from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError
from wmcore.rundir import RunDir
from wmcore.tensors import load_tensors, save_tensors
from worldmodel.action_space import ActionSpace

LOG = logging.getLogger("worldmodel.actor_critic")
POLICY_CONFIG = "policy.json"
POLICY_WEIGHTS = "policy.safetensors"
POLICY_FORMAT = "worldmodel.policy"


@dataclass
class ActorCriticNetConfig:
    """Everything needed to rebuild an ActorCritic (stored as policy.json beside its weights)."""

    observation_shape: tuple[int, int, int] = (64, 64, 3)
    """RGB observation shape [H, W, 3]."""
    action_space: dict[str, Any] = field(default_factory=lambda: {"kind": "discrete", "n": 3})
    """Serialised worldmodel ActionSpace (Discrete, or a 1-D Box)."""
    channels: tuple[int, int, int] = (32, 64, 64)
    """Output channels of the three convolutions (kernels 8/4/3, strides 4/2/1: the Nature DQN trunk)."""
    hidden: int = 256
    """Width of the shared fully-connected layer."""
    input_size: int | None = None
    """Observations are area-averaged to input_size x input_size before the network (None: as they come).
    Below 36 pixels the trunk is three 3x3 stride-2 convolutions instead of the Nature DQN's 8/4/3: a
    20x20 view of a room is enough to find one's way, at a quarter of the arithmetic."""
    frames: int = 1
    """How many of the latest observations the network sees, stacked along channels (newest last); 2 shows it
    whether its last step changed the view (a blocked step does not)."""


def stack(history: Any, obs: Any, starts: Any, frames: int) -> Any:
    """A policy's input [B,H,W,3*frames] after `obs` [B,H,W,3]: `history` (its previous input, or None) shifted by
    one observation, with `obs` repeated where `starts` [B] marks a new episode (all of them without a history of
    this batch size). Works on numpy arrays and torch tensors alike; with one frame it is `obs`."""
    if frames == 1:
        return obs
    cat = torch.cat if isinstance(obs, torch.Tensor) else np.concatenate
    fresh = cat([obs] * frames, -1)
    if history is None or history.shape[0] != obs.shape[0]:
        return fresh
    shifted = cat([history[..., 3:], obs], -1)
    if isinstance(obs, torch.Tensor):
        keep = ~torch.as_tensor(starts, dtype=torch.bool, device=obs.device).reshape(-1, 1, 1, 1)
        return torch.where(keep, shifted, fresh)
    return np.where(~np.asarray(starts, bool).reshape(-1, 1, 1, 1), shifted, fresh)


def stack_episode(observations: np.ndarray, frames: int) -> np.ndarray:
    """Each step's latest `frames` observations [T,H,W,3*frames] (newest last) along one episode's observations
    [T,H,W,3]; before the first one, the first stands in."""
    if frames == 1:
        return observations
    idx = np.maximum(np.arange(len(observations))[:, None] + np.arange(1 - frames, 1)[None], 0)
    return np.concatenate(list(observations[idx].transpose(1, 0, 2, 3, 4)), -1)


def _layer(m: nn.Module, gain: float = float(np.sqrt(2))) -> nn.Module:
    """Orthogonal weights, zero bias (CleanRL's initialisation)."""
    nn.init.orthogonal_(m.weight, gain)
    nn.init.zeros_(m.bias)
    return m


class ActorCritic(nn.Module):
    """Shared CNN trunk with a policy head (categorical or diagonal Gaussian) and a value head."""

    def __init__(self, config: ActorCriticNetConfig):
        super().__init__()
        self.config = config
        h, w, _ = config.observation_shape
        if config.input_size is not None:
            if not 8 <= config.input_size <= min(h, w):
                raise UserInputError(
                    f"input_size {config.input_size}: use 8 to {min(h, w)} (the observations are {h}x{w})"
                )
            h = w = config.input_size
        if min(h, w) < 8:
            raise UserInputError(f"observations of {h}x{w} pixels are too small for the CNN; use at least 8x8")
        if config.frames < 1:
            raise UserInputError(f"frames {config.frames}: the network sees 1 or more observations")
        self.space = ActionSpace.from_dict(config.action_space)
        c1, c2, c3 = config.channels
        big = min(h, w) >= 36
        c0 = 3 * config.frames
        self.trunk = nn.Sequential(
            _layer(nn.Conv2d(c0, c1, 8 if big else 3, stride=4 if big else 2, padding=0 if big else 1)),
            nn.ReLU(),
            _layer(nn.Conv2d(c1, c2, 4 if big else 3, stride=2, padding=0 if big else 1)),
            nn.ReLU(),
            _layer(nn.Conv2d(c2, c3, 3, stride=1 if big else 2, padding=0 if big else 1)),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.trunk(torch.zeros(1, c0, h, w)).shape[1]
        self.fc = nn.Sequential(_layer(nn.Linear(flat, config.hidden)), nn.ReLU())
        n_out = self.space.n if self.space.is_discrete else self.space.dim
        self.actor = _layer(nn.Linear(config.hidden, n_out), 0.01)
        self.critic = _layer(nn.Linear(config.hidden, 1), 1.0)
        if not self.space.is_discrete:
            self.log_std = nn.Parameter(torch.zeros(n_out))
            self.register_buffer("low", torch.tensor(self.space.low, dtype=torch.float32))
            self.register_buffer("high", torch.tensor(self.space.high, dtype=torch.float32))
        self._history: np.ndarray | None = None  # predict's stacked observations [B,H,W,3*frames]

    def stack(self, history: Any, obs: Any, starts: Any) -> Any:
        """The network's input after `obs` [B,H,W,3] (see the module function `stack`)."""
        return stack(history, obs, starts, self.config.frames)

    def stack_episode(self, observations: np.ndarray) -> np.ndarray:
        """The network's inputs [T,H,W,3*frames] along one episode's observations [T,H,W,3] (before the first
        one, the first stands in)."""
        return stack_episode(observations, self.config.frames)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float().div(255.0).permute(0, 3, 1, 2)
        size = self.config.input_size
        if size is not None and x.shape[-1] != size:
            x = nn.functional.adaptive_avg_pool2d(x, size)
        return self.fc(self.trunk(x))

    def distribution(self, obs: torch.Tensor) -> tuple[torch.distributions.Distribution, torch.Tensor]:
        """Action distribution and value for uint8 inputs [B,H,W,3*frames] (see `stack`)."""
        x = self._features(obs)
        out = self.actor(x)
        dist = Categorical(logits=out) if self.space.is_discrete else Normal(out, self.log_std.exp().expand_as(out))
        return dist, self.critic(x).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self._features(obs)).squeeze(-1)

    def log_prob(self, dist: torch.distributions.Distribution, action: torch.Tensor) -> torch.Tensor:
        lp = dist.log_prob(action)
        return lp if self.space.is_discrete else lp.sum(-1)

    def entropy(self, dist: torch.distributions.Distribution) -> torch.Tensor:
        e = dist.entropy()
        return e if self.space.is_discrete else e.sum(-1)

    def to_env(self, action: torch.Tensor) -> np.ndarray:
        """Sampled actions as the environment takes them (Gaussian samples clipped to the Box)."""
        if self.space.is_discrete:
            return action.cpu().numpy().astype(np.int64)
        return torch.max(torch.min(action, self.high), self.low).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        """SB3-style: action(s) for one observation [H,W,3] or a batch [B,H,W,3]; with several `frames`, the
        earlier observations are the ones given before (restarted where `episode_start` is true)."""
        o = np.asarray(obs)
        single = o.ndim == 3
        o = o[None] if single else o
        if self.config.frames > 1:
            # None marks no start: the memory goes on (it restarts when the batch size changes)
            starts = np.zeros(len(o), bool) if episode_start is None else np.asarray(episode_start, bool).reshape(-1)
            o = self._history = self.stack(self._history, o, starts)
        act = self.act_on(o, deterministic)
        return (act[0] if single else act), None

    @torch.no_grad()
    def act_on(self, inputs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions [B] (or [B,D]) for network inputs [B,H,W,3*frames] already stacked (see `stack`)."""
        dist, _ = self.distribution(torch.as_tensor(inputs, device=self.critic.weight.device))
        if deterministic:
            a = dist.probs.argmax(-1) if self.space.is_discrete else dist.mean
        else:
            a = dist.sample()
        return self.to_env(a)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Action logits (discrete) or Gaussian means (continuous)."""
        return self.actor(self._features(obs))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """A policy directory: policy.json (config) + policy.safetensors, written atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.mkdir()
            write_json(
                tmp / POLICY_CONFIG,
                {"format": POLICY_FORMAT, "algorithm": "actor-critic", "net": asdict(self.config), **(extra or {})},
            )
            save_tensors(tmp / POLICY_WEIGHTS, self.state_dict(), metadata={"format": POLICY_FORMAT})
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ActorCritic:
        meta = json.loads((Path(path) / POLICY_CONFIG).read_text())
        net = meta["net"]
        config = ActorCriticNetConfig(
            observation_shape=tuple(net["observation_shape"]),
            action_space=net["action_space"],
            channels=tuple(net["channels"]),
            hidden=int(net["hidden"]),
            input_size=net.get("input_size"),
            frames=int(net.get("frames", 1)),
        )
        model = cls(config)
        try:
            model.load_state_dict(load_tensors(Path(path) / POLICY_WEIGHTS))
        except RuntimeError as e:
            raise UserInputError(f"{path}: weights do not match {POLICY_CONFIG} ({e}); re-save the policy") from e
        return model.to(device).eval()


@dataclass
class PPOHyperparameters:
    """PPO with GAE (the CleanRL ppo_atari defaults, shortened rollouts for imagination)."""

    learning_rate: float = 2.5e-4
    """Adam learning rate (the native actor-critic anneals it linearly to 0 over a run; SB3 keeps it constant)."""
    rollout_steps: int = 16
    """Steps per environment between updates (each step is one batched world-model call)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    epochs: int = 4
    """Optimisation epochs over each rollout."""
    minibatches: int = 4
    """Minibatches per epoch."""
    clip: float = 0.1
    """PPO ratio clip."""
    ent_coef: float = 0.01
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Gradient norm clip."""
    augment_coef: float = 0.0
    """DrAC (Raileanu et al. 2021): weight of a loss asking the policy and value to answer an augmented view as
    they answer the view itself (`training.augment`: shifted, blurred, contrast and brightness changed), so a
    policy trained on one world's views acts alike on another's; 0: off. The native actor-critic only."""

    def check(self, sb3: bool = False) -> None:
        """Refuse hyperparameters PPO cannot run with (before any model is loaded); `sb3`: they go to
        Stable-Baselines3's PPO, which has no DrAC term."""
        import math

        from wmcore.errors import UserInputError

        for name in ("rollout_steps", "epochs", "minibatches"):
            if getattr(self, name) < 1:
                raise UserInputError(f"--hp.{name.replace('_', '-')} {getattr(self, name)}: give 1 or more")
        for name in (
            "learning_rate",
            "gamma",
            "gae_lambda",
            "clip",
            "ent_coef",
            "vf_coef",
            "max_grad_norm",
            "augment_coef",
        ):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise UserInputError(f"--hp.{name.replace('_', '-')} {v}: give a finite number, 0 or more")
        if sb3 and self.augment_coef > 0:
            raise UserInputError(
                f"--hp.augment-coef {self.augment_coef}: DrAC is in the native actor-critic only "
                "(worldmodel train-policy --algorithm actor-critic); give 0 with SB3 PPO"
            )
        if self.learning_rate == 0 or self.gamma > 1 or self.gae_lambda > 1:
            raise UserInputError("--hp.learning-rate must be above 0, --hp.gamma and --hp.gae-lambda at most 1")


def average_gradients(module: nn.Module, accelerator: Any) -> None:
    """Mean of every parameter's gradient over the processes, in one all-reduce."""
    params = [p for p in module.parameters() if p.grad is not None]
    flat = accelerator.reduce(torch.cat([p.grad.flatten() for p in params]), reduction="mean")
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.view_as(p))


def _detached(dist: torch.distributions.Distribution) -> torch.distributions.Distribution:
    if isinstance(dist, Categorical):
        return Categorical(logits=dist.logits.detach())
    return Normal(dist.loc.detach(), dist.scale.detach())


def augmentation_loss(
    agent: ActorCritic,
    obs: torch.Tensor,
    dist: torch.distributions.Distribution,
    value: torch.Tensor,
    gen: torch.Generator,
) -> torch.Tensor:
    """DrAC's regulariser on inputs `obs` [B,H,W,C] whose action distribution and value are `dist`, `value`:
    KL(pi(.|obs) || pi(.|aug(obs))) + (V(aug(obs)) - V(obs))^2, the unaugmented answers held fixed (DrAC's
    G_pi + G_V), so only the augmented view is pulled towards them."""
    dist_aug, value_aug = agent.distribution(augment(obs, gen))
    kl = torch.distributions.kl_divergence(_detached(dist), dist_aug)
    if kl.dim() > 1:  # diagonal Gaussian: one KL per action dimension
        kl = kl.sum(-1)
    return kl.mean() + ((value_aug - value.detach()) ** 2).mean()


def train_actor_critic(
    agent: ActorCritic,
    env: Any,
    total_steps: int,
    hp: PPOHyperparameters,
    seed: int,
    run: RunDir | None = None,
    progress: bool = True,
    accelerator: Any | None = None,
) -> dict[str, float]:
    """PPO on a vector env with SAME_STEP autoreset (info["final_obs"] for truncation bootstrapping).

    Under `accelerate launch` with several processes, pass the `Accelerator`: each process steps its
    own env, and the gradients are averaged over the processes before every optimiser step, so the
    (identically initialised) agents stay identical — data parallel PPO.

    Returns summary statistics (steps/s, mean return of the episodes that ended)."""
    device = agent.critic.weight.device
    n, T = env.num_envs, hp.rollout_steps
    num_updates = max(1, total_steps // (n * T))
    opt = torch.optim.Adam(agent.parameters(), lr=hp.learning_rate, eps=1e-5)
    h, w, c = env.single_observation_space.shape
    obs_shape = (h, w, c * agent.config.frames)  # the network's input: the latest observations stacked
    act_shape = () if agent.space.is_discrete else (agent.space.dim,)
    obs_buf = torch.zeros((T, n) + obs_shape, dtype=torch.uint8, device=device)
    act_buf = torch.zeros(
        (T, n) + act_shape, dtype=torch.long if agent.space.is_discrete else torch.float32, device=device
    )
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros(T, n, device=device) for _ in range(4))

    obs_np, _ = env.reset(seed=seed)
    obs = agent.stack(None, torch.as_tensor(obs_np, device=device), None)
    ep_ret = np.zeros(n)
    finished: list[float] = []
    all_finished: list[float] = []
    t0, global_step = time.time(), 0
    bar = tqdm(total=num_updates * n * T, desc="actor-critic", unit="step", disable=not progress)
    for update in range(num_updates):
        for g in opt.param_groups:
            g["lr"] = hp.learning_rate * (1.0 - update / num_updates)
        for t in range(T):
            with torch.no_grad():
                dist, value = agent.distribution(obs)
                action = dist.sample()
            obs_buf[t], act_buf[t], val_buf[t] = obs, action, value
            logp_buf[t] = agent.log_prob(dist, action).detach()
            next_np, reward, term, trunc, info = env.step(agent.to_env(action))
            reward = reward.astype(np.float64)
            ep_ret += reward
            cut = trunc & ~term
            if cut.any():  # time limit, not a real end: bootstrap from the value of the last observation
                with torch.no_grad():
                    final = torch.as_tensor(info["final_obs"][cut], device=device)
                    final = agent.stack(obs[torch.as_tensor(cut, device=device)], final, np.zeros(int(cut.sum()), bool))
                    reward[cut] += hp.gamma * agent.value(final).cpu().numpy()
            done = term | trunc
            for i in np.flatnonzero(done):
                finished.append(float(ep_ret[i]))
                ep_ret[i] = 0.0
            rew_buf[t] = torch.as_tensor(reward, dtype=torch.float32, device=device)
            done_buf[t] = torch.as_tensor(done, dtype=torch.float32, device=device)
            obs = agent.stack(obs, torch.as_tensor(next_np, device=device), done)
            global_step += n
            bar.update(n)

        # GAE: done_buf[t] marks that transition t ended its episode (obs t+1 starts a new one).
        with torch.no_grad():
            next_value = agent.value(obs)
        adv = torch.zeros_like(rew_buf)
        gae = torch.zeros(n, device=device)
        for t in reversed(range(T)):
            nv = next_value if t == T - 1 else val_buf[t + 1]
            live = 1.0 - done_buf[t]
            delta = rew_buf[t] + hp.gamma * nv * live - val_buf[t]
            gae = delta + hp.gamma * hp.gae_lambda * live * gae
            adv[t] = gae
        ret = adv + val_buf

        b_obs, b_act = obs_buf.flatten(0, 1), act_buf.flatten(0, 1)
        b_logp, b_adv, b_ret, b_val = logp_buf.flatten(), adv.flatten(), ret.flatten(), val_buf.flatten()
        batch = n * T
        mb = max(1, batch // hp.minibatches)
        gen = torch.Generator().manual_seed(seed + update)
        for _ in range(hp.epochs):
            perm = torch.randperm(batch, generator=gen).to(device)
            for s in range(0, batch, mb):
                idx = perm[s : s + mb]
                dist, value = agent.distribution(b_obs[idx])
                ratio = (agent.log_prob(dist, b_act[idx]) - b_logp[idx]).exp()
                a = b_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8) if len(idx) > 1 else a
                pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - hp.clip, 1 + hp.clip)).mean()
                v_clipped = b_val[idx] + (value - b_val[idx]).clamp(-hp.clip, hp.clip)
                v_loss = 0.5 * torch.max((value - b_ret[idx]) ** 2, (v_clipped - b_ret[idx]) ** 2).mean()
                entropy = agent.entropy(dist).mean()
                loss = pg_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
                if hp.augment_coef > 0:
                    loss = loss + hp.augment_coef * augmentation_loss(agent, b_obs[idx], dist, value, gen)
                opt.zero_grad()
                loss.backward()
                if accelerator is not None and accelerator.num_processes > 1:
                    average_gradients(agent, accelerator)
                nn.utils.clip_grad_norm_(agent.parameters(), hp.max_grad_norm)
                opt.step()

        sps = global_step / (time.time() - t0)
        mean_ret = float(np.mean(finished)) if finished else float("nan")
        bar.set_postfix(ret=f"{mean_ret:.3f}", sps=f"{sps:.0f}")
        if run is not None:
            run.log_metrics(
                step=global_step,
                update=update,
                episode_return=mean_ret,
                episodes=len(finished),
                policy_loss=pg_loss.item(),
                value_loss=v_loss.item(),
                entropy=entropy.item(),
                steps_per_second=sps,
            )
        all_finished += finished
        finished = []
    bar.close()
    sps = global_step / (time.time() - t0)
    LOG.info("actor-critic: %d environment steps in %d updates, %.1f steps/s", global_step, num_updates, sps)
    return {
        "steps": global_step,
        "updates": num_updates,
        "steps_per_second": sps,
        "episodes": len(all_finished),
        "mean_return": float(np.mean(all_finished)) if all_finished else float("nan"),
    }
