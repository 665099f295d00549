"""`worldmodel validate MODEL DATASET --policies ...`: does imagination judge policies as reality does?

Three worlds run the same policy objects with the same spaces (ARCHITECTURE.md, "Three worlds"):

- **reality**: where the policy will be deployed — `--reality room:DIR` is the true room of a
  synthetic capture (the bundled example), a Gymnasium id is that env (default: the env the dataset
  was collected from);
- **twin**: `--scene SCENE`, a SceneEnv over the reconstruction of reality (optional);
- **imagination**: the world model MODEL, started from contexts of reality's episodes.

Every policy acts on its own observations in every world (closed loop), from matched starts: episode
i resets reality with seed + i; the twin starts from the same place (carried over by the Sim(3)
between the capture's true cameras and the reconstruction's); imagination starts from reality's first
L frames and L-1 actions. Policies that read the true state (`expert`) run in reality and the twin
only, as references.

Reported: per policy and world the mean return and success with 95% intervals; per pair of worlds
(imagination–reality, twin–reality, imagination–twin) Spearman ρ and Kendall τ of the mean returns
with bootstrap intervals over episodes, and the regret of deploying the policy the judging world
ranks best; with every imagined return, how far to trust it (the spread of sampled futures along the
policy's rollouts, the share of its frames outside the training data) and flags. report.json,
report.md, one scatter plot per pair, example frames.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

from envs.options import EnvKwargs, parse_env_kwargs
from training.policies import SPEC_HELP
from training.worlds import Worlds
from wmcore.atomic import write_json, write_text
from wmcore.errors import UserInputError
from wmcore.rundir import open_run
from wmcore.side_process import SideProcess

LOG = logging.getLogger("worldmodel.validate")

REFERENCE_POLICIES = ("expert", "oracle")
"""Policies that read the true state instead of observations: they cannot act in imagination."""
SPREAD_FLAG = 1.5
"""Flag `unsure` when a policy's imagined-future spread exceeds this multiple of the in-data spread."""
OUTSIDE_FLAG = 0.15
"""Flag `leaves data` when more than this share of a policy's frames lie outside the training data
(in-distribution behaviour puts about 5% there by construction of the threshold)."""
DECISION_FLAG = 0.8
"""Flag `sees differently` when a policy keeps fewer than this share of its decisions on imagined frames
(training.rollouts.decisions_kept): imagination then judges it on views it does not act on as on real ones."""
PAIRS = (("imagination", "reality"), ("twin", "reality"), ("imagination", "twin"))


