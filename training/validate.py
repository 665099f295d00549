"""`worldmodel validate MODEL DATASET --policies ...`: is the world model good enough to judge policies?

Each policy runs `episodes` episodes in the ground-truth environment (a SceneEnv, or the Gymnasium
env the dataset was collected from) and in the world model, from matched starts: episode i resets
the true env with seed `seed + i`, the policy acts there for the L-1 steps the model needs as
context, and the imagined episode starts from exactly those L real frames and actions. Both
returns include the shared context steps; both episodes are cut `max_steps` steps after reset.

Reported per policy and world: mean return (95% t-interval), success rate (95% Wilson interval),
the imagination gap (imagined minus true, with the paired 95% interval); across policies the
Spearman rank correlation of imagined vs true mean returns — does imagination rank policies the
way reality does? Writes report.json, report.md and PNG plots into the run directory.

Policies: `random`; `oracle` (envs.oracle.ShortestPathPolicy, SceneEnv PointNav only: it reads the
true state, so in imagination it replays its true actions open-loop); a directory saved by
`worldmodel train-policy`; or `module:callable` (a callable observation -> action, or an object
with SB3-style `predict`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

from wmcore.atomic import atomic_path, write_json, write_text
from wmcore.errors import UserInputError
from wmcore.rundir import RunDir

LOG = logging.getLogger("worldmodel.validate")


@dataclass
class ValidateConfig:
    """Run policies in imagination and in the ground-truth environment and compare."""

    model: tyro.conf.Positional[Path]
    """World model directory (RUN/model from train-world-model)."""
    dataset: tyro.conf.Positional[Path]
    """The model's trajectory dataset (its dataset.json names the source env when --scene is not given)."""
    policies: tuple[str, ...] = ("random",)
    """Policies to compare: random, oracle, a RUN/policy directory, or module:callable."""
    scene: Path | None = None
    """Ground truth is a SceneEnv over this Scene, observing at the model's resolution."""
    env_id: str | None = None
    """Ground truth is this Gymnasium env, observed through render() resized like `collect` (default:
    the env the dataset was collected from)."""
    env_kwargs: str = "{}"
    """JSON keyword arguments for the ground-truth env (SceneEnv options with --scene)."""
    episodes: int = 20
    """Episodes per policy in each world."""
    max_steps: int = 50
    """Steps per episode (including the L-1 shared context steps)."""
    success_return: float | None = None
    """An episode succeeds when its return reaches this; None: when it ends by termination (not the
    step limit) — arrival, for SceneEnv PointNav."""
    eval_metrics: Path | None = None
    """metrics.json from `worldmodel evaluate-world-model`: adds the PSNR-by-horizon plot."""
    out: Path = Path("runs/validate")
    """Run directory: report.json, report.md, PNGs, config.json, log.txt, metrics.jsonl."""
    denoising_steps: int | None = None
    """Denoising steps per imagined frame (None: the model's default)."""
    device: str = "cpu"
    """Torch device of the world model and the policies."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    seed: int = 0
    """Seed of episode i is seed + i in both worlds."""
    deterministic: bool = False
    """Take each policy's most likely action; by default actions are sampled from the policy's
    distribution, as in training (argmax navigation policies measured here got stuck against walls:
    40 collisions in 50 steps, 7% success, against 15% sampling)."""


# ---------------------------------------------------------------------- statistics
def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its Student-t confidence interval (a single value gives a zero-width interval)."""
    from scipy import stats

    x = np.asarray(x, np.float64)
    m = float(x.mean())
    if len(x) < 2 or float(x.std()) == 0.0:
        return m, m, m
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - h, m + h


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """Success rate and its Wilson score interval (sound at 0% and 100%, unlike the normal one)."""
    from scipy import stats

    if n == 0:
        return float("nan"), float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not rounding noise
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return p, lo, hi


