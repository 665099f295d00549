"""The closed model-based loop on a standard environment: CarRacing-v3 at 64×64, at most 50,000 real steps.

Three stages, the first two side by side (one CPU thread each, so the loop's CPU time is its own):

1. `worldmodel model-based CarRacing-v3` — the loop (discrete actions: nothing, left, right, gas, brake; 500-step
   episodes; 5 iterations of 16 real episodes, plus the last policy's 16 for `--deploy best_real`: at most
   6 × 16 × 500 = 48,000 real steps, every one counted);
2. SB3 PPO (`CnnPolicy`) trained model-free in CarRacing with 48,000 real steps — the loop's maximum, so the
   baseline never has fewer real steps than the loop;
3. every policy in reality on the same 20 fresh tracks (seeds 5,000,000+, sampled actions), mean return with
   its 95 % t-interval: the loop's deployed policy, random, a sticky random walk, PPO.

    python benchmarks/carracing_loop.py OUT [--quick] [-- LOOP FLAGS...]

Writes OUT/report.json and OUT/report.md (and OUT/loop, OUT/ppo). `--quick` runs every stage at toy sizes (a
minute) to check the script itself; flags after `--` go to `worldmodel model-based` (e.g.
`--world-model.reward-loss mse`); a PPO policy already in OUT/ppo/policy is reused, so a variant of the loop is
measured against the same baseline. There is no twin here: reality is the env itself.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ENV_ID = "CarRacing-v3"
ENV_KWARGS = {"continuous": False}
RES = (64, 64)


SIZES = {
    "episode_steps": (500, 40),
    "iterations": (5, 2),
    "real_episodes": (16, 2),
    "wm_first": (2000, 30),
    "wm_steps": (600, 10),
    "policy_steps": (15_000, 512),
    "num_envs": (64, 16),
    "eval_episodes": (20, 3),
}
"""Episode length, loop budgets and evaluation size: (the measurement's, --quick's toy size)."""


def sizes(quick: bool) -> dict:
    return {k: v[int(quick)] for k, v in SIZES.items()}


def max_real_steps(s: dict) -> int:
    """The loop's real steps at most: one collection per iteration and the last policy's for best_real."""
    return (s["iterations"] + 1) * s["real_episodes"] * s["episode_steps"]


def loop_command(out: Path, s: dict, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "training.cli", "model-based", ENV_ID, "--out", str(out / "loop"), "--overwrite",
        "--env-kwargs", json.dumps(ENV_KWARGS), "--resolution", *map(str, RES),
        "--episode-steps", str(s["episode_steps"]), "--iterations", str(s["iterations"]),
        "--real-episodes", str(s["real_episodes"]), "--world-model-first-steps", str(s["wm_first"]),
        "--world-model-steps", str(s["wm_steps"]), "--policy-steps", str(s["policy_steps"]),
        "--num-envs", str(s["num_envs"]), "--deploy", "best_real",
        "--world-model.block-out-channels", "16", "32", "32", "--world-model.reward-channels", "16", "32", "32",
        *extra,
    ]  # fmt: skip


def make_env(max_steps: int):
    from envs.action_repeat import make_rgb_env
    from envs.wrappers import RenderedObservation

    return RenderedObservation(make_rgb_env(ENV_ID, max_steps, 1, ENV_KWARGS), RES)


def train_ppo(out: Path, steps: int, max_steps: int) -> None:
    """SB3 PPO, CnnPolicy, 4 envs × 256-step rollouts (47 updates in 48,000 steps), SB3's other defaults."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from training.policies import save_sb3_policy

    class Gym(gym.Env):
        """RenderedObservation as a gym.Env, so SB3's wrappers accept it."""

        def __init__(self) -> None:
            self.inner = make_env(max_steps)
            self.observation_space, self.action_space = self.inner.observation_space, self.inner.action_space

        def reset(self, seed=None, options=None):
            return self.inner.reset(seed=seed, options=options)

        def step(self, action):
            return self.inner.step(int(np.asarray(action)))

    venv = DummyVecEnv([lambda: Monitor(Gym()) for _ in range(4)])
    model = PPO("CnnPolicy", venv, n_steps=256, batch_size=64, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=steps)
    save_sb3_policy(model, out / "ppo" / "policy", {}, extra={"trained_in": ENV_ID, "real_steps": model.num_timesteps})