@dataclass
class ValidateConfig:
    """Run a family of policies in reality, the twin and imagination, and compare the worlds."""

    model: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="MODEL")]]
    """World model directory (RUN/model from train-world-model): imagination."""
    dataset: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="DATASET")]]
    """The model's trajectory dataset (its dataset.json names the env it came from)."""
    policies: tuple[str, ...] = ("random",)
    """Policies to judge: any kind `training.policies.resolve_policy` takes (random, sticky, expert, noisy:EPS:SPEC,
    a saved policy directory, an SB3 .zip, module:attr). `expert` runs as a reference in reality and the twin."""
    names: tuple[str, ...] = ()
    """Labels of the policies in the report, in the order of --policies (default: from their specs)."""
    reality: str | None = None
    """The real world: room:DIR (the true room of a synthetic capture, e.g. room:assets/example_room) or a Gymnasium
    id; default: the env the dataset was collected from."""
    scene: Path | None = None
    """The twin: a SceneEnv over this Scene (a reconstruction of reality), observing at the model's resolution."""
    env_kwargs: EnvKwargs = field(default_factory=dict)
    """JSON options of the real env (SceneEnv options for room: and SceneNav; a goal is in reality's frame and is
    carried into the twin's). With only --scene, they are the twin's."""
    episodes: int = 20
    """Episodes per policy in each world."""
    max_steps: int = 50
    """Steps per episode (including the L-1 context steps imagination shares with reality)."""
    success_return: float | None = None
    """Envs without info["success"]: an episode succeeds when its return reaches this; None: when it ends by
    termination rather than the step limit."""
    spread: bool = True
    """Measure the imagined-future spread (a second sample of every imagined frame: twice the model calls)."""
    spread_episodes: int | None = None
    """Measure the spread on the first this many of each policy's imagined episodes only (None: all): the flag
    needs its mean, and each episode without it saves a second sample of every frame."""
    diagnose: bool = True
    """Also score every family policy's true episodes (reality's, else the twin's) with the world model's reward
    model on the true frames, and with their actions replayed open loop in imagination: ranked against the
    truth, these say whether the reward model or the dynamics lose the ranking. And reality's split-half
    ranking agreement, the ceiling any judge can reach at this many episodes."""
    diagnose_episodes: int | None = None
    """Diagnose on the first this many of each policy's episodes only (None: all): the open-loop replay costs as
    much as the imagined episodes themselves, and its ranking is a diagnosis, not a target."""
    coverage_holdout: int | None = None
    """Episodes at the end of the dataset that serve as the in-distribution reference of the coverage
    check (None: the world-model run's own hold-out, read from its config.json beside MODEL, else a tenth)."""
    eval_metrics: Path | None = None
    """metrics.json from `worldmodel evaluate-world-model`: adds the PSNR-by-horizon plot."""
    out: Path = Path("runs/validate")
    """Run directory: report.json, report.md, PNGs, config.json, log.txt, metrics.jsonl."""
    denoising_steps: int | None = None
    """Denoising steps per imagined frame (None: the model's default)."""
    snap_to_data: bool = False
    """Replace every imagined frame by the nearest frame of DATASET (worldmodel.frame_memory): the model decides
    where a rollout goes, the data what the policy and the reward head see there."""
    device: str = "cpu"
    """Torch device of the world model and the policies."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    beside: bool = True
    """Run the policies' episodes in reality and the twin in a second process (`wmcore.side_process`) while this
    one imagines: alone the command keeps about 1.2 of the 2-core CPU's cores busy. The figures are the same
    either way."""
    seed: int = 0
    """Episode i starts from seed + i in every world."""
    deterministic: bool = False
    """Take each policy's most likely action; by default actions are sampled, as in training (argmax
    navigation policies tend to press into walls)."""
    overwrite: bool = False
    """Replace the previous run in `out` (kept until this one has finished)."""


# ---------------------------------------------------------------------- the command
def _label(spec: str) -> str:
    p = Path(spec)
    return f"{p.parent.name}/{p.name}" if p.exists() and p.name == "policy" else spec


_SIDE_WORLDS: dict[str, Worlds] = {}
"""The worlds of the validation the side process serves, built on its first policy."""


def true_worlds(
    cfg: ValidateConfig, p_idx: int, spec: str, worlds: Worlds | None = None
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """The `p_idx`-th policy's episodes in reality and the twin (episode i from seed + i in reality, the twin
    from the same places) and the seconds each world took. `worlds` None (in the side process): built from cfg
    once and kept."""
    from training.policies import resolve_policy
    from training.rollouts import true_episodes

    if worlds is None:
        key = json.dumps(asdict(cfg), default=str)
        if key not in _SIDE_WORLDS:
            from worldmodel.dataset import TrajectoryDataset

            if cfg.threads:
                torch.set_num_threads(cfg.threads)
            _SIDE_WORLDS.clear()
            _SIDE_WORLDS[key] = Worlds(cfg, TrajectoryDataset(cfg.dataset))
        worlds = _SIDE_WORLDS[key]
    seeds = [cfg.seed + i for i in range(cfg.episodes)]
    episodes: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    for world, env in (("reality", worlds.reality), ("twin", worlds.twin)):
        if env is None:
            continue
        t0 = time.time()
        policy = resolve_policy(spec, env, seed=cfg.seed + p_idx, device=cfg.device)
        starts = worlds.twin_starts(episodes["reality"]) if world == "twin" and "reality" in episodes else None
        episodes[world] = true_episodes(
            env, policy, seeds, cfg.max_steps, cfg.deterministic, starts, cfg.success_return
        )
        seconds[world] = time.time() - t0
    return episodes, seconds


def _holdout(cfg: ValidateConfig, n_episodes: int) -> int:
    if cfg.coverage_holdout is not None:
        return cfg.coverage_holdout
    run_cfg = Path(cfg.model).parent / "config.json"
    try:
        return int(json.loads(run_cfg.read_text())["holdout_episodes"]) or max(1, n_episodes // 10)
    except (OSError, KeyError, ValueError, TypeError):
        return max(1, n_episodes // 10)


def validate(cfg: ValidateConfig) -> dict[str, Any]:
    """Run every policy in every world; write report.json, report.md and plots. Returns the report."""
    from training.evaluate_world_model import plot_psnr
    from training.policies import resolve_policy
    from training.rollouts import (
        decisions_kept,
        imagined_episodes,
        replayed_episodes,
        replayed_spread,
        reward_model_returns,
    )
    from training.stats import rank_agreement, split_half_agreement, summarise
    from training.validate_report import example_strip, plot_pair, render_markdown
    from wmcore.media import write_png
    from worldmodel.coverage import DataCoverage
    from worldmodel.dataset import TrajectoryDataset

    if cfg.episodes < 1 or cfg.max_steps < 1:
        raise UserInputError(f"--episodes {cfg.episodes} and --max-steps {cfg.max_steps} must be positive")
    if cfg.denoising_steps is not None and cfg.denoising_steps < 1:
        raise UserInputError(f"--denoising-steps {cfg.denoising_steps}: give 1 or more")
    if cfg.diagnose_episodes is not None and cfg.diagnose_episodes < 1:
        raise UserInputError(f"--diagnose-episodes {cfg.diagnose_episodes}: give 1 or more (or leave it out: all)")
    if cfg.spread_episodes is not None and cfg.spread_episodes < 1:
        raise UserInputError(f"--spread-episodes {cfg.spread_episodes}: give 1 or more (or leave it out: all)")
    if cfg.coverage_holdout is not None and cfg.coverage_holdout < 1:
        raise UserInputError(f"--coverage-holdout {cfg.coverage_holdout}: give 1 or more episodes")
    if cfg.success_return is not None and not np.isfinite(cfg.success_return):
        raise UserInputError(f"--success-return {cfg.success_return}: give a finite return")
    parse_env_kwargs(cfg.env_kwargs)
    if cfg.scene is not None:
        from envs.scene_env import check_scene_path

        check_scene_path(cfg.scene)
    if not cfg.policies:
        raise UserInputError(f"--policies: name at least one policy ({SPEC_HELP})")
    if cfg.names and (len(cfg.names) != len(cfg.policies) or len(set(cfg.names)) != len(cfg.names)):
        raise UserInputError(f"--names: give one distinct label per policy ({len(cfg.policies)}), got {len(cfg.names)}")
    eval_metrics = None
    if cfg.eval_metrics is not None:
        try:
            eval_metrics = json.loads(Path(cfg.eval_metrics).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserInputError(
                f"{cfg.eval_metrics}: not a readable metrics.json from evaluate-world-model ({e})"
            ) from e
        if "psnr_by_horizon" not in eval_metrics:
            raise UserInputError(f"{cfg.eval_metrics}: no psnr_by_horizon; give evaluate-world-model's metrics.json")
    if not Path(cfg.dataset).exists():
        raise UserInputError(f"{cfg.dataset}: no such dataset; give the directory the model was trained on")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with open_run(out, cfg, overwrite=cfg.overwrite, tensorboard=True) as run, SideProcess(out / "side.log") as side:
        dataset = TrajectoryDataset(cfg.dataset)
        try:
            worlds = Worlds(cfg, dataset)
        except UserInputError:
            raise
        except (TypeError, ValueError) as e:  # an env refusing its options
            raise UserInputError(f"--env-kwargs {cfg.env_kwargs}: the environment refuses them ({e})") from e
        for spec in cfg.policies:  # each found now, not at its turn minutes in (saved policies are small)
            resolve_policy(spec, worlds.reality or worlds.twin, seed=cfg.seed, device=cfg.device)
        run.start()  # every world is built and every policy found: the run is accepted
        # the side process steps every policy through reality and the twin in turn, ahead of imagination here
        ahead = [side.submit(true_worlds, cfg, i, spec) for i, spec in enumerate(cfg.policies)] if cfg.beside else None
        core = worlds.core
        diagnosing = core  # the replay's own core when it diagnoses fewer episodes: a smaller batch per step
        if cfg.diagnose and cfg.diagnose_episodes is not None and cfg.diagnose_episodes < cfg.episodes:
            from envs.dream_env import DreamCore

            diagnosing = DreamCore(
                core.model, core.dataset, cfg.diagnose_episodes, core.max_steps, cfg.device, core.denoising_steps
            )
            diagnosing.memory = core.memory
        names = [n for n, env in (("reality", worlds.reality), ("twin", worlds.twin)) if env is not None]
        names.append("imagination")
        coverage = DataCoverage.from_dataset(dataset, _holdout(cfg, len(dataset)))
        coverage_world = "twin" if worlds.twin is not None else "reality"
        core.seed(cfg.seed)
        in_data_spread = (
            replayed_spread(core, dataset.split(_holdout(cfg, len(dataset)))[1], cfg.max_steps) if cfg.spread else None
        )
        results: dict[str, Any] = {}
        raw: dict[str, dict[str, np.ndarray]] = {}
        seconds = dict.fromkeys(names, 0.0)
        plots: dict[str, str] = {}
        for p_idx, spec in enumerate(tqdm(cfg.policies, desc="validate", unit="policy")):
            name = cfg.names[p_idx] if cfg.names else _label(spec)
            reference = spec.split(":")[-1] in REFERENCE_POLICIES
            episodes, took = ahead[p_idx].result()[0] if ahead else true_worlds(cfg, p_idx, spec, worlds)
            for world, s in took.items():
                seconds[world] += s
            if not reference:
                t0 = time.time()
                policy = resolve_policy(
                    spec,
                    action_space=worlds.reality.action_space if worlds.reality else worlds.twin.action_space,
                    seed=cfg.seed + p_idx,
                    device=cfg.device,
                )
                core.seed(cfg.seed)
                contexts = episodes.get("reality") or episodes["twin"]
                episodes["imagination"] = imagined_episodes(
                    core,
                    policy,
                    contexts,
                    cfg.max_steps,
                    cfg.deterministic,
                    cfg.spread,
                    cfg.success_return,
                    cfg.spread_episodes,
                )
                if cfg.diagnose:
                    diagnosing.seed(cfg.seed)
                    diagnosed = contexts[: cfg.diagnose_episodes]
                    diagnosis = {
                        "reward_model": reward_model_returns(diagnosing, diagnosed),
                        "replay": replayed_episodes(diagnosing, diagnosed, cfg.max_steps),
                    }
                seconds["imagination"] += time.time() - t0
            entry: dict[str, Any] = {"spec": spec, "reference": reference, "worlds": {}}
            raw[name] = {}
            for world, eps in episodes.items():
                rets = np.array([e["rewards"].sum() for e in eps])
                entry["worlds"][world] = summarise(rets, np.array([e["success"] for e in eps]))
                raw[name][world] = rets
            if cfg.diagnose and not reference:
                entry["diagnosis"] = {}
                for judge, eps in diagnosis.items():
                    rets = np.array([e["rewards"].sum() for e in eps])
                    entry["diagnosis"][judge] = summarise(rets, np.array([e["success"] for e in eps]))
                    raw[name][judge] = rets
            if not reference:
                frames = np.concatenate([e["frames"] for e in episodes[coverage_world]])
                spread = float(np.nanmean([e["spread"] for e in episodes["imagination"]])) if cfg.spread else None
                kept = decisions_kept(policy, diagnosed, diagnosis["replay"], core.L) if cfg.diagnose else None
                trust = {
                    "outside_data": coverage.outside_fraction(frames),
                    "spread": spread,
                    "spread_ratio": spread / in_data_spread if spread is not None and in_data_spread else None,
                    "decisions_kept": kept,
                    "snap_distance": (
                        float(np.nanmean([e["snap_distance"] for e in episodes["imagination"]]))
                        if cfg.snap_to_data
                        else None
                    ),
                }
                entry["trust"] = trust
                entry["flags"] = (
                    (["unsure"] if (trust["spread_ratio"] or 0) > SPREAD_FLAG else [])
                    + (["leaves data"] if trust["outside_data"] > OUTSIDE_FLAG else [])
                    + (["sees differently"] if kept is not None and kept < DECISION_FLAG else [])
                )
            results[name] = entry
            strip = [episodes[w][0]["frames"] for w in names if w in episodes]
            write_png(out / f"frames_{p_idx}.png", example_strip(strip))
            plots[f"frames:{name}"] = f"frames_{p_idx}.png"
            run.log_metrics(
                policy=name,
                **{f"{w}_return": s["mean_return"] for w, s in entry["worlds"].items()},
                **{f"{w}_success": s["success"] for w, s in entry["worlds"].items()},
            )
            LOG.info(
                "%s: %s",
                name,
                ", ".join(
                    f"{w} return {s['mean_return']:.2f} success {s['success']:.2f}" for w, s in entry["worlds"].items()
                ),
            )
        family = [n for n, r in results.items() if not r["reference"]]
        pairs = {}
        for judge, truth in PAIRS:
            if judge in names and truth in names and len(family) >= 2:
                spread = _expert_random_spread(results, truth)
                pairs[f"{judge}-{truth}"] = rank_agreement(
                    [raw[n][judge] for n in family], [raw[n][truth] for n in family], spread, seed=cfg.seed, paired=True
                )
                pairs[f"{judge}-{truth}"]["family"] = family
        diagnosis_report = None
        if cfg.diagnose and len(family) >= 2:
            truth = "reality" if "reality" in names else "twin"
            spread = _expert_random_spread(results, truth)
            judged = {
                judge: rank_agreement(
                    [raw[n][judge] for n in family],
                    [raw[n][truth][: len(raw[n][judge])] for n in family],  # the diagnosed episodes
                    spread,
                    seed=cfg.seed,
                )
                for judge in ("reward_model", "replay")
            }
            judged["imagination"] = pairs[f"imagination-{truth}"]  # the closed loop, ranked above already
            diagnosis_report = {
                "truth": truth,
                "episodes": min(cfg.episodes, cfg.diagnose_episodes or cfg.episodes),
                "pairs": judged,
                "self_agreement": split_half_agreement([raw[n][truth] for n in family], seed=cfg.seed),
            }
        report = {
            "model": str(cfg.model),
            "dataset": str(cfg.dataset),
            "worlds": names,
            "reality": worlds.reality_name,
            "twin": str(cfg.scene) if cfg.scene else None,
            "episodes": cfg.episodes,
            "max_steps": cfg.max_steps,
            "context": core.L,
            "seed": cfg.seed,
            "snap_to_data": cfg.snap_to_data,
            "policies": results,
            "pairs": pairs,
            "diagnosis": diagnosis_report,
            "trust_reference": {
                "in_data_spread": in_data_spread,
                "spread_flag": SPREAD_FLAG,
                "coverage_world": coverage_world,
                "coverage_threshold": coverage.threshold,
                "expected_outside": coverage.expected_outside,
                "outside_flag": OUTSIDE_FLAG,
                "decision_flag": DECISION_FLAG,
            },
            "seconds_by_world": {k: round(v, 1) for k, v in seconds.items()},
        }
        for judge, truth in PAIRS:
            if f"{judge}-{truth}" in pairs:
                plot_pair(report, judge, truth, out / f"pair_{judge}_{truth}.png")
                plots[f"pair:{judge}-{truth}"] = f"pair_{judge}_{truth}.png"
        if eval_metrics is not None:
            plot_psnr(eval_metrics, out / "psnr_horizon.png")
            plots["psnr_horizon"] = "psnr_horizon.png"
        report["plots"] = plots
        write_json(out / "report.json", report)
        write_text(out / "report.md", render_markdown(report))
        LOG.info("report: %s", out / "report.md")
    return report


def _expert_random_spread(results: dict[str, Any], truth: str) -> float | None:
    """Expert minus random mean return in the true world (the yardstick of regret), or the family's range."""
    means = {n: r["worlds"][truth]["mean_return"] for n, r in results.items() if truth in r["worlds"]}
    expert = next((means[n] for n, r in results.items() if r["reference"] and n in means), None)
    rand = next((means[n] for n, r in results.items() if r["spec"] == "random" and n in means), None)
    if expert is not None and rand is not None:
        return expert - rand
    fam = [means[n] for n, r in results.items() if not r["reference"] and n in means]
    return (max(fam) - min(fam)) if len(fam) >= 2 and max(fam) > min(fam) else None