def summarise(returns: np.ndarray, success: np.ndarray) -> dict[str, Any]:
    m, lo, hi = t_interval(returns)
    p, plo, phi = wilson_interval(int(success.sum()), len(success))
    return {
        "mean_return": m,
        "return_ci95": [lo, hi],
        "success_rate": p,
        "success_ci95": [plo, phi],
        "returns": returns.tolist(),
        "success": success.astype(bool).tolist(),
    }


# ---------------------------------------------------------------------- environments
class RenderedObservation:
    """A Gymnasium env observed as the world model saw it in `collect`: render() resized."""

    def __init__(self, env: Any, resolution: tuple[int, int]):
        self.env, self.resolution = env, resolution
        self.action_space = env.action_space
        self.unwrapped = env.unwrapped

    def _obs(self) -> np.ndarray:
        from training.collect import resize_frame

        return resize_frame(self.env.render(), self.resolution)

    def reset(self, seed: int | None = None):
        _, info = self.env.reset(seed=seed)
        return self._obs(), info

    def step(self, action: Any):
        _, r, term, trunc, info = self.env.step(action)
        return self._obs(), r, term, trunc, info


def make_truth_env(cfg: ValidateConfig, resolution: tuple[int, int], dataset_source: dict[str, Any]) -> Any:
    """The ground-truth env whose observations have the model's resolution."""
    try:
        kwargs = json.loads(cfg.env_kwargs)
    except json.JSONDecodeError as e:
        raise UserInputError(f"--env-kwargs {cfg.env_kwargs!r} is not valid JSON ({e})") from e
    h, w = resolution
    # a model trained on action-repeated data predicts that many env steps per step
    repeat = int(dataset_source.get("action_repeat", 1))
    from envs.action_repeat import ActionRepeat, make_rgb_env

    if cfg.scene is not None:
        from envs.scene_env import SceneEnv

        if not Path(cfg.scene).exists():
            raise UserInputError(f"{cfg.scene}: no such scene; pass a Scene directory from `worldmodel reconstruct`")
        env = SceneEnv(cfg.scene, **{"max_steps": cfg.max_steps * repeat, **kwargs, "width": w, "height": h})
        if env.observation_space.shape != (h, w, 3):
            raise UserInputError(
                f"--env-kwargs {cfg.env_kwargs}: the SceneEnv must observe RGB only "
                "(no depth/state) to match the world model"
            )
        return ActionRepeat(env, repeat) if repeat > 1 else env
    import gymnasium as gym

    import envs  # noqa: F401  (registers worldmodel/* ids)

    env_id = cfg.env_id or dataset_source.get("env_id")
    if not env_id:
        raise UserInputError(f"{cfg.dataset}: the dataset does not name its source env; pass --scene or --env-id")
    kwargs = {**(dataset_source.get("env_kwargs") or {}), **kwargs} if not cfg.env_id else kwargs
    try:
        env = make_rgb_env(env_id, cfg.max_steps, repeat, kwargs)
    except gym.error.Error as e:
        raise UserInputError(f"cannot make environment {env_id!r}: {e}") from e
    if dataset_source.get("frames") == "observation" and not cfg.env_id:
        return env  # the model was trained on the observations themselves (e.g. SceneNav)
    return RenderedObservation(env, resolution)


# ---------------------------------------------------------------------- rollouts
def _success(ret: float, terminated: bool, success_return: float | None) -> bool:
    return ret >= success_return if success_return is not None else bool(terminated)


def true_episode(env: Any, policy: Any, seed: int, max_steps: int, deterministic: bool = False) -> dict[str, Any]:
    """One episode in the ground-truth env: frames, actions, rewards, terminated."""
    from training.policies import act

    obs, _ = env.reset(seed=seed)
    frames, actions, rewards, term = [obs], [], [], False
    for _ in range(max_steps):
        a = act(policy, obs[None], deterministic)[0]
        obs, r, term, trunc, _ = env.step(a)
        frames.append(obs)
        actions.append(a)
        rewards.append(float(r))
        if term or trunc:
            break
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions),
        "rewards": np.array(rewards),
        "terminated": bool(term),
    }


