"""`worldmodel behaviour-cloning DATASET`: a pixel policy cloned from demonstrations in a dataset.

The demonstrations are the episodes whose recorded policy (`Episode.meta["policy"]`, written by
`collect`) contains `--demonstrations` (default "expert": e.g. the noisy map-reading planner). The
network is the actor-critic's (training/actor_critic.py); its action head is fitted by cross-entropy
(discrete) or Gaussian likelihood (continuous) to the demonstrated actions from the observations
alone, so the clone never reads the map. Mixed with random actions (`noisy:EPS:DIR`), clones make a
graded family of policies of known quality for `validate`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import tyro
from tqdm import tqdm

from wmcore.errors import UserInputError
from wmcore.rundir import open_run

LOG = logging.getLogger("worldmodel.behaviour_cloning")


@dataclass
class BehaviourCloningConfig:
    """Clone a pixel policy from the demonstrations in a trajectory dataset."""

    dataset: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="DATASET")]]
    """Trajectory dataset holding the demonstrations (RGB frames as the policy will observe them)."""
    out: Path = Path("runs/clone")
    """Run directory: policy/, summary.json, config.json, log.txt, metrics.jsonl."""
    demonstrations: str = "expert"
    """Episodes whose recorded policy contains this text are the demonstrations ("" takes every episode)."""
    steps: int = 1500
    """Optimisation steps."""
    batch_size: int = 64
    """Observation-action pairs per step."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    channels: tuple[int, int, int] = (32, 64, 64)
    """CNN channels (the actor-critic's trunk)."""
    hidden: int = 256
    """Width of the shared fully-connected layer."""
    device: str = "cpu"
    """Torch device."""
    seed: int = 0
    """Seed of the initialisation and the batches."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


def demonstrations(dataset, match: str) -> tuple[np.ndarray, np.ndarray]:
    """(observations uint8 [N,H,W,3], actions [N,...]) of every step of the matching episodes."""
    eps = [e for e in dataset.episodes if match in str((e.meta or {}).get("policy", ""))]
    if not eps:
        raise UserInputError(
            f"{dataset.path}: no episode was recorded with a policy containing {match!r}; record demonstrations "
            "with `worldmodel collect --policy expert` (or pass --demonstrations '')"
        )
    obs = np.concatenate([np.asarray(e.frames[:-1]) for e in eps])
    acts = np.concatenate([np.asarray(e.actions) for e in eps])
    return obs, acts


def behaviour_cloning(cfg: BehaviourCloningConfig) -> Path:
    """Fit the policy and save RUN/policy; returns its path."""
    from training.actor_critic import ActorCritic, ActorCriticNetConfig
    from wmcore.atomic import write_json
    from worldmodel.dataset import TrajectoryDataset

    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.hidden < 1 or min(cfg.channels) < 1:
        raise UserInputError(
            f"--steps {cfg.steps}, --batch-size {cfg.batch_size}, --hidden {cfg.hidden} and --channels "
            f"{cfg.channels} must be positive"
        )
    if not np.isfinite(cfg.learning_rate) or cfg.learning_rate <= 0:
        raise UserInputError(f"--learning-rate {cfg.learning_rate}: give a finite rate above 0")
    if not Path(cfg.dataset).exists():
        raise UserInputError(f"{cfg.dataset}: no such dataset; record demonstrations with `worldmodel collect`")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with open_run(out, cfg, overwrite=cfg.overwrite, tensorboard=True) as run:
        dataset = TrajectoryDataset(cfg.dataset)
        obs, acts = demonstrations(dataset, cfg.demonstrations)
        run.start()  # the demonstrations are there: the run is accepted
        h, w = dataset.resolution
        net = ActorCriticNetConfig((h, w, 3), dataset.action_space.to_dict(), cfg.channels, cfg.hidden)
        agent = ActorCritic(net).to(cfg.device)
        opt = torch.optim.Adam(agent.parameters(), lr=cfg.learning_rate)
        obs_t = torch.as_tensor(obs)
        act_t = torch.as_tensor(acts)
        gen = torch.Generator().manual_seed(cfg.seed)
        t0, bar = time.time(), tqdm(range(cfg.steps), desc="behaviour cloning", unit="step")
        for step in bar:
            idx = torch.randint(len(obs_t), (cfg.batch_size,), generator=gen)
            dist, _ = agent.distribution(obs_t[idx].to(cfg.device))
            loss = -agent.log_prob(dist, act_t[idx].to(cfg.device)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 100 == 0 or step == cfg.steps - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}")
                run.log_metrics(step=step, loss=loss.item(), steps_per_second=(step + 1) / (time.time() - t0))
        agent.eval()
        with torch.no_grad():  # how often the clone's most likely action is the demonstrated one
            pred = np.concatenate(
                [agent.predict(obs[i : i + 512], deterministic=True)[0] for i in range(0, len(obs), 512)]
            )
        agreement = float((pred == acts).mean()) if dataset.action_space.is_discrete else None
        source = {"dataset": str(cfg.dataset), "demonstrations": cfg.demonstrations, "pairs": len(obs)}
        agent.save(
            out / "policy",
            extra={
                "algorithm": "behaviour-cloning",
                "trained_on": source,
                "config": {k: str(v) for k, v in asdict(cfg).items()},
            },
        )
        summary = {
            "pairs": len(obs),
            "final_loss": loss.item(),
            "train_action_agreement": agreement,
            "seconds": round(time.time() - t0, 1),
        }
        write_json(out / "summary.json", summary)
        LOG.info(
            "cloned %d demonstration steps: loss %.3f, agreement %s; policy in %s",
            len(obs),
            loss.item(),
            agreement,
            out / "policy",
        )
    return out / "policy"