def evaluate(out: Path, s: dict, specs: dict[str, str]) -> dict:
    from training.policies import resolve_policy
    from training.rollouts import true_episodes
    from training.stats import summarise

    env = make_env(s["episode_steps"])
    seeds = [5_000_000 + i for i in range(s["eval_episodes"])]
    result = {}
    for name, spec in specs.items():
        t0 = time.time()
        eps = true_episodes(env, resolve_policy(spec, env, seed=1), seeds, s["episode_steps"])
        r = summarise([e["rewards"].sum() for e in eps], [e["success"] for e in eps])
        result[name] = {k: r[k] for k in ("episodes", "mean_return", "return_ci95", "returns")}
        lo, hi = r["return_ci95"]
        print(f"{name}: return {r['mean_return']:.1f} ({lo:.1f} to {hi:.1f}), {time.time() - t0:.0f} s", flush=True)
    return result


def main() -> None:
    args, extra = sys.argv[1:], []
    if "--" in args:
        args, extra = args[: args.index("--")], args[args.index("--") + 1 :]
    out, quick = Path(args[0]), "--quick" in args
    s = sizes(quick)
    if len(args) > 1 and args[1] == "ppo":  # the baseline's own process
        train_ppo(out, max_real_steps(s), s["episode_steps"])
        return
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    log = open(out / "loop.log", "w")
    procs = [("loop", subprocess.Popen(loop_command(out, s, extra), env=env, stdout=log, stderr=subprocess.STDOUT))]
    seconds: dict = {"ppo": {"reused": str(out / "ppo" / "policy")}}
    if not (out / "ppo" / "policy" / "policy.json").is_file():
        ppo_cmd = [sys.executable, __file__, str(out), "ppo"] + (["--quick"] if quick else [])
        ppo_log = open(out / "ppo.log", "w")
        procs.append(("ppo", subprocess.Popen(ppo_cmd, env=env, stdout=ppo_log, stderr=subprocess.STDOUT)))
    for name, proc in procs:
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.wait() != 0:
            sys.exit(f"{name} failed: see {out / (name + '.log')}")
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds[name] = {
            "wall_until_done": round(time.time() - t0, 1),
            "cpu": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        }
    summary = json.loads((out / "loop" / "summary.json").read_text())
    ppo_meta = json.loads((out / "ppo" / "policy" / "policy.json").read_text())
    specs = {
        "imagination-trained (loop, deployed)": str(out / "loop" / "policy"),
        f"PPO in reality, {ppo_meta['real_steps']} real steps": str(out / "ppo" / "policy"),
        "random": "random",
        "sticky random walk": "sticky",
    }
    t1 = time.time()
    policies = evaluate(out, s, specs)
    names = list(specs)
    loop_ci, ppo_ci, random_ci = (policies[n]["return_ci95"] for n in names[:3])
    report = {
        "env": ENV_ID,
        "env_kwargs": ENV_KWARGS,
        "resolution": RES,
        "sizes": s,
        "loop_flags": extra,
        "loop_real_steps": summary["real_steps"],
        "ppo_real_steps": ppo_meta["real_steps"],
        "loop_deploy": summary["deploy"],
        "loop_iterations": summary["iterations"],
        "seconds": {**seconds, "evaluate": round(time.time() - t1, 1)},
        "policies": policies,
        "checks": {
            "loop_above_random": loop_ci[0] > random_ci[1],
            "loop_above_ppo": loop_ci[0] > ppo_ci[1],
            "loop_cpu_within_2_hours": seconds["loop"]["cpu"] <= 7200,
            "loop_real_steps_within_50k": summary["real_steps"] <= 50_000,
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    ppo_cpu = f"{seconds['ppo']['cpu'] / 60:.1f} CPU minutes" if "cpu" in seconds["ppo"] else "reused"
    lines = [f"# {ENV_ID} ({ENV_KWARGS}), {RES[0]}×{RES[1]}: the loop against model-free PPO", ""]
    lines.append(
        f"Loop ({' '.join(extra) or 'default flags'}): {summary['real_steps']} real steps, "
        f"{seconds['loop']['cpu'] / 60:.1f} CPU minutes; PPO: {ppo_meta['real_steps']} real steps, {ppo_cpu}."
    )
    lines += ["", f"| policy | mean return over {s['eval_episodes']} tracks (95 % t-interval) |", "|---|---|"]
    for n in names:
        p = policies[n]
        lines.append(f"| {n} | {p['mean_return']:.1f} ({p['return_ci95'][0]:.1f} to {p['return_ci95'][1]:.1f}) |")
    lines += ["", "Checks (intervals separated): " + ", ".join(f"{k} {v}" for k, v in report["checks"].items())]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