def imagined_episodes(
    core: Any, policy: Any, truths: list[dict[str, Any]], max_steps: int, replay: bool, deterministic: bool = False
) -> list[dict[str, Any]]:
    """All episodes at once in the world model, each started from its true episode's first L frames
    and L-1 actions; `replay` feeds the true actions open-loop instead of asking the policy."""
    from training.policies import act

    L, n = core.L, len(truths)
    out = []
    for i, tr in enumerate(truths):
        k = min(L - 1, len(tr["actions"]))  # steps shared with the true episode
        out.append(
            {
                "frames": list(tr["frames"][: k + 1]),
                "rewards": list(tr["rewards"][:k]),
                "terminated": bool(tr["terminated"]) if k < L - 1 else False,
                "done": k < L - 1,
            }
        )
        if k == L - 1:
            core.set_context(i, tr["frames"][:L], tr["actions"][: L - 1])
    core.steps[:] = 0
    for t in range(L - 1, max_steps):
        live = [i for i in range(n) if not out[i]["done"]]
        if not live:
            break
        obs = core.observations()
        if replay:
            acts = np.stack(
                [
                    truths[i]["actions"][t] if t < len(truths[i]["actions"]) else truths[i]["actions"][-1]
                    for i in range(n)
                ]
            )
        else:
            acts = act(policy, obs, deterministic)
        nxt, rew, term, _ = core.step(acts)
        for i in live:
            e = out[i]
            e["frames"].append(nxt[i])
            e["rewards"].append(float(rew[i]))
            e["terminated"] = bool(term[i])
            if term[i] or (replay and t + 1 >= len(truths[i]["actions"])):
                e["done"] = True
    return [
        {"frames": np.stack(e["frames"]), "rewards": np.array(e["rewards"]), "terminated": e["terminated"]} for e in out
    ]


