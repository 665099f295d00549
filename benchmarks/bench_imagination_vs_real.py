"""True return on ALE/Breakout-v5 of a policy trained only in imagination, against the same algorithm trained
on the real environment with as many real steps as the world model's data holds (issue 5, "Scale").

Both arms are our batched PPO actor-critic (training/actor_critic.py) with the same `PPOHyperparameters`, the
same network and the same seed:

- imagination: `worldmodel train-policy MODEL DATA` (a DreamVectorEnv on the world model; the only real steps
  used are the dataset's);
- real: `train_actor_critic` on a gymnasium SyncVectorEnv of the dataset's env (same env kwargs, SAME_STEP
  autoreset) observed as `collect` stored it: render() resized with envs.wrappers.resize_frame, for as
  many steps as the dataset holds (TrajectoryDataset.total_steps).

Then both, and a uniformly random policy, play `--episodes` episodes of the real env from the same seeds
(training.validate.make_real_env / training.rollouts.true_episode), greedy (argmax) and with sampled
actions; the report gives
the mean true return with its 95% t-interval and the wall-clock of each arm.

  OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_imagination_vs_real.py \\
      /work/wm_runs/imag_vs_real/model /work/wm_runs/breakout_train --out /work/wm_runs/imag_vs_real \\
      --imagined-steps 8192 --denoising-steps 2 --episodes 10

`--imagined-policy RUN/policy` skips the imagination arm and evaluates a policy already trained by
`worldmodel train-policy` (its RUN/summary.json supplies the steps and seconds); `--real-policy` likewise.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from accelerate import Accelerator

from envs.action_repeat import make_rgb_env
from envs.wrappers import resize_frame
from training.policies import load_policy, resolve_policy
from training.rollouts import true_episode
from training.stats import t_interval
from training.train_policy import TrainPolicyConfig, _train_actor_critic, train_policy
from training.validate import make_real_env
from wmcore.atomic import write_json
from wmcore.rundir import RunDir
from worldmodel.dataset import TrajectoryDataset


class RenderedFrames(gym.ObservationWrapper):
    """Observations are render() resized exactly as `collect` stored the world model's frames."""

    def __init__(self, env: gym.Env, resolution: tuple[int, int]):
        super().__init__(env)
        self.resolution = resolution
        self.observation_space = gym.spaces.Box(0, 255, (*resolution, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return resize_frame(self.env.render(), self.resolution)


def real_vector_env(source: dict, resolution: tuple[int, int], num_envs: int, max_steps: int):
    """The dataset's env, `num_envs` copies, SAME_STEP autoreset (train_actor_critic's contract)."""

    def make() -> gym.Env:
        env = make_rgb_env(source["env_id"], max_steps, int(source.get("action_repeat", 1)), source.get("env_kwargs"))
        return RenderedFrames(env, resolution)

    return gym.vector.SyncVectorEnv([make] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def policy_config(args: argparse.Namespace, out: Path, total_steps: int) -> TrainPolicyConfig:
    """One config for both arms, so the network, PPO hyperparameters and seed are the same."""
    return TrainPolicyConfig(
        model=args.model,
        dataset=args.dataset,
        out=out,
        total_steps=total_steps,
        num_envs=args.num_envs,
        max_steps=args.imagined_max_steps,
        denoising_steps=args.denoising_steps,
        seed=args.seed,
        algorithm="actor-critic",
    )


def trained_summary(policy_dir: Path) -> dict:
    """steps / seconds of a policy trained earlier (RUN/summary.json beside RUN/policy)."""
    path = Path(policy_dir).parent / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def train_imagined(args: argparse.Namespace) -> tuple[Path, dict]:
    if args.imagined_policy:
        return args.imagined_policy, trained_summary(args.imagined_policy)
    policy = train_policy(policy_config(args, args.out / "imagined", args.imagined_steps))
    return policy, trained_summary(policy)


def train_real(args: argparse.Namespace, dataset: TrajectoryDataset, real_steps: int) -> tuple[Path, dict]:
    if args.real_policy:
        return args.real_policy, trained_summary(args.real_policy)
    cfg = policy_config(args, args.out / "real", real_steps)
    env = real_vector_env(dataset.index["source"], dataset.resolution, args.num_envs, args.max_steps)
    torch.manual_seed(args.seed)
    with RunDir(cfg.out, cfg) as run:
        t0 = time.time()
        source = {"env": dataset.index["source"], "frames": "render resized"}
        summary = _train_actor_critic(cfg, env, run, cfg.out / "policy", source, Accelerator(cpu=True), "cpu")
        summary.update(algorithm="actor-critic", seconds=round(time.time() - t0, 2))
        write_json(cfg.out / "summary.json", summary)
    env.close()
    return cfg.out / "policy", summary


def evaluate(policy, env, seeds: list[int], max_steps: int, deterministic: bool = False) -> dict:
    t0 = time.time()
    episodes = [true_episode(env, policy, s, max_steps, deterministic) for s in seeds]
    returns = np.array([float(e["rewards"].sum()) for e in episodes])
    mean, lo, hi = t_interval(returns)
    return {
        "mean_return": mean,
        "return_ci95": [lo, hi],
        "returns": returns.tolist(),
        "lengths": [len(e["actions"]) for e in episodes],
        "seconds": round(time.time() - t0, 2),
    }


def markdown_table(results: dict) -> str:
    rows = [
        "| policy | real steps used | imagined steps | actions | true return (95% CI) | train s | eval s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results["arms"].items():
        for mode, e in r["eval"].items():
            lo, hi = e["return_ci95"]
            ci = f"{e['mean_return']:.2f} [{lo:.2f}, {hi:.2f}]"
            rows.append(
                f"| {name} | {r['real_steps']:,} | {r['imagined_steps']:,} | {mode} | {ci} | "
                f"{r['train_seconds']:.0f} | {e['seconds']:.0f} |"
            )
    return "\n".join(rows)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="world model directory")
    p.add_argument("dataset", type=Path, help="the model's training data (names the real env; sets the real steps)")
    p.add_argument("--out", type=Path, default=Path("runs/imagination_vs_real"))
    p.add_argument("--imagined-steps", type=int, default=8192, help="imagined env steps, summed over the batch")
    p.add_argument("--imagined-max-steps", type=int, default=50, help="imagined episodes are cut after this")
    p.add_argument("--denoising-steps", type=int, default=2)
    p.add_argument("--imagined-policy", type=Path, help="evaluate this RUN/policy instead of training one")
    p.add_argument("--real-steps", type=int, help="default: the dataset's total steps")
    p.add_argument("--real-policy", type=Path, help="evaluate this RUN/policy instead of training on the real env")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--max-steps", type=int, default=2000, help="real-env episode limit (training and evaluation)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--eval-seed", type=int, default=10_000, help="episode i of every policy starts from seed + i")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    import envs  # noqa: F401  (registers ALE with the worldmodel ids)

    args.out.mkdir(parents=True, exist_ok=True)
    dataset = TrajectoryDataset(args.dataset)
    real_steps = args.real_steps or dataset.total_steps

    imagined_dir, imagined = train_imagined(args)
    real_dir, real = train_real(args, dataset, real_steps)

    source = dataset.index["source"]
    env = make_real_env(source["env_id"], args.max_steps, {}, source, dataset.resolution)
    seeds = [args.eval_seed + i for i in range(args.episodes)]
    random_policy = resolve_policy("random", env, seed=args.seed)
    arms = {
        "random": {
            "real_steps": 0,
            "imagined_steps": 0,
            "train_seconds": 0.0,
            "eval": {"sampled": evaluate(random_policy, env, seeds, args.max_steps)},
        },
    }
    for name, policy_dir, summary, data_steps, imagined_steps in (
        ("imagination only", imagined_dir, imagined, dataset.total_steps, imagined.get("steps", 0)),
        ("real env", real_dir, real, real.get("steps", real_steps), 0),
    ):
        policy = load_policy(policy_dir)
        arms[name] = {
            "policy": str(policy_dir),
            "real_steps": data_steps,
            "imagined_steps": imagined_steps,
            "train_seconds": summary.get("seconds", float("nan")),
            "train_summary": summary,
            "eval": {
                "greedy": evaluate(policy, env, seeds, args.max_steps, deterministic=True),
                "sampled": evaluate(policy, env, seeds, args.max_steps),
            },
        }
        print(name, {m: round(e["mean_return"], 2) for m, e in arms[name]["eval"].items()}, flush=True)

    results = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "env": dataset.index["source"],
        "dataset_steps": dataset.total_steps,
        "eval_seeds": seeds,
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "hp": asdict(policy_config(args, args.out, 1).hp),
        "arms": arms,
    }
    results["table"] = markdown_table(results)
    write_json(args.out / "imagination_vs_real.json", results)
    print(results["table"])


if __name__ == "__main__":
    main()
