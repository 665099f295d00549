"""`worldmodel behaviour-cloning DATASET`: a pixel policy cloned from demonstrations in a dataset.

The demonstrations are the episodes whose recorded policy (`Episode.meta["policy"]`, written by
`collect`) contains `--demonstrations` (default "expert": e.g. the noisy map-reading planner). The
network is the actor-critic's (training/actor_critic.py); its action head is fitted by cross-entropy
(discrete) or Gaussian likelihood (continuous) to the demonstrated actions from the observations
alone, so the clone never reads the map. Mixed with random actions (`noisy:EPS:DIR`), clones make a
graded family of policies of known quality for `validate`.

With `--dagger-scene` the clone is then corrected where it goes (DAgger, Ross, Gordon & Bagnell 2011):
for `--dagger-rounds` rounds it drives `--dagger-episodes` episodes in that scene (a twin's steps are
free), sampling its own actions, the map-reading expert labels every observation it met with the action
it would take there, and the clone is refitted on every label so far. A plain clone only sees the
states the expert visits and drifts off them; a corrected one has been shown the way back. Given several
scenes (reconstructions of one place), the rounds take them in turn, so the clone is not fitted to one
reconstruction's errors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

from envs.scene_config import SceneEnvConfig
from training.augment import augment
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
    augment: bool = True
    """Show each batch shifted by up to 2 pixels, blurred by a random amount and with its brightness and contrast
    jittered (DrQ's shift, plus what a reconstruction changes: sharpness and exposure), so a clone fitted on one
    world's views holds in another's."""
    input_size: int | None = None
    """The policy looks at observations area-averaged to this size (None: as recorded); the model-based loop's
    policies look at the world model's network resolution, so a clone that starts one must match it."""
    frames: int = 1
    """The policy sees this many latest observations, stacked (2: whether its last step moved it); the model-based
    loop's policy started from the clone sees the same."""
    dagger_scene: tuple[str, ...] = ()
    """Correct the clone where it drives (DAgger) in these scenes, round by round in turn: Scene directories,
    nerfstudio runs, .ply files or room:DIR; the map-reading expert labels what it sees there. Empty: plain
    cloning."""
    dagger_goals: tuple[float, ...] = ()
    """DAgger with a goal: the goal in each --dagger-scene's own frame, two numbers per scene (two reconstructions
    of one place have two frames); empty: --env.goal in every scene."""
    env: SceneEnvConfig = field(default_factory=SceneEnvConfig)
    """DAgger: the body, camera and task in --dagger-scene (as recorded in DATASET: same size and goal)."""
    dagger_rounds: int = 4
    """DAgger: rounds of driving, labelling and refitting."""
    dagger_episodes: int = 30
    """DAgger: episodes the clone drives per round."""
    dagger_steps: int = 750
    """DAgger: optimisation steps after each round, on every label so far."""
    device: str = "cpu"
    """Torch device."""
    seed: int = 0
    """Seed of the initialisation and the batches."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""

    def __post_init__(self) -> None:
        if self.dagger_scene is None or isinstance(self.dagger_scene, (str, Path)):  # one scene, from Python
            self.dagger_scene = () if self.dagger_scene is None else (str(self.dagger_scene),)


def demonstrations(dataset, match: str, frames: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(the policy's inputs uint8 [N,H,W,3*frames], actions [N,...]) of every step of the matching episodes: each
    step's latest `frames` observations of its episode."""
    from training.actor_critic import stack_episode

    eps = [e for e in dataset.episodes if match in str((e.meta or {}).get("policy", ""))]
    if not eps:
        raise UserInputError(
            f"{dataset.path}: no episode was recorded with a policy containing {match!r}; record demonstrations "
            "with `worldmodel collect --policy expert` (or pass --demonstrations '')"
        )
    obs = np.concatenate([stack_episode(np.asarray(e.frames[:-1]), frames) for e in eps])
    acts = np.concatenate([np.asarray(e.actions) for e in eps])
    return obs, acts


def _fit(
    agent: Any,
    opt: Any,
    obs: torch.Tensor,
    acts: torch.Tensor,
    steps: int,
    cfg: BehaviourCloningConfig,
    gen: torch.Generator,
    run: Any,
    step0: int,
    desc: str,
) -> float:
    """`steps` cross-entropy (or likelihood) steps on random batches of (obs, acts); returns the last loss."""
    t0, bar = time.time(), tqdm(range(steps), desc=desc, unit="step")
    loss = torch.zeros(())
    for step in bar:
        idx = torch.randint(len(obs), (cfg.batch_size,), generator=gen)
        batch = augment(obs[idx], gen) if cfg.augment else obs[idx]
        dist, _ = agent.distribution(batch.to(cfg.device))
        loss = -agent.log_prob(dist, acts[idx].to(cfg.device)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}")
            run.log_metrics(step=step0 + step, loss=loss.item(), steps_per_second=(step + 1) / (time.time() - t0))
    return float(loss.item())


def drive_and_label(
    agent: Any, env: Any, expert: Any, episodes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """The clone drives `episodes` episodes in `env` (sampling its actions); returns its input at every step (its
    latest observations, as many as an ActorCritic clone sees), the expert's action for each, and the clone's
    success rate in those episodes."""
    from training.actor_critic import ActorCritic, stack
    from training.rollouts import episode_success

    frames = agent.config.frames if isinstance(agent, ActorCritic) else 1
    obs, labels, wins = [], [], []
    for ep in range(episodes):
        o, _ = env.reset(seed=seed + ep)
        done, ret, terminated, info, inputs, first = False, 0.0, False, {}, None, True
        while not done:
            inputs = stack(inputs, np.asarray(o)[None], [first], frames)
            obs.append(inputs[0])
            labels.append(int(expert.predict(None)[0]))
            a = agent.predict(o, episode_start=[first], deterministic=False)[0]
            first = False
            o, r, terminated, truncated, info = env.step(a)
            ret, done = ret + float(r), terminated or truncated
        wins.append(episode_success(info, terminated, ret, None))
    return np.stack(obs), np.asarray(labels, np.int64), float(np.mean(wins))


def _dagger_envs(cfg: BehaviourCloningConfig, dataset: Any) -> list[tuple[Any, Any]]:
    """The envs the clone is corrected in, each with its expert, checked against the demonstrations."""
    import dataclasses

    from envs.scene_env import SceneEnv, check_scene_path
    from training.policies import resolve_policy
    from worldmodel.action_space import ActionSpace

    if (cfg.env.height, cfg.env.width) != tuple(dataset.resolution):
        raise UserInputError(
            f"--env.width {cfg.env.width} --env.height {cfg.env.height}: {cfg.dataset} was recorded at "
            f"{tuple(dataset.resolution)} (height, width); DAgger must show the clone the same views"
        )
    out = []
    for i, scene in enumerate(cfg.dagger_scene):
        check_scene_path(scene)
        env_cfg = cfg.env
        if cfg.dagger_goals:
            env_cfg = dataclasses.replace(cfg.env, goal=tuple(cfg.dagger_goals[2 * i : 2 * i + 2]))
        try:
            env = SceneEnv(scene, config=env_cfg)
        except (TypeError, ValueError) as e:
            raise UserInputError(f"--dagger-scene {scene} with --env.*: {e}") from e
        if ActionSpace.from_gym(env.action_space) != dataset.action_space:
            raise UserInputError(
                f"--dagger-scene {scene}: its actions {ActionSpace.from_gym(env.action_space).to_dict()} "
                f"are not the demonstrations' {dataset.action_space.to_dict()}"
            )
        out.append((env, resolve_policy("expert", env)))
    return out


def behaviour_cloning(cfg: BehaviourCloningConfig) -> Path:
    """Fit the policy (and correct it by DAgger when asked) and save RUN/policy; returns its path."""
    from training.actor_critic import ActorCritic, ActorCriticNetConfig
    from wmcore.atomic import write_json
    from worldmodel.dataset import TrajectoryDataset

    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.hidden < 1 or min(cfg.channels) < 1:
        raise UserInputError(
            f"--steps {cfg.steps}, --batch-size {cfg.batch_size}, --hidden {cfg.hidden} and --channels "
            f"{cfg.channels} must be positive"
        )
    if cfg.frames < 1:
        raise UserInputError(f"--frames {cfg.frames}: the policy sees 1 or more observations")
    if cfg.input_size is not None and cfg.input_size < 8:
        raise UserInputError(f"--input-size {cfg.input_size}: give at least 8 pixels (or leave it out)")
    if cfg.dagger_scene and min(cfg.dagger_rounds, cfg.dagger_episodes, cfg.dagger_steps) < 1:
        raise UserInputError(
            f"--dagger-rounds {cfg.dagger_rounds}, --dagger-episodes {cfg.dagger_episodes} and --dagger-steps "
            f"{cfg.dagger_steps} must be positive with --dagger-scene"
        )
    if not np.isfinite(cfg.learning_rate) or cfg.learning_rate <= 0:
        raise UserInputError(f"--learning-rate {cfg.learning_rate}: give a finite rate above 0")
    if cfg.dagger_goals and len(cfg.dagger_goals) != 2 * len(cfg.dagger_scene):
        raise UserInputError(
            f"--dagger-goals {' '.join(map(str, cfg.dagger_goals))}: give two numbers (x y) per --dagger-scene "
            f"({len(cfg.dagger_scene)} scenes), or none to use --env.goal in every scene"
        )
    if not Path(cfg.dataset).exists():
        raise UserInputError(f"{cfg.dataset}: no such dataset; record demonstrations with `worldmodel collect`")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with open_run(out, cfg, overwrite=cfg.overwrite, tensorboard=True) as run:
        dataset = TrajectoryDataset(cfg.dataset)
        obs, acts = demonstrations(dataset, cfg.demonstrations, cfg.frames)
        worlds = _dagger_envs(cfg, dataset) if cfg.dagger_scene else []
        run.start()  # the demonstrations (and the scene to correct the clone in) are there: the run is accepted
        h, w = dataset.resolution
        size = None if cfg.input_size in (None, h) else cfg.input_size
        net = ActorCriticNetConfig(
            (h, w, 3), dataset.action_space.to_dict(), cfg.channels, cfg.hidden, size, frames=cfg.frames
        )
        agent = ActorCritic(net).to(cfg.device)
        opt = torch.optim.Adam(agent.parameters(), lr=cfg.learning_rate)
        gen = torch.Generator().manual_seed(cfg.seed)
        t0 = time.time()
        obs_t, act_t = torch.as_tensor(obs), torch.as_tensor(acts)
        loss = _fit(agent, opt, obs_t, act_t, cfg.steps, cfg, gen, run, 0, "behaviour cloning")
        rounds = []
        for r in range(cfg.dagger_rounds if worlds else 0):
            env, expert = worlds[r % len(worlds)]  # several scenes: each round in the next
            agent.eval()
            new_obs, new_acts, success = drive_and_label(agent, env, expert, cfg.dagger_episodes, cfg.seed + 1000 * r)
            agent.train()
            obs_t = torch.cat([obs_t, torch.as_tensor(new_obs)])
            act_t = torch.cat([act_t, torch.as_tensor(new_acts)])
            rounds.append(
                {"round": r, "scene": cfg.dagger_scene[r % len(worlds)], "clone_success": success, "labels": len(obs_t)}
            )
            run.log_metrics(step=cfg.steps + r * cfg.dagger_steps, dagger_success=success, dagger_labels=len(obs_t))
            LOG.info(
                "DAgger round %d in %s: the clone succeeded in %.0f%% of %d episodes; %d labels",
                r,
                cfg.dagger_scene[r % len(worlds)],
                100 * success,
                cfg.dagger_episodes,
                len(obs_t),
            )
            step0 = cfg.steps + r * cfg.dagger_steps
            loss = _fit(agent, opt, obs_t, act_t, cfg.dagger_steps, cfg, gen, run, step0, f"DAgger round {r + 1}")
        agent.eval()
        with torch.no_grad():  # how often the clone's most likely action is the demonstrated one
            pred = np.concatenate([agent.act_on(obs[i : i + 512], deterministic=True) for i in range(0, len(obs), 512)])
        agreement = float((pred == acts).mean()) if dataset.action_space.is_discrete else None
        source = {"dataset": str(cfg.dataset), "demonstrations": cfg.demonstrations, "pairs": len(obs)}
        if worlds:
            source["dagger"] = {"scenes": list(cfg.dagger_scene), "rounds": cfg.dagger_rounds, "labels": len(obs_t)}
        agent.save(
            out / "policy",
            extra={
                "algorithm": "behaviour-cloning" + (" + DAgger" if worlds else ""),
                "trained_on": source,
                "config": {k: str(v) for k, v in asdict(cfg).items()},
            },
        )
        summary = {
            "pairs": len(obs),
            "final_loss": loss,
            "train_action_agreement": agreement,
            "dagger": rounds,
            "seconds": round(time.time() - t0, 1),
        }
        write_json(out / "summary.json", summary)
        LOG.info(
            "cloned %d demonstration steps: loss %.3f, agreement %s; policy in %s",
            len(obs),
            loss,
            agreement,
            out / "policy",
        )
    return out / "policy"