# ---------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_returns(results: dict[str, Any], path: Path) -> None:
    """Imagined vs true mean return per policy, with 95% intervals and the y = x line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lims = []
    for name, r in results.items():
        t, im = r["true"], r["imagined"]
        x, y = t["mean_return"], im["mean_return"]
        xerr = [[x - t["return_ci95"][0]], [t["return_ci95"][1] - x]]
        yerr = [[y - im["return_ci95"][0]], [im["return_ci95"][1] - y]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=4, label=name)
        lims += [*t["return_ci95"], *im["return_ci95"]]
    lo, hi = min(lims), max(lims)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="imagined = true")
    ax.set_xlabel("true mean return")
    ax.set_ylabel("imagined mean return")
    ax.set_title("Imagination vs reality (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_psnr(metrics: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("psnr_by_horizon", "world model"),
        ("shuffled_actions_psnr_by_horizon", "shuffled actions"),
        ("copy_last_psnr_by_horizon", "copy last frame"),
    ):
        if key in metrics:
            hs = sorted(int(h) for h in metrics[key])
            ax.plot(hs, [metrics[key][str(h)] for h in hs], marker="o", label=label)
    ax.set_xlabel("imagined steps (horizon)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("World-model fidelity against horizon")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def example_strip(true_frames: np.ndarray, imagined_frames: np.ndarray, count: int = 8) -> np.ndarray:
    """Two rows (true above, imagined below) of `count` frames at matching steps."""
    n = min(len(true_frames), len(imagined_frames))
    idx = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    pad = 2
    h, w = true_frames.shape[1:3]
    img = np.full((2 * h + pad, len(idx) * (w + pad), 3), 255, np.uint8)
    for j, t in enumerate(idx):
        img[:h, j * (w + pad) : j * (w + pad) + w] = true_frames[t]
        img[h + pad :, j * (w + pad) : j * (w + pad) + w] = imagined_frames[t]
    return img


# ---------------------------------------------------------------------- the command
def _label(spec: str) -> str:
    p = Path(spec)
    return f"{p.parent.name}/{p.name}" if p.exists() and p.name == "policy" else spec


def validate(cfg: ValidateConfig) -> dict[str, Any]:
    """Run every policy in both worlds; write report.json, report.md and plots. Returns the report."""
    from scipy import stats

    from envs.dream_env import DreamCore, gym_action_space
    from envs.oracle import ShortestPathPolicy
    from envs.scene_env import SceneEnv
    from training.policies import resolve_policy
    from wmcore.media import write_png
    from worldmodel.dataset import TrajectoryDataset

    if cfg.episodes < 1 or cfg.max_steps < 1:
        raise UserInputError("--episodes and --max-steps must be positive")
    if not cfg.policies:
        raise UserInputError("--policies: name at least one policy")
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
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    with RunDir(out, cfg) as run:
        if not Path(cfg.dataset).exists():
            raise UserInputError(f"{cfg.dataset}: no such dataset; give the directory the model was trained on")
        dataset = TrajectoryDataset(cfg.dataset)
        core = DreamCore(cfg.model, dataset, cfg.episodes, cfg.max_steps, cfg.device, cfg.denoising_steps)
        resolution = tuple(core.model.config.resolution)
        truth_env = make_truth_env(cfg, resolution, dataset.index.get("source") or {})
        space = gym_action_space(core.space)
        if truth_env.action_space != space:
            raise UserInputError(
                f"the ground-truth env's actions {truth_env.action_space} differ from the model's "
                f"{space}; validate against the env the model was trained on"
            )
        results: dict[str, Any] = {}
        examples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        t0 = time.time()
        for p_idx, spec in enumerate(tqdm(cfg.policies, desc="validate", unit="policy")):
            if spec == "oracle":
                if not isinstance(truth_env.unwrapped, SceneEnv):
                    raise UserInputError("policy 'oracle' needs a SceneEnv ground truth (--scene)")
                policy = _OraclePolicy(ShortestPathPolicy(truth_env.unwrapped))
            else:
                policy = resolve_policy(spec, space, seed=cfg.seed + p_idx, device=cfg.device)
            truths = [
                true_episode(truth_env, policy, cfg.seed + i, cfg.max_steps, cfg.deterministic)
                for i in range(cfg.episodes)
            ]
            core.seed(cfg.seed)
            dreams = imagined_episodes(core, policy, truths, cfg.max_steps, spec == "oracle", cfg.deterministic)
            rt = np.array([tr["rewards"].sum() for tr in truths])
            ri = np.array([d["rewards"].sum() for d in dreams])
            st = np.array([_success(r, tr["terminated"], cfg.success_return) for r, tr in zip(rt, truths)])
            si = np.array([_success(r, d["terminated"], cfg.success_return) for r, d in zip(ri, dreams)])
            gm, glo, ghi = t_interval(ri - rt)
            name = _label(spec)
            results[name] = {
                "true": summarise(rt, st),
                "imagined": summarise(ri, si),
                "gap": {
                    "return": float(ri.mean() - rt.mean()),
                    "return_paired_ci95": [glo, ghi],
                    "success_rate": float(si.mean() - st.mean()),
                },
                "imagined_open_loop_replay": spec == "oracle",
            }
            examples[name] = (truths[0]["frames"], dreams[0]["frames"])
            run.log_metrics(
                policy=name,
                true_return=float(rt.mean()),
                imagined_return=float(ri.mean()),
                true_success=float(st.mean()),
                imagined_success=float(si.mean()),
            )
            LOG.info(
                "%s: true return %.3f, imagined %.3f (gap %+.3f); success %.2f vs %.2f",
                name,
                rt.mean(),
                ri.mean(),
                ri.mean() - rt.mean(),
                st.mean(),
                si.mean(),
            )
        if len(results) >= 2:
            tm = [r["true"]["mean_return"] for r in results.values()]
            im = [r["imagined"]["mean_return"] for r in results.values()]
            rho, pval = stats.spearmanr(im, tm)
            rank = {
                "spearman_rho": None if np.isnan(rho) else float(rho),
                "p_value": None if np.isnan(pval) else float(pval),
                "policies": len(results),
            }
        else:
            rank = {"spearman_rho": None, "p_value": None, "policies": len(results)}
        report = {
            "model": str(cfg.model),
            "dataset": str(cfg.dataset),
            "episodes": cfg.episodes,
            "max_steps": cfg.max_steps,
            "context": core.L,
            "seed": cfg.seed,
            "ground_truth": str(cfg.scene)
            if cfg.scene
            else (cfg.env_id or dataset.index.get("source", {}).get("env_id")),
            "policies": results,
            "rank_agreement": rank,
            "seconds": round(time.time() - t0, 2),
        }
        plots = {"returns": "returns.png"}
        plot_returns(results, out / "returns.png")
        if eval_metrics is not None:
            plot_psnr(eval_metrics, out / "psnr_horizon.png")
            plots["psnr_horizon"] = "psnr_horizon.png"
        for i, (name, (tf, imf)) in enumerate(examples.items()):
            write_png(out / f"frames_{i}.png", example_strip(tf, imf))
            plots[f"frames:{name}"] = f"frames_{i}.png"
        report["plots"] = plots
        write_json(out / "report.json", report)
        write_text(out / "report.md", render_markdown(report))
        LOG.info("report: %s", out / "report.md")
    return report


class _OraclePolicy:
    """ShortestPathPolicy behind `predict` (it ignores the observation and reads the env's state)."""

    def __init__(self, oracle: Any):
        self.oracle = oracle

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        return np.array([self.oracle(o) for o in np.asarray(obs).reshape((-1,) + np.asarray(obs).shape[-3:])]), None


def render_markdown(report: dict[str, Any]) -> str:
    def ci(v: list[float]) -> str:
        return f"[{v[0]:.3f}, {v[1]:.3f}]"

    lines = [
        "# Validation: imagination vs ground truth",
        "",
        f"Model `{report['model']}`, ground truth `{report['ground_truth']}`; {report['episodes']} episodes "
        f"per policy from matched seeds and starts (the first {report['context']} frames are real in both), "
        f"at most {report['max_steps']} steps.",
        "",
        "| policy | true return (95% CI) | imagined return (95% CI) | gap (paired 95% CI) | true success "
        "(Wilson 95%) | imagined success (Wilson 95%) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in report["policies"].items():
        t, im, g = r["true"], r["imagined"], r["gap"]
        mark = " (open-loop replay)" if r["imagined_open_loop_replay"] else ""
        lines.append(
            f"| {name}{mark} | {t['mean_return']:.3f} {ci(t['return_ci95'])} | {im['mean_return']:.3f} "
            f"{ci(im['return_ci95'])} | {g['return']:+.3f} {ci(g['return_paired_ci95'])} | "
            f"{t['success_rate']:.2f} {ci(t['success_ci95'])} | {im['success_rate']:.2f} "
            f"{ci(im['success_ci95'])} |"
        )
    rank = report["rank_agreement"]
    rho = (
        "n/a (needs 2 policies with distinct returns)"
        if rank["spearman_rho"] is None
        else f"{rank['spearman_rho']:.3f} (p = {rank['p_value']:.3g})"
        if rank["p_value"] is not None
        else f"{rank['spearman_rho']:.3f}"
    )
    lines += [
        "",
        f"Spearman rank agreement of imagined vs true mean returns over {rank['policies']} policies: {rho}.",
        "",
        "![imagined vs true return](returns.png)",
        "",
    ]
    if "psnr_horizon" in report["plots"]:
        lines += ["![PSNR against horizon](psnr_horizon.png)", ""]
    for key, file in report["plots"].items():
        if key.startswith("frames:"):
            lines += [f"Example episode of `{key[7:]}` (top: true, bottom: imagined):", "", f"![{key}]({file})", ""]
    return "\n".join(lines)
